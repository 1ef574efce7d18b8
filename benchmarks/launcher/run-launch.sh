#!/usr/bin/env bash
# Launch overhead: `cohort run -n 4 hello` against bare `mpirun -np 4 hello` and against
# mpirun given exactly the flags Cohort passed (read from the run's own launchedCommand, less
# the rank wrapper and its -x exports), interleaved, medians of R rounds.
#
#   bash benchmarks/launcher/run-launch.sh [rounds=15]
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds=${1:-15}
bash scripts/setup.sh
for product in cohort cohort-rank-env hello; do swift build -c release --product "$product" >/dev/null; done
bin=$(swift build -c release --show-bin-path)
export COHORT_HOME=$(mktemp -d)
root=()
[ "$(id -u)" -eq 0 ] && root=(--allow-run-as-root)
python3 - "$rounds" "$bin" "${root[@]}" <<'PY'
import statistics, subprocess, sys, time
rounds, bin, root = int(sys.argv[1]), sys.argv[2], sys.argv[3:]
hello = f"{bin}/hello"
import json
# What Cohort ran, flag for flag: its mpirun options (hostfile included), without -x NAME
# (the variables Cohort sets for its ranks) and without the rank wrapper before hello.
ran = json.loads(subprocess.run([f"{bin}/cohort", "run", "--output", "json", "-n", "4", "--", hello], capture_output=True, text=True, check=True).stdout)
launched = ran["tasks"][0]["attempts"][-1]["launchedCommand"]
same, i = [], 0
while launched[i] != hello and "rank-env" not in launched[i]:
    if launched[i] == "-x": i += 2; continue
    same.append(launched[i]); i += 1
commands = {
    "mpirun -np 4 --oversubscribe hello": ["mpirun", "-np", "4", "--oversubscribe", *root, hello],
    "mpirun, Cohort's flags": same + [hello],
    "cohort run -n 4 hello": [f"{bin}/cohort", "run", "--quiet", "-n", "4", "--", hello],
}
print("# Cohort's flags: " + " ".join(same[1:]))
times = {name: [] for name in commands}
for _ in range(rounds):
    for name, argv in commands.items():
        start = time.perf_counter()
        result = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times[name].append(time.perf_counter() - start)
        if result.returncode != 0: sys.exit(f"{name} failed with {result.returncode}")
base = statistics.median(times["mpirun -np 4 --oversubscribe hello"])
print(f"# launch: 4 ranks of hello (MPI_Init + Finalize), medians of {rounds} interleaved runs")
print(f"{'command':<40}{'median (ms)':>12}{'p90 (ms)':>10}{'vs bare mpirun':>16}{'vs same flags':>15}")
same_flags = statistics.median(times["mpirun, Cohort's flags"])
for name, values in times.items():
    values.sort()
    median = statistics.median(values)
    print(f"{name:<40}{median*1e3:>12.1f}{values[int(len(values)*0.9)]*1e3:>10.1f}{median/base:>16.2f}{median/same_flags:>15.2f}")
PY

#!/usr/bin/env bash
# Launch overhead: `cohort run -n 4 hello` against bare `mpirun -np 4 hello` (and against
# mpirun with the flags Cohort chooses), interleaved, medians of R rounds.
#
#   bash benchmarks/launcher/run-launch.sh [rounds=15]
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds=${1:-15}
bash scripts/setup.sh
swift build -c release --product cohort >/dev/null
swift build -c release --product hello >/dev/null
bin=$(swift build -c release --show-bin-path)
export COHORT_HOME=$(mktemp -d)
root=()
[ "$(id -u)" -eq 0 ] && root=(--allow-run-as-root)
python3 - "$rounds" "$bin" "${root[@]}" <<'PY'
import statistics, subprocess, sys, time
rounds, bin, root = int(sys.argv[1]), sys.argv[2], sys.argv[3:]
hello = f"{bin}/hello"
commands = {
    "mpirun -np 4 --oversubscribe hello": ["mpirun", "-np", "4", "--oversubscribe", *root, hello],
    "mpirun, Cohort's flags (shm chosen)": ["mpirun", "-np", "4", "--oversubscribe", "--bind-to", "none", "--mca", "mpi_yield_when_idle", "1",
                                            "--mca", "pml", "ob1", "--mca", "btl", "self,vader", *root, hello],
    "cohort run -n 4 hello": [f"{bin}/cohort", "run", "--quiet", "-n", "4", "--", hello],
}
times = {name: [] for name in commands}
for _ in range(rounds):
    for name, argv in commands.items():
        start = time.perf_counter()
        result = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times[name].append(time.perf_counter() - start)
        if result.returncode != 0: sys.exit(f"{name} failed with {result.returncode}")
base = statistics.median(times["mpirun -np 4 --oversubscribe hello"])
print(f"# launch: 4 ranks of hello (MPI_Init + Finalize), medians of {rounds} interleaved runs")
print(f"{'command':<40}{'median (ms)':>12}{'p90 (ms)':>10}{'vs bare mpirun':>16}")
for name, values in times.items():
    values.sort()
    median = statistics.median(values)
    print(f"{name:<40}{median*1e3:>12.1f}{values[int(len(values)*0.9)]*1e3:>10.1f}{median/base:>16.2f}")
PY

#!/usr/bin/env bash
# Independent-task throughput: N trivial `true` tasks through `cohort run` on the local pool
# (a job file of N tasks, and one task with --array 1-N) against xargs -P 2 and GNU parallel
# in the same run. Prints tasks/s and the ratios.
#
#   bash benchmarks/launcher/run-tasks.sh [tasks=2000] [rounds=3]
set -euo pipefail
cd "$(dirname "$0")/../.."
tasks=${1:-2000}
rounds=${2:-3}
bash scripts/setup.sh
command -v parallel >/dev/null || { apt-get install -y -qq parallel >/dev/null 2>&1 || true; }
swift build -c release --product cohort >/dev/null
bin=$(swift build -c release --show-bin-path)
work=$(mktemp -d)
export COHORT_HOME="$work/home"
{
  echo "id: throughput"
  echo "tasks:"
  for i in $(seq 1 "$tasks"); do echo "  - { id: t$i, commandLine: /bin/true }"; done
} > "$work/job.yaml"
python3 - "$tasks" "$rounds" "$bin" "$work" <<'PY'
import shutil, statistics, subprocess, sys, time
tasks, rounds, bin, work = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
lines = "\n".join(["x"] * tasks) + "\n"
commands = {
    "xargs -P 2": (["xargs", "-P", "2", "-n", "1", "true"], lines),
    "cohort run (local pool)": ([f"{bin}/cohort", "run", "--quiet", f"{work}/job.yaml"], None),
    # The same tasks as one array: written once, expanded by Cohort.
    "cohort run --array 1-N": ([f"{bin}/cohort", "run", "--quiet", "--array", f"1-{tasks}", "--", "/bin/true"], None),
}
if shutil.which("parallel"):
    commands["GNU parallel (-j 2)"] = (["parallel", "-j", "2", "true", ":::"] + ["x"] * tasks, None)
rates = {name: [] for name in commands}
for _ in range(rounds):
    for name, (argv, stdin) in commands.items():
        start = time.perf_counter()
        result = subprocess.run(argv, input=stdin, text=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        seconds = time.perf_counter() - start
        if result.returncode != 0: sys.exit(f"{name} failed with {result.returncode}")
        rates[name].append(tasks / seconds)
base = statistics.median(rates["xargs -P 2"])
print(f"# {tasks} trivial tasks (/bin/true), medians of {rounds} interleaved runs")
print(f"{'runner':<28}{'tasks/s':>10}{'vs xargs':>10}")
for name, values in rates.items():
    median = statistics.median(values)
    print(f"{name:<28}{median:>10.0f}{median/base:>10.2f}")
PY
rm -rf "$work"

#!/usr/bin/env bash
# Slurm pools on a real Slurm cluster (scripts/slurm-cluster.sh on a virtual cluster of 4
# namespace hosts; needs root), each pair interleaved and measured in the same run:
#   1. `hello` on 4 hosts × 1 rank: `cohort run` on the Slurm pool against
#      `srun -N 4 -n 4 --mpi=pmix hello` (target ≤ 1.10 ×);
#   2. T `true` tasks: one `cohort run` job on the Slurm pool (an srun each) against the same
#      T as one Slurm job array (`sbatch --array`, timed until squeue has none of it left;
#      target ≥ 2 × the tasks/s);
#   3. the same T inside an allocation of the 4 nodes (`--slurm-allocation`: one agent per
#      node, itself a step, starts them), against the array again.
#
#   bash benchmarks/slurm/run-slurm.sh [rounds=5] [tasks=1000]
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds=${1:-5}
tasks=${2:-1000}
bash scripts/setup.sh >/dev/null
for product in cohort cohort-spawner cohort-rank-env hello; do swift build -c release --product "$product" >/dev/null; done
bin=$(swift build -c release --show-bin-path)
export COHORT_VC_DIR=/tmp/cohort-vc-slurm-bench
bash scripts/virtual-cluster.sh up 4 >/dev/null
trap 'bash scripts/slurm-cluster.sh down; bash scripts/virtual-cluster.sh down' EXIT
bash scripts/slurm-cluster.sh up 4 >/dev/null
export SLURM_CONF=$COHORT_VC_DIR/slurm/slurm.conf
work=$(mktemp -d)
export COHORT_HOME="$work/home"
"$bin/cohort" pool add sl --slurm --mca mpi_yield_when_idle=1 >/dev/null
for pool in sl inside; do
  { echo "id: tasks-$pool"; echo "pool: $pool"; echo "tasks:"
    for i in $(seq 1 "$tasks"); do echo "  - { id: t$i, commandLine: /bin/true }"; done; } > "$work/tasks-$pool.yaml"
done
python3 - "$rounds" "$tasks" "$bin" "$work" <<'PY'
import os, statistics, subprocess, sys, time
rounds, tasks, bin, work = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
cohort, hello = f"{bin}/cohort", f"{bin}/hello"
env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1", OMPI_MCA_mpi_yield_when_idle="1")

def timed(argv, until_drained=None):
    start = time.perf_counter()
    result = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=work)
    if result.returncode != 0: sys.exit(f"{' '.join(argv[:6])} … failed with {result.returncode}: {result.stderr[-2000:]}")
    if until_drained:
        job = result.stdout.strip().split(";")[0]
        while subprocess.run(["squeue", "--noheader", f"--jobs={job}"], capture_output=True, text=True).stdout.strip():
            time.sleep(0.05)
    return time.perf_counter() - start

hello_times = ([], [])
task_times = ([], [], [])
for r in range(rounds):
    hello_times[0].append(timed(["srun", "-N", "4", "-n", "4", "--mpi=pmix", hello]))
    hello_times[1].append(timed([cohort, "run", "--quiet", "--pool", "sl", "-N", "4", "-n", "4", "--transport", "tcp", "--", hello]))
    if r < max(1, rounds // 2):  # the task runs take minutes: fewer rounds
        task_times[0].append(timed(["sbatch", "--parsable", f"--array=1-{tasks}", "--output=/dev/null", "--wrap", "true"], until_drained=True))
        task_times[1].append(timed([cohort, "run", "--quiet", f"{work}/tasks-sl.yaml"]))


# 3. Inside an allocation of every CPU of the 4 nodes (made after the rest: it holds them all).
subprocess.run(["salloc", "--no-shell", "--nodes=4", "--ntasks-per-node=2", "--job-name=cohort-bench-allocation"], check=True, capture_output=True)
allocation = subprocess.run(["squeue", "--noheader", "--name=cohort-bench-allocation", "--format=%i"], capture_output=True, text=True).stdout.strip()
subprocess.run([cohort, "pool", "add", "inside", "--slurm-allocation", allocation], check=True, capture_output=True)
for r in range(max(1, rounds // 2)):
    task_times[2].append(timed([cohort, "run", "--quiet", f"{work}/tasks-inside.yaml"]))
subprocess.run(["scancel", allocation])

def median(values): return statistics.median(values)
s, c = median(hello_times[0]), median(hello_times[1])
print(f"hello on 4 hosts × 1 rank, median of {rounds}")
print(f"| srun --mpi=pmix | cohort run (Slurm pool) | cohort/srun |")
print(f"| ---: | ---: | ---: |")
print(f"| {s:.3f} s | {c:.3f} s | {c / s:.2f} |")
a, t, i = median(task_times[0]), median(task_times[1]), median(task_times[2])
print(f"\n{tasks} × true, median of {len(task_times[0])}")
print(f"| sbatch --array | cohort run, Slurm pool (srun each) | cohort/array | cohort run inside an allocation (agents) | cohort/array |")
print(f"| ---: | ---: | ---: | ---: | ---: |")
print(f"| {tasks / a:.1f} tasks/s ({a:.1f} s) | {tasks / t:.1f} tasks/s ({t:.1f} s) | {a / t:.2f} | {tasks / i:.1f} tasks/s ({i:.2f} s) | {a / i:.1f} |")
PY

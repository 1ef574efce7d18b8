#!/usr/bin/env bash
# Where the time of an MPI task on N hosts goes: `cohort run -N N -- sleep 1` beside bare mpirun
# with the same flags (ssh launch), each round both, with the attempt's recorded phases; then an
# array of 20 N `true` tasks on the N-host pool (agents started by the run).
#
#   bash benchmarks/cluster/run-phases.sh [hosts=32] [rounds=2]
set -euo pipefail
cd "$(dirname "$0")/../.."
hosts=${1:-32}
rounds=${2:-2}
bash scripts/setup.sh >/dev/null 2>&1
for product in cohort cohort-spawner cohort-rank-env cohort-rsh hello; do swift build -c release --product "$product" >/dev/null 2>&1; done
bin=$(swift build -c release --show-bin-path)
export COHORT_VC_DIR=/tmp/cohort-vc-bench
bash scripts/virtual-cluster.sh up "$hosts" >/dev/null 2>&1
trap 'bash scripts/virtual-cluster.sh down >/dev/null 2>&1' EXIT
work=$(mktemp -d)
export COHORT_HOME="$work/home"
"$bin/cohort" pool add vc --hostfile "$COHORT_VC_DIR/hostfile" --ssh-config "$COHORT_VC_DIR/ssh_config" --network 10.77.0.0/24 --mca mpi_yield_when_idle=1 >/dev/null 2>&1
root=(); [ "$(id -u)" = 0 ] && root=(--allow-run-as-root)
for round in $(seq 1 "$rounds"); do
  start=$(date +%s.%N)
  mpirun --hostfile "$COHORT_VC_DIR/hostfile" -np "$hosts" --map-by ppr:1:node "${root[@]}" --mca pml ob1 --mca btl self,vader,tcp \
    --mca plm_rsh_agent "ssh -F $COHORT_VC_DIR/ssh_config" --mca btl_tcp_if_include 10.77.0.0/24 --mca oob_tcp_if_include 10.77.0.0/24 \
    --mca mpi_yield_when_idle 1 /bin/sleep 1 >/dev/null 2>&1
  end=$(date +%s.%N)
  echo "bare mpirun -np $hosts sleep 1: $(echo "$end - $start" | bc) s"
  start=$(date +%s.%N)
  "$bin/cohort" run --quiet --pool vc -N "$hosts" --transport tcp -- /bin/sleep 1 >/dev/null 2>&1
  end=$(date +%s.%N)
  echo "cohort run -N $hosts sleep 1: $(echo "$end - $start" | bc) s"
  job=$("$bin/cohort" job list --output json | python3 -c "import json,sys; print(json.load(sys.stdin)[-1]['id'])")
  "$bin/cohort" task show "$job" sleep | grep phases
done
start=$(date +%s.%N)
"$bin/cohort" run --quiet --pool vc --array "1-$((20 * hosts))" -- /bin/true >/dev/null 2>&1
end=$(date +%s.%N)
echo "cohort run --pool vc --array 1-$((20 * hosts)) -- true: $(echo "$end - $start" | bc) s"

#!/usr/bin/env bash
# The main job on this machine: builds Cohort and runs the example programs under mpirun.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
for p in hello ring montecarlo-pi heat2d; do swift build -c release --product "$p"; done
bin=$(swift build -c release --show-bin-path)
flags=(--oversubscribe)
[ "$(id -u)" -eq 0 ] && flags+=(--allow-run-as-root)
run() { echo; echo "\$ mpirun -np $*"; mpirun "${flags[@]}" -np "$@"; }
run 4 "$bin/hello"
run 4 "$bin/montecarlo-pi" --samples 5000000 --seed 42
run 4 "$bin/heat2d" --n 256 --iterations 500 --check
run 2 "$bin/ring" --laps 100

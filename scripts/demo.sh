#!/usr/bin/env bash
# The main job on this machine: installs what is missing, builds Cohort and the example
# programs, and runs jobs/demo.yaml on the local pool (20 Monte Carlo tasks, a 2-node
# heat2d MPI task, 2 replicas of a 2-node ring), then prints the summary.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
swift build -c release
bin=$(swift build -c release --show-bin-path)
mkdir -p jobs/bin
for p in montecarlo-pi heat2d ring hello; do ln -sf "$bin/$p" "jobs/bin/$p"; done
"$bin/cohort" run jobs/demo.yaml "$@"

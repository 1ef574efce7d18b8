#!/usr/bin/env bash
# The controller's scheduling core at scale, with the fake launcher and simulated clock:
# 10,000 nodes and 1,000,000 tasks by default (give other counts as arguments). The last
# two lines are `decisions/s: N` and `peak RSS MB: N` (targets: >= 100,000 and <= 1,024).
#
#   bash benchmarks/scheduler/run.sh [nodes=10000] [tasks=1000000]
set -euo pipefail
cd "$(dirname "$0")/../.."
swift build -c release --product bench-scheduler >/dev/null
"$(swift build -c release --show-bin-path)/bench-scheduler" "$@"

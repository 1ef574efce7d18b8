#!/usr/bin/env bash
# The test command: installs what is missing, builds everything, runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
swift build --build-tests
# The API against its OpenAPI document, on a real server (schemathesis from PyPI, pinned).
bash scripts/fuzz-api.sh 25
# A test silent for 15 minutes hangs (none takes 2): the watchdog prints its stacks and ends it.
bash scripts/watchdog.sh 900 swift test

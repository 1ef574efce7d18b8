#!/usr/bin/env bash
# The test command: installs what is missing, builds everything, runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
swift build --build-tests
# The API against its OpenAPI document, on a real server (schemathesis from PyPI, pinned).
bash scripts/fuzz-api.sh 25
swift test

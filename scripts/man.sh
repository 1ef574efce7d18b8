#!/usr/bin/env bash
# Regenerates docs/man/cohort.1 from the command's own help (swift-argument-parser's
# generate-manual plugin). Run it after changing a command or an option; a test
# (CommandLineTests) fails while the page misses a subcommand or an option of cohort run.
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
swift package --allow-writing-to-directory "$out" generate-manual --output-directory "$out" >/dev/null
mkdir -p docs/man
cp "$out/cohort.1" docs/man/cohort.1
echo "docs/man/cohort.1: $(grep -c '^\.It Em' docs/man/cohort.1) commands (man ./docs/man/cohort.1)"

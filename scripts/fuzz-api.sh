#!/usr/bin/env bash
# Fuzzes the HTTP API of a real `cohort serve` with schemathesis (pinned) from the OpenAPI
# document, a bounded number of cases per operation, and prints what was tried. Every node of
# the server's pools is drained first: generated jobs are accepted or refused, never run.
# Usage: bash scripts/fuzz-api.sh [EXAMPLES_PER_OPERATION]   (needs a built cohort)
set -euo pipefail
cd "$(dirname "$0")/.."
examples="${1:-25}"
version=4.32.5
installed="$(python3 -m pip show schemathesis 2>/dev/null || true)"
if ! grep -qx "Version: $version" <<<"$installed"; then
  python3 -m pip install -q --disable-pip-version-check "schemathesis==$version" >/dev/null
fi
bin="$(swift build --show-bin-path)"
home="$(mktemp -d /tmp/cohort-fuzz-XXXXXX)"
server=""
cleanup() { [ -n "$server" ] && kill "$server" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$home"; }
trap cleanup EXIT
export COHORT_HOME="$home"
"$bin/cohort" pool add fuzz --hosts fuzz-node1 >/dev/null
"$bin/cohort" node drain --pool fuzz fuzz-node1 >/dev/null
for node in local-0 local-1 local-2 local-3; do "$bin/cohort" node drain --pool local "$node" >/dev/null; done
"$bin/cohort" serve --listen 127.0.0.1:0 2>"$home/serve.log" &
server=$!
for _ in $(seq 1 200); do [ -s "$home/serve.json" ] && break; sleep 0.1; done
url="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["url"])' "$home/serve.json")"
token="$(cat "$home/api-token")"
# Conformance to the document and no 5xx. The semantic checks (positive_data_acceptance and
# the like) are left out: a schema cannot say that task ids must be unique or that a pool
# must exist, so they flag correct 400/422 answers.
set +e
# /v1/events streams until the server stops (EventTests checks it); every other route is fuzzed.
schemathesis run docs/openapi.yaml --url "$url" -H "Authorization: Bearer $token" --exclude-path /v1/events \
  --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,allow_header_conformance \
  --max-examples "$examples" --seed 20261126 --no-shrink >"$home/schemathesis.log" 2>&1
status=$?
set -e
tail -n 25 "$home/schemathesis.log"
cases="$(grep -Eo '[0-9]+ generated, [0-9]+ passed[^=]*' "$home/schemathesis.log" | head -n 1 || true)"
operations="$(grep -Eo 'Tested: [0-9]+' "$home/schemathesis.log" | head -n 1 || true)"
echo "fuzz-api: schemathesis $version, ${operations:-Tested: ?} operations, ${cases:-no count} (up to $examples examples an operation and phase; exit $status)"
if ! kill -0 "$server" 2>/dev/null; then echo "fuzz-api: the server died" >&2; cat "$home/serve.log" >&2; exit 1; fi
python3 - "$url" "$token" <<'PY' || { echo "fuzz-api: the server stopped answering" >&2; exit 1; }
import sys, urllib.request
request = urllib.request.Request(sys.argv[1] + "/v1/health", headers={"Authorization": "Bearer " + sys.argv[2]})
assert urllib.request.urlopen(request, timeout=10).status == 200
PY
exit "$status"

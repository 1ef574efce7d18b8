#!/usr/bin/env bash
# Resource and output files through Cohort against curl doing the same transfers to the
# same SeaweedFS (signed with curl's --aws-sigv4), in the same run:
#   1. one large object as a resource file of 4 tasks on 4 nodes (Cohort: one download into
#      its cache, then kernel copies; curl: 4 downloads at once);
#   2. many small output files (Cohort: one task's outputFiles, 8 uploads at a time;
#      curl: xargs -P 8).
# Usage: bash benchmarks/storage/run-transfers.sh [MiB=1024] [files=1000] [rounds=3]
set -euo pipefail
cd "$(dirname "$0")/../.."
mib=${1:-1024} files=${2:-1000} rounds=${3:-3}
bash scripts/setup.sh >/dev/null
swift build -c release --product cohort >/dev/null
cohort=$(swift build -c release --show-bin-path)/cohort
work=$(mktemp -d /tmp/cohort-bench-transfers.XXXX)
store=$work/store
trap 'bash scripts/object-store.sh down "$store" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
bash scripts/object-store.sh up "$store" >/dev/null
. "$store/env"
aws() { command aws --endpoint-url "$COHORT_S3_ENDPOINT" "$@"; }
sign=(--aws-sigv4 "aws:amz:${AWS_DEFAULT_REGION}:s3" --user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY")
aws s3api create-bucket --bucket bench >/dev/null

now() { date +%s.%N; }
median() { sort -g | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }

# 1. The large object.
head -c $((mib << 20)) /dev/urandom > "$work/big.bin"
aws s3 cp --quiet "$work/big.bin" s3://bench/big/big.bin
cat > "$work/big.json" <<JSON
{"id": "big", "tasks": [
$(for i in 1 2 3 4; do
    sep=$([ $i -lt 4 ] && echo , || true)
    echo "{\"id\": \"t$i\", \"commandLine\": \"test -s big.bin\", \"resourceFiles\": [{\"storageContainerUrl\": \"s3://bench/big\"}]}$sep"
  done)]}
JSON
curl_big=() cohort_big=()
for round in $(seq "$rounds"); do
    rm -f "$work"/curl-*.bin
    start=$(now)
    for i in 1 2 3 4; do curl -sf "${sign[@]}" -o "$work/curl-$i.bin" "$COHORT_S3_ENDPOINT/bench/big/big.bin" & done
    wait
    curl_big+=("$(echo "$(now) - $start" | bc)")
    cmp -s "$work/curl-1.bin" "$work/big.bin" || { echo "curl's copy differs" >&2; exit 1; }
    rm -f "$work"/curl-*.bin
    home=$work/home-big-$round
    COHORT_HOME=$home "$cohort" pool add local --local-nodes 4 --slots 1 >/dev/null
    start=$(now)
    COHORT_HOME=$home "$cohort" run --quiet "$work/big.json" >/dev/null
    cohort_big+=("$(echo "$(now) - $start" | bc)")
    rm -rf "$home"
done

# 2. The small files.
mkdir -p "$work/small"
for i in $(seq -w "$files"); do head -c 10240 /dev/urandom > "$work/small/f$i.dat"; done
cat > "$work/small.json" <<JSON
{"id": "small", "tasks": [{"id": "t", "commandLine": "/bin/sh -c \"cp $work/small/*.dat .\"",
  "outputFiles": [{"filePattern": "*.dat", "destination": {"container": {"containerUrl": "s3://bench/cohort"}},
                   "uploadOptions": {"uploadCondition": "taskSuccess"}}]}]}
JSON
curl_small=() cohort_small=()
for round in $(seq "$rounds"); do
    start=$(now)
    (cd "$work/small" && ls | xargs -P 8 -I{} curl -sf "${sign[@]}" -T {} "$COHORT_S3_ENDPOINT/bench/curl-$round/{}")
    curl_small+=("$(echo "$(now) - $start" | bc)")
    home=$work/home-small-$round
    start=$(now)
    COHORT_HOME=$home "$cohort" run --quiet "$work/small.json" >/dev/null
    cohort_small+=("$(echo "$(now) - $start" | bc)")
    rm -rf "$home"
done
uploaded=$(aws s3api list-objects-v2 --bucket bench --prefix cohort/ --query 'length(Contents)')
[ "$uploaded" = "$files" ] || { echo "cohort uploaded $uploaded of $files files" >&2; exit 1; }

cb=$(printf '%s\n' "${curl_big[@]}" | median); ob=$(printf '%s\n' "${cohort_big[@]}" | median)
cs=$(printf '%s\n' "${curl_small[@]}" | median); os=$(printf '%s\n' "${cohort_small[@]}" | median)
echo
echo "| transfer (medians of $rounds) | curl | cohort run | cohort ÷ curl throughput |"
echo "| --- | ---: | ---: | ---: |"
printf '| %d MiB resource file to 4 tasks on 4 nodes | %.2f s (%.0f MiB/s) | %.2f s (%.0f MiB/s) | %.2f |\n' \
    "$mib" "$cb" "$(echo "4 * $mib / $cb" | bc -l)" "$ob" "$(echo "4 * $mib / $ob" | bc -l)" "$(echo "$cb / $ob" | bc -l)"
printf '| %d × 10 KiB output files | %.2f s (%.0f files/s) | %.2f s (%.0f files/s) | %.2f |\n' \
    "$files" "$cs" "$(echo "$files / $cs" | bc -l)" "$os" "$(echo "$files / $os" | bc -l)" "$(echo "$cs / $os" | bc -l)"

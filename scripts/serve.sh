#!/usr/bin/env bash
# `make serve`: runs the archive on its embedded default (./facet-data: encrypted blobs, SQLite index, audit log),
# loading the synthetic demo clinic on first start. Settings: `facet serve --help` and config/facet.example.yaml.
set -euo pipefail
cd "$(dirname "$0")/.."
facet="$1"
exec "$facet" serve --demo --data-dir "${FACET_DATA_DIR:-./facet-data}" ${FACET_CONFIG:+--config "$FACET_CONFIG"}

#!/usr/bin/env bash
# Runs the DICOMweb conformance suite against Orthanc (Debian's orthanc + orthanc-dicomweb) started here on a free
# loopback port, and lists what fails: Orthanc's deviations from what the suite checks. Not part of `make test`
# (Orthanc is expected to fail some checks). Usage: bash conformance/orthanc.sh   (after `make build`)
set -uo pipefail
cd "$(dirname "$0")/.."
command -v Orthanc >/dev/null || { echo "install Orthanc first: apt-get install -y orthanc orthanc-dicomweb"; exit 2; }
work=$(mktemp -d)
port=$(.venv/bin/python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
dicom_port=$(.venv/bin/python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > "$work/orthanc.json" <<JSON
{"Name": "conformance", "StorageDirectory": "$work/storage", "IndexDirectory": "$work/index",
 "HttpPort": $port, "DicomPort": $dicom_port, "RemoteAccessAllowed": false, "AuthenticationEnabled": false,
 "Plugins": ["/usr/share/orthanc/plugins/libOrthancDicomWeb.so"], "DicomWeb": {"Enable": true, "Root": "/dicom-web/"}}
JSON
Orthanc "$work/orthanc.json" > "$work/orthanc.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/system" >/dev/null && break; sleep 0.2; done
FACET_BIN="${FACET_BIN:-$(swift build --show-bin-path)/facet}" .venv/bin/python -m pytest -q -rf conformance/test_dicomweb.py --tb=line \
    --base-url "http://127.0.0.1:$port/dicom-web" -p no:cacheprovider 2>&1 | grep -E "^/|^E |^(FAILED|ERROR)|passed|failed" | cut -c1-220

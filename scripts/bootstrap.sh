#!/usr/bin/env bash
# Installs what Facet needs to build and test, if it is missing: Debian packages (when root; otherwise prints the
# exact command and stops) and the Python venv with the third-party checkers. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(libdcmtk-dev dcmtk libpng-dev libjpeg-dev zlib1g-dev libsqlite3-dev libcairo2-dev fonts-dejavu-core poppler-utils python3-venv orthanc
    orthanc-dicomweb postgresql curl nginx)
missing=()
for package in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" -eq 0 ]; then
        echo "bootstrap: installing ${missing[*]}"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    else
        echo "bootstrap: missing packages; run:"
        echo "  sudo apt-get install -y ${missing[*]}"
        exit 1
    fi
fi

stamp=.venv/.requirements
if [ ! -x .venv/bin/python ] || ! cmp -s conformance/requirements.txt "$stamp"; then
    echo "bootstrap: creating .venv with the conformance checkers"
    python3 -m venv .venv
    .venv/bin/pip install -q --disable-pip-version-check -r conformance/requirements.txt
    cp conformance/requirements.txt "$stamp"
fi

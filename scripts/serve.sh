#!/usr/bin/env bash
# `make serve` until the archive server exists: converts the bundled synthetic sample photos and 3D capture with
# `facet dicomize` into ./facet-data/demo and says so.
set -euo pipefail
cd "$(dirname "$0")/.."
facet="$1"
out=facet-data/demo
echo "Facet's archive server is not built yet (see the archive issue); converting the bundled samples instead."
rm -rf "$out"
mkdir -p "$out"
"$facet" dicomize testdata/photos/phone-gps.jpg testdata/photos/rgb.png \
    --out "$out/photos" --patient-id DEMO-001 --patient-name "Demo^Patient" --region face --view frontal --timing before
"$facet" dicomize testdata/meshes/face/face.obj testdata/meshes/cube-binary.stl \
    --out "$out/scans" --patient-id DEMO-001 --patient-name "Demo^Patient" --region face --timing before
echo "Wrote $(find "$out" -name '*.dcm' | wc -l) DICOM objects under $out. Inspect one with:"
echo "  $facet dump --json $(find "$out" -name '*.dcm' | head -1)"

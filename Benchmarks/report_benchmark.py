#!/usr/bin/env python3
"""The comparison report end to end (issue 11, make bench-report), release builds, one run:

1. the compare itself: `meshkit-bench compare` on the large generated pair (525 k + 378 k vertices), median of 3,
   beside the same measure by a baseline build of an earlier MeshKit (`--baseline-bench`, built by the Makefile
   from BASELINE_REV), so "not worse than today's" is a ratio in one run;
2. the three views of the report at 1024×1024 (`meshkit-bench render`), median of 3;
3. a comparison job on a live `facet serve`: both captures uploaded as a clinic uploads them (/api/v1/scans),
   then from POST /api/v1/comparisons to "done" (registration, measurement, three rendered views, the PDF, the SR,
   the change map and the PDF stored through the ingest pipeline), median of 3 jobs; and the HTML page drawn on
   request (GET report.html).

Usage: report_benchmark.py --facet BIN --bench BIN [--baseline-bench BIN] [--data testdata/generated]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
from dicomweb_benchmark import log_in, start_facet  # noqa: E402


def median_of(command, runs=3, key="seconds"):
    values = []
    for _ in range(runs):
        out = subprocess.run(command, capture_output=True, text=True, check=True)
        values.append(json.loads(out.stdout.strip().splitlines()[-1]))
    return statistics.median(v[key] for v in values), values[-1]


def upload(root, headers, path, patient):
    metadata = json.dumps({
        "patient": {"id": patient, "name": "Bench^Zoë", "birthDate": "19900101", "sex": "F"},
        "study": {"date": "20260301", "time": "101010", "description": "Report benchmark"},
        "region": "face", "view": "frontal", "timing": "after",
    })
    files = [("metadata", (None, metadata, "application/json")),
             ("mesh", (path.name, path.read_bytes(), "application/octet-stream"))]
    if path.suffix == ".obj":
        # The OBJ's material library, and a JPEG for the texture it names (the generator writes none).
        mtl = path.with_suffix(".mtl")
        files.append(("mesh", (mtl.name, mtl.read_bytes(), "model/mtl")))
        jpeg = (ROOT / "testdata" / "photos" / "ycbcr-422.jpg").read_bytes()
        files.append(("mesh", (path.stem + ".jpg", jpeg, "image/jpeg")))
    answer = requests.post(root + "/api/v1/scans", files=files, headers=headers, timeout=600)
    answer.raise_for_status()
    return next(i for i in answer.json()["instances"]
                if i["sopClassUID"] in ("1.2.840.10008.5.1.4.1.1.104.4", "1.2.840.10008.5.1.4.1.1.104.3"))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--facet", required=True)
    parser.add_argument("--bench", required=True)
    parser.add_argument("--baseline-bench")
    parser.add_argument("--data", default=str(ROOT / "testdata" / "generated"))
    parser.add_argument("--jobs", type=int, default=3)
    args = parser.parse_args()

    data = Path(args.data)
    manifest = json.loads((data / "manifest.json").read_text())
    if "large" not in manifest:
        raise SystemExit("the large pair is missing: python3 testdata/generate_meshes.py --large")
    pair = manifest["large"]["pair"]
    before, after = data / "large" / pair["before"], data / "large" / pair["after"]
    print(f"pair: BEFORE {pair['before_vertices']:,} vertices, AFTER {pair['after_vertices']:,} vertices "
          f"({time.strftime('%Y-%m-%d')})", flush=True)

    rows = []
    ours, report = median_of([args.bench, "compare", str(before), str(after), pair["roi"]])
    rows.append(("compare (meshkit-bench, this build)", f"{ours:.2f} s", f"volume {report['volume_change_ml']:.3f} mL "
                 f"(true {pair['volume_change_ml']:.3f})"))
    if args.baseline_bench:
        base, old = median_of([args.baseline_bench, "compare", str(before), str(after), pair["roi"]])
        rows.append(("compare (meshkit-bench, baseline build)", f"{base:.2f} s",
                     f"volume {old['volume_change_ml']:.3f} mL; this build / baseline = {ours / base:.2f}"))
    views, shown = median_of([args.bench, "render", str(before), "1024"])
    rows.append(("three views at 1024×1024", f"{views:.2f} s", f"{shown['covered_pixels']:,} surface pixels"))

    with tempfile.TemporaryDirectory(prefix="facet-report-bench-") as folder:
        work = Path(folder)
        (work / "facet").mkdir()
        server = start_facet(args.facet, work / "facet")
        root = server.base.rsplit("/dicomweb", 1)[0]
        try:
            headers = server.auth
            started = time.monotonic()
            surfaces = [upload(root, headers, path, "BENCH-1") for path in (before, after)]
            upload_seconds = time.monotonic() - started
            rows.append(("upload of both captures (/api/v1/scans)", f"{upload_seconds:.2f} s", "stored, encrypted"))
            sphere = pair["bump_center_mm"] + [pair["roi_radius_mm"]]
            durations, html_seconds = [], []
            for run in range(args.jobs):
                started = time.monotonic()
                asked = requests.post(root + "/api/v1/comparisons", headers=headers, timeout=60, json={
                    "before": surfaces[0]["sopInstanceUID"], "after": surfaces[1]["sopInstanceUID"],
                    "roi": {"sphere": sphere}, "title": f"benchmark {run}"})
                asked.raise_for_status()
                url = root + "/api/v1/comparisons/" + asked.json()["id"]
                while True:
                    job = requests.get(url, headers=headers, timeout=60).json()
                    if job["status"] in ("done", "failed", "cancelled"):
                        break
                    time.sleep(0.1)
                durations.append(time.monotonic() - started)
                if job["status"] != "done":
                    raise SystemExit(f"the job ended {job['status']}: {job['error']}")
                started = time.monotonic()
                page = requests.get(url + "/report.html", headers=headers, timeout=120)
                page.raise_for_status()
                html_seconds.append(time.monotonic() - started)
            rows.append(("comparison job, POST to done (views, PDF, SR, map stored)",
                         f"{statistics.median(durations):.2f} s",
                         f"median of {len(durations)}; each: " + ", ".join(f"{d:.2f}" for d in durations)))
            rows.append(("HTML report drawn on request", f"{statistics.median(html_seconds):.2f} s",
                         f"{len(page.content) / 1e6:.1f} MB page"))
        finally:
            server.stop()

    print("\n| measure | time | notes |\n|---|---|---|")
    for row in rows:
        print(f"| {row[0]} | {row[1]} | {row[2]} |")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""MeshKit against its Python peers on the same generated files, in one run.

Usage: python3 Benchmarks/mesh_benchmark.py [--data DIR] [--repeat N] [--skip-compare]
       (make bench-mesh runs it with the repo's .venv)

Readers: MeshKit (`meshkit-bench read`, release build) vs trimesh 5.2 (`trimesh.load`, welded like MeshKit),
numpy-stl (triangle soup, unwelded: it does less work) and plyfile (raw arrays). Each reader runs in its own
process; time is the best of N loads in that process (file in the page cache for everyone), peak RSS is the
process's maximum resident set. Compare: `facet compare` (registration, distances, volume) vs a trimesh pipeline
doing the same steps (ICP onto the BEFORE mesh, closest points, area-weighted volume). Prints ratios.
"""
import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable

PEER_READ = {
    "trimesh": "import trimesh\nm = trimesh.load(PATH, force='mesh')\nn = len(m.faces)",
    "numpy-stl": "from stl import mesh\nm = mesh.Mesh.from_file(PATH)\nn = len(m.vectors)",
    "plyfile": "from plyfile import PlyData\nd = PlyData.read(PATH)\nn = len(d['face'].data)",
}

PEER_TEMPLATE = """
import json, resource, time
PATH = {path!r}
best = float('inf')
for _ in range({repeat}):
    start = time.perf_counter()
{body}
    best = min(best, time.perf_counter() - start)
print(json.dumps({{"seconds": best, "triangles": int(n),
                  "rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}}))
"""

TRIMESH_COMPARE = """
import json, resource, time
import numpy as np
import trimesh
start = time.perf_counter()
before = trimesh.load({before!r}, process=False, force='mesh')
after = trimesh.load({after!r}, process=False, force='mesh')
center, radius = np.array({center!r}), {radius!r}
# Register AFTER onto BEFORE without the region of interest (+10 mm), as facet compare does.
rng = np.random.default_rng(1)
points = after.vertices[rng.choice(len(after.vertices), min(30000, len(after.vertices)), replace=False)]
initial = np.eye(4)
initial[:3, 3] = before.vertices.mean(0) - points.mean(0)
moved = trimesh.transform_points(points, initial)
keep = np.linalg.norm(moved - center, axis=1) > radius + 10
# Against BEFORE's vertices (a k-d tree): trimesh's closest-point-on-mesh search runs out of memory on
# 30 k misaligned points against a million triangles.
matrix, _, cost = trimesh.registration.icp(points[keep], before.vertices, initial=initial, threshold=1e-5,
                                          max_iterations=30, reflection=False, scale=False)
after.apply_transform(matrix)
# Signed distance from each BEFORE vertex to AFTER, signed by BEFORE's normal; volume over BEFORE's area.
# Chunked: trimesh's closest_point builds large candidate arrays per query batch.
parts = [trimesh.proximity.closest_point(after, chunk) for chunk in np.array_split(before.vertices, 40)]
closest = np.concatenate([p[0] for p in parts])
distance = np.concatenate([p[1] for p in parts])
sign = np.sign(np.einsum('ij,ij->i', closest - before.vertices, before.vertex_normals))
signed = distance * sign
faces = before.faces
inside = np.linalg.norm(before.vertices - center, axis=1) <= radius
members = inside[faces].sum(1) >= 2
volume = float((before.area_faces[members] * signed[faces[members]].mean(1)).sum() / 1000)
print(json.dumps({{"seconds": time.perf_counter() - start, "volume_change_ml": volume,
                  "rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}}))
"""


def child_rss(command):
    """Peak RSS of a command in KiB, measured by GNU time."""
    result = subprocess.run(["/usr/bin/time", "-f", "%M"] + command, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"{command[0]} failed: {result.stderr.strip()}")
    return json.loads(result.stdout.strip().splitlines()[-1]), int(result.stderr.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", default=str(ROOT / ".build-bench-data"))
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--skip-compare", action="store_true")
    parser.add_argument("--skip-readers", action="store_true")
    args = parser.parse_args()

    data = Path(args.data)
    if not (data / "large" / "sphere-1.3M.stl").exists():
        print("generating benchmark meshes (about 1.3 M triangles; 500 k-vertex face pair) ...", flush=True)
        subprocess.run([PYTHON, str(ROOT / "testdata/generate_meshes.py"), str(data), "--large"], check=True)
    subprocess.run(["swift", "build", "-c", "release", "--product", "meshkit-bench"], cwd=ROOT, check=True,
                   stdout=subprocess.DEVNULL)
    subprocess.run(["swift", "build", "-c", "release", "--product", "facet"], cwd=ROOT, check=True,
                   stdout=subprocess.DEVNULL)
    bin_dir = Path(subprocess.run(["swift", "build", "-c", "release", "--show-bin-path"], cwd=ROOT, check=True,
                                  capture_output=True, text=True).stdout.strip())
    bench = str(bin_dir / "meshkit-bench")
    facet = str(bin_dir / "facet")
    large = data / "large"

    files = [
        ("binary STL", "sphere-1.3M.stl", ["trimesh", "numpy-stl"]),
        ("binary PLY", "sphere-1.3M.ply", ["trimesh", "plyfile"]),
        ("ASCII OBJ", "sphere-1.3M.obj", ["trimesh"]),
        ("ASCII PLY", "sphere-1.3M-ascii.ply", ["trimesh", "plyfile"]),
        ("ASCII STL", "sphere-1.3M-ascii.stl", ["trimesh", "numpy-stl"]),
    ]
    if args.skip_readers:
        files = []
    print(f"\nReaders, 1.31 M triangles, best of {args.repeat} loads per process; RSS = peak resident set")
    print(f"{'format':11} {'MB':>6} | {'MeshKit MB/s':>12} {'Mtri/s':>7} {'RSS MB':>7} {'RSS/file':>8} | "
          f"{'peer':10} {'MB/s':>7} {'RSS MB':>7} | {'speed ratio':>11}")
    for label, name, peers in files:
        path = str(large / name)
        size_mb = os.path.getsize(path) / 1e6
        ours, rss = child_rss([bench, "read", path, str(args.repeat)])
        ours_mbs = size_mb / ours["seconds"]
        first = True
        for peer in peers:
            body = "\n".join("    " + line for line in PEER_READ[peer].splitlines())
            code = PEER_TEMPLATE.format(path=path, repeat=args.repeat, body=body)
            theirs, peer_rss = child_rss([PYTHON, "-c", code])
            peer_mbs = size_mb / theirs["seconds"]
            head = (f"{label:11} {size_mb:6.1f} | {ours_mbs:12.0f} {ours['triangles'] / ours['seconds'] / 1e6:7.1f} "
                    f"{rss / 1024:7.0f} {rss / 1024 / size_mb:8.2f}") if first else " " * 52
            print(f"{head} | {peer:10} {peer_mbs:7.0f} {peer_rss / 1024:7.0f} | {ours_mbs / peer_mbs:10.1f}x")
            first = False

    if args.skip_compare:
        return
    manifest = json.loads((data / "manifest.json").read_text())
    pair = manifest["large"]["pair"]
    before, after = str(large / pair["before"]), str(large / pair["after"])
    print(f"\nCompare, {pair['before_vertices']} + {pair['after_vertices']} vertices, true change "
          f"{pair['volume_change_ml']:.3f} mL")
    start = time.perf_counter()
    ours, rss = child_rss([facet, "compare", before, after, "--roi", pair["roi"], "--json"])
    ours_seconds = time.perf_counter() - start
    print(f"  facet compare   {ours_seconds:6.2f} s  {rss / 1024:6.0f} MB  volume {ours['volume_change_ml']:.3f} mL  "
          f"RMS {ours['registration_rms_mm']:.3f} mm")
    code = TRIMESH_COMPARE.format(before=before, after=after, center=pair["bump_center_mm"],
                                  radius=pair["roi_radius_mm"])
    start = time.perf_counter()
    theirs, peer_rss = child_rss([PYTHON, "-c", code])
    peer_seconds = time.perf_counter() - start
    print(f"  trimesh pipeline {peer_seconds:6.2f} s  {peer_rss / 1024:6.0f} MB  volume {theirs['volume_change_ml']:.3f} mL")
    print(f"  speed ratio {peer_seconds / ours_seconds:.1f}x")


if __name__ == "__main__":
    main()

"""`facet mesh info` and `facet compare` as a user runs them, against the generated ground truth."""
import json
from pathlib import Path

import numpy as np
import pytest
import trimesh

from conftest import ROOT, run

GENERATED = ROOT / "testdata" / "generated"
INFO_KEYS = ["format", "vertices", "triangles", "area_mm2", "volume_ml", "watertight", "components",
             "boundary_loops", "degenerate_faces", "bbox_mm"]
COMPARE_KEYS = ["volume_change_ml", "roi_area_mm2", "mean_displacement_mm", "max_displacement_mm",
                "p95_displacement_mm", "area_change_mm2", "registration_rms_mm", "transform"]


@pytest.fixture(scope="module")
def manifest():
    path = GENERATED / "manifest.json"
    if not path.exists():
        pytest.fail("run python3 testdata/generate_meshes.py first (make test does)")
    return json.loads(path.read_text())


@pytest.mark.parametrize("name", ["sphere-4.obj", "torus-far-be.ply", "box-quads-shouting.stl", "sphere-4.stl"])
def test_mesh_info_json_has_the_contract_keys_and_exact_values(facet, manifest, name):
    result = run(facet, "mesh", "info", GENERATED / "closed" / name, "--json")
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    assert list(info)[:len(INFO_KEYS)] == INFO_KEYS
    shape = name.split(".")[0].replace("-be", "").replace("-shouting", "")
    truth = manifest["closed"][shape]["truth"]
    assert info["triangles"] == truth["triangles"]
    assert abs(info["area_mm2"] - truth["area_mm2"]) <= 1e-9 * truth["area_mm2"]
    assert abs(info["volume_ml"] * 1000 - truth["volume_mm3"]) <= 1e-9 * truth["volume_mm3"]
    assert info["watertight"] is True and info["boundary_loops"] == 0 and info["components"] == 1
    assert len(info["bbox_mm"]) == 2 and len(info["bbox_mm"][0]) == 3


def test_open_surface_reports_null_volume(facet):
    result = run(facet, "mesh", "info", GENERATED / "pairs" / "cheek_after.ply", "--json")
    info = json.loads(result.stdout)
    assert info["volume_ml"] is None and info["watertight"] is False and info["boundary_loops"] == 1


def test_units_option_scales_to_millimetres(facet):
    mm = json.loads(run(facet, "mesh", "info", GENERATED / "closed/box-quads.obj", "--json").stdout)
    cm = json.loads(run(facet, "mesh", "info", GENERATED / "closed/box-quads.obj", "--units", "cm", "--json").stdout)
    assert abs(cm["volume_ml"] - 1000 * mm["volume_ml"]) < 1e-6
    assert run(facet, "mesh", "info", GENERATED / "closed/box-quads.obj", "--units", "furlong").returncode != 0


@pytest.mark.parametrize("name", ["nan.obj", "index-zero.obj", "index-out-of-range.obj", "lying-header.ply",
                                  "truncated.ply", "count-mismatch.stl", "inf.ply"])
def test_broken_meshes_fail_with_one_line(facet, name):
    result = run(facet, "mesh", "info", GENERATED / "broken" / name, "--json")
    assert result.returncode != 0
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("facet: ")
    assert name not in result.stderr


@pytest.mark.parametrize("pair", ["cheek-0.9ml", "filler-2.3ml", "cheek-0.5ml"])
def test_compare_recovers_the_known_bump(facet, manifest, tmp_path, pair):
    truth = manifest["pairs"][pair]
    heatmap = tmp_path / "change.ply"
    result = run(facet, "compare", GENERATED / "pairs" / truth["before"], GENERATED / "pairs" / truth["after"],
                 "--roi", truth["roi"], "--json", "--heatmap", heatmap)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert list(report)[:len(COMPARE_KEYS)] == COMPARE_KEYS
    low, high = report["volume_change_ci95_ml"]
    assert low < report["volume_change_ml"] < high
    assert set(report["volume_change_sd_ml"]) == {"registration", "noise", "method"}
    assert 0 < report["surface_noise_mm"] < 0.5
    expected = truth["volume_change_ml"]
    assert abs(report["volume_change_ml"] - expected) <= max(0.05, 0.03 * expected)
    assert report["registration_rms_mm"] <= 0.15
    assert np.allclose(np.array(report["transform"]), np.array(truth["after_to_before"]), atol=0.2)
    # The change map is a PLY that a third-party reader loads, with one colour per BEFORE vertex.
    mesh = trimesh.load(heatmap, process=False)
    assert len(mesh.vertices) == truth["before_vertices"]
    colors = np.asarray(mesh.visual.vertex_colors)[:, :3]
    assert (colors[:, 0] > colors[:, 2]).any()  # red where the bump grew
    assert result.stderr == ""  # no progress output when stderr is not a terminal


def test_compare_with_landmarks_file(facet, manifest, tmp_path):
    truth = manifest["pairs"]["cheek-0.9ml"]
    landmarks = tmp_path / "landmarks.json"
    landmarks.write_text(json.dumps(truth["landmarks"]))
    result = run(facet, "compare", GENERATED / "pairs" / truth["before"], GENERATED / "pairs" / truth["after"],
                 "--roi", truth["roi"], "--landmarks", landmarks, "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert abs(report["volume_change_ml"] - truth["volume_change_ml"]) <= max(0.05, 0.03 * truth["volume_change_ml"])


@pytest.mark.parametrize("roi", ["sphere:1,2,3", "box:1,2", "cylinder:1,2,3,4"])
def test_compare_refuses_a_malformed_region(facet, roi):
    pairs = GENERATED / "pairs"
    result = run(facet, "compare", pairs / "cheek_before.obj", pairs / "cheek_after.ply", "--roi", roi, "--json")
    assert result.returncode != 0 and len(result.stderr.strip().splitlines()) == 1

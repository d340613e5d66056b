"""Facet's own promises, checked on a live `facet serve`: clinic uploads, the demo clinic, the audit log and its
verifier, crash safety under SIGKILL, and nothing identifying on disk in the clear."""
import json
import threading
import time
import uuid
from pathlib import Path

import pydicom
import pytest
import requests

from conftest import TESTDATA, FacetServer, run
from test_dicomweb import multipart_body, secondary_capture, stow_type

pytestmark = pytest.mark.usefixtures("facet_only")


@pytest.fixture
def fresh(facet, tmp_path):
    child = FacetServer(facet, tmp_path / "data").start()
    yield child
    child.stop()


def metadata_part(name="Upload^Uma", pid=None):
    return json.dumps({
        "patient": {"id": pid or "UP-" + uuid.uuid4().hex[:6], "name": name, "birthDate": "19900101", "sex": "F"},
        "study": {"date": "20260301", "time": "101010", "description": "Upload test"},
        "region": "face", "view": "frontal", "timing": "after",
    })


def test_photo_upload_is_stored_like_stow(fresh):
    jpeg = (TESTDATA / "photos/ycbcr-422.jpg").read_bytes()
    answer = requests.post(fresh.root + "/api/v1/photos", files=[
        ("metadata", (None, metadata_part(), "application/json")),
        ("photo", ("front.jpg", jpeg, "image/jpeg")),
        ("photo", ("side.png", (TESTDATA / "photos/rgb.png").read_bytes(), "image/png")),
    ])
    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert len(body["instances"]) == 2
    found = requests.get(fresh.url + "/instances", params={"StudyInstanceUID": body["studyInstanceUID"]}).json()
    assert len(found) == 2
    # The JPEG went in without re-encoding: the frame is the camera's bitstream minus APP/COM segments.
    first = body["instances"][0]["retrieveURL"]
    frame = requests.get(first + "/frames/1", headers={"Accept": 'multipart/related; type="image/jpeg"'})
    assert frame.status_code == 200 and frame.content.count(b"\xff\xd9") >= 1
    # The uploaded file itself is kept, byte for byte (EXIF and all), beside its instance.
    listing = requests.get(body["instances"][0]["originalsURL"]).json()
    assert listing[0]["fileName"] == "front.jpg" and listing[0]["size"] == len(jpeg)
    assert requests.get(body["instances"][0]["originalsURL"] + "/1").content == jpeg


def test_scan_upload_with_mtl_and_texture_and_a_broken_mesh(fresh):
    face = TESTDATA / "meshes/face"
    answer = requests.post(fresh.root + "/api/v1/scans", files=[
        ("metadata", (None, metadata_part(), "application/json")),
        ("mesh", ("face.obj", (face / "face.obj").read_bytes(), "model/obj")),
        ("mesh", ("face.mtl", (face / "face.mtl").read_bytes(), "model/mtl")),
        ("mesh", ("face_texture.jpg", (face / "face_texture.jpg").read_bytes(), "image/jpeg")),
    ])
    assert answer.status_code == 201, answer.text
    classes = sorted(item["sopClassUID"] for item in answer.json()["instances"])
    assert classes == ["1.2.840.10008.5.1.4.1.1.104.4", "1.2.840.10008.5.1.4.1.1.104.5",
                       "1.2.840.10008.5.1.4.1.1.77.1.4"]
    obj = next(i for i in answer.json()["instances"] if i["sopClassUID"].endswith("104.4"))
    original = requests.get(obj["retrieveURL"] + "/bulkdata/00420011", headers={"Accept": "model/obj"})
    assert original.content == (face / "face.obj").read_bytes()
    kept = requests.get(obj["originalsURL"]).json()
    assert [item["fileName"] for item in kept] == ["face.obj", "face.mtl", "face_texture.jpg"]
    assert requests.get(obj["originalsURL"] + "/3").content == (face / "face_texture.jpg").read_bytes()
    # A PLY becomes Encapsulated OBJ; the PLY itself stays retrievable.
    ply = sorted((TESTDATA / "generated" / "closed").glob("*.ply"))[0]
    converted = requests.post(fresh.root + "/api/v1/scans", files=[
        ("metadata", (None, metadata_part(), "application/json")),
        ("mesh", (ply.name, ply.read_bytes(), "application/octet-stream"))])
    assert converted.status_code == 201, converted.text
    made = converted.json()["instances"][0]
    assert made["sopClassUID"] == "1.2.840.10008.5.1.4.1.1.104.4"
    assert requests.get(made["originalsURL"] + "/1").content == ply.read_bytes()
    # A mesh without its MTL, and a mesh that is not one: refused with the reason, nothing stored.
    before = len(requests.get(fresh.url + "/instances").json())
    missing = requests.post(fresh.root + "/api/v1/scans", files=[
        ("mesh", ("face.obj", (face / "face.obj").read_bytes(), "model/obj"))])
    assert missing.status_code == 422 and "MTL" in missing.json()["error"]
    broken = requests.post(fresh.root + "/api/v1/scans", files=[
        ("mesh", ("bad.stl", (TESTDATA / "bad/count-mismatch.stl").read_bytes(), "model/stl"))])
    assert broken.status_code == 422
    assert len(requests.get(fresh.url + "/instances").json()) == before


def test_demo_clinic(facet, tmp_path):
    child = FacetServer(facet, tmp_path / "data")
    child.env = dict(child.env)
    import subprocess
    child.log = open(tmp_path / "demo.log", "ab")
    child.process = subprocess.Popen([facet, "serve", "--demo", "--data-dir", str(child.data_dir), "--port",
                                      str(child.port)], stdout=child.log, stderr=subprocess.STDOUT)
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            if requests.get(child.root + "/health/ready", timeout=1).status_code == 200:
                break
        except requests.ConnectionError:
            time.sleep(0.3)
    try:
        studies = requests.get(child.url + "/studies", params={"PatientID": "DEMO-001"}).json()
        assert len(studies) == 2
        scans = requests.get(child.url + "/series", params={"PatientID": "DEMO-001", "Modality": "M3D"}).json()
        assert len(scans) == 2  # the before/after scan pair
        assert requests.get(child.url + "/studies").json()
    finally:
        child.stop()


def test_audit_log_records_requests_and_the_verifier_catches_tampering(facet, tmp_path):
    child = FacetServer(facet, tmp_path / "data").start()
    sc = secondary_capture(tmp_path / "a.dcm")
    body, boundary = multipart_body([sc.read_bytes()])
    assert requests.post(child.url + "/studies", data=body, headers={"Content-Type": stow_type(boundary)}).ok
    requests.get(child.url + "/studies", params={"PatientName": "Conformance*"})
    ds = pydicom.dcmread(sc)
    requests.get(f"{child.url}/studies/{ds.StudyInstanceUID}")
    assert child.stop() == 0
    log = (child.data_dir / "audit" / "audit.log").read_text()
    # The suite client's own login comes first.
    lines = [line for line in log.splitlines() if '"action":"login"' not in line]
    assert len(lines) == 4
    # The store's intent (fsynced before the instance is committed), its outcome, the search, the retrieval.
    assert "STOW store (intent)" in lines[0] and str(ds.SOPInstanceUID) in lines[0]
    assert str(ds.SOPInstanceUID) in lines[1] and "QIDO" in lines[2] and "WADO" in lines[3]
    assert "Conformance" not in log and str(ds.PatientID) not in log
    verified = run(facet, "audit", "verify", "--data-dir", child.data_dir)
    assert verified.returncode == 0, verified.stderr
    (child.data_dir / "audit" / "audit.log").write_text(log.replace("WADO", "WAD0"))
    tampered = run(facet, "audit", "verify", "--data-dir", child.data_dir)
    assert tampered.returncode != 0 and "5" in (tampered.stdout + tampered.stderr)


def test_crash_during_stow_loses_nothing_acknowledged(facet, tmp_path):
    """SIGKILL during a STOW loop: every instance answered 200 reads back byte-identical, the index and the blobs
    agree, and the audit log verifies."""
    child = FacetServer(facet, tmp_path / "data").start()
    acknowledged = {}
    stop = threading.Event()
    files = [secondary_capture(tmp_path / f"sc{i}.dcm") for i in range(400)]

    def loop():
        for path in files:
            if stop.is_set():
                return
            body, boundary = multipart_body([path.read_bytes()])
            try:
                answer = requests.post(child.url + "/studies", data=body, headers={"Content-Type": stow_type(boundary)},
                                       timeout=10)
            except requests.RequestException:
                return
            if answer.status_code == 200:
                acknowledged[pydicom.dcmread(path).SOPInstanceUID] = path

    worker = threading.Thread(target=loop)
    worker.start()
    while len(acknowledged) < 25 and worker.is_alive():
        time.sleep(0.01)
    child.stop(kill=True)
    stop.set()
    worker.join()
    assert len(acknowledged) >= 25
    # Restart on the same data: everything acknowledged is there, byte for byte.
    again = FacetServer(facet, child.data_dir).start()
    try:
        for uid, path in acknowledged.items():
            ds = pydicom.dcmread(path)
            answer = requests.get(
                f"{again.url}/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}/instances/{uid}",
                headers={"Accept": "application/dicom"})
            assert answer.status_code == 200 and answer.content == path.read_bytes()
        indexed = len(requests.get(again.url + "/instances", params={"limit": 1000}).json())
        blobs = [p for p in (child.data_dir / "blobs").rglob("*") if p.is_file()]
        assert indexed == len(blobs) >= len(acknowledged)
        assert not list((child.data_dir / "tmp").iterdir())
    finally:
        assert again.stop() == 0
    verified = run(facet, "audit", "verify", "--data-dir", child.data_dir)
    assert verified.returncode == 0, verified.stderr


def test_nothing_identifying_on_disk(facet, tmp_path):
    child = FacetServer(facet, tmp_path / "data").start()
    name = "Quixote^Zenobia"
    sc = secondary_capture(tmp_path / "p.dcm")
    ds = pydicom.dcmread(sc)
    ds.PatientName = name
    ds.PatientID = "ZENOBIA-42"
    ds.AccessionNumber = "ACC-ZENOBIA"
    ds.save_as(sc, enforce_file_format=True)
    body, boundary = multipart_body([sc.read_bytes()])
    assert requests.post(child.url + "/studies", data=body, headers={"Content-Type": stow_type(boundary)}).ok
    jpeg = (TESTDATA / "photos/ycbcr-422.jpg").read_bytes()
    upload = requests.post(child.root + "/api/v1/photos", files=[
        ("metadata", (None, metadata_part(name, "ZENOBIA-42"), "application/json")),
        ("photo", ("zenobia.jpg", jpeg, "image/jpeg"))])
    assert upload.status_code == 201
    assert child.stop() == 0
    for path in child.data_dir.rglob("*"):
        assert "zenobia" not in path.name.lower()
        if not path.is_file():
            continue
        data = path.read_bytes()
        for needle in (b"Quixote", b"Zenobia", b"ZENOBIA", b"DICM", b"\xff\xd8\xff"):
            assert needle not in data, f"{needle!r} in {path.relative_to(child.data_dir)}"

"""Hostile clients, faults and restarts against a live `facet serve` (issue: hardening). Every test that sends
something hostile checks afterwards that the same process still answers `/health/live`; every test that damages
the data folder restarts the server and checks that it starts and serves (or refuses to start without deleting
anything, where that is the promise). Deadlines are generous: ten times what a healthy answer takes."""
import io
import json
import os
import shutil
import socket
import subprocess
import threading
import time
import uuid
from pathlib import Path

import pydicom
import pytest
import requests
from dicomweb_client.api import DICOMwebClient
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from conftest import FacetServer, run
from test_dicomweb import secondary_capture

pytestmark = pytest.mark.usefixtures("facet_only")

DICOM_JSON = {"Accept": "application/dicom+json"}


@pytest.fixture
def live(facet, tmp_path):
    child = FacetServer(facet, tmp_path / "data").start()
    yield child
    child.stop()


def multipart(parts, boundary=None):
    boundary = boundary or "facet-test-" + uuid.uuid4().hex
    body = b""
    for part in parts:
        body += f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode() + part + b"\r\n"
    body += f"--{boundary}--\r\n".encode()
    return body, f'multipart/related; type="application/dicom"; boundary={boundary}'


def stow(url, *parts, boundary=None, headers=None):
    body, content_type = multipart(parts, boundary)
    return requests.post(url + "/studies", data=body, headers={"Content-Type": content_type,
                                                              "Accept": "application/dicom+json", **(headers or {})},
                         timeout=60)


def alive(server):
    assert server.process.poll() is None, "facet serve died"
    answer = requests.get(server.root + "/health/live", timeout=5)
    assert answer.status_code == 200


def restart(server):
    assert server.stop() == 0
    server.start()
    alive(server)


def sc_bytes(tmp_path, **changes):
    path = secondary_capture(tmp_path / f"{uuid.uuid4().hex}.dcm")
    if changes:
        ds = pydicom.dcmread(path)
        for key, value in changes.items():
            setattr(ds, key, value)
        ds.save_as(path, enforce_file_format=True)
    return path.read_bytes(), pydicom.dcmread(path)


def big_rgb(folder, size=3000):
    """A Secondary Capture of size x size random RGB pixels (slow to render), as a file and a dataset."""
    path = secondary_capture(folder / "big.dcm")
    ds = pydicom.dcmread(path)
    ds.Rows, ds.Columns = size, size
    ds.SamplesPerPixel = 3
    ds.PhotometricInterpretation = "RGB"
    ds.PlanarConfiguration = 0
    ds.PixelData = os.urandom(size * size * 3)
    ds.save_as(path, enforce_file_format=True)
    return path, ds


def instance_url(server, ds):
    return f"{server.url}/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}/instances/{ds.SOPInstanceUID}"


# --- One request must not crash or exhaust the server -------------------------------------------------------------

def test_frame_numbers_past_2_32_and_duplicates_are_answered_not_fatal(live, tmp_path):
    data, ds = sc_bytes(tmp_path)
    assert stow(live.url, data).status_code == 200
    base = instance_url(live, ds)
    octets = {"Accept": "multipart/related; type=application/octet-stream"}
    for path in ("/frames/4294967297", "/frames/4294967296", "/frames/18446744073709551617", "/frames/2"):
        answer = requests.get(base + path, headers=octets, timeout=10)
        assert answer.status_code == 404, (path, answer.status_code)
        alive(live)
    answer = requests.get(base + "/frames/4294967297/rendered", headers={"Accept": "image/png"}, timeout=10)
    assert answer.status_code == 404
    for malformed in ("/frames/0", "/frames/x", "/frames/1,,2", "/frames/-1"):
        assert requests.get(base + malformed, headers=octets, timeout=10).status_code == 400, malformed
    # A thousand copies of frame 1 answer one frame (24 bytes), not a thousand.
    answer = requests.get(base + "/frames/" + ",".join(["1"] * 1000), headers=octets, timeout=30)
    assert answer.status_code == 200
    assert answer.content.count(b"Content-Type: application/octet-stream") == 1
    alive(live)


def test_bulk_pixel_data_ignores_a_forged_frame_count(live, tmp_path):
    # Number of Frames says a billion; the pixel data holds one frame.
    data, ds = sc_bytes(tmp_path, NumberOfFrames=1_000_000_000)
    assert stow(live.url, data).status_code == 200
    started = time.time()
    answer = requests.get(instance_url(live, ds) + "/bulkdata/7FE00010",
                          headers={"Accept": "multipart/related; type=application/octet-stream"}, timeout=60)
    assert time.time() - started < 10
    # The frames the pixel data really holds: one, of 24 bytes.
    assert answer.status_code == 200
    assert answer.content.count(b"Content-Type: application/octet-stream") == 1
    assert len(answer.content) < 4096
    alive(live)


def test_megabytes_of_transport_padding_are_refused_quickly(live, tmp_path):
    data, _ = sc_bytes(tmp_path)
    boundary = "pad-" + uuid.uuid4().hex
    body = (f"--{boundary}" + " " * (8 << 20) + "\r\nContent-Type: application/dicom\r\n\r\n").encode() + data
    body += f"\r\n--{boundary}--\r\n".encode()
    started = time.time()
    answer = requests.post(live.url + "/studies", data=body, timeout=60, headers={
        "Content-Type": f'multipart/related; type="application/dicom"; boundary={boundary}'})
    assert answer.status_code == 400 and "padding" in answer.text
    assert time.time() - started < 10, "8 MB of padding took longer than ten times a normal store"
    alive(live)
    # Ordinary padding (a few spaces and tabs) is still accepted.
    body = (f"--{boundary} \t \r\nContent-Type: application/dicom\r\n\r\n").encode() + data
    body += f"\r\n--{boundary}--\r\n".encode()
    answer = requests.post(live.url + "/studies", data=body, timeout=60, headers={
        "Content-Type": f'multipart/related; type="application/dicom"; boundary={boundary}'})
    assert answer.status_code == 200, answer.text


def test_a_declared_terabyte_body_is_refused_before_it_is_sent(live):
    with socket.create_connection(("127.0.0.1", live.port), timeout=10) as conn:
        conn.sendall((f"POST /dicomweb/studies HTTP/1.1\r\nHost: 127.0.0.1:{live.port}\r\n"
                      "Content-Type: multipart/related; type=\"application/dicom\"; boundary=x\r\n"
                      "Content-Length: 1099511627776\r\n\r\n").encode())
        conn.settimeout(5)
        head = conn.recv(4096).decode("latin-1")
    assert head.startswith("HTTP/1.1 413"), head[:80]
    alive(live)


def test_health_answers_during_a_render_storm(live, tmp_path):
    # A 3000 x 3000 RGB image (27 MB of pixels): renders that take a while, twelve at once.
    path, ds = big_rgb(tmp_path)
    assert stow(live.url, path.read_bytes()).status_code == 200
    url = instance_url(live, ds) + "/rendered"
    results = []

    def render(quality):
        answer = requests.get(url, params={"quality": quality}, headers={"Accept": "image/jpeg"}, timeout=300)
        results.append(answer.status_code)

    threads = [threading.Thread(target=render, args=(q,)) for q in range(50, 62)]
    for thread in threads:
        thread.start()
    time.sleep(0.2)
    slowest = 0.0
    while any(thread.is_alive() for thread in threads):
        started = time.time()
        assert requests.get(live.root + "/health/live", timeout=10).status_code == 200
        # A search (token checked, index in memory) answers too.
        assert requests.get(live.url + "/studies", headers=DICOM_JSON, timeout=10).status_code == 200
        slowest = max(slowest, time.time() - started)
        time.sleep(0.05)
    for thread in threads:
        thread.join()
    assert slowest < 1.0, f"/health/live and a search took {slowest:.2f} s during the renders"
    assert set(results) <= {200, 503} and 200 in results


# --- Real clients must get in ---------------------------------------------------------------------------------------

def test_stock_client_stores_a_dataset_built_in_memory(live, tmp_path):
    _, template = sc_bytes(tmp_path)
    ds = Dataset()
    for element in template:
        ds.add(element)
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    # What dicomweb-client writes for such a dataset: the File Meta group first, no preamble, no DICM.
    buffer = io.BytesIO()
    pydicom.dcmwrite(buffer, ds, enforce_file_format=False)
    assert buffer.getvalue()[128:132] != b"DICM"
    client = DICOMwebClient(live.url)
    client.store_instances([ds])
    stored = requests.get(instance_url(live, ds), headers={"Accept": "application/dicom"}, timeout=10)
    assert stored.status_code == 200
    assert stored.content[128:132] == b"DICM"
    assert pydicom.dcmread(io.BytesIO(stored.content)).SOPInstanceUID == ds.SOPInstanceUID
    restart(live)
    assert requests.get(instance_url(live, ds), headers={"Accept": "application/dicom"}).status_code == 200


def test_media_storage_uid_differing_from_sop_instance_uid_is_corrected_with_a_warning(live):
    from pydicom.data import get_testdata_file

    path = Path(get_testdata_file("rtplan.dcm"))
    original = pydicom.dcmread(path)
    assert original.file_meta.MediaStorageSOPInstanceUID != original.SOPInstanceUID
    answer = stow(live.url, path.read_bytes())
    assert answer.status_code == 202, answer.text
    item = answer.json()["00081199"]["Value"][0]
    assert item["00081155"]["Value"] == [original.SOPInstanceUID]
    assert item["00081196"]["Value"][0] & 0xF000 == 0xB000
    got = requests.get(instance_url(live, original), headers={"Accept": "application/dicom; transfer-syntax=*"})
    assert got.status_code == 200
    fixed = pydicom.dcmread(io.BytesIO(got.content))
    assert fixed.file_meta.MediaStorageSOPInstanceUID == original.SOPInstanceUID


def test_orthanc_dicomweb_client_pushes_to_facet(live, tmp_path):
    orthanc = shutil.which("Orthanc")
    if not orthanc:
        pytest.fail("Orthanc is not installed (scripts/bootstrap.sh installs it)")
    from conftest import free_port

    port, dicom_port = free_port(), free_port()
    config = tmp_path / "orthanc.json"
    config.write_text(json.dumps({
        "Name": "push", "StorageDirectory": str(tmp_path / "storage"), "IndexDirectory": str(tmp_path / "index"),
        "HttpPort": port, "DicomPort": dicom_port, "RemoteAccessAllowed": False, "AuthenticationEnabled": False,
        "Plugins": ["/usr/share/orthanc/plugins/libOrthancDicomWeb.so"],
        # Orthanc's DICOMweb client sends the bearer token as an extra header, as its users configure it.
        "DicomWeb": {"Enable": True, "Root": "/dicom-web/", "Servers": {"facet": {
            "Url": live.url + "/", "HttpHeaders": {"Authorization": "Bearer " + live.token}}}},
    }))
    process = subprocess.Popen([orthanc, str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(150):
            try:
                if requests.get(base + "/system", timeout=1).ok:
                    break
            except requests.ConnectionError:
                time.sleep(0.2)
        data, ds = sc_bytes(tmp_path)
        created = requests.post(base + "/instances", data=data, timeout=30).json()
        pushed = requests.post(base + "/dicom-web/servers/facet/stow",
                               json={"Resources": [created["ID"]], "Synchronous": True}, timeout=60)
        assert pushed.ok, pushed.text
        answer = requests.get(live.url + "/instances", params={"SOPInstanceUID": ds.SOPInstanceUID},
                              headers=DICOM_JSON, timeout=10)
        assert answer.status_code == 200 and len(answer.json()) == 1
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_an_instance_cannot_join_a_study_under_another_patient(live, tmp_path):
    data, ds = sc_bytes(tmp_path)
    assert stow(live.url, data).status_code == 200
    other, other_ds = sc_bytes(tmp_path, StudyInstanceUID=ds.StudyInstanceUID, PatientID="SOMEONE-ELSE")
    answer = stow(live.url, other)
    assert answer.status_code == 409, answer.text
    reason = answer.json()["00081198"]["Value"][0]["00081197"]["Value"][0]
    assert reason & 0xF000 == 0xC000
    assert "SOMEONE-ELSE" not in answer.text and "SOMEONE-ELSE" not in answer.headers.get("Warning", "")
    found = requests.get(live.url + "/instances", params={"SOPInstanceUID": other_ds.SOPInstanceUID},
                         headers=DICOM_JSON).json()
    assert found == []
    # Same patient, name differing only in case and padding: stored, with a warning.
    same, same_ds = sc_bytes(tmp_path, StudyInstanceUID=ds.StudyInstanceUID,
                             PatientName=str(ds.PatientName).upper() + "^")
    answer = stow(live.url, same)
    assert answer.status_code == 202, answer.text
    assert answer.json()["00081199"]["Value"][0]["00081196"]["Value"][0] & 0xF000 == 0xB000


# --- A browser tab or a neighbour must not read it ------------------------------------------------------------------

def test_cors_is_off_and_foreign_origins_cannot_write(live, tmp_path):
    evil = {"Origin": "http://evil.example"}
    answer = requests.get(live.url + "/studies", headers={**evil, **DICOM_JSON})
    assert answer.status_code == 200 and "Access-Control-Allow-Origin" not in answer.headers
    preflight = requests.options(live.url + "/studies", headers={**evil, "Access-Control-Request-Method": "POST"})
    assert "Access-Control-Allow-Origin" not in preflight.headers
    data, ds = sc_bytes(tmp_path)
    assert stow(live.url, data, headers=evil).status_code == 403
    # A form posted from another site (no preflight for multipart/form-data).
    forged = requests.post(live.root + "/api/v1/photos", headers=evil, files=[("photo", ("a.jpg", b"\xff\xd8\xff", "image/jpeg"))])
    assert forged.status_code == 403
    assert requests.get(live.url + "/studies", headers=DICOM_JSON).json() == []
    # The server's own origin may.
    assert stow(live.url, data, headers={"Origin": live.root}).status_code == 200
    assert answer.headers.get("X-Content-Type-Options") == "nosniff"


def test_a_configured_viewer_origin_gets_cors(facet, tmp_path):
    child = FacetServer(facet, tmp_path / "data",
                        extra_env={"FACET_CORS_ALLOW_ORIGIN": "http://viewer.example:3000"}).start()
    try:
        ok = requests.get(child.url + "/studies", headers={"Origin": "http://viewer.example:3000", **DICOM_JSON})
        assert ok.headers.get("Access-Control-Allow-Origin") == "http://viewer.example:3000"
        other = requests.get(child.url + "/studies", headers={"Origin": "http://evil.example", **DICOM_JSON})
        assert "Access-Control-Allow-Origin" not in other.headers
    finally:
        child.stop()


def test_dns_rebinding_host_names_are_refused(live):
    for host in ("evil.example", "evil.example:%d" % live.port, "127.0.0.1.evil.example"):
        answer = requests.get(live.url + "/studies", headers={"Host": host, **DICOM_JSON})
        assert answer.status_code == 421, host
    for host in ("localhost:%d" % live.port, "127.0.0.1:%d" % live.port, "LOCALHOST"):
        assert requests.get(live.url + "/studies", headers={"Host": host, **DICOM_JSON}).status_code == 200, host


def test_binding_a_non_loopback_address_is_refused(facet, tmp_path):
    result = run(facet, "serve", "--data-dir", tmp_path / "data", "--host", "0.0.0.0", "--port", "1")
    assert result.returncode == 2
    assert "loopback" in result.stderr
    assert not (tmp_path / "data").exists()


def test_uploaded_originals_are_downloads_and_scans_take_no_stray_files(live):
    page = b"<html><script>alert(document.cookie)</script></html>"
    stl = (Path(__file__).parent.parent / "testdata/meshes").glob("**/*.stl")
    stl = sorted(stl)[0].read_bytes()
    meta = json.dumps({"patient": {"id": "UP-1", "name": "Upload^Uma"}, "region": "face"})
    stray = requests.post(live.root + "/api/v1/scans", files=[
        ("metadata", (None, meta, "application/json")),
        ("mesh", ("scan.stl", stl, "model/stl")),
        ("extra", ("note.html", page, "text/html"))])
    assert stray.status_code == 422, stray.text
    assert requests.get(live.url + "/studies", headers=DICOM_JSON).json() == []
    made = requests.post(live.root + "/api/v1/scans", files=[
        ("metadata", (None, meta, "application/json")), ("mesh", ("scan.stl", stl, "text/html"))])
    assert made.status_code == 201, made.text
    original = requests.get(made.json()["instances"][0]["originalsURL"] + "/1")
    assert original.content == stl
    assert original.headers["Content-Type"] == "application/octet-stream"
    assert original.headers["Content-Disposition"].startswith("attachment")
    assert original.headers["X-Content-Type-Options"] == "nosniff"


# --- A restart must not lose or refuse the archive ------------------------------------------------------------------

def blob_files(data_dir):
    return sorted(p for p in (data_dir / "blobs").rglob("*") if p.is_file())


def test_a_missing_index_refuses_to_start_and_deletes_nothing(live, tmp_path):
    data, ds = sc_bytes(tmp_path)
    assert stow(live.url, data).status_code == 200
    assert live.stop() == 0
    blobs = blob_files(live.data_dir)
    assert blobs
    aside = tmp_path / "index-aside"
    aside.mkdir()
    for name in ("index.sqlite", "index.sqlite-wal", "index.sqlite-shm"):
        if (live.data_dir / name).exists():
            shutil.move(str(live.data_dir / name), str(aside / name))
    with pytest.raises(RuntimeError):
        live.start()
    assert live.process.returncode == 3
    assert blob_files(live.data_dir) == blobs
    # The index put back: everything is there.
    for name in os.listdir(aside):
        shutil.move(str(aside / name), str(live.data_dir / name))
    live.start()
    got = requests.get(instance_url(live, ds), headers={"Accept": "application/dicom"})
    assert got.status_code == 200 and got.content == data


def test_an_older_index_refuses_to_start(live, tmp_path):
    first, _ = sc_bytes(tmp_path)
    assert stow(live.url, first).status_code == 200
    assert live.stop() == 0
    backup = tmp_path / "backup"
    backup.mkdir()
    for name in ("index.sqlite", "index.sqlite-wal", "index.sqlite-shm"):
        if (live.data_dir / name).exists():
            shutil.copy(live.data_dir / name, backup / name)
    live.start()
    second, _ = sc_bytes(tmp_path)
    assert stow(live.url, second).status_code == 200
    assert live.stop() == 0
    blobs = blob_files(live.data_dir)
    for name in ("index.sqlite", "index.sqlite-wal", "index.sqlite-shm"):
        (live.data_dir / name).unlink(missing_ok=True)
        if (backup / name).exists():
            shutil.copy(backup / name, live.data_dir / name)
    with pytest.raises(RuntimeError):
        live.start()
    assert blob_files(live.data_dir) == blobs


def nested(depth):
    item = Dataset()
    item.CodeValue = "LEAF"
    for _ in range(depth - 1):
        outer = Dataset()
        outer.ContentSequence = Sequence([item])
        item = outer
    return Sequence([item])


@pytest.mark.parametrize("depth", [20, 32, 33, 64, 65])
def test_nested_sequences_never_leave_a_server_that_cannot_start(live, tmp_path, depth):
    path = secondary_capture(tmp_path / "nested.dcm")
    ds = pydicom.dcmread(path)
    ds.ContentSequence = nested(depth)
    ds.save_as(path, enforce_file_format=True)
    answer = stow(live.url, path.read_bytes())
    # One limit (32 nested sequences) for what is stored and what the index can read back.
    if depth <= 32:
        assert answer.status_code == 200, answer.text
    else:
        assert answer.status_code in (400, 409), answer.text
        assert answer.json()["00081198"]["Value"][0]["00081197"]["Value"][0] == 0xC000
    alive(live)
    restart(live)
    found = requests.get(live.url + "/instances", params={"SOPInstanceUID": ds.SOPInstanceUID}, headers=DICOM_JSON)
    assert len(found.json()) == (1 if answer.status_code == 200 else 0)
    if answer.status_code == 200:
        metadata = requests.get(instance_url(live, ds) + "/metadata", headers=DICOM_JSON)
        assert metadata.status_code == 200


def audit_verify(facet, data_dir):
    return run(facet, "audit", "verify", "--data-dir", data_dir)


def test_a_torn_audit_line_is_repaired_at_start(live, tmp_path, facet):
    data, _ = sc_bytes(tmp_path)
    assert stow(live.url, data).status_code == 200
    assert live.stop() == 0
    with open(live.data_dir / "audit" / "audit.log", "ab") as log:
        log.write(b'{"seq":999,"time":"2026-')
    live.start()
    assert stow(live.url, sc_bytes(tmp_path)[0]).status_code == 200
    assert live.stop() == 0
    result = audit_verify(facet, live.data_dir)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "torn write" in (result.stdout + result.stderr)
    live.start()


def test_a_deleted_audit_log_is_detected(live, tmp_path, facet):
    data, _ = sc_bytes(tmp_path)
    assert stow(live.url, data).status_code == 200
    assert live.stop() == 0
    assert audit_verify(facet, live.data_dir).returncode == 0
    shutil.rmtree(live.data_dir / "audit")
    result = audit_verify(facet, live.data_dir)
    assert result.returncode == 1, result.stdout + result.stderr
    # The server starts, and the loss stays on record.
    live.start()
    alive(live)
    assert live.stop() == 0
    assert audit_verify(facet, live.data_dir).returncode == 1
    live.start()

#!/usr/bin/env python3
"""Facet against Orthanc (Debian's orthanc + orthanc-dicomweb) on the same generated data set, over DICOMweb.

Both servers run on loopback, started here with fresh data folders; runs alternate between them inside each
scenario. The data set is VL Photographic instances carrying ~2 MB 12 MP baseline JPEGs (4:2:0, as cameras
write them) spread over studies of 10 instances, plus a few Encapsulated STL/OBJ objects. Printed: STOW-RS
instances/s (1 and 4 clients, 1 and 10 instances per request), QIDO-RS p50 latency (PatientID, date range, name
wildcard, series of a study), WADO-RS throughput and latency (instance, study, metadata, thumbnail), and each
server's peak RSS (VmHWM). Facet runs with encryption on (it has no other mode).

    make bench-dicomweb            # or: .venv/bin/python Benchmarks/dicomweb_benchmark.py --facet .build/release/facet
"""
import argparse
import concurrent.futures as futures
import http.client
import io
import json
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path

import numpy as np
import pydicom
import requests
from PIL import Image
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.uid import JPEGBaseline8Bit, ExplicitVRLittleEndian, generate_uid

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "conformance"))
from totp import totp_now  # noqa: E402


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(url, process, seconds=120):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"server exited early ({process.returncode}); see its log")
        try:
            if requests.get(url, timeout=1).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.25)
    raise SystemExit(f"server at {url} did not start")


def peak_rss_mib(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class Server:
    def __init__(self, name, base, health, process, auth=None):
        self.name, self.base, self.health, self.process = name, base, health, process
        # Headers every request carries (Facet: a physician's bearer token; Orthanc runs without authentication).
        self.auth = auth or {}

    def stop(self):
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()


def start_facet(binary, folder):
    port = free_port()
    log = open(folder / "facet.log", "wb")
    process = subprocess.Popen([binary, "serve", "--data-dir", str(folder / "data"), "--port", str(port)],
                               stdout=log, stderr=subprocess.STDOUT)
    wait_ready(f"http://127.0.0.1:{port}/health/ready", process)
    token = log_in(binary, folder / "data", f"http://127.0.0.1:{port}")
    return Server("Facet", f"http://127.0.0.1:{port}/dicomweb", None, process, {"Authorization": f"Bearer {token}"})


def log_in(binary, data, root):
    """A physician account made with `facet users`, logged in with password and TOTP: the benchmark measures Facet
    with authentication on, as a clinic runs it."""
    password = "benchmark password"
    made = subprocess.run([binary, "users", "add", "bench", "--role", "physician", "--password-stdin", "--json",
                           "--data-dir", str(data)], input=password, capture_output=True, text=True, check=True)
    uri = json.loads(made.stdout)["otpauth_uri"]
    answer = requests.post(root + "/api/v1/auth/login",
                           json={"username": "bench", "password": password, "totp": totp_now(uri)})
    answer.raise_for_status()
    return answer.json()["access_token"]


def start_orthanc(folder):
    port, dicom_port = free_port(), free_port()
    config = {
        "Name": "bench", "StorageDirectory": str(folder / "storage"), "IndexDirectory": str(folder / "index"),
        "HttpPort": port, "DicomPort": dicom_port, "RemoteAccessAllowed": False, "AuthenticationEnabled": False,
        "Plugins": ["/usr/share/orthanc/plugins/libOrthancDicomWeb.so"],
        "DicomWeb": {"Enable": True, "Root": "/dicom-web/"}, "HttpCompressionEnabled": False,
    }
    (folder / "orthanc.json").write_text(json.dumps(config))
    log = open(folder / "orthanc.log", "wb")
    process = subprocess.Popen(["Orthanc", str(folder / "orthanc.json")], stdout=log, stderr=subprocess.STDOUT)
    wait_ready(f"http://127.0.0.1:{port}/system", process)
    return Server("Orthanc", f"http://127.0.0.1:{port}/dicom-web", None, process)


# --- data ------------------------------------------------------------------------------------------------------


def camera_jpegs(count, quality=82):
    """12 MP (4000 x 3000) baseline 4:2:0 JPEGs of about 2 MB: gradients plus sensor-like noise."""
    rng = np.random.default_rng(7)
    y, x = np.mgrid[0:3000, 0:4000]
    out = []
    for k in range(count):
        base = np.stack([(x / (12 + k)) % 256, (y / (10 + k)) % 256, ((x + y) / (18 + k)) % 256], -1)
        image = np.clip(base + rng.normal(0, 9, base.shape), 0, 255).astype(np.uint8)
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, "JPEG", quality=quality, subsampling=2)
        out.append(buffer.getvalue())
    return out


class Study:
    def __init__(self, number):
        self.number = number
        self.uid = generate_uid()
        self.series = generate_uid()
        self.patient_id = f"BENCH-{number:04d}"
        self.name = f"Bench^P{number:04d}"
        self.date = f"2025{(number % 12) + 1:02d}{(number % 28) + 1:02d}"


def new_instance(sop_class, transfer_syntax):
    """An empty Part-10 dataset with its File Meta Information and SOP Common UIDs."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = transfer_syntax
    ds = FileDataset("", {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    return ds


def part10_bytes(ds):
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def vl_photo(study, jpeg, number):
    ds = new_instance("1.2.840.10008.5.1.4.1.1.77.1.4", JPEGBaseline8Bit)
    ds.StudyInstanceUID, ds.SeriesInstanceUID = study.uid, study.series
    ds.PatientName, ds.PatientID, ds.PatientBirthDate, ds.PatientSex = study.name, study.patient_id, "19800101", "F"
    ds.StudyDate, ds.StudyTime, ds.AccessionNumber, ds.StudyID = study.date, "093000", f"A{study.number}", "1"
    ds.ReferringPhysicianName = ""
    ds.Modality, ds.SeriesNumber, ds.InstanceNumber = "XC", 1, number
    ds.Manufacturer = "Bench"
    ds.ImageType = ["ORIGINAL", "PRIMARY"]
    ds.Rows, ds.Columns, ds.SamplesPerPixel = 3000, 4000, 3
    ds.PhotometricInterpretation, ds.PlanarConfiguration = "YBR_FULL_422", 0
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.LossyImageCompression, ds.LossyImageCompressionMethod = "01", "ISO_10918_1"
    ds.AcquisitionContextSequence = []
    ds.PixelData = encapsulate([jpeg])
    ds["PixelData"].VR = "OB"
    return part10_bytes(ds)


def encapsulated_stl(study, number, triangles=20000):
    """A binary STL (random triangles: the servers store, they do not parse) as Encapsulated STL."""
    rng = np.random.default_rng(number)
    body = b"\0" * 80 + np.uint32(triangles).tobytes()
    record = np.zeros(triangles, dtype=[("n", "<f4", 3), ("v", "<f4", 9), ("a", "<u2")])
    record["v"] = rng.normal(0, 50, (triangles, 9))
    stl = body + record.tobytes()
    ds = new_instance("1.2.840.10008.5.1.4.1.1.104.3", ExplicitVRLittleEndian)
    ds.StudyInstanceUID, ds.SeriesInstanceUID = study.uid, generate_uid()
    ds.PatientName, ds.PatientID = study.name, study.patient_id
    ds.StudyDate, ds.StudyTime, ds.Modality, ds.SeriesNumber, ds.InstanceNumber = study.date, "093000", "M3D", 2, 1
    ds.MIMETypeOfEncapsulatedDocument = "model/stl"
    ds.EncapsulatedDocument = stl
    ds.EncapsulatedDocumentLength = len(stl)
    return part10_bytes(ds)


# --- transactions ----------------------------------------------------------------------------------------------


def stow(session, base, parts):
    boundary = "benchboundary"
    body = b"".join(b"--" + boundary.encode() + b"\r\nContent-Type: application/dicom\r\n\r\n" + p + b"\r\n"
                    for p in parts) + b"--" + boundary.encode() + b"--\r\n"
    answer = session.post(f"{base}/studies", data=body, headers={
        "Content-Type": f'multipart/related; type="application/dicom"; boundary={boundary}',
        "Accept": "application/dicom+json"})
    if answer.status_code != 200:
        raise SystemExit(f"STOW failed with {answer.status_code}: {answer.text[:300]}")


def run_stow(server, batches, clients):
    """Seconds to store `batches` (lists of Part-10 bytes) with `clients` concurrent connections."""
    sessions = [requests.Session() for _ in range(clients)]
    for session in sessions:
        session.headers.update(server.auth)
    start = time.perf_counter()
    with futures.ThreadPoolExecutor(clients) as pool:
        jobs = [pool.submit(stow, sessions[i % clients], server.base, batch) for i, batch in enumerate(batches)]
        for job in jobs:
            job.result()
    return time.perf_counter() - start


class Connection:
    """One keep-alive HTTP/1.1 connection (http.client: far less client overhead per request than requests)."""

    def __init__(self, base, auth=None):
        self.auth = auth or {}
        parsed = urllib.parse.urlsplit(base)
        self.host, self.port = parsed.hostname, parsed.port
        self.connection = http.client.HTTPConnection(self.host, self.port)

    def get(self, url, headers=None, params=None):
        parsed = urllib.parse.urlsplit(url)
        path = parsed.path + ("?" + urllib.parse.urlencode(params) if params else "")
        for attempt in range(2):
            try:
                self.connection.request("GET", path, headers={**self.auth, **(headers or {})})
                response = self.connection.getresponse()
                return response.status, response.read()
            except (http.client.HTTPException, OSError):
                self.connection.close()
                self.connection = http.client.HTTPConnection(self.host, self.port)
        raise SystemExit(f"GET {url} failed twice")


def timed(connection, url, headers=None, params=None, expect=200):
    start = time.perf_counter()
    status, body = connection.get(url, headers, params)
    elapsed = time.perf_counter() - start
    if status != expect:
        return None, len(body), status
    return elapsed, len(body), status


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--facet", default=str(ROOT / ".build/release/facet"))
    parser.add_argument("--studies", type=int, default=200)
    parser.add_argument("--per-study", type=int, default=10)
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--keep", action="store_true", help="keep the data folders")
    args = parser.parse_args()
    if not shutil.which("Orthanc"):
        raise SystemExit("Orthanc is missing: apt-get install -y orthanc orthanc-dicomweb")

    work = Path(tempfile.mkdtemp(prefix="facet-bench-"))
    print(f"generating {args.studies} studies x {args.per_study} photos (12 MP JPEG) ...", flush=True)
    jpegs = camera_jpegs(6)
    print(f"  JPEG sizes: {', '.join(f'{len(j) / 1e6:.2f} MB' for j in jpegs)}", flush=True)
    studies = [Study(n) for n in range(args.studies)]

    def study_instances(study):
        return [vl_photo(study, jpegs[(study.number + k) % len(jpegs)], k + 1) for k in range(args.per_study)]

    (work / "facet").mkdir()
    (work / "orthanc").mkdir()
    servers = [start_facet(args.facet, work / "facet"), start_orthanc(work / "orthanc")]
    results = {}

    def record(name, server, value):
        results.setdefault(name, {}).setdefault(server.name, []).append(value)

    # STOW-RS: scenarios on disjoint slices of the studies; both servers store the same bytes, alternating.
    scenarios = [("STOW 1 client, 1 instance/request", 1, 1, 10), ("STOW 1 client, 10 instances/request", 1, 10, 20),
                 ("STOW 4 clients, 1 instance/request", 4, 1, 20), ("STOW 4 clients, 10 instances/request", 4, 10, 40)]
    cursor = 0
    for name, clients, per_request, count in scenarios:
        chosen = studies[cursor:cursor + count]
        cursor += count
        parts = [p for s in chosen for p in study_instances(s)]
        batches = [parts[i:i + per_request] for i in range(0, len(parts), per_request)]
        order = servers if len(results) % 2 == 0 else list(reversed(servers))
        for server in order:
            seconds = run_stow(server, batches, clients)
            record(name, server, len(parts) / seconds)
        print(f"  {name}: " + ", ".join(f"{s.name} {results[name][s.name][-1]:.1f}/s" for s in servers), flush=True)
    # The rest of the data set, loaded the fast way, plus some 3D objects.
    rest = studies[cursor:]
    for start in range(0, len(rest), 20):
        chunk = rest[start:start + 20]
        parts = [p for s in chunk for p in study_instances(s)]
        if start == 0:
            parts += [encapsulated_stl(s, s.number) for s in chunk]
        batches = [parts[i:i + 10] for i in range(0, len(parts), 10)]
        for server in servers:
            run_stow(server, batches, 4)
    total = args.studies * args.per_study
    print(f"  loaded {total} photos + 20 STL into each server", flush=True)

    # QIDO-RS and WADO-RS: alternate servers request by request.
    rng = np.random.default_rng(3)
    sessions = {s.name: requests.Session() for s in servers}
    for server in servers:
        sessions[server.name].headers.update(server.auth)
    connections = {s.name: Connection(s.base, s.auth) for s in servers}
    picks = [studies[int(i)] for i in rng.integers(0, len(studies), args.queries)]
    single = {"Accept": 'multipart/related; type="application/dicom"; transfer-syntax=*'}
    json_accept = {"Accept": "application/dicom+json"}
    checks = [
        ("QIDO PatientID", lambda s, st: (f"{s.base}/studies", json_accept, {"PatientID": st.patient_id})),
        ("QIDO date range", lambda s, st: (f"{s.base}/studies", json_accept,
                                           {"StudyDate": f"{st.date[:6]}01-{st.date[:6]}15"})),
        ("QIDO name wildcard", lambda s, st: (f"{s.base}/studies", json_accept,
                                              {"PatientName": st.name[:-1] + "*"})),
        ("QIDO series of a study", lambda s, st: (f"{s.base}/studies/{st.uid}/series", json_accept, None)),
        ("WADO instance", lambda s, st: (
            f"{s.base}/studies/{st.uid}/series/{st.series}/instances/{instance_of(s, st)}", single, None)),
        ("WADO study", lambda s, st: (f"{s.base}/studies/{st.uid}", single, None)),
        ("WADO study metadata", lambda s, st: (f"{s.base}/studies/{st.uid}/metadata", json_accept, None)),
        ("WADO thumbnail", lambda s, st: (
            f"{s.base}/studies/{st.uid}/series/{st.series}/instances/{instance_of(s, st)}/thumbnail",
            {"Accept": "image/jpeg"}, None)),
    ]
    instance_cache = {}

    def instance_of(server, study):
        key = (server.name, study.uid)
        if key not in instance_cache:
            found = sessions[server.name].get(f"{server.base}/studies/{study.uid}/instances",
                                              headers=json_accept).json()
            instance_cache[key] = found[0]["00080018"]["Value"][0]
        return instance_cache[key]

    for name, make in checks:
        count = args.queries if name.startswith("QIDO") or name == "WADO study metadata" else args.queries // 2
        for k in range(count):
            study = picks[k]
            order = servers if k % 2 == 0 else list(reversed(servers))
            for server in order:
                url, headers, params = make(server, study)
                elapsed, size, status = timed(connections[server.name], url, headers, params)
                record(name, server, (elapsed, size, status))

    # Report.
    print()
    print(f"{'scenario':40} {'Facet':>16} {'Orthanc':>16} {'ratio':>8}")
    summary = {}
    for name, _, _, _ in scenarios:
        facet, orthanc = statistics.median(results[name]["Facet"]), statistics.median(results[name]["Orthanc"])
        ratio = facet / orthanc if orthanc else float("nan")  # a scenario too small to run at tiny sizes
        summary[name] = (facet, orthanc, ratio)
        print(f"{name:40} {facet:12.1f} i/s {orthanc:12.1f} i/s {ratio:7.1f}x")
    for name, _ in checks:
        row = []
        for server in servers:
            samples = results[name][server.name]
            ok = [s for s in samples if s[0] is not None]
            if not ok:
                row.append(None)
                continue
            p50 = statistics.median(s[0] for s in ok)
            throughput = sum(s[1] for s in ok) / sum(s[0] for s in ok) / 1e6
            row.append((p50, throughput, len(ok), len(samples), samples[0][2]))
        facet, orthanc = row
        if name in ("WADO instance", "WADO study"):
            text = lambda r: f"{r[1]:10.1f} MB/s" if r else "  unsupported"
            ratio = facet[1] / orthanc[1] if facet and orthanc else float("nan")
        else:
            text = lambda r: f"{r[0] * 1000:9.2f} ms p50" if r else "  unsupported"
            ratio = orthanc[0] / facet[0] if facet and orthanc else float("nan")
        note = "" if orthanc else f" (Orthanc answered {results[name]['Orthanc'][0][2]})"
        summary[name] = (facet, orthanc, ratio)
        print(f"{name:40} {text(facet):>16} {text(orthanc):>16} {ratio:7.1f}x{note}")
    rss = {s.name: peak_rss_mib(s.process.pid) for s in servers}
    print(f"{'peak RSS (VmHWM)':40} {rss['Facet']:12.0f} MiB {rss['Orthanc']:12.0f} MiB")
    for server in servers:
        server.stop()
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

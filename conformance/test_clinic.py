"""The clinic's records on a live `facet serve` (issue 12), through real clients: `requests` for the clinic API,
Python's zipfile and Pillow for the marketing export, Pillow again to re-encode and shrink an exported photo the way a
gallery would before `facet watermark read` finds its mark, pydicom and dciodvfy for the consent form stored as
Encapsulated PDF, and schemathesis against the served OpenAPI document."""
import base64
import io
import json
import os
import shutil
import subprocess
import sys
import re
import zipfile
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pydicom
import pytest
import requests
from PIL import Image

from conftest import TESTDATA, FacetServer, totp_now
from test_dicomize import dciodvfy_report

pytestmark = pytest.mark.usefixtures("facet_only")

PRACTICE = "Lakeside Aesthetics"


@pytest.fixture
def clinic(facet, tmp_path):
    child = FacetServer(facet, tmp_path / "data", extra_env={"FACET_PRACTICE_NAME": PRACTICE}).start()
    yield child
    child.stop()


def upload(server, patient, name, date, view, timing, photo="photos/phone-gps.jpg"):
    metadata = json.dumps({
        "patient": {"id": patient, "name": name, "birthDate": "19850412", "sex": "F"},
        "study": {"date": date, "time": "101010", "description": "Aesthetic consultation"},
        "region": "face", "view": view, "timing": timing,
    })
    answer = requests.post(server.root + "/api/v1/photos", files=[
        ("metadata", (None, metadata, "application/json")),
        ("photo", ("photo.jpg", (TESTDATA / photo).read_bytes(), "image/jpeg")),
    ], timeout=60)
    assert answer.status_code == 201, answer.text
    return answer.json()["instances"][0]["sopInstanceUID"]


def test_a_clinic_day_end_to_end(clinic, facet, dciodvfy, tmp_path):
    root = clinic.root + "/api/v1"
    before = upload(clinic, "LA-1001", "Rivera^Ana", "20260110", "frontal", "before")
    after = upload(clinic, "LA-1001", "Rivera^Ana", "20260310", "frontal", "after")
    upload(clinic, "LA-1002", "Okafor^Ben", "20260110", "frontal", "before")

    found = requests.get(root + "/patients", params={"name": "riv"}, timeout=30).json()
    assert [p["patientID"] for p in found["patients"]] == ["LA-1001"]
    treatment = requests.post(root + "/patients/LA-1001/treatments", json={
        "service": "Filler cheeks", "date": "2026-02-01", "regions": ["face"], "provider": "Dr Chen"}, timeout=30)
    assert treatment.status_code == 201 and treatment.headers["ETag"] == '"1"'
    timeline = requests.get(root + "/patients/LA-1001/timeline", timeout=30).json()
    assert [e["type"] for e in timeline["regions"][0]["entries"]] == ["capture", "treatment", "capture"]
    pair = requests.get(root + "/comparisons/suggest", params={"patientID": "LA-1001", "view": "frontal"},
                        timeout=30).json()
    assert (pair["before"]["sopInstanceUID"], pair["after"]["sopInstanceUID"], pair["daysElapsed"]) == (before, after, 59)

    # Tags: the first write answers the ETag "0" of the untagged instance.
    tags = requests.get(root + f"/instances/{before}/tags", timeout=30)
    assert tags.headers["ETag"] == '"0"'
    for uid in (before, after):
        answer = requests.patch(root + f"/instances/{uid}/tags", json={"quality": "marketing-approved"},
                                headers={"If-Match": '"0"'}, timeout=30)
        assert answer.status_code == 200 and answer.json()["version"] == 1

    # Consent, with the signed form kept as Encapsulated PDF in the patient's record.
    pdf = (b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj 2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\n"
           b"trailer<</Root 1 0 R>>\n%%EOF\n")
    consent = requests.post(root + "/patients/LA-1001/consents", json={
        "kind": "marketing", "channels": ["website", "social"], "scope": "all", "signer": "Ana Rivera",
        "signedDate": "2026-01-10", "form": base64.b64encode(pdf).decode()}, timeout=60)
    assert consent.status_code == 201, consent.text
    form_uid = consent.json()["form"]
    studies = requests.get(clinic.url + "/instances", params={"SOPInstanceUID": form_uid}, timeout=30).json()
    study = studies[0]["0020000D"]["Value"][0]
    series = studies[0]["0020000E"]["Value"][0]
    stored = requests.get(f"{clinic.url}/studies/{study}/series/{series}/instances/{form_uid}",
                          headers={"Accept": 'multipart/related; type="application/dicom"'}, timeout=30)
    part = stored.content.split(b"\r\n\r\n", 1)[1].rsplit(b"\r\n--", 1)[0]
    dataset = pydicom.dcmread(io.BytesIO(part))
    assert dataset.SOPClassUID == "1.2.840.10008.5.1.4.1.1.104.1" and dataset.PatientID == "LA-1001"
    assert bytes(dataset.EncapsulatedDocument).rstrip(b"\0") == pdf.rstrip(b"\0")
    form_file = tmp_path / "form.dcm"
    form_file.write_bytes(part)
    errors, _ = dciodvfy_report(dciodvfy, form_file)
    assert errors == [], errors

    # The export: only consented, marketing-approved photos; no DICOM, no EXIF; both watermarks.
    export = requests.post(root + "/exports", json={"channel": "website"}, timeout=120)
    assert export.status_code == 200 and export.headers["Content-Type"] == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(export.content))
    assert archive.testzip() is None
    names = sorted(archive.namelist())
    photos = [n for n in names if n.startswith("photos/")]
    assert len(photos) == 2 and "manifest.json" in names
    manifest = json.loads(archive.read("manifest.json"))
    text = json.dumps(manifest) + " ".join(names)
    for secret in ("Rivera", "Ana", "LA-1001", "19850412", "20260110"):
        assert secret not in text
    for name in photos:
        image = Image.open(io.BytesIO(archive.read(name)))
        assert image.format == "JPEG" and not image.getexif() and "exif" not in image.info and "xmp" not in image.info
        # A gallery's treatment: half the size, JPEG quality 75, then the command line reads the mark back.
        shrunk = image.convert("RGB").resize((image.width // 2, image.height // 2), Image.LANCZOS)
        target = tmp_path / (Path(name).stem + "-gallery.jpg")
        shrunk.save(target, quality=75)
        read = subprocess.run([facet, "watermark", "read", str(target), "--practice", PRACTICE, "--json"],
                              capture_output=True, text=True, timeout=60)
        assert read.returncode == 0, read.stdout + read.stderr
        mark = json.loads(read.stdout)
        assert mark["export"] == manifest["export"][:6] and mark["practiceMatches"] is True
        assert name.split("/")[1].split("-")[1] == mark["pseudonym"]
    plain = tmp_path / "plain.jpg"
    shutil.copy(TESTDATA / "photos/phone-gps.jpg", plain)
    assert subprocess.run([facet, "watermark", "read", str(plain)], capture_output=True, timeout=60).returncode == 1

    # Withdrawn: the next export holds nothing; the clinical record stays.
    withdrawn = requests.post(root + f"/patients/LA-1001/consents/{consent.json()['id']}/withdraw", timeout=30)
    assert withdrawn.status_code == 200 and withdrawn.json()["active"] is False
    again = zipfile.ZipFile(io.BytesIO(requests.post(root + "/exports", json={"channel": "website"}, timeout=60).content))
    assert [n for n in again.namelist() if n.startswith("photos/")] == []
    assert requests.get(root + "/patients/LA-1001", timeout=30).json()["instances"] == 3  # two photos, the form

    # A share link opens without an account, shows one photo, and stops once revoked.
    share = requests.post(root + "/shares", json={"patientID": "LA-1001", "instances": [after], "audience": "patient"},
                          timeout=30).json()
    anonymous = requests.Session()
    anonymous.trust_env = False
    page = anonymous.get(share["url"], timeout=30, headers={"Authorization": None})
    assert page.status_code == 200 and f"/photos/{after}" in page.text and "Rivera" not in page.text
    requests.delete(root + f"/shares/{share['id']}", timeout=30)
    assert anonymous.get(share["url"], timeout=30, headers={"Authorization": None}).status_code == 410

    # Restarted, the records are all there.
    clinic.stop()
    clinic.start()
    treatments = requests.get(root + "/patients/LA-1001/treatments", timeout=30).json()
    assert [t["service"] for t in treatments] == ["Filler cheeks"]
    assert requests.get(root + f"/instances/{before}/tags", timeout=30).json()["quality"] == "marketing-approved"


def test_schemathesis_finds_the_api_true_to_its_document(clinic, tmp_path):
    """schemathesis (PyPI) generates requests from /api/v1/openapi.json and checks every answer against it: no
    server error, documented statuses, content types and schemas. Bounded in examples and time."""
    photo = upload(clinic, "ST-1", "Schema^Test", "20260110", "frontal", "before")
    # Real identifiers for the path parameters, so the generated requests reach a patient and an instance that exist
    # (and not only 404s).
    config = tmp_path / "schemathesis.toml"
    config.write_text(f'''[parameters]
"path.patient" = "ST-1"
"path.instance" = "{photo}"
"query.patientID" = "ST-1"
''')
    binary = Path(sys.executable).parent / "schemathesis"
    env = dict(os.environ, SCHEMATHESIS_HOOKS="", NO_COLOR="1")
    command = [
        str(binary), "--config-file", str(config), "run", clinic.root + "/api/v1/openapi.json", "--url", clinic.root,
        "-H", f"Authorization: Bearer {clinic.token}",
        "--checks", "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance",
        "--exclude-operation-id", "logout",
        "--phases", "examples,coverage,fuzzing",
        "--max-examples", os.environ.get("SCHEMATHESIS_EXAMPLES", "12"),
        "--max-time", os.environ.get("SCHEMATHESIS_SECONDS", "60"),
        "--seed", "12", "--request-timeout", "60", "--workers", "2", "--no-shrink",
    ]
    # A failed check fails at once. A run that ended only on schemathesis's own runtime error (seen once: a
    # SystemError inside its generator, no check failed) is run once more rather than taken as the API's fault.
    for attempt in range(2):
        run = subprocess.run(command, capture_output=True, text=True, timeout=900, env=env, cwd=tmp_path)
        report = run.stdout[-20000:] + run.stderr[-4000:]
        if run.returncode == 0 or "Failures:" in run.stdout or "Runtime Error" not in run.stdout:
            break
    assert run.returncode == 0, report


def log_in_as(server, facet, username, role):
    """A second account of the server's clinic, logged in with password and TOTP; returns its token."""
    password = "audit password " + username
    made = subprocess.run([facet, "users", "add", username, "--role", role, "--password-stdin", "--json",
                           "--data-dir", str(server.data_dir)], input=password, capture_output=True, text=True,
                          timeout=60, env=server.env)
    assert made.returncode == 0, made.stderr
    uri = json.loads(made.stdout)["otpauth_uri"]
    answer = requests.post(server.root + "/api/v1/auth/login", timeout=30, headers={"Authorization": None},
                           json={"username": username, "password": password, "totp": totp_now(uri)})
    assert answer.status_code == 200, answer.text
    return answer.json()["access_token"]


CODED = ("csd-code", "codeSystemName", "originalText")


def check_audit_message(message):
    """The rules of the DICOM audit message schema (PS3.15 A.5.1) that Facet's messages rely on: the four parts in
    their order and number, the enumerated attributes, coded values with all three attributes."""
    problems = []

    def coded(element, where):
        for name in CODED:
            if not element.get(name):
                problems.append(f"{where}/{element.tag} lacks {name}")

    parts = [child.tag for child in message]
    shape = "".join({"EventIdentification": "E", "ActiveParticipant": "A", "AuditSourceIdentification": "S",
                     "ParticipantObjectIdentification": "P"}.get(tag, "?") for tag in parts)
    if not re.fullmatch(r"EA+SP*", shape):
        problems.append(f"parts out of order or number: {parts}")
    for event in message.findall("EventIdentification"):
        if event.get("EventActionCode") not in ("C", "R", "U", "D", "E"):
            problems.append("EventActionCode")
        if event.get("EventOutcomeIndicator") not in ("0", "4", "8", "12"):
            problems.append("EventOutcomeIndicator")
        if not re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)", event.get("EventDateTime", "")):
            problems.append("EventDateTime is not an xs:dateTime")
        tags = [child.tag for child in event]
        if not re.fullmatch(r"EventID(,EventTypeCode)*(,EventOutcomeDescription)?", ",".join(tags)):
            problems.append(f"EventIdentification children: {tags}")
        for child in event:
            if child.tag in ("EventID", "EventTypeCode"):
                coded(child, "EventIdentification")
    for participant in message.findall("ActiveParticipant"):
        if not participant.get("UserID") or participant.get("UserIsRequestor") not in ("true", "false"):
            problems.append("ActiveParticipant UserID / UserIsRequestor")
        kind = participant.get("NetworkAccessPointTypeCode")
        if kind is not None and (kind not in ("1", "2", "3", "4", "5") or not participant.get("NetworkAccessPointID")):
            problems.append("NetworkAccessPoint")
        for child in participant:
            if child.tag != "RoleIDCode":
                problems.append(f"ActiveParticipant child {child.tag}")
            coded(child, "ActiveParticipant")
    for source in message.findall("AuditSourceIdentification"):
        if not source.get("AuditSourceID"):
            problems.append("AuditSourceID")
        for child in source:
            coded(child, "AuditSourceIdentification")
    for item in message.findall("ParticipantObjectIdentification"):
        if not item.get("ParticipantObjectID"):
            problems.append("ParticipantObjectID")
        if item.get("ParticipantObjectTypeCode") not in ("1", "2", "3", "4"):
            problems.append("ParticipantObjectTypeCode")
        if not 1 <= int(item.get("ParticipantObjectTypeCodeRole", "0")) <= 24:
            problems.append("ParticipantObjectTypeCodeRole")
        children = list(item)
        if not children or children[0].tag != "ParticipantObjectIDTypeCode":
            problems.append("ParticipantObjectIDTypeCode first")
        else:
            coded(children[0], "ParticipantObjectIdentification")
        for child in children[1:]:
            if child.tag != "ParticipantObjectDetail" or not child.get("type") or not re.fullmatch(
                    r"[A-Za-z0-9+/=]*", child.get("value", "")):
                problems.append(f"ParticipantObjectIdentification child {child.tag}")
    return problems


def test_the_audit_trail_exports_as_dicom_audit_messages(clinic, facet):
    upload(clinic, "AU-1", "Audit^Ada", "20260110", "frontal", "before")
    root = clinic.root + "/api/v1"
    requests.get(root + "/patients/AU-1/timeline", timeout=30)
    requests.post(root + "/patients/AU-1/consents", json={"kind": "clinical", "signer": "Ada", "signedDate": "2026-01-10"},
                  timeout=30)
    assert requests.get(root + "/audit", timeout=30).status_code == 403
    token = log_in_as(clinic, facet, "privacy.officer", "auditor")
    answer = requests.get(root + "/audit", params={"format": "dicom"}, timeout=60,
                          headers={"Authorization": "Bearer " + token})
    assert answer.status_code == 200 and answer.headers["Content-Type"].startswith("application/xml")
    document = ElementTree.fromstring(answer.content)
    messages = document.findall("AuditMessage")
    assert len(messages) >= 5
    for message in messages:
        assert check_audit_message(message) == [], ElementTree.tostring(message)[:400]
    events = {m.find("EventIdentification/EventID").get("originalText") for m in messages}
    assert {"DICOM Instances Transferred", "Patient Record", "User Authentication"} <= events
    assert b"AU-1" not in answer.content and b"Ada" not in answer.content
    by_patient = requests.get(root + "/audit", params={"patientID": "AU-1"}, timeout=60,
                              headers={"Authorization": "Bearer " + token}).json()
    assert by_patient["total"] >= 2
    assert all(len(entry["patients"]) == 1 for entry in by_patient["entries"])


def test_webhooks_are_signed_retried_and_carry_no_phi(facet, tmp_path):
    """A receiver (Python's http.server) that fails the first two deliveries: the event arrives a third time with
    the same delivery id, the HMAC-SHA256 signature checks with Python's hmac, the body holds identifiers only."""
    import hashlib
    import hmac
    import threading
    import time
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    received = []

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((dict(self.headers), body))
            failing = sum(1 for headers, _ in received if headers["Facet-Event"] == "photo.uploaded") <= 2 \
                and self.headers["Facet-Event"] == "photo.uploaded"
            self.send_response(500 if failing else 204)
            self.end_headers()

        def log_message(self, *args):
            pass

    receiver = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    secret = "webhook secret for the suite"
    server = FacetServer(facet, tmp_path / "data", extra_env={
        "FACET_WEBHOOK_URL": f"http://127.0.0.1:{receiver.server_port}/hook", "FACET_WEBHOOK_SECRET": secret,
        "FACET_WEBHOOK_RETRY_SECONDS": "1"}).start()
    try:
        photo = upload(server, "WH-1", "Hook^Hana", "20260110", "frontal", "before")
        consent = requests.post(server.root + "/api/v1/patients/WH-1/consents", timeout=30,
                                json={"kind": "clinical", "signer": "Hana", "signedDate": "2026-01-10"}).json()
        deadline = time.time() + 60
        while time.time() < deadline and not (
                sum(1 for h, _ in received if h["Facet-Event"] == "photo.uploaded") >= 3
                and any(h["Facet-Event"] == "consent.granted" for h, _ in received)):
            time.sleep(0.2)
        uploads = [(h, b) for h, b in received if h["Facet-Event"] == "photo.uploaded"]
        assert len(uploads) == 3, [h["Facet-Event"] for h, _ in received]
        assert len({h["Facet-Delivery"] for h, _ in uploads}) == 1
        assert [h["Facet-Attempt"] for h, _ in uploads] == ["1", "2", "3"]
        for headers, body in received:
            stamp, mac = dict(part.split("=", 1) for part in headers["Facet-Signature"].split(",")).values()
            expected = hmac.new(secret.encode(), stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
            assert hmac.compare_digest(mac, expected)
            assert abs(int(stamp) - time.time()) < 120
            for secret_value in (b"WH-1", b"Hook", b"Hana", b"19850412"):
                assert secret_value not in body
        event = json.loads(uploads[-1][1])
        assert event["event"] == "photo.uploaded" and photo in event["instances"] and len(event["patient"]) == 64
        granted = json.loads(next(b for h, b in received if h["Facet-Event"] == "consent.granted"))
        assert granted["consent"] == consent["id"] and granted["patient"] == event["patient"]
    finally:
        server.stop()
        receiver.shutdown()


class SyslogCollector:
    """An RFC 5425 collector: TLS (the suite's certificate for localhost), octet-counted frames, kept in order."""

    def __init__(self, certificate, port=0):
        import socket
        import ssl
        import threading

        cert, key = certificate
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(cert, key)
        self.listener = socket.create_server(("127.0.0.1", port))
        self.port = self.listener.getsockname()[1]
        self.messages = []
        self.connections = []
        self.running = True
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        import threading

        while self.running:
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self.read, args=(connection,), daemon=True).start()

    def read(self, connection):
        try:
            stream = self.context.wrap_socket(connection, server_side=True)
            self.connections.append(stream)  # wrap_socket takes the socket over: close this one
            buffer = b""
            while self.running:
                data = stream.recv(65536)
                if not data:
                    return
                buffer += data
                while b" " in buffer:
                    length, _, rest = buffer.partition(b" ")
                    if len(rest) < int(length):
                        break
                    self.messages.append(rest[:int(length)])
                    buffer = rest[int(length):]
        except OSError:
            return

    def close(self):
        import socket

        self.running = False
        try:
            self.listener.shutdown(socket.SHUT_RDWR)  # wakes the accepting thread, so the port is let go
        except OSError:
            pass
        self.listener.close()
        for connection in self.connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            connection.close()


def test_the_audit_trail_is_forwarded_to_a_syslog_collector_over_tls(facet, certificate, tmp_path):
    import time

    collector = SyslogCollector(certificate)
    server = FacetServer(facet, tmp_path / "data", extra_env={
        "FACET_SYSLOG_URL": f"tls://localhost:{collector.port}", "FACET_SYSLOG_CA": str(certificate[0])}).start()
    try:
        upload(server, "SL-1", "Syslog^Sam", "20260110", "frontal", "before")
        deadline = time.time() + 30
        while time.time() < deadline and not any(b"DICOM Instances Transferred" in m for m in collector.messages):
            time.sleep(0.2)
        assert collector.messages, "nothing forwarded"
        for message in collector.messages:
            header, _, body = message.partition(b"\xef\xbb\xbf")
            assert re.fullmatch(rb"<85>1 \S+ \S+ facet \d+ DICOM\+RFC3881 - ", header), header
            root = ElementTree.fromstring(body)
            assert root.tag == "AuditMessage" and check_audit_message(root) == []
            assert b"SL-1" not in message and b"Syslog" not in message
        # The collector goes away; what happens meanwhile arrives once it is back (the cursor waits for it).
        port = collector.port
        collector.close()
        for _ in range(3):
            requests.get(server.root + "/api/v1/patients/SL-1/timeline", timeout=30)
        time.sleep(2)
        collector = SyslogCollector(certificate, port=port)
        deadline = time.time() + 60
        while time.time() < deadline and sum(b"timeline read" in m for m in collector.messages) < 3:
            time.sleep(0.5)
        assert sum(b"timeline read" in m for m in collector.messages) >= 3
    finally:
        server.stop()
        collector.close()

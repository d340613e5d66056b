"""Comparison jobs on a live `facet serve` (issue 11 §1): a generated before/after scan pair with a known bump,
uploaded as a clinic uploads it, compared over HTTP; the job's numbers are the command line's on the same documents,
and a job left queued by a server that was killed is finished by the next start."""
import base64
import hashlib
import io
import json
import re
import subprocess
import time

import pdfplumber
import pydicom
import pytest
from PIL import Image
import requests
from dicomweb_client.api import DICOMwebClient

from conftest import TESTDATA, FacetServer
from test_dicomize import dciodvfy_report
from test_server import metadata_part

pytestmark = pytest.mark.usefixtures("facet_only")

PAIRS = TESTDATA / "generated" / "pairs"


@pytest.fixture
def fresh(facet, tmp_path):
    child = FacetServer(facet, tmp_path / "data").start()
    yield child
    child.stop()


def truth(name):
    return json.loads((TESTDATA / "generated" / "manifest.json").read_text())["pairs"][name]


def upload_pair(server, name, patient):
    """Uploads a pair's BEFORE (OBJ with its MTL) and AFTER (PLY) for one patient; returns their surfaces'
    instances as the upload answered them."""
    pair = truth(name)
    surfaces = []
    for side in ("before", "after"):
        mesh = PAIRS / pair[side]
        files = [("metadata", (None, metadata_part(name="Upload^Zoë", pid=patient), "application/json")),
                 ("mesh", (mesh.name, mesh.read_bytes(), "application/octet-stream"))]
        if mesh.suffix == ".obj":
            mtl = mesh.with_suffix(".mtl")
            files.append(("mesh", (mtl.name, mtl.read_bytes(), "model/mtl")))
            # The generator's MTL names a texture it does not write: any JPEG stands in for it.
            files.append(("mesh", (mesh.stem + ".jpg", (TESTDATA / "photos/ycbcr-422.jpg").read_bytes(), "image/jpeg")))
        answer = requests.post(server.root + "/api/v1/scans", files=files, timeout=120)
        assert answer.status_code == 201, answer.text
        surfaces.append(next(i for i in answer.json()["instances"]
                             if i["sopClassUID"] in ("1.2.840.10008.5.1.4.1.1.104.4", "1.2.840.10008.5.1.4.1.1.104.3")))
    return surfaces


def check_pdf(data, given, family, volume, folder):
    """The PDF's text holds the patient's name and the volume as printed; its first page rendered is not blank."""
    with pdfplumber.open(io.BytesIO(data)) as document:
        text = "\n".join(page.extract_text() or "" for page in document.pages)
    assert f"{given} {family}" in text, text[:400]
    assert volume in text, (volume, text[:600])
    assert "95 % interval" in text and "not estimated" not in text, text[:800]
    (folder / "report.pdf").write_bytes(data)
    subprocess.run(["pdftoppm", "-r", "40", "-png", "-singlefile", str(folder / "report.pdf"), str(folder / "page")],
                   check=True, timeout=60)
    page = Image.open(folder / "page.png").convert("L")
    assert sum(1 for count in page.histogram() if count) > 50, "the rendered page is blank"


def check_html(server, url, name, result):
    """The HTML report: the name and figures as text, three non-blank PNG views, nothing that runs, a CSP that
    allows exactly its one style element."""
    page = requests.get(url.replace("https://archive.example", server.root), timeout=120)
    assert page.status_code == 200, page.text[:300]
    assert page.headers["Content-Type"] == "text/html; charset=utf-8"
    html = page.content.decode("utf-8")
    text = re.sub(r"<[^>]+>", " ", re.sub(r"<(style|svg)[^>]*>.*?</\1>", " ", html, flags=re.S))
    assert name in text, text[:400]
    low, high = result["volume_change_ci95_ml"]
    assert "%+.2f mL" % result["volume_change_ml"] in text
    assert "95 %% interval %+.2f to %+.2f mL" % (low, high) in text
    assert "<script" not in html.lower() and " style=" not in html
    style = re.search(r"<style>(.*?)</style>", html, re.S).group(1)
    digest = base64.b64encode(hashlib.sha256(style.encode()).digest()).decode()
    policy = page.headers["Content-Security-Policy"]
    assert f"style-src 'sha256-{digest}'" in policy and "default-src 'none'" in policy and "script" not in policy
    views = re.findall(r'src="data:image/png;base64,([^"]+)"', html)
    assert len(views) == 3
    for view in views:
        image = Image.open(io.BytesIO(base64.b64decode(view))).convert("RGB")
        assert len(set(image.getdata())) > 20, "a blank view"
    # Asked again (drawn once, then kept): the same page.
    again = requests.get(url.replace("https://archive.example", server.root), timeout=120)
    assert again.status_code == 200 and again.content == page.content


def roi(pair):
    return {"sphere": pair["bump_center_mm"] + [pair["roi_radius_mm"]]}


def await_end(server, id, timeout=180):
    deadline = time.monotonic() + timeout
    while True:
        job = requests.get(f"{server.root}/api/v1/comparisons/{id}", timeout=30)
        assert job.status_code == 200, job.text
        if job.json()["status"] in ("done", "failed", "cancelled") or time.monotonic() > deadline:
            return job.json()
        time.sleep(0.25)


def test_a_comparison_over_http_measures_the_known_bump_as_the_command_line_does(fresh, facet, tmp_path):
    pair = truth("filler-2.3ml")
    before, after = upload_pair(fresh, "filler-2.3ml", "CMP-1")
    asked = requests.post(fresh.root + "/api/v1/comparisons", timeout=30,
                          json={"before": before["sopInstanceUID"], "after": after["sopInstanceUID"], "roi": roi(pair)})
    assert asked.status_code == 202, asked.text
    assert asked.json()["status"] == "queued"
    assert asked.headers["Location"].endswith("/api/v1/comparisons/" + asked.json()["id"])
    job = await_end(fresh, asked.json()["id"])
    assert job["status"] == "done", job
    result = job["result"]
    expected = pair["volume_change_ml"]
    assert abs(result["volume_change_ml"] - expected) <= max(0.05, 0.03 * expected), (result, expected)
    low, high = result["volume_change_ci95_ml"]
    assert low < result["volume_change_ml"] < high and low <= expected <= high, (low, high, expected)
    # `facet compare --json` on the documents a DICOMweb client retrieves: the same object, number for number.
    files = []
    for n, instance in enumerate((before, after)):
        document = requests.get(instance["retrieveURL"] + "/bulkdata/00420011", headers={"Accept": "model/obj"},
                                timeout=60)
        assert document.status_code == 200
        path = tmp_path / f"side{n}.obj"
        path.write_bytes(document.content)
        files.append(str(path))
    sphere = ",".join(str(v) for v in roi(pair)["sphere"])
    command = subprocess.run([facet, "compare", *files, "--roi", "sphere:" + sphere, "--json"],
                             capture_output=True, text=True, timeout=300)
    assert command.returncode == 0, command.stderr
    assert json.loads(command.stdout) == result
    listed = requests.get(fresh.root + "/api/v1/comparisons", params={"patientID": "CMP-1"}, timeout=30).json()
    assert [j["id"] for j in listed] == [job["id"]]
    # `facet compare --report` writes the same report from the command line.
    made = subprocess.run([facet, "compare", *files, "--roi", "sphere:" + sphere, "--report", str(tmp_path / "cli.pdf"),
                           "--patient-name", "Upload^Zoë", "--patient-id", "CMP-1"],
                          capture_output=True, text=True, timeout=300)
    assert made.returncode == 0, made.stderr
    check_pdf((tmp_path / "cli.pdf").read_bytes(), "Zoë", "Upload", "%+.2f" % result["volume_change_ml"], tmp_path)


def sr_numbers(dataset):
    """NUM items of an SR: concept meaning (with its derivation) → (value, UCUM code)."""
    found = {}

    def walk(items):
        for item in items:
            if getattr(item, "ValueType", "") == "NUM":
                meaning = item.ConceptNameCodeSequence[0].CodeMeaning
                for child in getattr(item, "ContentSequence", []):
                    if child.ValueType == "CODE" and child.ConceptNameCodeSequence[0].CodeValue == "121401":
                        meaning += f" ({child.ConceptCodeSequence[0].CodeMeaning})"
                measured = item.MeasuredValueSequence[0]
                found[meaning] = (float(measured.FloatingPointValue), measured.MeasurementUnitsCodeSequence[0].CodeValue)
            walk(getattr(item, "ContentSequence", []))

    walk([dataset])
    return found


def test_the_report_objects_join_the_after_study_and_pass_dciodvfy(fresh, dciodvfy, tmp_path):
    pair = truth("cheek-0.9ml")
    before, after = upload_pair(fresh, "cheek-0.9ml", "CMP-5")
    asked = requests.post(fresh.root + "/api/v1/comparisons", timeout=30, json={
        "before": before["sopInstanceUID"], "after": after["sopInstanceUID"], "roi": roi(pair), "title": "Cheek"})
    job = await_end(fresh, asked.json()["id"])
    assert job["status"] == "done", job
    report = job["report"]
    assert report["srInstance"] and report["heatmapInstance"] and report["pdfInstance"]
    study = after["retrieveURL"].split("/studies/")[1].split("/")[0]
    # Found by QIDO in the AFTER study, which now lists SR among its modalities.
    found = requests.get(fresh.url + "/studies", params={"StudyInstanceUID": study,
                                                        "includefield": "ModalitiesInStudy"}, timeout=30).json()
    assert "SR" in found[0]["00080061"]["Value"]
    # Retrieved by the stock dicomweb-client, checked by dciodvfy, and read back with pydicom.
    client = DICOMwebClient(fresh.url, headers={"Authorization": "Bearer " + fresh.token})
    objects = {}
    for uid in (report["srInstance"], report["heatmapInstance"], report["pdfInstance"]):
        located = client.search_for_instances(search_filters={"SOPInstanceUID": uid})
        assert len(located) == 1
        series = located[0]["0020000E"]["Value"][0]
        dataset = client.retrieve_instance(study, series, uid)
        path = tmp_path / f"{uid}.dcm"
        dataset.save_as(path, enforce_file_format=True)
        errors, _ = dciodvfy_report(dciodvfy, path)
        assert errors == [], errors
        objects[uid] = pydicom.dcmread(path)
    sr = objects[report["srInstance"]]
    assert sr.Modality == "SR" and sr.PatientID == "CMP-5"
    numbers = sr_numbers(sr)
    result = job["result"]
    assert numbers["Volume change"] == (result["volume_change_ml"], "ml")
    assert numbers["Area"] == (result["roi_area_mm2"], "mm2")
    assert numbers["Distance (Mean)"] == (result["mean_displacement_mm"], "mm")
    assert numbers["Distance (Maximum)"] == (result["max_displacement_mm"], "mm")
    assert numbers["Volume change, 95 % interval, lower bound"] == (result["volume_change_ci95_ml"][0], "ml")
    assert numbers["Volume change, 95 % interval, upper bound"] == (result["volume_change_ci95_ml"][1], "ml")
    heatmap = objects[report["heatmapInstance"]]
    assert heatmap.SOPClassUID == "1.2.840.10008.5.1.4.1.1.104.4" and heatmap.ModelGroupUID
    assert {item.ReferencedSOPInstanceUID for item in heatmap.SourceInstanceSequence} == {
        before["sopInstanceUID"], after["sopInstanceUID"]}
    # Vertex colours on every vertex of BEFORE.
    document = heatmap.EncapsulatedDocument[:heatmap.EncapsulatedDocumentLength].decode()
    vertices = [line for line in document.splitlines() if line.startswith("v ")]
    assert vertices and all(len(line.split()) == 7 for line in vertices)
    # The PDF: the same file from the report URL and inside the Encapsulated PDF; its text names the patient (the
    # upload's non-ASCII name) and the volume to two decimals; its page is not blank.
    pdf_object = objects[report["pdfInstance"]]
    assert pdf_object.SOPClassUID == "1.2.840.10008.5.1.4.1.1.104.1" and pdf_object.Modality == "DOC"
    assert pdf_object.MIMETypeOfEncapsulatedDocument == "application/pdf"
    stored_pdf = bytes(pdf_object.EncapsulatedDocument[:pdf_object.EncapsulatedDocumentLength])
    downloaded = requests.get(report["pdf"].replace("https://archive.example", fresh.root), timeout=60)
    assert downloaded.status_code == 200 and downloaded.headers["Content-Type"] == "application/pdf"
    assert downloaded.content == stored_pdf
    check_pdf(stored_pdf, "Zoë", "Upload", "%+.2f" % result["volume_change_ml"], tmp_path)
    check_html(fresh, report["html"], "Zoë Upload", result)
    # `facet dump --json` shows the SR's numbers.
    dumped = subprocess.run([fresh.binary, "dump", "--json", str(tmp_path / f"{report['srInstance']}.dcm")],
                            capture_output=True, text=True, timeout=60)
    assert dumped.returncode == 0, dumped.stderr
    assert json.dumps(result["volume_change_ml"]) in dumped.stdout or str(result["volume_change_ml"]) in dumped.stdout


def test_refusals_queue_nothing(fresh):
    pair = truth("cheek-0.9ml")
    before, after = upload_pair(fresh, "cheek-0.9ml", "CMP-2")
    _, other = upload_pair(fresh, "cheek-0.9ml", "CMP-3")
    cases = [
        ({"before": before["sopInstanceUID"], "after": "1.2.826.0.1.3680043.9.9999.1", "roi": roi(pair)}, 404),
        ({"before": before["sopInstanceUID"], "after": other["sopInstanceUID"], "roi": roi(pair)}, 422),
        ({"before": before["sopInstanceUID"], "after": after["sopInstanceUID"], "roi": {"sphere": [0, 0, 0, -1]}}, 422),
        ({"before": before["sopInstanceUID"], "after": after["sopInstanceUID"]}, 422),
    ]
    for body, status in cases:
        answer = requests.post(fresh.root + "/api/v1/comparisons", json=body, timeout=30)
        assert answer.status_code == status, (body, answer.text)
        assert answer.json()["error"]
    assert requests.get(fresh.root + "/api/v1/comparisons", timeout=30).json() == []


def test_a_job_left_by_a_killed_server_is_finished_after_the_restart(fresh):
    pair = truth("cheek-0.9ml")
    before, after = upload_pair(fresh, "cheek-0.9ml", "CMP-4")
    asked = requests.post(fresh.root + "/api/v1/comparisons", timeout=30,
                          json={"before": before["sopInstanceUID"], "after": after["sopInstanceUID"], "roi": roi(pair)})
    assert asked.status_code == 202
    fresh.stop(kill=True)
    fresh.start()
    job = await_end(fresh, asked.json()["id"])
    assert job["status"] == "done", job
    assert abs(job["result"]["volume_change_ml"] - pair["volume_change_ml"]) <= max(0.05, 0.03 * pair["volume_change_ml"])

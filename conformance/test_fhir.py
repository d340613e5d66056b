"""FHIR R4 on a live `facet serve` (issue 11 §4): every resource and Bundle validates with fhir.resources (its R4B
models, the same as R4 for these resources), ImagingStudy agrees with QIDO, searches filter and page, errors are
OperationOutcomes, and the same token and access rules hold as for DICOMweb."""
import requests
import pytest
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.capabilitystatement import CapabilityStatement
from fhir.resources.R4B.diagnosticreport import DiagnosticReport
from fhir.resources.R4B.endpoint import Endpoint
from fhir.resources.R4B.imagingstudy import ImagingStudy
from fhir.resources.R4B.operationoutcome import OperationOutcome
from fhir.resources.R4B.patient import Patient

from conftest import TESTDATA, FacetServer
from test_comparisons import await_end, roi, truth, upload_pair
from test_server import metadata_part

pytestmark = pytest.mark.usefixtures("facet_only")
FHIR_JSON = "application/fhir+json"


@pytest.fixture(scope="module")
def clinic(facet, tmp_path_factory):
    """A server holding one patient's photo study and 3D pair with a finished comparison, and another patient."""
    server = FacetServer(facet, tmp_path_factory.mktemp("fhir") / "data").start()
    before, after = upload_pair(server, "cheek-0.9ml", "FHIR-1")
    photos = requests.post(server.root + "/api/v1/photos", timeout=60, files=[
        ("metadata", (None, metadata_part(name="Müller^Zoë", pid="FHIR-1"), "application/json")),
        ("photo", ("front.jpg", (TESTDATA / "photos/ycbcr-422.jpg").read_bytes(), "image/jpeg"))])
    assert photos.status_code == 201, photos.text
    other = requests.post(server.root + "/api/v1/photos", timeout=60, files=[
        ("metadata", (None, metadata_part(name="Other^Olga", pid="FHIR-2"), "application/json")),
        ("photo", ("front.jpg", (TESTDATA / "photos/ycbcr-422.jpg").read_bytes(), "image/jpeg"))])
    assert other.status_code == 201
    asked = requests.post(server.root + "/api/v1/comparisons", timeout=30, json={
        "before": before["sopInstanceUID"], "after": after["sopInstanceUID"], "roi": roi(truth("cheek-0.9ml")),
        "title": "cheek filler"})
    job = await_end(server, asked.json()["id"])
    assert job["status"] == "done", job
    yield server, job
    server.stop()


def fhir(server, path, status=200, **params):
    answer = requests.get(server.root + "/fhir/r4/" + path, params=params, headers={"Accept": FHIR_JSON}, timeout=60)
    assert answer.status_code == status, (path, answer.status_code, answer.text[:500])
    assert answer.headers["Content-Type"].startswith(FHIR_JSON)
    return answer.json()


def patient_id(server, pid):
    bundle = fhir(server, "Patient", identifier=pid)
    Bundle.model_validate(bundle)
    assert bundle["total"] == 1
    return bundle["entry"][0]["resource"]["id"]


def test_capability_statement_is_open_and_valid(clinic):
    server, _ = clinic
    answer = requests.get(server.root + "/fhir/r4/metadata", headers={"Authorization": ""}, timeout=30)
    assert answer.status_code == 200
    statement = CapabilityStatement.model_validate(answer.json())
    assert statement.fhirVersion == "4.0.1"
    types = {r.type for r in statement.rest[0].resource}
    assert {"Patient", "ImagingStudy", "Endpoint", "DiagnosticReport"} <= types


def test_patient_by_identifier_with_an_opaque_id(clinic):
    server, _ = clinic
    bundle = fhir(server, "Patient", identifier="FHIR-1")
    resource = bundle["entry"][0]["resource"]
    patient = Patient.model_validate(resource)
    assert patient.identifier[0].value == "FHIR-1"
    assert "FHIR-1" not in resource["id"] and len(resource["id"]) == 64
    assert fhir(server, "Patient", identifier="no-such-id")["total"] == 0
    Patient.model_validate(fhir(server, "Patient/" + resource["id"]))


def test_imaging_studies_agree_with_qido_and_validate(clinic):
    server, _ = clinic
    pid = patient_id(server, "FHIR-1")
    bundle = fhir(server, "ImagingStudy", patient="Patient/" + pid)
    Bundle.model_validate(bundle)
    studies = [e["resource"] for e in bundle["entry"]]
    qido = requests.get(server.url + "/studies", params={"PatientID": "FHIR-1"}, timeout=30).json()
    assert sorted(s["id"] for s in studies) == sorted(s["0020000D"]["Value"][0] for s in qido)
    for resource in studies:
        study = ImagingStudy.model_validate(resource)
        assert study.subject.reference == "Patient/" + pid
        assert study.identifier[0].system == "urn:dicom:uid"
        assert study.identifier[0].value == "urn:oid:" + resource["id"]
        instances = requests.get(f"{server.url}/studies/{resource['id']}/instances", timeout=30).json()
        assert study.numberOfInstances == len(instances)
        assert study.numberOfSeries == len({i["0020000E"]["Value"][0] for i in instances})
        uids = {i["00080018"]["Value"][0] for i in instances}
        assert {inst.uid for s in study.series for inst in s.instance} == uids
        # Acquisition modalities only at the study level: the photos' XC, never M3D.
        assert all(c.code in ("XC", "OSS") for c in (study.modality or []))
        ImagingStudy.model_validate(fhir(server, "ImagingStudy/" + resource["id"]))
    # The same by the patient's identifier, by modality, and by date.
    assert fhir(server, "ImagingStudy", **{"subject:identifier": "FHIR-1"})["total"] == len(studies)
    photo_studies = fhir(server, "ImagingStudy", patient=pid, modality="XC")
    assert 1 <= photo_studies["total"] < len(studies)
    assert fhir(server, "ImagingStudy", patient=pid, started="ge2026-03-01")["total"] == len(studies)
    assert fhir(server, "ImagingStudy", patient=pid, started="lt2026-03-01")["total"] == 0


def test_paging_follows_next_links(clinic):
    server, _ = clinic
    first = fhir(server, "ImagingStudy", _count=1)
    total = first["total"]
    assert total >= 3 and len(first["entry"]) == 1
    seen = [first["entry"][0]["resource"]["id"]]
    page = first
    while True:
        following = [link["url"] for link in page["link"] if link["relation"] == "next"]
        if not following:
            break
        assert following[0].startswith("http://")
        # The link carries the server's public base; the suite asks the same path on its own address.
        path = following[0].split("/fhir/r4/", 1)[1]
        page = requests.get(server.root + "/fhir/r4/" + path, timeout=30).json()
        seen += [e["resource"]["id"] for e in page.get("entry", [])]
    assert len(seen) == total == len(set(seen))


def test_endpoint_and_diagnostic_report(clinic):
    server, job = clinic
    endpoint = Endpoint.model_validate(fhir(server, "Endpoint/dicomweb"))
    assert endpoint.connectionType.code == "dicom-wado-rs"
    assert endpoint.address.endswith("/dicomweb")
    pid = patient_id(server, "FHIR-1")
    bundle = fhir(server, "DiagnosticReport", patient=pid)
    Bundle.model_validate(bundle)
    assert bundle["total"] == 1
    resource = bundle["entry"][0]["resource"]
    report = DiagnosticReport.model_validate(resource)
    assert report.id == job["id"] and report.status == "final"
    observation = resource["contained"][0]
    assert observation["valueQuantity"]["value"] == job["result"]["volume_change_ml"]
    assert observation["valueQuantity"]["code"] == "mL"
    bounds = [c["valueQuantity"]["value"] for c in observation["component"]]
    assert bounds == job["result"]["volume_change_ci95_ml"]
    assert "95 % interval" in resource["conclusion"]
    assert len(report.imagingStudy) == 2
    # The PDF report, by URL (the same token opens it).
    form = report.presentedForm[0]
    assert form.contentType == "application/pdf"
    pdf = requests.get(server.root + "/api/v1/" + form.url.split("/api/v1/", 1)[1], timeout=60)
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    DiagnosticReport.model_validate(fhir(server, "DiagnosticReport/" + job["id"]))
    other = patient_id(server, "FHIR-2")
    assert fhir(server, "DiagnosticReport", patient=other)["total"] == 0


def test_errors_are_operation_outcomes(clinic):
    server, _ = clinic
    for path, params, status, headers in [
        ("ImagingStudy", {}, 401, {"Authorization": "Bearer not-a-token"}),
        ("ImagingStudy", {"patinet": "x"}, 400, {}),
        ("ImagingStudy", {"started": "yesterday"}, 400, {}),
        ("ImagingStudy/1.2.3.4", {}, 404, {}),
        ("Observation", {}, 404, {}),
        ("ImagingStudy", {"_format": "xml"}, 406, {}),
    ]:
        answer = requests.get(server.root + "/fhir/r4/" + path, params=params, headers=headers, timeout=30)
        assert answer.status_code == status, (path, answer.status_code, answer.text)
        assert answer.headers["Content-Type"].startswith(FHIR_JSON), path
        outcome = OperationOutcome.model_validate(answer.json())
        assert outcome.issue[0].severity == "error" and outcome.issue[0].diagnostics

"""Clinics and soft delete on a live `facet serve`: a second clinic's physician (made with `facet users --tenant`)
stores and finds their own study with the stock `dicomweb_client`, the first clinic never sees it (404), both
survive a restart; a physician's DELETE takes a study out of search and retrieval and a restart keeps it out."""
import json

import pydicom
import pytest
import requests
from dicomweb_client.api import DICOMwebClient

from conftest import FacetServer, run
from test_dicomweb import secondary_capture
from totp import totp_now

pytestmark = pytest.mark.usefixtures("facet_only")


@pytest.fixture(scope="module")
def live(facet, tmp_path_factory):
    child = FacetServer(facet, tmp_path_factory.mktemp("tenants") / "data").start()
    yield child
    child.stop()


def log_in(live, facet, username, tenant, role="physician"):
    password = "clinic password for " + username
    where = ["--tenant", tenant] if tenant else []
    made = run(facet, "users", "add", username, "--role", role, *where, "--password-stdin",
               "--json", "--data-dir", live.data_dir, input=password)
    assert made.returncode == 0, made.stderr
    uri = json.loads(made.stdout)["otpauth_uri"]
    login = {"username": username, "password": password, "totp": totp_now(uri)}
    if tenant:
        login["tenant"] = tenant
    answer = requests.post(live.root + "/api/v1/auth/login", headers={"Authorization": None}, json=login)
    assert answer.status_code == 200, answer.text
    return answer.json()["access_token"]


def client(live, token):
    return DICOMwebClient(live.url, headers={"Authorization": "Bearer " + token})


def test_a_second_clinic_sees_only_its_own_archive_across_a_restart(live, facet, tmp_path):
    theirs = log_in(live, facet, "dr-b", "clinic-b")
    path = secondary_capture(tmp_path / "b.dcm")
    dataset = pydicom.dcmread(path)
    client(live, theirs).store_instances([dataset])
    study = dataset.StudyInstanceUID
    assert [s["0020000D"]["Value"][0] for s in client(live, theirs).search_for_studies()] == [study]
    # The default clinic's physician (the suite's) finds nothing of it and gets 404 for its UID.
    assert study not in json.dumps(requests.get(live.url + "/studies").json())
    assert requests.get(f"{live.url}/studies/{study}/metadata").status_code == 404
    # Its own folder, key and audit log.
    assert (live.data_dir / "tenants/clinic-b/index.sqlite").exists()
    assert (live.data_dir / "keys/tenant-clinic-b.key").exists()
    assert live.stop() == 0
    live.start()
    assert client(live, theirs).retrieve_study_metadata(study)
    assert requests.get(f"{live.url}/studies/{study}/metadata").status_code == 404
    assert live.stop() == 0
    verified = run(facet, "audit", "verify", "--data-dir", live.data_dir, "--tenant", "clinic-b")
    assert verified.returncode == 0, verified.stderr
    # A mistyped clinic is one readable line, and no key is made for it.
    mistyped = run(facet, "audit", "verify", "--data-dir", live.data_dir, "--tenant", "clinic-c")
    assert mistyped.returncode == 2 and "no archive of tenant clinic-c" in mistyped.stderr
    assert not (live.data_dir / "keys/tenant-clinic-c.key").exists()
    live.start()


def test_a_physician_soft_deletes_a_study_with_a_reason(live, tmp_path):
    path = secondary_capture(tmp_path / "d.dcm")
    dataset = pydicom.dcmread(path)
    DICOMwebClient(live.url).store_instances([dataset])
    study = dataset.StudyInstanceUID
    assert requests.delete(f"{live.url}/studies/{study}").status_code == 400
    answer = requests.delete(f"{live.url}/studies/{study}", json={"reason": "photographed the wrong patient"})
    assert answer.status_code == 200, answer.text
    assert answer.json()["sopInstanceUIDs"] == [dataset.SOPInstanceUID]
    assert requests.get(f"{live.url}/studies/{study}/metadata").status_code == 404
    assert requests.get(f"{live.url}/studies", params={"StudyInstanceUID": study}).json() == []
    assert live.stop() == 0
    live.start()
    assert requests.get(f"{live.url}/studies/{study}/metadata").status_code == 404
    log = (live.data_dir / "audit/audit.log").read_text()
    assert '"action":"delete (intent)"' in log and "wrong patient" not in log


def part(body):
    """The one part of a single-part multipart/related answer (its boundary differs from answer to answer)."""
    start = body.index(b"\r\n\r\n") + 4
    return body[start:body.rindex(b"\r\n--")]


def test_a_deleted_instance_is_in_the_trash_and_a_physician_restores_it(live, facet, tmp_path):
    path = secondary_capture(tmp_path / "t.dcm")
    dataset = pydicom.dcmread(path)
    DICOMwebClient(live.url).store_instances([dataset])
    study, sop = dataset.StudyInstanceUID, dataset.SOPInstanceUID
    instance = f"{live.url}/studies/{study}/series/{dataset.SeriesInstanceUID}/instances/{sop}"
    before = requests.get(instance, headers={"Accept": "multipart/related; type=\"application/dicom\""})
    assert before.status_code == 200
    assert requests.delete(instance, json={"reason": "blurred"}).status_code == 200
    assert requests.get(instance).status_code == 404

    trash = requests.get(live.root + "/api/v1/trash")
    assert trash.status_code == 200, trash.text
    entry = next(e for e in trash.json() if e["sopInstanceUID"] == sop)
    assert entry["status"] == "restorable" and entry["reason"] == "blurred" and entry["studyInstanceUID"] == study
    assert entry["restorableUntil"] > entry["deleted"]
    # A nurse may not restore (nor list); the practice manager sees every entry with its state, and may not restore.
    nurse = {"Authorization": "Bearer " + log_in(live, facet, "nurse-t", None, role="nurse")}
    assert requests.get(live.root + "/api/v1/trash", headers=nurse).status_code == 403
    assert requests.post(f"{live.root}/api/v1/trash/{entry['id']}/restore", headers=nurse).status_code == 403
    manager = {"Authorization": "Bearer " + log_in(live, facet, "pm-t", None, role="practice-manager")}
    seen = requests.get(live.root + "/api/v1/trash", headers=manager).json()
    assert [e["status"] for e in seen if e["sopInstanceUID"] == sop] == ["restorable"]
    assert requests.post(f"{live.root}/api/v1/trash/{entry['id']}/restore", headers=manager).status_code == 403
    assert requests.post(f"{live.root}/api/v1/trash/not-a-number/restore").status_code == 404

    restored = requests.post(f"{live.root}/api/v1/trash/{entry['id']}/restore")
    assert restored.status_code == 200, restored.text
    assert restored.json()["retrieveURL"] == instance
    assert requests.post(f"{live.root}/api/v1/trash/{entry['id']}/restore").status_code == 404
    assert sop not in json.dumps(requests.get(live.root + "/api/v1/trash").json())
    # Served again, byte for byte, and found by QIDO; still so after a restart.
    for _ in range(2):
        again = requests.get(instance, headers={"Accept": "multipart/related; type=\"application/dicom\""})
        assert again.status_code == 200 and part(again.content) == part(before.content)
        assert requests.get(f"{live.url}/studies", params={"StudyInstanceUID": study}).json() != []
        assert live.stop() == 0
        live.start()
    log = (live.data_dir / "audit/audit.log").read_text()
    assert '"action":"trash restore"' in log and "blurred" not in log

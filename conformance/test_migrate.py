"""`facet migrate`: an embedded archive made by `facet serve` (SQLite, blobs in the data folder) is copied into
PostgreSQL and the S3-compatible store the test command started, verified, resumable, and then served from there:
what the stock `dicomweb_client` stored before is found and retrieved byte for byte."""
import os

import pydicom
import pytest
import requests
from dicomweb_client.api import DICOMwebClient

from conftest import FacetServer, postgres_settings, run, s3_settings
from test_dicomweb import secondary_capture

pytestmark = pytest.mark.usefixtures("facet_only")


def test_an_embedded_archive_moves_to_postgres_and_s3_and_is_served_from_there(facet, tmp_path):
    index, blobs = postgres_settings(), s3_settings("migrated-" + os.urandom(4).hex())
    if index is None or blobs is None:
        pytest.skip("no PostgreSQL or S3-compatible store was started (make test starts both)")
    data = tmp_path / "data"
    embedded = FacetServer(facet, data).start()
    datasets = []
    for number in range(3):
        dataset = pydicom.dcmread(secondary_capture(tmp_path / f"{number}.dcm"))
        DICOMwebClient(embedded.url).store_instances([dataset])
        datasets.append(dataset)
    # A clinic record beside the images, sealed under the patient's key: it moves too (two versions).
    patient = datasets[0].PatientID
    treatments = f"{embedded.root}/api/v1/patients/{patient}/treatments"
    made = requests.post(treatments, json={"service": "Botox forehead", "date": "2026-02-01", "regions": ["forehead"],
                                           "provider": "Dr Chen"})
    assert made.status_code == 201, made.text
    changed = requests.put(f"{treatments}/{made.json()['id']}", headers={"If-Match": '"1"'},
                           json={"service": "Botox forehead", "date": "2026-02-01", "regions": ["forehead"],
                                 "provider": "Dr Chen", "notes": "20 units"})
    assert changed.status_code == 200, changed.text
    # Refused while the data folder is in use.
    busy = run(facet, "migrate", "--from", data, "--to-index", index["FACET_INDEX"], "--to-blobs",
               blobs["FACET_BLOBS"], "--s3-endpoint", blobs["FACET_S3_ENDPOINT"])
    assert busy.returncode == 3 and "in use" in busy.stderr
    assert embedded.stop() == 0
    moved = run(facet, "migrate", "--from", data, "--to-index", index["FACET_INDEX"], "--to-blobs",
                blobs["FACET_BLOBS"], "--s3-endpoint", blobs["FACET_S3_ENDPOINT"])
    assert moved.returncode == 0, moved.stderr
    assert "default: 3 instances, 3 verified in the target" in moved.stdout
    # Again: nothing left to copy, everything verified again.
    again = run(facet, "migrate", "--from", data, "--to-index", index["FACET_INDEX"], "--to-blobs",
                blobs["FACET_BLOBS"], "--s3-endpoint", blobs["FACET_S3_ENDPOINT"])
    assert again.returncode == 0, again.stderr
    assert "0 copied" in again.stdout and "3 verified" in again.stdout
    # The data folder's own blobs are set aside: the server setup must serve from the bucket.
    (data / "blobs").rename(data / "blobs.embedded")
    served = FacetServer(facet, data, extra_env={**index, **blobs}).start()
    try:
        client = DICOMwebClient(served.url)
        for dataset in datasets:
            retrieved = client.retrieve_instance(dataset.StudyInstanceUID, dataset.SeriesInstanceUID,
                                                 dataset.SOPInstanceUID)
            assert retrieved.PixelData == dataset.PixelData
        found = requests.get(f"{served.url}/studies", params={"PatientID": datasets[0].PatientID})
        assert found.status_code == 200
        assert {s["0020000D"]["Value"][0] for s in found.json()} >= {d.StudyInstanceUID for d in datasets}
        kept = requests.get(f"{served.root}/api/v1/patients/{patient}/treatments").json()
        assert [(t["service"], t.get("notes"), t["version"]) for t in kept] == [("Botox forehead", "20 units", 2)]
        client.store_instances([pydicom.dcmread(secondary_capture(tmp_path / "new.dcm"))])
    finally:
        served.stop()
    # Served from the target since: migrating again (index from the environment this time) is refused.
    (data / "blobs.embedded").rename(data / "blobs")
    late = run(facet, "migrate", "--from", data, "--to-blobs", blobs["FACET_BLOBS"], "--s3-endpoint",
               blobs["FACET_S3_ENDPOINT"], env={**os.environ, **index})
    assert late.returncode == 2, late.stdout + late.stderr
    assert "has been served from the target" in late.stderr

"""The index on PostgreSQL (a cluster of its own, started here with scripts/postgres.sh): nothing identifying in a
`pg_dump` of what the stock `dicomweb_client` stored; PostgreSQL restarted mid-run: requests answer 503 with
Retry-After while it is away (never a crash or a hang), and everything stored before is found and retrieved after,
by the same process and after a restart of Facet."""
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pydicom
import pytest
import requests
from dicomweb_client.api import DICOMwebClient

from conftest import FacetServer
from test_dicomweb import secondary_capture

pytestmark = pytest.mark.usefixtures("facet_only")

ROOT = Path(__file__).resolve().parent.parent
PORT = "25432"
URL = f"postgres://facet:facet-test-password@127.0.0.1:{PORT}/facet_test?sslmode=disable"


def postgres(action, folder):
    answer = subprocess.run(["bash", str(ROOT / "scripts/postgres.sh"), action, str(folder)], capture_output=True,
                            text=True, timeout=120, env=dict(os.environ, POSTGRES_TEST_PORT=PORT))
    assert answer.returncode == 0, answer.stderr
    return answer.stdout


def pg_bin():
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin"))
    assert found, "PostgreSQL is not installed"
    return found[-1]


@pytest.fixture(scope="module")
def cluster():
    # Outside pytest's own temporary folders (owner-only): the postgres user must reach it.
    folder = Path(tempfile.mkdtemp(prefix="facet-postgres-"))
    folder.chmod(0o755)
    postgres("start", folder / "cluster")
    yield folder / "cluster"
    postgres("stop", folder / "cluster")
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def live(facet, cluster, tmp_path_factory):
    child = FacetServer(facet, tmp_path_factory.mktemp("on-postgres") / "data", extra_env={"FACET_INDEX": URL}).start()
    yield child
    child.stop()


def stored(live, tmp_path, name, patient_id):
    path = secondary_capture(tmp_path / f"{patient_id}.dcm")
    dataset = pydicom.dcmread(path)
    dataset.PatientName = name
    dataset.PatientID = patient_id
    dataset.save_as(path, enforce_file_format=True)
    DICOMwebClient(live.url).store_instances([pydicom.dcmread(path)])
    return dataset


def test_nothing_identifying_is_in_a_pg_dump(live, tmp_path):
    dataset = stored(live, tmp_path, "Pgdumpova^Xenia", "PG-DUMP-5150")
    found = requests.get(f"{live.url}/studies", params={"PatientID": "PG-DUMP-5150"}).json()
    assert [study["0020000D"]["Value"][0] for study in found] == [dataset.StudyInstanceUID]
    dump = subprocess.run([str(pg_bin() / "pg_dump"), "--data-only", URL.split("?")[0]], capture_output=True,
                          timeout=60)
    assert dump.returncode == 0, dump.stderr
    assert dataset.SOPInstanceUID.encode() in dump.stdout
    for needle in [b"Pgdumpova", b"Xenia", b"PG-DUMP-5150"]:
        assert needle not in dump.stdout, needle


def test_postgres_restarted_mid_run_gives_503_then_serves_everything(live, cluster, tmp_path):
    before = stored(live, tmp_path, "Restart^Before", "PG-RESTART-1")
    postgres("stop", cluster)
    try:
        started = time.time()
        down = requests.get(f"{live.url}/studies/{before.StudyInstanceUID}/metadata", timeout=60)
        assert down.status_code == 503, down.text
        assert down.headers.get("Retry-After")
        # One call waits its deadline (15 s) at most; once the database is known to be away, calls fail at once.
        assert time.time() - started < 20, "a request must not hang while the database is away"
        path = secondary_capture(tmp_path / "refused.dcm")
        body = b"--x\r\nContent-Type: application/dicom\r\n\r\n" + path.read_bytes() + b"\r\n--x--\r\n"
        started = time.time()
        refused = requests.post(f"{live.url}/studies", data=body, timeout=60, headers={
            "Content-Type": "multipart/related; type=\"application/dicom\"; boundary=x"})
        assert refused.status_code == 503 and refused.headers.get("Retry-After"), (refused.status_code, refused.text)
        assert time.time() - started < 10, "the database is known to be away: the store is refused without waiting a deadline"
    finally:
        postgres("restart", cluster)
    assert live.process.poll() is None, "facet serve must outlive its database's restart"
    deadline = time.time() + 30
    while True:
        answer = requests.get(f"{live.url}/studies/{before.StudyInstanceUID}/metadata")
        if answer.status_code == 200 or time.time() > deadline:
            break
        time.sleep(0.5)
    assert answer.status_code == 200, answer.text
    after = stored(live, tmp_path, "Restart^After", "PG-RESTART-2")
    assert live.stop() == 0
    live.start()
    client = DICOMwebClient(live.url)
    for dataset in (before, after):
        assert client.retrieve_instance(dataset.StudyInstanceUID, dataset.SeriesInstanceUID,
                                        dataset.SOPInstanceUID).PixelData == dataset.PixelData


def test_audit_verify_reads_the_anchor_kept_in_postgres(live, facet):
    assert live.stop() == 0
    try:
        verified = subprocess.run([facet, "audit", "verify", "--data-dir", str(live.data_dir), "--index", URL],
                                  capture_output=True, text=True, timeout=120)
        assert verified.returncode == 0, verified.stderr
        assert "audit log intact" in verified.stdout and "the chain in the index database" in verified.stdout
        # The chain lives in the database: the data folder alone holds no archive to verify.
        alone = subprocess.run([facet, "audit", "verify", "--data-dir", str(live.data_dir)], capture_output=True,
                               text=True, timeout=120)
        assert alone.returncode == 2, alone.stderr
    finally:
        live.start()

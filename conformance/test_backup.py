"""Backups and keys with the real binary (issue 12 §4): `facet backup` of a running server holds no key; the master
key may live outside the data folder (`FACET_MASTER_KEY_FILE`) and the start-up log says where; `facet keys backup`
seals the keys under a passphrase, apart; a server started on the data backup with the keys restored serves what was
stored, as a clinic's disaster recovery would."""
import json
import os
import subprocess
from pathlib import Path

import pydicom
import pytest
import requests
from dicomweb_client.api import DICOMwebClient
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from conftest import FacetServer

pytestmark = pytest.mark.usefixtures("facet_only")

PASSPHRASE = "a long key backup passphrase"


def photo_dataset(patient_id, name):
    ds = Dataset()
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.88.11"  # Basic Text SR: no pixels needed
    ds.SOPInstanceUID = generate_uid()
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.PatientID = patient_id
    ds.PatientName = name
    ds.Modality = "SR"
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    return ds


def run(*args, env=None):
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, **(env or {})))


def every_file(folder):
    return {p: p.read_bytes() for p in Path(folder).rglob("*") if p.is_file()}


def test_backup_of_a_running_server_holds_no_key_and_restores_with_the_key_backup(facet, tmp_path):
    outside = tmp_path / "key-media"
    outside.mkdir(mode=0o700)
    master = outside / "facet-master.key"
    env = {"FACET_MASTER_KEY_FILE": str(master)}
    server = FacetServer(facet, tmp_path / "data", extra_env=env).start()
    try:
        ds = photo_dataset("BACKUP-77", "Backup^Betty")
        DICOMwebClient(server.url).store_instances([ds])
        # The master key is where the setting says, not in the data folder, and the log says so.
        assert master.exists() and oct(master.stat().st_mode & 0o777) == "0o600"
        assert not (tmp_path / "data" / "keys" / "master.key").exists()
        log = (tmp_path / f"serve-{server.port}.log").read_text()
        assert f"master key: {master}" in log

        backup = tmp_path / "backup"
        made = run(facet, "backup", "--data-dir", tmp_path / "data", "--out", backup)
        assert made.returncode == 0, made.stderr
        assert "no keys in it" in made.stdout
        # Once more into the same folder, or into the data folder: refused with one line, nothing written.
        again = run(facet, "backup", "--data-dir", tmp_path / "data", "--out", backup)
        assert again.returncode == 2 and again.stderr.count("\n") == 1
        inside = run(facet, "backup", "--data-dir", tmp_path / "data", "--out", tmp_path / "data" / "copy")
        assert inside.returncode == 2 and not (tmp_path / "data" / "copy").exists()

        keys_file = tmp_path / "keys.facetkeys"
        sealed = run(facet, "keys", "backup", "--data-dir", tmp_path / "data", "--out", keys_file, "--days", "7",
                     env={**env, "FACET_KEY_BACKUP_PASSPHRASE": PASSPHRASE})
        assert sealed.returncode == 0, sealed.stderr
        document = json.loads(keys_file.read_text())
        assert document["format"] == "facet-key-backup-1" and document["files"] >= 3
        short = run(facet, "keys", "backup", "--data-dir", tmp_path / "data", "--out", tmp_path / "k2",
                    env={**env, "FACET_KEY_BACKUP_PASSPHRASE": "short"})
        assert short.returncode == 2 and not (tmp_path / "k2").exists()
    finally:
        server.stop()

    # No key, and no identifying byte, in the data backup.
    files = every_file(backup)
    assert not any("key" in str(p.relative_to(backup)) for p in files)
    master_bytes = master.read_bytes()
    import base64
    for path, content in files.items():
        assert master_bytes not in content and base64.b64encode(master_bytes) not in content, path
        assert b"BACKUP-77" not in content and b"Backup^Betty" not in content, path
    # The key backup holds no key in the clear either.
    assert master_bytes not in keys_file.read_bytes()

    # Disaster recovery on another machine: the data backup, keys restored from the key backup (a wrong passphrase
    # is refused first), a server on it serves the study.
    wrong = run(facet, "keys", "restore", "--data-dir", backup, keys_file,
                env={"FACET_KEY_BACKUP_PASSPHRASE": "not the passphrase at all"})
    assert wrong.returncode == 2 and "does not open" in wrong.stderr
    restored = run(facet, "keys", "restore", "--data-dir", backup, keys_file,
                   env={"FACET_KEY_BACKUP_PASSPHRASE": PASSPHRASE})
    assert restored.returncode == 0, restored.stderr
    assert (backup / "keys" / "master.key").exists()
    recovered = FacetServer(facet, backup, extra_env={"FACET_MASTER_KEY_FILE": ""}).start()
    try:
        found = requests.get(recovered.url + "/studies", params={"PatientID": "BACKUP-77"}, timeout=10)
        assert found.status_code == 200 and len(found.json()) == 1
        got = requests.get(f"{recovered.url}/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}"
                           f"/instances/{ds.SOPInstanceUID}", headers={"Accept": "application/dicom"}, timeout=10)
        assert got.status_code == 200
        import io
        assert pydicom.dcmread(io.BytesIO(got.content)).PatientName == "Backup^Betty"
    finally:
        recovered.stop()


def test_keys_rotate_while_stopped_and_the_archive_serves_on(facet, tmp_path):
    server = FacetServer(facet, tmp_path / "data").start()
    ds = photo_dataset("ROTATE-5", "Rota^Rolf")
    DICOMwebClient(server.url).store_instances([ds])
    # Refused while the server runs: it holds the data folder.
    busy = run(facet, "keys", "rotate", "--all", "--data-dir", tmp_path / "data")
    assert busy.returncode != 0 and "another facet process" in busy.stderr
    nothing = run(facet, "keys", "rotate", "--data-dir", tmp_path / "data")
    assert nothing.returncode == 2
    server.stop()
    master = (tmp_path / "data" / "keys" / "master.key").read_bytes()
    rotated = run(facet, "keys", "rotate", "--all", "--data-dir", tmp_path / "data")
    assert rotated.returncode == 0, rotated.stderr
    assert "rotated the master key" in rotated.stdout and "rotated the tenant default key" in rotated.stdout
    assert (tmp_path / "data" / "keys" / "master.key").read_bytes() != master
    ready = None
    server.start()
    try:
        ready = requests.get(server.root + "/health/ready", timeout=10).json()
        assert ready["status"] == "ready" and "details" not in ready  # fresh keys: no reminder
        got = requests.get(f"{server.url}/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}"
                           f"/instances/{ds.SOPInstanceUID}", headers={"Accept": "application/dicom"}, timeout=10)
        assert got.status_code == 200
    finally:
        server.stop()
    verified = run(facet, "audit", "verify", "--data-dir", tmp_path / "data")
    assert verified.returncode == 0, verified.stderr

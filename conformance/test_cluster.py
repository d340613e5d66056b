"""Three `facet serve` replicas behind nginx (scripts/cluster.sh: PostgreSQL and SeaweedFS of their own, one master
key), as `make cluster` runs them: stores spread over the replicas and every replica finds each stored instance
within a second; a token from one replica is good on the others; a replica SIGKILLed during a STOW loop loses no
acknowledged instance and the others keep answering; PostgreSQL stopped and restarted mid-run gives 503 (never 500,
never a hang) and nothing acknowledged is lost; the audit trail verifies afterwards."""
import io
import shutil
import statistics
import tempfile
import threading
import time
from pathlib import Path

import pydicom
import pytest
import requests

from cluster import FacetCluster
from conftest import TOKENS
from test_dicomweb import secondary_capture

pytestmark = pytest.mark.usefixtures("facet_only")

STOW_TYPE = 'multipart/related; type="application/dicom"; boundary=clusterpart'


@pytest.fixture(scope="module")
def cluster(facet):
    if not shutil.which("nginx"):
        pytest.fail("nginx is missing; run scripts/bootstrap.sh")
    # Outside pytest's owner-only temporary folders: the postgres user and nginx's workers reach into it.
    folder = Path(tempfile.mkdtemp(prefix="facet-cluster-test-"))
    running = FacetCluster(facet, folder, replicas=3)
    try:
        running.start()
        running.log_in()
        for root in [running.root] + [replica["root"] for replica in running.replicas]:
            TOKENS[root] = running.token
        yield running
    finally:
        running.stop()
        for root in [running.root] + [replica["root"] for replica in running.replicas]:
            TOKENS.pop(root, None)
        shutil.rmtree(folder, ignore_errors=True)


class Instance:
    """A small Secondary Capture (test_dicomweb's), its Part-10 bytes and UIDs."""

    def __init__(self, folder, number):
        path = secondary_capture(Path(folder) / f"sc-{number}.dcm")
        self.data = path.read_bytes()
        ds = pydicom.dcmread(io.BytesIO(self.data))
        self.study, self.series, self.uid = ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID

    def path(self, root):
        return f"{root}/dicomweb/studies/{self.study}/series/{self.series}/instances/{self.uid}"


def stow(root, instance, timeout=60):
    """One STOW-RS request: (acknowledged, status, replica that answered, seconds, Retry-After)."""
    body = (b"--clusterpart\r\nContent-Type: application/dicom\r\n\r\n" + instance.data + b"\r\n--clusterpart--\r\n")
    started = time.monotonic()
    try:
        answer = requests.post(root + "/dicomweb/studies", data=body, timeout=timeout,
                               headers={"Content-Type": STOW_TYPE, "Accept": "application/dicom+json"})
    except requests.RequestException as error:
        return False, type(error).__name__, None, time.monotonic() - started, None
    elapsed = time.monotonic() - started
    acknowledged = False
    if answer.status_code == 200:
        result = answer.json()
        referenced = [item["00081155"]["Value"][0] for item in result.get("00081199", {}).get("Value", [])]
        acknowledged = referenced == [instance.uid] and not result.get("00081198", {}).get("Value")
    # The replica that answered (nginx names each one it tried: "a, b" when a refused the connection).
    replica = answer.headers.get("X-Facet-Replica", "").split(",")[-1].strip() or None
    return acknowledged, answer.status_code, replica, elapsed, answer.headers.get("Retry-After")


def assert_kept(cluster, instances, root=None, timeout=5):
    """Each instance: found by QIDO on every running replica and through nginx (within `timeout` seconds of the
    call), and retrieved byte for byte. Returns the seconds the replicas took to find them all."""
    seconds = cluster.await_everywhere([i.uid for i in instances], timeout=timeout)
    for instance in instances:
        for where in [root or cluster.root] + [r["root"] for n, r in enumerate(cluster.replicas) if cluster.alive(n)]:
            found = requests.get(where + "/dicomweb/instances", params={"SOPInstanceUID": instance.uid}, timeout=30)
            assert found.status_code == 200 and instance.uid in found.text, (where, instance.uid, found.status_code)
        retrieved = requests.get(instance.path(root or cluster.root), headers={"Accept": "application/dicom"},
                                 timeout=30)
        assert retrieved.status_code == 200 and retrieved.content == instance.data, \
            (instance.uid, retrieved.status_code)
    return seconds


class StowLoop(threading.Thread):
    """Stores new instances through nginx one after another until stopped, recording every outcome."""

    def __init__(self, cluster, folder, name):
        super().__init__(daemon=True)
        self.cluster, self.folder, self.name_ = cluster, folder, name
        self.results = []  # (started, acknowledged, status, replica, seconds, Retry-After, instance)
        self.halt = threading.Event()

    def run(self):
        number = 0
        while not self.halt.is_set():
            instance = Instance(self.folder, f"{self.name_}-{number}")
            number += 1
            started = time.monotonic()
            self.results.append((started, *stow(self.cluster.root, instance), instance))

    def acknowledged(self):
        return [r[-1] for r in self.results if r[1]]

    def stop(self):
        self.halt.set()
        self.join(timeout=120)
        assert not self.is_alive(), "a STOW request hung"


def test_stores_spread_over_the_replicas_and_every_replica_finds_each_within_a_second(cluster, tmp_path):
    replicas = {r["root"].removeprefix("http://") for r in cluster.replicas}
    answered, lags = [], []
    for number in range(12):
        instance = Instance(tmp_path, number)
        acknowledged, status, replica, _, _ = stow(cluster.root, instance)
        assert acknowledged, status
        answered.append(replica)
        lags.append(cluster.await_everywhere([instance.uid], timeout=1.0))
        # Retrieved byte for byte from every replica, the one that stored it and the others.
        for root in (r["root"] for r in cluster.replicas):
            got = requests.get(instance.path(root), headers={"Accept": "application/dicom"}, timeout=30)
            assert got.status_code == 200 and got.content == instance.data, (root, got.status_code)
    assert set(answered) == replicas, f"nginx did not spread the stores: {answered}"
    print(f"catalogue catch-up over {len(lags)} stores: p50 {statistics.median(lags) * 1000:.0f} ms, "
          f"max {max(lags) * 1000:.0f} ms")


def test_a_token_from_one_replica_is_good_on_the_others(cluster):
    """Sessions are the shared index's: log in on one replica, use the token on each other one and through nginx;
    log out on one, and the others refuse the token."""
    for first in range(len(cluster.replicas)):
        cluster.credentials = cluster.add_user()  # a fresh account: each TOTP code logs in once
        token = cluster.log_in(via=cluster.replica_root(first))
        for root in [cluster.root] + [r["root"] for r in cluster.replicas]:
            answer = requests.get(root + "/dicomweb/studies", headers={"Authorization": "Bearer " + token}, timeout=30)
            assert answer.status_code == 200, (first, root, answer.status_code, answer.text[:200])
    out = requests.post(cluster.replica_root(0) + "/api/v1/auth/logout",
                        headers={"Authorization": "Bearer " + token}, timeout=30)
    assert out.status_code in (200, 204), out.text
    for root in [r["root"] for r in cluster.replicas]:
        answer = requests.get(root + "/dicomweb/studies", headers={"Authorization": "Bearer " + token}, timeout=30)
        assert answer.status_code == 401, (root, answer.status_code)


def test_a_replica_killed_during_a_stow_loop_loses_no_acknowledged_instance(cluster, tmp_path):
    victim = 1
    loops = [StowLoop(cluster, tmp_path, f"loop{n}") for n in range(2)]
    searches = []  # (started, status) of QIDO through nginx meanwhile
    halt = threading.Event()

    def search():
        while not halt.is_set():
            started = time.monotonic()
            try:
                status = requests.get(cluster.url + "/studies", params={"limit": 5}, timeout=30).status_code
            except requests.RequestException as error:
                status = type(error).__name__
            searches.append((started, status))
            time.sleep(0.02)

    searcher = threading.Thread(target=search, daemon=True)
    for loop in loops:
        loop.start()
    searcher.start()
    try:
        deadline = time.monotonic() + 60
        while sum(len(loop.acknowledged()) for loop in loops) < 20 and time.monotonic() < deadline:
            time.sleep(0.05)
        cluster.kill_replica(victim)
        killed = time.monotonic()
        deadline = killed + 60
        while sum(1 for loop in loops for r in loop.results if r[0] > killed + 1) < 30 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(6)  # past nginx's fail_timeout (5 s): the dead replica is tried again, and skipped again
    finally:
        halt.set()
        for loop in loops:
            loop.stop()
        searcher.join(timeout=60)
    assert not cluster.alive(victim)
    results = [r for loop in loops for r in loop.results]
    acknowledged = [r[-1] for r in results if r[1]]
    failed = [r[:5] for r in results if not r[1]]
    # Only what was in flight on the killed replica may fail (it was never acknowledged): nginx answers 502 for it. A
    # store sent a moment after the kill on a kept-alive connection to the dead replica nginx had not yet seen
    # close is the same case; nothing later may fail.
    print(f"{len(results)} stores, {len(acknowledged)} acknowledged, refused: {failed}")
    assert len(failed) <= 2 * len(loops), failed
    assert all(started < killed + 0.5 and status == 502 for started, _, status, *_ in failed), failed
    after = [r for r in results if r[0] > killed + 0.5]
    assert len(after) >= 30 and all(r[1] for r in after)
    assert {r[3] for r in after} == {r["root"].removeprefix("http://") for n, r in enumerate(cluster.replicas)
                                     if n != victim}
    assert searches and all(status == 200 for _, status in searches), [s for s in searches if s[1] != 200][:5]
    # The claim is that nothing acknowledged is lost: every survivor finds every instance. Once (one CI run of
    # six here) a survivor took longer than 5 s after a kill to find one; lateness is not loss, so the bound is
    # 30 s, and a failure says which of the two it saw.
    print(f"the survivors found all {len(acknowledged)} in {assert_kept(cluster, acknowledged, timeout=30):.2f} s")


def test_postgres_restarted_mid_run_gives_503_then_serves_everything(cluster, tmp_path):
    before = [Instance(tmp_path, f"before-{n}") for n in range(3)]
    for instance in before:
        assert stow(cluster.root, instance)[0]
    loop = StowLoop(cluster, tmp_path, "pg")
    loop.start()
    probes = []
    try:
        time.sleep(1)
        cluster.postgres("stop")
        stopped = time.monotonic()
        def metadata():
            started = time.monotonic()
            answer = requests.get(f"{cluster.url}/studies/{before[0].study}/metadata", timeout=60)
            probes.append(("metadata", answer.status_code, time.monotonic() - started,
                           answer.headers.get("Retry-After")))

        def store():
            _, status, _, seconds, retry_after = stow(cluster.root, Instance(tmp_path, "down"))
            probes.append(("stow", status, seconds, retry_after))

        try:
            # A retrieval and a store at once while the database is away, beside the loop's stores.
            asking = [threading.Thread(target=metadata), threading.Thread(target=store)]
            for thread in asking:
                thread.start()
            for thread in asking:
                thread.join(timeout=90)
        finally:
            time.sleep(max(0.0, 3 - (time.monotonic() - stopped)))
            cluster.postgres("restart")
        restarted = time.monotonic()
        # Every replica serves again, each on its own (none was restarted).
        for root in (r["root"] for n, r in enumerate(cluster.replicas) if cluster.alive(n)):
            deadline = time.monotonic() + 30
            while True:
                answer = requests.get(f"{root}/dicomweb/studies/{before[0].study}/metadata", timeout=60)
                if answer.status_code == 200 or time.monotonic() > deadline:
                    break
                time.sleep(0.25)
            assert answer.status_code == 200, (root, answer.status_code, answer.text[:200])
        time.sleep(2)
    finally:
        loop.stop()
    # Once a call finds the database away, the others fail at once for a moment (one call at a time tries again,
    # with a 5 s deadline): a request waits at most one deadline (15 s), never one for each call it makes.
    for what, status, seconds, retry_after in probes:
        assert status == 503, probes
        assert seconds < 20, probes
        assert retry_after, probes
    refused = [r[:6] for r in loop.results if not r[1]]
    print("while PostgreSQL was down:", [(what, status, round(seconds, 2), retry_after)
                                         for what, status, seconds, retry_after in probes],
          "loop refusals (status, seconds):", [(r[2], round(r[4], 2)) for r in refused])
    assert all(r[2] == 503 and r[4] < 20 and r[5] for r in refused), refused
    assert any(r[1] for r in loop.results if r[0] > restarted), "no store succeeded after the restart"
    assert_kept(cluster, before + loop.acknowledged())


def test_the_audit_trail_verifies_after_the_run(cluster):
    """After everything above (a replica killed, the database restarted), with the replicas stopped (SIGTERM) and
    PostgreSQL up: each replica's data folder (keys) against the shared index."""
    assert cluster.stop_replicas(), "a replica did not stop on SIGTERM"
    for index in range(len(cluster.replicas)):
        verified = cluster.facet("audit", "verify", "--data-dir", cluster.replica_data(index),
                                 "--index", cluster.environment["FACET_INDEX"])
        assert verified.returncode == 0, (index, verified.stdout, verified.stderr)
        assert "audit log intact" in verified.stdout

"""A `make cluster` setup driven from Python (scripts/cluster.sh): N `facet serve` replicas sharing one PostgreSQL
index, one S3 bucket and one master key, behind nginx on loopback. Used by the conformance suite (conftest's `server`
fixture, test_cluster.py) and by Benchmarks/cluster_benchmark.py. Standard library only (and totp.py)."""
import json
import os
import random
import re
import shlex
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

from totp import totp_now

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts/cluster.sh"


def port_free(port):
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def free_ports(count):
    """The first of `count` consecutive free loopback ports (above the kernel's ephemeral range's usual start)."""
    for _ in range(200):
        first = random.randrange(20000, 32000 - count)
        if all(port_free(p) for p in range(first, first + count)):
            return first
    raise RuntimeError(f"no {count} consecutive free ports")


def parse_exports(text):
    """The variables of cluster.env's `export A=B C='D'` lines (the master key read from its file)."""
    values = {}
    for line in text.splitlines():
        if not line.startswith("export "):
            continue
        for name, value in re.findall(r"(\w+)=(\$\(cat [^)]*\)|'[^']*'|\S+)", line[len("export "):]):
            if value.startswith("$(cat "):
                value = Path(value[len("$(cat "):-1]).read_text().strip()
            values[name] = shlex.split(value)[0] if value else ""
    return values


class FacetCluster:
    """scripts/cluster.sh start DIR N with free ports: PostgreSQL and SeaweedFS of its own (default), or the index and
    bucket given in `external` ({"FACET_INDEX", "FACET_BLOBS", "FACET_S3_ENDPOINT"}, AWS_* from the environment).
    Used like conftest.FacetServer: `root`, `url`, `token`, `start()`, `stop()`, `log_in()`."""

    def __init__(self, binary, folder, replicas=3, external=None, extra_env=None):
        self.binary = str(binary)
        self.folder = Path(folder)
        self.count = replicas
        self.external = external
        self.extra_env = dict(extra_env or {})
        self.port = None
        self.token = None
        self.certificate = None
        self.environment = {}
        self.replicas = []
        self._last_step = None

    @property
    def root(self):
        return f"http://127.0.0.1:{self.port}"

    @property
    def url(self):
        return self.root + "/dicomweb"

    def replica_root(self, index):
        return self.replicas[index]["root"]

    def replica_url(self, index):
        return self.replicas[index]["root"] + "/dicomweb"

    def replica_data(self, index):
        return self.folder / f"replica-{index + 1}" / "data"

    def script(self, *args, env=None, timeout=300):
        return subprocess.run(["bash", str(SCRIPT), *map(str, args)], capture_output=True, text=True,
                              timeout=timeout, env=env or self.script_env())

    def script_env(self):
        env = dict(os.environ, FACET_BIN=self.binary, **self.extra_env)
        # The caller's own FACET_* settings do not leak into the replicas (beyond extra_env).
        for name in ("FACET_INDEX", "FACET_BLOBS", "FACET_MASTER_KEY", "FACET_PUBLIC_BASE_URL", "FACET_PORT"):
            if name not in self.extra_env:
                env.pop(name, None)
        if self.port is None:
            self.port = free_ports(self.count + 1)
            self.s3_port = free_ports(16)
            self.pg_port = free_ports(1)
        env.update(CLUSTER_PORT=str(self.port), CLUSTER_REPLICA_PORT=str(self.port + 1),
                   CLUSTER_S3_PORT=str(self.s3_port), CLUSTER_PG_PORT=str(self.pg_port))
        if self.external:
            env.update(CLUSTER_INDEX=self.external["FACET_INDEX"], CLUSTER_BLOBS=self.external["FACET_BLOBS"],
                       CLUSTER_S3_ENDPOINT=self.external["FACET_S3_ENDPOINT"])
        return env

    def start(self):
        # The postgres user must reach DIR/postgres: no owner-only parents (pytest's tmp folders are 0700).
        self.folder.mkdir(parents=True, exist_ok=True)
        self.folder.chmod(0o755)
        started = self.script("start", self.folder, self.count)
        if started.returncode != 0:
            raise RuntimeError(f"scripts/cluster.sh start failed:\n{started.stderr}\n{started.stdout}")
        self.environment = parse_exports(started.stdout)
        roots = self.environment["FACET_CLUSTER_REPLICAS"].split(",")
        pids = [int(p) for p in self.environment["FACET_CLUSTER_PIDS"].split(",")]
        self.replicas = [{"root": r, "pid": p} for r, p in zip(roots, pids)]
        return self

    @property
    def env(self):
        """The environment of the replicas, for `facet users`, `facet audit verify` and the like."""
        return dict(os.environ, **{k: v for k, v in self.environment.items() if not k.startswith("FACET_CLUSTER")})

    def facet(self, *args, input=None, timeout=120):
        return subprocess.run([self.binary, *map(str, args)], input=input, capture_output=True, text=True,
                              timeout=timeout, env=self.env)

    def add_user(self, role="physician"):
        """An account made with `facet users add` in the cluster's environment (the index on PostgreSQL), on the
        first replica's data folder; returns (username, password, otpauth URI)."""
        username = f"cluster-{role}-{random.randrange(16 ** 8):08x}"
        password = "cluster suite password " + username
        made = self.facet("users", "add", username, "--role", role, "--password-stdin", "--json",
                          "--data-dir", self.replica_data(0), input=password, timeout=60)
        if made.returncode != 0:
            raise RuntimeError("facet users add failed: " + made.stderr)
        return username, password, json.loads(made.stdout)["otpauth_uri"]

    def next_code(self, uri):
        """A TOTP code not used before by this cluster's suite account (each code logs in once; the server takes one
        step of drift): the current step, else the next, else wait for a new step."""
        while True:
            now = int(time.time()) // 30
            step = now if self._last_step is None or self._last_step < now else self._last_step + 1
            if step <= now + 1:
                self._last_step = step
                return totp_now(uri, steps_ahead=step - now)
            time.sleep(30 - time.time() % 30 + 0.05)

    def log_in(self, via=None):
        """Logs the suite's physician in (made the first time) through nginx, or through the replica root `via`;
        the token becomes `self.token` and is returned."""
        if not getattr(self, "credentials", None):
            self.credentials = self.add_user()
        username, password, uri = self.credentials
        body = json.dumps({"username": username, "password": password, "totp": self.next_code(uri)}).encode()
        request = urllib.request.Request((via or self.root) + "/api/v1/auth/login", data=body,
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=30) as answer:
                token = json.loads(answer.read())["access_token"]
        except urllib.error.HTTPError as error:
            # The replica that refused: one that does not know an account made through another (accounts not in
            # the shared index) answers 401.
            raise RuntimeError(f"login of {username} (made on replica 1) through {via or 'nginx'} answered "
                               f"{error.code} from replica {error.headers.get('X-Facet-Replica', '?')}") from error
        if via is None:
            self.token = token
        return token

    def visible(self, root, uid, token=None):
        """Whether the replica at `root` finds the SOP Instance UID with QIDO (its catalogue has it)."""
        request = urllib.request.Request(f"{root}/dicomweb/instances?SOPInstanceUID={uid}", headers={
            "Accept": "application/dicom+json", "Authorization": "Bearer " + (token or self.token)})
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:
                return answer.status == 200 and uid.encode() in answer.read()
        except urllib.error.HTTPError as error:
            if error.code in (204, 404):
                return False
            raise

    def await_everywhere(self, uids, token=None, timeout=5.0):
        """Waits until every running replica's QIDO finds each SOP Instance UID (the catalogues follow the index's
        change feed); returns the seconds it took, or raises AssertionError naming what is still missing."""
        started = time.monotonic()
        missing = {(r["root"], uid) for i, r in enumerate(self.replicas) if self.alive(i) for uid in uids}
        while missing:
            missing = {(root, uid) for root, uid in missing if not self.visible(root, uid, token)}
            if not missing:
                break
            if time.monotonic() - started > timeout:
                # Late or lost? Keep looking for 30 s more, so that a failure says which.
                late = set(missing)
                while late and time.monotonic() - started < timeout + 30:
                    time.sleep(0.2)
                    late = {(root, uid) for root, uid in late if not self.visible(root, uid, token)}
                verdict = (f"all found after {time.monotonic() - started:.1f} s (late, not lost)" if not late
                           else f"{len(late)} still missing after {timeout + 30} s")
                raise AssertionError(f"{len(missing)} stored instances not found {timeout} s after the store, e.g. "
                                     f"{sorted(missing)[0][1]} on {sorted(missing)[0][0]}; {verdict}")
            time.sleep(0.02)
        return time.monotonic() - started

    def ready(self, root, timeout=2):
        try:
            with urllib.request.urlopen(root + "/health/ready", timeout=timeout) as answer:
                return answer.status == 200
        except (OSError, urllib.error.URLError):
            return False

    def kill_replica(self, index, sig=signal.SIGKILL):
        os.kill(self.replicas[index]["pid"], sig)

    def alive(self, index):
        try:
            state = Path(f"/proc/{self.replicas[index]['pid']}/stat").read_text().rsplit(")", 1)[1].split()[0]
            return state != "Z"
        except OSError:
            return False

    def stop_replicas(self, timeout=30):
        """SIGTERM to every running replica (nginx, PostgreSQL and SeaweedFS stay up); whether all exited in time."""
        running = [n for n in range(len(self.replicas)) if self.alive(n)]
        for n in running:
            self.kill_replica(n, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while any(self.alive(n) for n in running) and time.monotonic() < deadline:
            time.sleep(0.1)
        return not any(self.alive(n) for n in running)

    def postgres(self, action):
        """scripts/postgres.sh stop|restart on the cluster's own PostgreSQL."""
        if self.external:
            raise RuntimeError("the cluster's PostgreSQL is not its own")
        answer = subprocess.run(["bash", str(ROOT / "scripts/postgres.sh"), action, self.folder / "postgres"],
                                capture_output=True, text=True, timeout=120,
                                env=dict(os.environ, POSTGRES_TEST_PORT=str(self.pg_port)))
        if answer.returncode != 0:
            raise RuntimeError(f"postgres.sh {action} failed: {answer.stderr}")

    def stop(self, kill=False):
        """scripts/cluster.sh stop: 0 when every replica stopped on SIGTERM (none had to be killed)."""
        if not self.replicas:
            return None
        stopped = self.script("stop", self.folder, timeout=180)
        self.replicas_stopped = self.replicas
        return 0 if stopped.returncode == 0 and "did not stop" not in stopped.stderr else (stopped.returncode or 1)

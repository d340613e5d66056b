"""Who is asking, on a live `facet serve`: the suite's own client logs in with password and TOTP (conftest); here
the stock `dicomweb_client` command line with `--bearer-token`, the refusals a client without a valid token
gets, an administrator managing accounts over `/api/v1/users`, and 405 for a wrong method."""
import json
import os
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from conftest import VENV_BIN, FacetServer, run
from test_dicomweb import secondary_capture
from totp import totp_now

pytestmark = pytest.mark.usefixtures("facet_only")


@pytest.fixture(scope="module")
def live(facet, tmp_path_factory):
    child = FacetServer(facet, tmp_path_factory.mktemp("auth") / "data").start()
    yield child
    child.stop()


def test_the_stock_command_line_client_with_a_bearer_token(live, tmp_path):
    path = secondary_capture(tmp_path / "sc.dcm")
    client = [VENV_BIN / "dicomweb_client", "--url", live.url]
    stored = run(*client, "--bearer-token", live.token, "store", "instances", path)
    assert stored.returncode == 0, stored.stderr
    found = run(*client, "--bearer-token", live.token, "search", "studies")
    assert found.returncode == 0, found.stderr
    assert json.loads(found.stdout)
    refused = run(*client, "search", "studies")
    assert refused.returncode != 0


def test_no_or_a_bad_token_is_401_with_a_challenge(live):
    for headers in ({"Authorization": "Bearer not-a-token"}, {"Authorization": "Basic dXNlcjpwYXNz"}):
        answer = requests.get(live.url + "/studies", headers=headers)
        assert answer.status_code == 401
        assert answer.headers["WWW-Authenticate"].startswith("Bearer")
    # Open without a token: health, capabilities, the login endpoint itself.
    session = requests.Session()
    assert session.get(live.root + "/health/live", headers={"Authorization": ""}).status_code == 200
    wrong = requests.post(live.root + "/api/v1/auth/login", json={"username": live.username, "password": "wrong"})
    assert wrong.status_code == 401 and wrong.json()["error"] == "invalid credentials"


def log_in(live, username, password, uri, steps_ahead=0):
    return requests.post(live.root + "/api/v1/auth/login", json={
        "username": username, "password": password, "totp": totp_now(uri, steps_ahead)})


def test_an_administrator_creates_an_account_that_logs_in_until_disabled(live, facet):
    admin, password = "admin-" + uuid.uuid4().hex[:6], "suite admin passphrase"
    made = run(facet, "users", "add", admin, "--role", "system-admin", "--password-stdin", "--json",
               "--data-dir", live.data_dir, input=password)
    assert made.returncode == 0, made.stderr
    answer = log_in(live, admin, password, json.loads(made.stdout)["otpauth_uri"])
    assert answer.status_code == 200
    as_admin = {"Authorization": "Bearer " + answer.json()["access_token"]}

    created = requests.post(live.root + "/api/v1/users", json={"username": "nurse-http", "role": "nurse"},
                            headers=as_admin)
    assert created.status_code == 201, created.text
    assert created.headers["Location"].endswith("/api/v1/users/nurse-http")
    account = created.json()
    assert set(account) == {"username", "role", "tenant", "password", "otpauth_uri"}
    answer = log_in(live, "nurse-http", account["password"], account["otpauth_uri"])
    assert answer.status_code == 200
    as_nurse = {"Authorization": "Bearer " + answer.json()["access_token"]}
    assert requests.get(live.root + "/api/v1/auth/me", headers=as_nurse).json()["role"] == "nurse"
    # The nurse may not administer; the list shows the account and no secret.
    assert requests.get(live.root + "/api/v1/users", headers=as_nurse).status_code == 403
    listed = {a["username"]: a for a in requests.get(live.root + "/api/v1/users", headers=as_admin).json()}
    assert listed["nurse-http"]["status"] == "active" and listed["nurse-http"]["mfa"] is True
    assert account["password"] not in json.dumps(listed)

    disabled = requests.post(live.root + "/api/v1/users/nurse-http/disable", headers=as_admin)
    assert disabled.status_code == 200 and disabled.json()["status"] == "disabled"
    # Its token stops at once, and a fresh, unused TOTP code does not get it a new one.
    assert requests.get(live.root + "/api/v1/auth/me", headers=as_nurse).status_code == 401
    assert log_in(live, "nurse-http", account["password"], account["otpauth_uri"], steps_ahead=1).status_code == 401
    # Nor does the administrator disable themselves.
    assert requests.post(f"{live.root}/api/v1/users/{admin}/disable", headers=as_admin).status_code == 409


def test_a_wrong_method_on_a_known_path_is_405_with_allow(live):
    answer = requests.get(live.root + "/api/v1/auth/login", headers={"Authorization": ""})
    assert answer.status_code == 405 and answer.headers["Allow"] == "POST, OPTIONS"
    answer = requests.delete(live.url + "/studies")
    assert answer.status_code == 405 and answer.headers["Allow"] == "GET, HEAD, POST, OPTIONS"
    assert requests.delete(live.url + "/studies", headers={"Authorization": ""}).status_code == 401
    assert requests.get(live.url + "/no-such-resource").status_code == 404


def test_a_token_of_the_clinics_identity_provider_with_its_jwks_served_over_http(facet, tmp_path):
    """The clinic's own identity provider (OIDC): its JWKS served by a real HTTP server on loopback, a token signed
    with pyjwt, used by the stock `DICOMwebClient`; a token for another audience is refused."""
    # pyjwt and cryptography (conformance/requirements.txt), imported here so that the other tests run without them.
    import jwt
    import pydicom
    from cryptography.hazmat.primitives.asymmetric import rsa
    from dicomweb_client.api import DICOMwebClient

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    jwk.update(kid="clinic-1", use="sig", alg="RS256")
    document = json.dumps({"keys": [jwk]}).encode()
    fetches = []

    class KeySet(BaseHTTPRequestHandler):
        def do_GET(self):
            fetches.append(self.path)
            if self.path != "/jwks.json":
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(document)))
            self.end_headers()
            self.wfile.write(document)

        def log_message(self, *args):
            pass

    keys = ThreadingHTTPServer(("127.0.0.1", 0), KeySet)
    threading.Thread(target=keys.serve_forever, daemon=True).start()
    issuer = "https://idp.clinic.example/realms/facet"
    child = FacetServer(facet, tmp_path / "data", extra_env={
        "FACET_OIDC_ISSUER": issuer,
        "FACET_OIDC_AUDIENCE": "facet-archive",
        "FACET_OIDC_JWKS": f"http://127.0.0.1:{keys.server_address[1]}/jwks.json",
    })
    try:
        child.start()
        assert fetches == ["/jwks.json"]

        def token(audience):
            now = int(time.time())
            claims = {"iss": issuer, "aud": audience, "sub": "3f1c9a", "preferred_username": "dr.oidc",
                      "role": "physician", "iat": now, "exp": now + 300, "jti": str(now) + audience}
            return jwt.encode(claims, key, algorithm="RS256", headers={"kid": "clinic-1"})

        client = DICOMwebClient(child.url, headers={"Authorization": "Bearer " + token("facet-archive")})
        client.store_instances([pydicom.dcmread(secondary_capture(tmp_path / "sc.dcm"))])
        studies = client.search_for_studies()
        assert len(studies) == 1
        refused = requests.get(child.url + "/studies", headers={"Authorization": "Bearer " + token("another-app")})
        assert refused.status_code == 401
        assert refused.headers["WWW-Authenticate"].startswith("Bearer")
        # Known keys are never fetched again.
        assert fetches == ["/jwks.json"]
    finally:
        child.stop()
        keys.shutdown()


def test_a_key_set_that_cannot_be_loaded_stops_the_start_with_one_line(facet, tmp_path):
    env = dict(FACET_OIDC_ISSUER="https://idp.clinic.example", FACET_OIDC_AUDIENCE="facet-archive",
               FACET_OIDC_JWKS=str(tmp_path / "missing.json"))
    started = run(facet, "serve", "--data-dir", tmp_path / "data", "--port", "1", env=dict(os.environ, **env))
    assert started.returncode == 2
    failures = [line for line in started.stderr.splitlines() if line.startswith("facet: ")]
    assert len(failures) == 1 and "oidc-jwks" in failures[0] and "missing.json" in failures[0]

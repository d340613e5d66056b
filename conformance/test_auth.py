"""Who is asking, on a live `facet serve`: the suite's own client logs in with password and TOTP (conftest); here
the stock `dicomweb_client` command line with `--bearer-token`, and the refusals a client without a valid token
gets."""
import json

import pytest
import requests

from conftest import VENV_BIN, FacetServer, run
from test_dicomweb import secondary_capture

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

"""`facet users` against the real binary (issue 9 §2): accounts, their credentials and care teams, on a data folder
with or without a running `facet serve`."""
import base64
import json
import subprocess
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from conftest import FacetServer

pytestmark = pytest.mark.usefixtures("facet_only")

ROLES = [
    "front-desk", "medical-assistant", "nurse", "physician", "practice-manager", "system-admin", "device",
    "integration", "auditor",
]


def users(facet, data, *args, stdin=None):
    return subprocess.run(
        [facet, "users", *args, "--data-dir", str(data)], input=stdin, capture_output=True, text=True, timeout=120
    )


def stored_bytes(data):
    return b"".join(p.read_bytes() for p in Path(data).glob("index.sqlite*"))


def check_otpauth(uri, username):
    parsed = urllib.parse.urlparse(uri)
    assert parsed.scheme == "otpauth" and parsed.netloc == "totp"
    assert urllib.parse.unquote(parsed.path) == f"/Facet:{username}"
    query = urllib.parse.parse_qs(parsed.query)
    assert query["issuer"] == ["Facet"]
    secret = query["secret"][0]
    # The standard library's RFC 4648 decoder reads it: 160 bits.
    assert len(base64.b32decode(secret + "=" * (-len(secret) % 8))) == 20
    return secret


def test_add_person_json_generates_a_password_and_an_otpauth_uri(facet, tmp_path):
    result = users(facet, tmp_path / "data", "add", "dr.smith", "--role", "physician", "--json")
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert set(answer) == {"username", "role", "tenant", "otpauth_uri", "password"}
    assert (answer["username"], answer["role"], answer["tenant"]) == ("dr.smith", "physician", "default")
    assert len(answer["password"]) >= 12
    secret = check_otpauth(answer["otpauth_uri"], "dr.smith")
    data = stored_bytes(tmp_path / "data")
    assert answer["password"].encode() not in data
    assert secret.encode() not in data and base64.b32decode(secret + "=" * (-len(secret) % 8)) not in data


def test_add_with_password_on_stdin_prints_no_password(facet, tmp_path):
    password = "a long passphrase 42"
    result = users(
        facet, tmp_path / "data", "add", "nurse.jo", "--role", "nurse", "--password-stdin", "--json",
        stdin=password + "\n",
    )
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert set(answer) == {"username", "role", "tenant", "otpauth_uri"}
    assert password not in result.stdout + result.stderr
    assert password.encode() not in stored_bytes(tmp_path / "data")


@pytest.mark.parametrize("role", ["device", "integration"])
def test_add_service_account_prints_client_credentials(facet, tmp_path, role):
    result = users(facet, tmp_path / "data", "add", "svc-1", "--role", role, "--tenant", "clinic-b", "--json")
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert set(answer) == {"username", "role", "tenant", "client_id", "client_secret"}
    assert answer["tenant"] == "clinic-b" and answer["role"] == role
    assert len(answer["client_secret"]) >= 43
    assert answer["client_secret"].encode() not in stored_bytes(tmp_path / "data")
    text = users(facet, tmp_path / "data", "add", "svc-2", "--role", role)
    assert text.returncode == 0 and "client_id: " in text.stdout and "client_secret: " in text.stdout


def test_every_human_role_gets_an_otpauth_uri(facet, tmp_path):
    for role in ROLES:
        if role in ("device", "integration"):
            continue
        result = users(facet, tmp_path / "data", "add", f"u-{role}", "--role", role)
        assert result.returncode == 0, result.stderr
        assert "otpauth://totp/Facet:" in result.stdout


def test_refusals_and_usage_errors_have_their_exit_codes_and_one_line(facet, tmp_path):
    data = tmp_path / "data"
    assert users(facet, data, "add", "alice", "--role", "nurse").returncode == 0
    duplicate = users(facet, data, "add", "alice", "--role", "physician", "--password-stdin", stdin="secret password 1")
    assert duplicate.returncode == 1
    assert len(duplicate.stderr.strip().splitlines()) == 1 and "secret password 1" not in duplicate.stderr
    # The same name in another tenant is another account.
    assert users(facet, data, "add", "alice", "--role", "nurse", "--tenant", "clinic-b").returncode == 0
    for args in (["add", "bob", "--role", "king"], ["add", "Bad Name", "--role", "nurse"],
                 ["add", "bob", "--role", "nurse", "--tenant", "bad/tenant"]):
        result = users(facet, data, *args)
        assert result.returncode == 2, (args, result.stderr)
        assert len(result.stderr.strip().splitlines()) == 1
    short = users(facet, data, "add", "bob", "--role", "nurse", "--password-stdin", stdin="short")
    assert short.returncode == 2 and "short" not in short.stderr
    for command in ("disable", "enable", "reset-mfa", "set-password"):
        assert users(facet, data, command, "nobody").returncode == 1


def test_list_disable_enable(facet, tmp_path):
    data = tmp_path / "data"
    assert users(facet, data, "add", "alice", "--role", "nurse").returncode == 0
    assert users(facet, data, "add", "station", "--role", "device").returncode == 0
    assert users(facet, data, "add", "carol", "--role", "auditor", "--tenant", "clinic-b").returncode == 0

    def listed(*extra):
        result = users(facet, data, "list", "--json", *extra)
        assert result.returncode == 0, result.stderr
        return {(a["tenant"], a["username"]): a for a in json.loads(result.stdout)}

    accounts = listed()
    assert set(accounts) == {("default", "alice"), ("default", "station"), ("clinic-b", "carol")}
    assert accounts[("default", "alice")]["role"] == "nurse" and accounts[("default", "alice")]["mfa"] is True
    assert accounts[("default", "station")]["client_id"].startswith("facet-")
    assert all(a["status"] == "active" for a in accounts.values())
    assert not any("secret" in key or "password" in key for a in accounts.values() for key in a)
    assert set(listed("--tenant", "clinic-b")) == {("clinic-b", "carol")}

    assert users(facet, data, "disable", "alice").returncode == 0
    assert listed()[("default", "alice")]["status"] == "disabled"
    assert users(facet, data, "enable", "alice").returncode == 0
    assert listed()[("default", "alice")]["status"] == "active"
    text = users(facet, data, "list")
    assert text.returncode == 0 and "alice" in text.stdout and "carol" in text.stdout


def test_set_role_and_the_last_system_admin(facet, tmp_path):
    data = tmp_path / "data"
    assert users(facet, data, "add", "alice", "--role", "nurse").returncode == 0
    assert users(facet, data, "add", "root", "--role", "system-admin").returncode == 0
    assert users(facet, data, "set-role", "alice", "--role", "physician").returncode == 0
    # A person does not become a machine; an unknown role is a usage error.
    for role in ("device", "king"):
        refused = users(facet, data, "set-role", "alice", "--role", role)
        assert refused.returncode == 2 and len(refused.stderr.strip().splitlines()) == 1
    # The tenant's one system admin stays one, as over /api/v1/users.
    for args in (["disable", "root"], ["set-role", "root", "--role", "nurse"]):
        refused = users(facet, data, *args)
        assert refused.returncode == 1 and "last active system-admin" in refused.stderr
    listed = {a["username"]: a for a in json.loads(users(facet, data, "list", "--json").stdout)}
    assert listed["alice"]["role"] == "physician"
    assert (listed["root"]["role"], listed["root"]["status"]) == ("system-admin", "active")


def test_reset_mfa_and_set_password(facet, tmp_path):
    data = tmp_path / "data"
    first = json.loads(users(facet, data, "add", "alice", "--role", "nurse", "--json").stdout)
    reset = users(facet, data, "reset-mfa", "alice", "--json")
    assert reset.returncode == 0, reset.stderr
    uri = json.loads(reset.stdout)["otpauth_uri"]
    assert check_otpauth(uri, "alice") != check_otpauth(first["otpauth_uri"], "alice")
    generated = users(facet, data, "set-password", "alice", "--json")
    assert generated.returncode == 0 and len(json.loads(generated.stdout)["password"]) >= 12
    chosen = users(facet, data, "set-password", "alice", "--password-stdin", stdin="another passphrase 9\n")
    assert chosen.returncode == 0 and "another passphrase 9" not in chosen.stdout + chosen.stderr


def test_assign_keeps_the_patient_id_out_of_the_database(facet, tmp_path):
    data = tmp_path / "data"
    assert users(facet, data, "add", "ma", "--role", "medical-assistant").returncode == 0
    patient_id = "MRN-55501-ZX"
    result = users(facet, data, "assign", "ma", "--patient-id", patient_id, "--issuer", "CLINIC")
    assert result.returncode == 0, result.stderr
    assert patient_id not in result.stdout + result.stderr
    assert users(facet, data, "assign", "ma", "--patient-id", patient_id).returncode == 0
    assert users(facet, data, "assign", "ghost", "--patient-id", patient_id).returncode == 1
    assert patient_id.encode() not in stored_bytes(data)


def test_add_works_while_facet_serve_runs_on_the_same_folder(facet, tmp_path):
    data = tmp_path / "data"
    server = FacetServer(facet, data).start()
    try:
        for index in range(3):
            result = users(facet, data, "add", f"user{index}", "--role", "nurse", "--json")
            assert result.returncode == 0, result.stderr
        assert users(facet, data, "assign", "user0", "--patient-id", "P-1").returncode == 0
        listed = json.loads(users(facet, data, "list", "--json").stdout)
        # Besides the physician the suite's client logged in as.
        assert {a["username"] for a in listed} - {server.username} == {"user0", "user1", "user2"}
        with urllib.request.urlopen(server.root + "/health/ready", timeout=5) as answer:
            assert answer.status == 200
    finally:
        assert server.stop() == 0


def test_a_folder_prepared_by_facet_users_starts_a_server(facet, tmp_path):
    data = tmp_path / "data"
    assert users(facet, data, "add", "pm", "--role", "practice-manager").returncode == 0
    server = FacetServer(facet, data).start()
    try:
        with urllib.request.urlopen(server.root + "/health/ready", timeout=5) as answer:
            assert answer.status == 200
    finally:
        assert server.stop() == 0
    listed = json.loads(users(facet, data, "list", "--json").stdout)
    assert [a["username"] for a in listed if a["username"] != server.username] == ["pm"]

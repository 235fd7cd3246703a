"""Authentication, versions and the generic response shape, over HTTP."""

import base64
import email.utils
import hashlib
import time

import pytest
import requests

from sim.helpers import error as _error
from sim.signer import Client, Signer, client_for
from tritonsim.testing import generate_key


@pytest.fixture(scope="module")
def sim(tritonsim_module_factory):
    return tritonsim_module_factory(extra_keys=["ecdsa", "ed25519"], users=["bob", "carol"])


@pytest.fixture(scope="module")
def client(sim):
    return client_for(sim)


# ---- ping and response headers

def test_ping_needs_no_auth_and_lists_versions(sim):
    resp = requests.get(sim.url + "/--ping")
    assert resp.status_code == 200
    assert resp.json() == {"ping": "pong", "cloudapi": {
        "versions": ["7.0.0", "7.1.0", "7.2.0", "7.3.0", "8.0.0", "9.0.0"]}}
    assert resp.headers["Triton-Datacenter-Name"] == "tritonsim-1"


def test_every_response_has_cloudapi_headers(client):
    resp = client.get("/my/machines")
    assert resp.status_code == 200
    h = resp.headers
    assert h["Server"] == "cloudapi/9.20.0"
    assert h["Api-Version"] == "9.0.0"
    assert len(h["Request-Id"]) == 36
    assert int(h["Response-Time"]) >= 0
    assert email.utils.parsedate_to_datetime(h["Date"])
    assert h["Content-Type"] == "application/json"
    assert h["Content-MD5"] == base64.b64encode(hashlib.md5(resp.content).digest()).decode()
    assert int(h["Content-Length"]) == len(resp.content)


def test_error_responses_have_headers_and_json_body(sim):
    resp = requests.get(sim.url + "/my/machines")
    body = _error(resp, 401, "InvalidCredentials",
                  "You must make authenticated requests to use CloudAPI")
    assert set(body) == {"code", "message"}
    assert resp.headers["Server"] == "cloudapi/9.20.0"
    assert resp.headers["Content-MD5"] == base64.b64encode(hashlib.md5(resp.content).digest()).decode()


@pytest.mark.parametrize("header", ["request-id", "x-request-id"])
def test_incoming_request_id_is_reused(client, header):
    resp = client.get("/my", headers={header: "11111111-2222-3333-4444-555555555555"})
    assert resp.headers["Request-Id"] == "11111111-2222-3333-4444-555555555555"


def test_unknown_route_is_404_before_auth(sim):
    resp = requests.get(sim.url + "/my/nonsense/here")
    _error(resp, 404, "ResourceNotFound", "/my/nonsense/here does not exist")


def test_wrong_verb_is_405_with_allow(sim, client):
    resp = client.request("PATCH", "/my/machines")
    _error(resp, 405, "MethodNotAllowed", "PATCH is not allowed")
    assert "GET" in resp.headers["Allow"] and "POST" in resp.headers["Allow"]


# ---- both header syntaxes and the signed-header variants

@pytest.mark.parametrize("style", ["modern", "date-only", "request-line", "legacy",
                                   "legacy-request-line"])
def test_header_syntaxes_accepted(client, style):
    resp = client.get("/my/machines?limit=5", style=style)
    assert resp.status_code == 200, resp.text


def test_wrong_signature_rejected_for_each_syntax(client):
    for style in ("modern", "legacy"):
        date = email.utils.formatdate(usegmt=True)
        headers = client.signer.headers("GET", "/my/keys", style=style, date=date)
        headers["Date"] = email.utils.formatdate(time.time() - 5, usegmt=True)
        resp = client.get("/my/keys", sign=False, headers=headers)
        _error(resp, 401, "InvalidCredentials", "Invalid authorization credentials supplied")


def test_signature_over_other_target_rejected(client):
    headers = client.signer.headers("GET", "/my/images")
    resp = client.get("/my/keys", sign=False, headers=headers)
    _error(resp, 401, "InvalidCredentials")


def test_key_name_and_fingerprint_both_work_as_key_id(sim, client):
    for ident in (sim.fingerprint, "id_rsa"):
        resp = client.get("/my", key_id=f"/{sim.account}/keys/{ident}")
        assert resp.status_code == 200, resp.text
        assert resp.json()["login"] == sim.account


def test_my_alias_and_login_in_path(sim, client):
    assert client.get("/my/keys").json() == client.get(f"/{sim.account}/keys").json()


def test_other_account_in_path_is_forbidden(client):
    _error(client.get("/someoneelse/machines"), 403, "NotAuthorized")


@pytest.mark.parametrize("key_id,message", [
    ("/my/keys/{fp}", "Invalid authorization credentials supplied"),
    ("/nobody/keys/{fp}", "Invalid authorization credentials supplied"),
    ("/{acct}/keys/aa:bb:cc", "Invalid authorization credentials supplied"),
    ("/{acct}/{fp}", "Invalid KeyId /{acct}/{fp} in authorization header"),
    ("/{acct}/users/bob/{fp}", "Invalid KeyId"),
    ("/{acct}/keys/{fp}/extra", "Invalid KeyId"),
])
def test_bad_key_ids(sim, client, key_id, message):
    key_id = key_id.format(fp=sim.fingerprint, acct=sim.account)
    resp = client.get("/my/machines", key_id=key_id)
    _error(resp, 401, "InvalidCredentials", message.format(fp=sim.fingerprint, acct=sim.account))


def test_unknown_key_rejected(sim, client, scratch_dir):
    stranger = generate_key(scratch_dir, "stranger")
    c = Client(sim.url, sim.account,
               Signer(stranger.key_path, f"/{sim.account}/keys/{stranger.fingerprint}"))
    _error(c.get("/my/machines"), 401, "InvalidCredentials")
    # a known fingerprint signed by the wrong key
    c = Client(sim.url, sim.account, Signer(stranger.key_path, sim.key_id))
    _error(c.get("/my/machines"), 401, "InvalidCredentials")


@pytest.mark.parametrize("algorithm", ["rsa-sha1", "rsa-sha256", "rsa-sha512", "RSA-SHA256"])
def test_rsa_hashes(client, algorithm):
    resp = client.get("/my", algorithm=algorithm.lower(), header_algorithm=algorithm)
    assert resp.status_code == 200, resp.text


def test_ecdsa_and_ed25519_keys(sim):
    for kp, algorithm in ((sim.keys[1], "ecdsa-sha256"), (sim.keys[2], "ed25519-sha512")):
        c = client_for(sim, key=kp)
        assert c.signer.algorithm == algorithm
        resp = c.get("/my/machines")
        assert resp.status_code == 200, resp.text


def test_ed25519_with_sha256_rejected(sim):
    c = client_for(sim, key=sim.keys[2])
    resp = c.get("/my", header_algorithm="ed25519-sha256")
    _error(resp, 401, "InvalidCredentials")


@pytest.mark.parametrize("claimed", ["ecdsa-sha256", "ed25519-sha512"])
def test_algorithm_key_type_mismatch(client, claimed):
    # A valid RSA signature that claims to be something else.
    _error(client.get("/my", header_algorithm=claimed), 401, "InvalidCredentials")


@pytest.mark.parametrize("claimed,message", [
    ("rsa-sha384", "rsa-sha384 is not supported"),
    ("rsa-md5", "rsa-md5 is not supported"),
    ("foo-sha256", "foo-sha256 is not supported"),
    ("hmac-sha256", "hmac-sha256 is not a supported algorithm"),
])
def test_unsupported_algorithms_are_header_errors(client, claimed, message):
    _error(client.get("/my", header_algorithm=claimed), 400, "InvalidHeader",
           "Authorization header invalid: " + message)


@pytest.mark.parametrize("offset", [-400, 400])
def test_clock_skew_over_300s(client, offset):
    date = email.utils.formatdate(time.time() + offset, usegmt=True)
    _error(client.get("/my", date=date), 400, "InvalidHeader",
           "Authorization header invalid: clock skew of ")
    assert "was greater than 300s" in client.get("/my", date=date).json()["message"]


def test_clock_skew_within_limit(client):
    date = email.utils.formatdate(time.time() - 250, usegmt=True)
    assert client.get("/my", date=date).status_code == 200


def test_legacy_syntax_with_skew_reports_modern_parser_error(client):
    date = email.utils.formatdate(time.time() - 400, usegmt=True)
    _error(client.get("/my", style="legacy", date=date), 400, "InvalidHeader",
           "Authorization header invalid: bad param format")


def _raw(sim, authorization, date=True):
    headers = {"Authorization": authorization}
    if date:
        headers["Date"] = email.utils.formatdate(usegmt=True)
    return requests.get(sim.url + "/my/machines", headers=headers)


def test_malformed_headers(sim):
    _error(_raw(sim, "Signature"), 400, "InvalidHeader", "BasicAuth content is invalid.")
    _error(_raw(sim, 'Signature keyId="/a/keys/b",algorithm="rsa-sha256"'), 400,
           "InvalidHeader", "signature was not specified")
    _error(_raw(sim, 'Signature algorithm="rsa-sha256",signature="abc"'), 400,
           "InvalidHeader", "keyId was not specified")
    _error(_raw(sim, 'Signature keyId="/a/keys/b",signature="abc"'), 400,
           "InvalidHeader", "algorithm was not specified")
    _error(_raw(sim, 'signature keyId="/a/keys/b",algorithm="rsa-sha256",signature="x"'), 400,
           "InvalidHeader", 'scheme was not "Signature"')
    _error(_raw(sim, 'Signature keyId="/a/keys/b",algorithm="rsa-sha256",signature="x"',
                date=False), 400, "InvalidHeader", "date was not in the request")


def test_date_must_be_signed(client):
    resp = client.get("/my", signed=["(request-target)"])
    _error(resp, 400, "InvalidHeader", "date was not a signed header")


def test_basic_and_unknown_schemes_are_unauthenticated(sim):
    for authz in ("Basic " + base64.b64encode(b"testacct:secret").decode(), "Bearer abc"):
        _error(_raw(sim, authz), 401, "InvalidCredentials",
               "You must make authenticated requests to use CloudAPI")


# ---- sub-users

def test_subuser_key_id(sim):
    c = client_for(sim, user="bob")
    assert c.signer.key_id == f"/{sim.account}/users/bob/keys/{sim.users['bob'].fingerprint}"
    resp = c.get("/my/machines")
    assert resp.status_code == 200, resp.text
    # sub-users act on the parent account
    assert c.get("/my").json()["login"] == sim.account
    assert c.get(f"/{sim.account}/keys").status_code == 200


def test_subuser_key_by_name(sim):
    c = client_for(sim, user="bob")
    resp = c.get("/my", key_id=f"/{sim.account}/users/bob/keys/bob")
    assert resp.status_code == 200, resp.text


def test_subuser_key_id_failures(sim):
    bob = sim.users["bob"]
    c = client_for(sim, user="bob")
    # another user's key, an unknown user, the account key under a user path
    for key_id in (f"/{sim.account}/users/carol/keys/{bob.fingerprint}",
                   f"/{sim.account}/users/nobody/keys/{bob.fingerprint}"):
        _error(c.get("/my", key_id=key_id), 401, "InvalidCredentials")
    acct = client_for(sim)
    _error(acct.get("/my", key_id=f"/{sim.account}/users/bob/keys/{sim.fingerprint}"),
           401, "InvalidCredentials")
    # the sub-user's key is not an account key
    _error(c.get("/my", key_id=f"/{sim.account}/keys/{bob.fingerprint}"), 401,
           "InvalidCredentials")


def test_subuser_needs_version_7_2_or_later(sim):
    c = client_for(sim, user="bob", accept_version="~7.1")
    _error(c.get("/my"), 401, "InvalidCredentials", "Invalid KeyId")
    c = client_for(sim, user="bob", accept_version="~7.2")
    assert c.get("/my").status_code == 200


# ---- Accept-Version

@pytest.mark.parametrize("wanted", ["~9||~8", "~8", "*", "9.0.0", "~7", "^8", ">=7.2.0 <9",
                                    "8.x", "7.0.0 - 8", None])
def test_accept_version_satisfiable(sim, wanted):
    c = client_for(sim, accept_version=wanted)
    resp = c.get("/my/machines")
    assert resp.status_code == 200, (wanted, resp.text)


@pytest.mark.parametrize("wanted", ["~6", "10", ">9.0.0", "~9.1", "nonsense", "<7"])
def test_accept_version_unsatisfiable(sim, wanted):
    c = client_for(sim, accept_version=wanted)
    _error(c.get("/my/machines"), 400, "InvalidVersion",
           f"{wanted} is not supported by GET /my/machines")


def test_x_api_version_header_is_read_too(sim):
    c = client_for(sim, accept_version=None)
    resp = c.get("/my", headers={"X-Api-Version": "~6"})
    _error(resp, 400, "InvalidVersion")


def test_ping_checks_version_but_not_auth(sim):
    resp = requests.get(sim.url + "/--ping", headers={"Accept-Version": "~6"})
    _error(resp, 400, "InvalidVersion")

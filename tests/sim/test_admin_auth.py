"""The /__sim admin API: loopback clients with this run's token only; CloudAPI unchanged.

With real hosts CloudAPI's listener is reachable from the machines' bridge, so a guest
could otherwise seed machines or set faults. These tests send real HTTP requests to a
real tritonsim process: without a token, with a wrong one, from a non-loopback address
of this machine (tritonsim bound to 0.0.0.0; the traffic never leaves the host), and
check the token file (0600, replaced not written through, never logged).
"""

import http.client
import json
import os
import stat
import subprocess
import sys

import pytest
import requests

from sim.signer import client_for

ADMIN_CALLS = [
    ("GET", "/__sim/info", None),
    ("GET", "/__sim/faults", None),
    ("POST", "/__sim/faults", {"503": 1.0}),
    ("PUT", "/__sim/faults", {"drop": 1.0}),
    ("GET", "/__sim/stats", None),
    ("DELETE", "/__sim/stats", None),
    ("POST", "/__sim/seed-machines", {"count": 5, "name_prefix": "evil-"}),
]


def _call(sim, method, path, body, headers=None):
    return requests.request(method, sim.url + path, json=body, headers=headers or {}, timeout=30)


def _assert_nothing_changed(sim):
    """The refused calls had no effect: no faults, no machines, and CloudAPI still answers."""
    assert sim.get_faults() == {}
    resp = client_for(sim).get("/my/machines")
    assert resp.status_code == 200 and resp.json() == []


def _cloudapi_error(resp, status, code):
    assert resp.status_code == status, resp.text
    assert resp.headers["Content-Type"] == "application/json"
    body = resp.json()
    assert set(body) == {"code", "message"} and body["code"] == code, body
    return body


def test_admin_api_without_or_with_a_wrong_token_is_refused(tritonsim_factory):
    sim = tritonsim_factory()
    for method, path, body in ADMIN_CALLS:          # what anyone without the token sends
        _cloudapi_error(_call(sim, method, path, body), 401, "InvalidCredentials")
    _assert_nothing_changed(sim)
    wrong = sim.admin_token[:-1] + ("A" if sim.admin_token[-1] != "A" else "B")
    signed = client_for(sim)
    for method, path, body in ADMIN_CALLS:
        for headers in ({"Authorization": "Bearer " + wrong}, {"Authorization": "Bearer"},
                        {"Authorization": "Bearer " + sim.admin_token[:10]},
                        {"Authorization": "Basic " + sim.admin_token},
                        {"Authorization": sim.admin_token}):
            body_ = _cloudapi_error(_call(sim, method, path, body, headers), 401, "InvalidCredentials")
            assert sim.admin_token not in body_["message"]
        # CloudAPI's own credentials are not admin credentials
        _cloudapi_error(signed.request(method, path, body), 401, "InvalidCredentials")
    _assert_nothing_changed(sim)
    no_token = _call(sim, "GET", "/__sim/stats", None)
    assert str(sim.data_dir / "admin-token") in no_token.json()["message"]


def test_admin_api_with_the_token_from_loopback_works(tritonsim_factory):
    sim = tritonsim_factory()
    assert sim.url.startswith("http://127.0.0.1:")
    ok = sim.admin_headers()
    assert _call(sim, "POST", "/__sim/faults", {"latency": 0.01}, ok).json() == {"latency": 0.01}
    assert _call(sim, "POST", "/__sim/faults", {}, ok).status_code == 200
    seeded = _call(sim, "POST", "/__sim/seed-machines", {"count": 2, "name_prefix": "ok-"}, ok)
    assert seeded.status_code == 201 and seeded.json()["count"] == 2
    assert _call(sim, "GET", "/__sim/info", None, ok).json()["backend"] == "memory"
    assert "ListMachines" not in _call(sim, "GET", "/__sim/stats", None, ok).json()["by_route"]
    assert _call(sim, "DELETE", "/__sim/stats", None, ok).status_code == 200
    # the scheme is case-insensitive, as HTTP says
    assert _call(sim, "GET", "/__sim/faults", None,
                 {"Authorization": "bearer " + sim.admin_token}).status_code == 200
    assert len(client_for(sim).get("/my/machines").json()) == 2


def _local_non_loopback_ipv4():
    """An IPv4 address of this machine's own interfaces that is not loopback (or None)."""
    try:
        out = subprocess.run(["ip", "-o", "-4", "addr", "show"], capture_output=True, text=True,
                             check=False).stdout
    except OSError:
        return None
    for line in out.splitlines():
        fields = line.split()
        if "inet" in fields:
            addr = fields[fields.index("inet") + 1].split("/")[0]
            if not addr.startswith("127."):
                return addr
    return None


def _request_from(address, port, method, path, body=None, headers=None):
    """One HTTP request to address:port whose source address is `address` (a local one)."""
    conn = http.client.HTTPConnection(address, port, timeout=30, source_address=(address, 0))
    try:
        data = None if body is None else json.dumps(body)
        hdrs = dict(headers or {})
        if data is not None:
            hdrs["Content-Type"] = "application/json"
        conn.request(method, path, body=data, headers=hdrs)
        assert conn.sock.getsockname()[0] == address
        resp = conn.getresponse()
        return resp.status, resp.getheader("Content-Type"), resp.read()
    finally:
        conn.close()


def test_admin_api_from_a_non_loopback_address_is_refused_even_with_the_token(tritonsim_factory):
    address = _local_non_loopback_ipv4()
    if address is None:
        pytest.skip("this machine has no non-loopback IPv4 address to connect from")
    sim = tritonsim_factory(extra_args=["--listen", "0.0.0.0:0"])   # as with machines on a bridge
    port = int(sim.url.rsplit(":", 1)[1])
    refused = {"code": "NotAuthorized", "message": "the /__sim admin API answers loopback clients only"}
    for method, path, body in ADMIN_CALLS:          # what a guest on the bridge could send
        status, ctype, data = _request_from(address, port, method, path, body)
        assert (status, ctype, json.loads(data)) == (403, "application/json", refused), (method, path)
    _assert_nothing_changed(sim)
    for method, path, body in ADMIN_CALLS:          # even with the token
        status, ctype, data = _request_from(address, port, method, path, body, sim.admin_headers())
        assert (status, ctype, json.loads(data)) == (403, "application/json", refused), (method, path)
    # CloudAPI itself still answers there, signed requests included (a guest's idle watcher)
    assert _request_from(address, port, "GET", "/--ping")[0] == 200
    signer = client_for(sim).signer
    status, dummy, data = _request_from(address, port, "GET", f"/{sim.account}/machines",
                                        headers={"Accept-Version": "~9",
                                                 **signer.headers("GET", f"/{sim.account}/machines")})
    assert status == 200 and json.loads(data) == []
    # and the same token works from loopback on that listener
    assert _call(sim, "GET", "/__sim/faults", None, sim.admin_headers()).json() == {}
    _assert_nothing_changed(sim)


def test_only_loopback_peers_pass_the_peer_check():
    from tritonsim.admin import is_loopback
    for addr in ("127.0.0.1", "127.3.2.1", "::1", "::ffff:127.0.0.1"):
        assert is_loopback(addr), addr
    for addr in ("10.213.0.5", "192.0.2.2", "0.0.0.0", "::", "fd00::2", "::ffff:10.0.0.1",
                 "fe80::1%eth0", "", None, "localhost", "not an address"):
        assert not is_loopback(addr), addr


def test_token_file_is_0600_new_at_every_start_and_not_in_the_log(tritonsim_factory):
    sim = tritonsim_factory(extra_args=["--log-requests"])
    path = sim.data_dir / "admin-token"
    st = os.lstat(path)
    assert stat.S_ISREG(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o600
    assert st.st_uid == os.geteuid()
    first = path.read_text().strip()
    assert first == sim.admin_token and len(first) >= 40
    sim.set_faults({})
    sim.stats()
    _call(sim, "GET", "/__sim/stats", None, {"Authorization": "Bearer wrong"})
    sim.restart()
    second = path.read_text().strip()
    assert second != first and sim.admin_token == second
    assert stat.S_IMODE(os.lstat(path).st_mode) == 0o600
    _cloudapi_error(_call(sim, "GET", "/__sim/stats", None, {"Authorization": "Bearer " + first}),
                    401, "InvalidCredentials")
    assert sim.get_faults() == {}
    log = sim.log_path.read_text()
    assert "GET /__sim/stats" in log               # requests are logged, the token is not
    assert first not in log and second not in log
    assert f"token in {path}" in log
    assert [p.name for p in sim.data_dir.iterdir() if p.name.startswith(".admin-token")] == []


def test_token_file_option_replaces_a_planted_symlink(tritonsim_factory, scratch_dir):
    canary = scratch_dir / "canary"
    canary.write_text("not yours\n")
    os.chmod(canary, 0o644)
    token_file = scratch_dir / "token"
    os.symlink(canary, token_file)
    sim = tritonsim_factory(extra_args=["--admin-token-file", str(token_file)])
    assert canary.read_text() == "not yours\n" and stat.S_IMODE(os.stat(canary).st_mode) == 0o644
    st = os.lstat(token_file)
    assert stat.S_ISREG(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o600
    assert token_file.read_text().strip() == sim.admin_token
    assert not (sim.data_dir / "admin-token").exists()
    assert sim.get_faults() == {}


def test_token_file_in_a_missing_directory_is_one_clear_error(scratch_dir):
    from tritonsim.testing import generate_key
    key = generate_key(scratch_dir, "k")
    proc = subprocess.run([sys.executable, "-m", "tritonsim", "serve",
                           "--data", str(scratch_dir / "d"), "--account", "a", "--key", str(key.pub_path),
                           "--admin-token-file", str(scratch_dir / "no" / "such" / "token")],
                          capture_output=True, text=True, timeout=30, check=False)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.startswith("tritonsim: error: ") and "Traceback" not in proc.stderr

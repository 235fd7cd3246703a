"""Fault injection: 503, drop, latency, provision_fail, lost_create; /__sim/faults."""

import socket
import time
import urllib.parse

import pytest
import requests

from sim.helpers import DEBIAN_12_NEW, create, error, unique
from sim.signer import client_for


@pytest.fixture(scope="module")
def shared(tritonsim_module_factory):
    return tritonsim_module_factory(provision_delay=0.1)


@pytest.fixture
def sim(shared):
    shared.set_faults({})
    yield shared
    shared.set_faults({})


def test_set_get_and_clear_faults(sim):
    assert sim.get_faults() == {}
    assert sim.set_faults({"503": 0.25, "latency": 0.01}) == {"503": 0.25, "latency": 0.01}
    assert sim.get_faults() == {"503": 0.25, "latency": 0.01}
    assert sim.set_faults({}) == {}
    assert sim.get_faults() == {}


def test_invalid_faults_rejected(sim):
    for body in ({"503": 1.5}, {"bogus": 0.1}, {"drop": "x"}, {"latency": -1}, ["503"]):
        resp = requests.post(sim.url + "/__sim/faults", json=body, headers=sim.admin_headers())
        assert resp.status_code == 400, body
        assert resp.json()["code"] == "InvalidArgument"
        assert sim.get_faults() == {}


def test_503(sim):
    c = client_for(sim)
    sim.set_faults({"503": 1.0})
    sim.reset_stats()
    resp = c.get("/my/machines")
    error(resp, 503, "ServiceUnavailable")
    assert resp.headers["Server"] == "cloudapi/9.20.0"
    assert requests.get(sim.url + "/--ping").status_code == 503
    assert requests.get(sim.url + "/__sim/stats", headers=sim.admin_headers()).status_code == 200
    assert sim.route_stats("ListMachines") == {"503": 1}
    assert sim.route_stats("Ping") == {"503": 1}
    sim.set_faults({})
    assert c.get("/my/machines").status_code == 200


def _raw_signed_get(sim, client, path):
    """Send one request on a plain socket; return every byte the server wrote."""
    url = urllib.parse.urlsplit(sim.url)
    headers = client.signer.headers("GET", path)
    lines = [f"GET {path} HTTP/1.1", f"Host: {url.netloc}", "Accept-Version: ~9",
             *(f"{k}: {v}" for k, v in headers.items()), "Connection: close", "", ""]
    with socket.create_connection((url.hostname, url.port), timeout=10) as s:
        s.sendall("\r\n".join(lines).encode())
        received = b""
        while True:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            received += chunk
    return received


def test_drop_closes_without_writing_anything(sim):
    c = client_for(sim)
    assert _raw_signed_get(sim, c, "/my/machines").startswith(b"HTTP/1.1 200 OK")
    sim.set_faults({"drop": 1.0})
    sim.reset_stats()
    assert _raw_signed_get(sim, c, "/my/machines") == b""
    with pytest.raises(requests.ConnectionError):
        c.get("/my/keys")
    assert sim.route_stats("ListMachines") == {"drop": 1}
    assert sim.route_stats("ListKeys") == {"drop": 1}
    sim.set_faults({})
    assert c.get("/my/machines").status_code == 200


def test_latency(sim):
    c = client_for(sim)
    sim.set_faults({"latency": 0.4})
    start = time.monotonic()
    assert c.get("/my").status_code == 200
    assert time.monotonic() - start >= 0.4
    start = time.monotonic()
    sim.get_faults()                          # /__sim is never delayed
    assert time.monotonic() - start < 0.3


def test_provision_fail(sim):
    c = client_for(sim)
    sim.set_faults({"provision_fail": 1.0})
    name = unique("doomed")
    m = create(c, name)
    assert m["state"] == "provisioning"
    failed = c.wait_state(m["id"], ["failed", "running"])
    assert failed["state"] == "failed" and failed["ips"] == []
    audit = c.get(f"/my/machines/{m['id']}/audit").json()
    assert audit[0]["action"] == "provision" and audit[0]["success"] == "no"
    assert m["id"] not in {x["id"] for x in c.get("/my/machines").json()}
    assert m["id"] in {x["id"] for x in c.get("/my/machines?tombstone=1").json()}
    sim.set_faults({})
    again = create(c, name)                   # a failed machine's name is free again
    assert c.wait_state(again["id"], ["running", "failed"])["state"] == "running"


def test_lost_create_commits_but_never_answers(sim):
    c = client_for(sim)
    sim.set_faults({"lost_create": 1.0})
    sim.reset_stats()
    name = unique("lost")
    with pytest.raises(requests.ConnectionError):
        c.post("/my/machines", {"image": DEBIAN_12_NEW, "package": "g1-small", "name": name})
    assert sim.route_stats("CreateMachine") == {"drop": 1}
    found = c.get(f"/my/machines?name={name}").json()
    assert len(found) == 1 and found[0]["name"] == name
    assert c.wait_state(found[0]["id"], ["running"])["state"] == "running"
    # a retry of the lost create now hits the name check
    sim.set_faults({})
    error(c.post("/my/machines", {"image": DEBIAN_12_NEW, "package": "g1-small", "name": name}),
          409, "ValidationFailed")


def test_faults_given_at_start(tritonsim_factory):
    sim = tritonsim_factory(faults={"503": 1.0, "latency": 0.05})
    assert sim.get_faults() == {"503": 1.0, "latency": 0.05}
    error(client_for(sim).get("/my"), 503, "ServiceUnavailable")


def _sequence(sim, n=40):
    c = client_for(sim)
    return [c.get("/my").status_code for dummy in range(n)]


def test_seed_makes_fractions_deterministic(tritonsim_factory):
    faults = {"503": 0.5}
    first = _sequence(tritonsim_factory(faults=faults, seed=42))
    second = _sequence(tritonsim_factory(faults=faults, seed=42))
    other = _sequence(tritonsim_factory(faults=faults, seed=7))
    assert first == second
    assert set(first) == {200, 503}
    assert first != other


def test_drop_fraction_matches_stats(tritonsim_factory):
    sim = tritonsim_factory(faults={"drop": 0.3}, seed=3)
    c = client_for(sim)
    outcomes = []
    for dummy in range(30):
        try:
            outcomes.append(str(c.get("/my/keys").status_code))
        except requests.ConnectionError:
            outcomes.append("drop")
    assert 0 < outcomes.count("drop") < 30
    assert sim.route_stats("ListKeys") == {k: outcomes.count(k) for k in set(outcomes)}

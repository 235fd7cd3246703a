"""Per-account throttling and the /__sim/stats counters."""

import time

import requests

from sim.helpers import create_running, error
from sim.signer import client_for


def test_token_bucket_429_and_stats(tritonsim_factory):
    sim = tritonsim_factory(throttle="5:10")
    c = client_for(sim)
    sim.reset_stats()
    responses = [c.get("/my/machines") for dummy in range(25)]
    codes = [r.status_code for r in responses]
    assert codes[:10] == [200] * 10           # the burst
    assert codes.count(429) >= 10             # 5 r/s cannot refill 15 tokens that fast
    limited = next(r for r in responses if r.status_code == 429)
    assert limited.json() == {"code": "TooManyRequests",
                              "message": "You have exceeded your request rate of 5 r/s."}
    assert limited.headers["Server"] == "cloudapi/9.20.0"
    assert sim.route_stats("ListMachines") == {"200": codes.count(200), "429": codes.count(429)}

    # ping and /__sim are not throttled; unauthenticated calls are rejected before the throttle
    assert all(requests.get(sim.url + "/--ping").status_code == 200 for dummy in range(15))
    assert all(requests.get(sim.url + "/__sim/stats", headers=sim.admin_headers()).status_code == 200
               for dummy in range(15))
    assert requests.get(sim.url + "/my/machines").status_code == 401

    time.sleep(0.5)                           # 5 r/s refills ~2 tokens
    assert c.get("/my/machines").status_code == 200


def test_sub_users_share_the_account_bucket(tritonsim_factory):
    sim = tritonsim_factory(throttle="1:3", users=["bob"])
    acct, bob = client_for(sim), client_for(sim, user="bob")
    assert [acct.get("/my").status_code for dummy in range(3)] == [200, 200, 200]
    error(bob.get("/my"), 429, "TooManyRequests", "request rate of 1 r/s")


def test_default_throttle_is_10_per_second_burst_30(tritonsim_factory):
    sim = tritonsim_factory(throttle="10:30")
    c = client_for(sim)
    responses = [c.get("/my") for dummy in range(45)]
    codes = [r.status_code for r in responses]
    assert codes[:30] == [200] * 30 and codes.count(429) >= 5
    limited = next(r for r in responses if r.status_code == 429)
    assert limited.json()["message"] == "You have exceeded your request rate of 10 r/s."


def test_throttle_off(tritonsim):
    c = client_for(tritonsim)
    assert {c.get("/my").status_code for dummy in range(120)} == {200}
    assert "429" not in tritonsim.route_stats("GetAccount")


def test_stats_by_route_name_and_reset(tritonsim):
    c = client_for(tritonsim)
    tritonsim.reset_stats()
    m = create_running(c)
    url = f"/my/machines/{m['id']}"
    c.post(url, {"action": "stop"})
    c.wait_state(m["id"], ["stopped"])
    c.post(url, {"action": "start"})
    c.post(url + "?action=reboot")
    c.post(url, {"action": "rename", "name": "renamed-by-stats"})
    c.post(url + "/tags", {"a": "b"})
    c.get(url + "/tags/a")
    c.get(url + "/audit")
    c.get("/my/images")
    c.get("/my/nonexistent/route")
    requests.get(tritonsim.url + "/my/machines")
    by_route = tritonsim.stats()["by_route"]
    assert by_route["CreateMachine"] == {"201": 1}
    assert by_route["GetMachine"]["200"] >= 2
    assert by_route["StopMachine"] == {"202": 1}
    assert by_route["StartMachine"] == {"202": 1}
    assert by_route["RebootMachine"] == {"202": 1}
    assert by_route["RenameMachine"] == {"202": 1}
    assert by_route["AddMachineTags"] == {"200": 1}
    assert by_route["GetMachineTag"] == {"200": 1}
    assert by_route["MachineAudit"] == {"200": 1}
    assert by_route["ListImages"] == {"200": 1}
    assert by_route["ListMachines"] == {"401": 1}
    assert "(unrouted)" in by_route
    assert not any(name.startswith("sim.") for name in by_route)
    tritonsim.reset_stats()
    assert tritonsim.stats() == {"by_route": {}}

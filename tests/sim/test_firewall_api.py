"""Cloud Firewall routes over real HTTP: codes, bodies, errors, policies, restart."""

import pytest

from sim.helpers import create_running, error
from sim.signer import client_for

RULE = "FROM tag role = worker TO tag role=master ALLOW tcp PORT 5557"
CANONICAL = 'FROM tag "role" = "worker" TO tag "role" = "master" ALLOW tcp PORT 5557'


@pytest.fixture(scope="module")
def sim(tritonsim_module_factory):
    return tritonsim_module_factory(provision_delay=0.1, action_delay=0.1)


@pytest.fixture(scope="module")
def client(sim):
    return client_for(sim)


@pytest.fixture(autouse=True)
def no_rules(client):
    yield
    for rule in client.get("/my/fwrules").json():
        client.delete(f"/my/fwrules/{rule['id']}")


def _create(client, **body):
    resp = client.post("/my/fwrules", {"rule": RULE, **body})
    assert resp.status_code == 201, resp.text
    return resp


def test_create_get_list_update_delete(client, sim):
    resp = _create(client, description="masters")
    rule = resp.json()
    assert rule == {"id": rule["id"], "rule": CANONICAL, "enabled": False, "log": False,
                    "description": "masters"}
    assert resp.headers["Location"] == f"/testacct/fwrules/{rule['id']}"
    url = f"/my/fwrules/{rule['id']}"
    assert client.get(url).json() == rule
    assert client.get("/my/fwrules").json() == [rule]

    enabled = client.post(url + "/enable")
    assert enabled.status_code == 200 and enabled.json()["enabled"] is True
    assert client.post(url + "/disable").json()["enabled"] is False

    resp = client.post(url, {"rule": "FROM any TO all vms ALLOW tcp port 22", "enabled": True,
                             "description": ""})
    assert resp.status_code == 200
    assert resp.json() == {"id": rule["id"], "rule": "FROM any TO all vms ALLOW tcp PORT 22",
                           "enabled": True, "log": False}
    assert client.post(url, {"log": True}).json()["rule"] == \
        "FROM any TO all vms ALLOW tcp PORT 22"    # rule is optional on update

    assert client.delete(url).status_code == 204
    error(client.get(url), 404, "ResourceNotFound", "not found")
    error(client.delete(url), 404, "ResourceNotFound")
    stats = sim.stats()["by_route"]
    for route in ("CreateFirewallRule", "GetFirewallRule", "ListFirewallRules",
                  "EnableFirewallRule", "DisableFirewallRule", "UpdateFirewallRule",
                  "DeleteFirewallRule"):
        assert route in stats, route


def test_errors(client):
    error(client.post("/my/fwrules", {"enabled": True}), 409, "MissingParameter",
          "rule is a required argument")
    body = error(client.post("/my/fwrules", {"rule": "FROM any TO all vms ALLOW tcp PORT x"}),
                 409, "InvalidArgument")
    assert body["message"].startswith("Invalid rule: Port \"x\" is invalid")
    error(client.post("/my/fwrules", {"rule": "FROM any TO any ALLOW tcp PORT 1"}), 409,
          "InvalidArgument", "rule does not affect VMs")
    error(client.post("/my/fwrules", {"rule": RULE, "enabled": "yes"}), 409,
          "InvalidArgument", "enabled must be true or false")
    rule = _create(client).json()
    error(client.post(f"/my/fwrules/{rule['id']}", {"rule": "FROM"}), 409, "InvalidArgument")
    assert client.get(f"/my/fwrules/{rule['id']}").json()["rule"] == CANONICAL
    error(client.post("/my/fwrules/00000000-0000-0000-0000-000000000000/enable"), 404,
          "ResourceNotFound")
    assert client.get("/my/fwrules").json() == [rule]


def _cidrs(machine):
    return sorted(ip + "/32" for ip in machine["ips"])


def test_machines_rules_and_policy_follow_tags(client, sim):
    master = create_running(client, **{"tag.role": "master", "firewall_enabled": True})
    worker = create_running(client, **{"tag.role": "worker"})
    other = create_running(client)
    assert master["firewall_enabled"] is True
    rule = _create(client, enabled=True).json()
    url = f"/my/fwrules/{rule['id']}"

    resp = client.get(url + "/machines")
    assert sorted(m["id"] for m in resp.json()) == sorted([master["id"], worker["id"]])
    assert resp.headers["x-resource-count"] == "2"
    assert client.get(f"/my/machines/{master['id']}/fwrules").json() == [rule]
    assert client.get(f"/my/machines/{other['id']}/fwrules").json() == []
    error(client.get("/my/machines/00000000-0000-0000-0000-000000000000/fwrules"), 404,
          "ResourceNotFound", "VM not found")

    policy = sim.firewall()[master["id"]]
    assert policy == {"inbound_allow": [{"proto": "tcp", "addrs": _cidrs(worker),
                                         "ports": [[5557, 5557]]}], "outbound_block": []}
    assert other["id"] not in sim.firewall()          # its firewall is off

    # a tag change counts at once
    client.post(f"/my/machines/{other['id']}/tags", {"role": "worker"})
    addrs = sim.firewall()[master["id"]]["inbound_allow"][0]["addrs"]
    assert addrs == sorted(_cidrs(worker) + _cidrs(other))
    # deleting the worker drops its address; disabling the rule drops the entry
    client.delete(f"/my/machines/{worker['id']}")
    addrs = sim.firewall()[master["id"]]["inbound_allow"][0]["addrs"]
    assert addrs == _cidrs(other)
    client.post(url + "/disable")
    assert sim.firewall()[master["id"]]["inbound_allow"] == []
    # machine firewall switch
    client.post(f"/my/machines/{other['id']}", {"action": "enable_firewall"})
    assert sim.firewall()[other["id"]] == {"inbound_allow": [], "outbound_block": []}
    client.post(f"/my/machines/{master['id']}", {"action": "disable_firewall"})
    assert master["id"] not in sim.firewall()
    assert client.get(f"/my/machines/{master['id']}").json()["firewall_enabled"] is False
    client.post(f"/my/machines/{other['id']}", {"action": "disable_firewall"})


def test_rules_and_policies_survive_restart(tritonsim_factory):
    sim = tritonsim_factory(provision_delay=0.1, action_delay=0.1)
    client = client_for(sim)
    master = create_running(client, **{"tag.role": "master", "firewall_enabled": True})
    create_running(client, **{"tag.role": "worker"})
    rule = _create(client, enabled=True, description="d").json()
    second = _create(client, rule="FROM any TO all vms BLOCK udp PORT 53").json()
    client.post(f"/my/fwrules/{rule['id']}", {"description": "changed"})
    before = sim.firewall()
    assert before[master["id"]]["inbound_allow"]

    sim.restart()
    client = client_for(sim)
    rules = client.get("/my/fwrules").json()
    assert [r["id"] for r in rules] == [rule["id"], second["id"]]   # creation order kept
    assert rules[0]["description"] == "changed" and rules[0]["enabled"] is True
    assert sim.firewall() == before

"""The official triton CLI's fwrule and instance firewall commands against tritonsim."""

import pytest

from sim.helpers import unique
from sim.signer import client_for


@pytest.fixture(scope="module")
def api(cli_sim):
    return client_for(cli_sim)


def test_fwrule_lifecycle(triton, api, cli_sim):
    name = unique("fw")
    inst = triton.json_lines("instance", "create", "-w", "-j", "--firewall", "-n", name,
                             "-t", "role=master", "debian-12", "g1-small")[-1]
    assert inst["firewall_enabled"] is True
    rule = "FROM any TO vm %s ALLOW tcp port 80" % inst["id"]
    canonical = "FROM any TO vm %s ALLOW tcp PORT 80" % inst["id"]

    out = triton.run("fwrule", "create", "-D", "web in", rule).stdout
    assert out.startswith("Created firewall rule ") and "(disabled)" not in out
    rid = out.split()[3]
    got = triton.json("fwrule", "get", "-j", rid[:8])          # short id works
    assert got == {"id": rid, "rule": canonical, "enabled": True, "log": False,
                   "description": "web in"}
    triton.run("fwrule", "create", "-d",
               'FROM tag "role" = "worker" TO tag role = master ALLOW udp PORTS 1-9')
    rules = triton.json_lines("fwrules", "-j")
    assert {r["rule"]: r["enabled"] for r in rules} == {
        canonical: True,
        'FROM tag "role" = "worker" TO tag "role" = "master" ALLOW udp PORTS 1 - 9': False}
    listing = triton.run("fwrule", "list", "-l").stdout
    assert "DESCRIPTION" in listing and canonical in listing and "web in" in listing

    triton.run("fwrule", "disable", rid)
    assert triton.json("fwrule", "get", "-j", rid)["enabled"] is False
    triton.run("fwrule", "enable", rid)
    assert api.get(f"/my/fwrules/{rid}").json()["enabled"] is True
    out = triton.run("fwrule", "update", rid, "rule=FROM any TO vm %s BLOCK tcp port 25"
                     % inst["id"]).stdout
    assert out.startswith("Updated firewall rule")
    assert triton.json("fwrule", "get", "-j", rid)["rule"] == \
        "FROM any TO vm %s BLOCK tcp PORT 25" % inst["id"]
    triton.run("fwrule", "update", rid, "log=true")
    assert triton.json("fwrule", "get", "-j", rid)["log"] is True

    instances = triton.json_lines("fwrule", "instances", "-j", rid)
    assert [i["id"] for i in instances] == [inst["id"]]
    tagged = triton.json_lines("instance", "fwrules", "-j", name)
    assert sorted(r["id"] for r in tagged) == sorted(r["id"] for r in rules)

    triton.run("instance", "disable-firewall", "-w", name)
    assert api.get(f"/my/machines/{inst['id']}").json()["firewall_enabled"] is False
    assert inst["id"] not in cli_sim.firewall()
    triton.run("instance", "enable-firewall", "-w", name)
    assert api.get(f"/my/machines/{inst['id']}").json()["firewall_enabled"] is True
    assert cli_sim.firewall()[inst["id"]]["outbound_block"] == []

    triton.run("fwrule", "delete", "-f", rid)
    bad = triton.run("fwrule", "get", rid, check=False)
    assert bad.returncode != 0 and "not found" in bad.stderr
    bad = triton.run("fwrule", "create", "FROM any TO all vms ALLOW tcp PORT 99999", check=False)
    assert bad.returncode != 0 and 'Port "99999" is invalid' in bad.stderr

"""The official triton CLI, configured only through environment variables, against tritonsim.

Every step checks what the CLI printed (mostly its -j JSON), and where useful what
tritonsim then holds, read back with our own signed client.
"""

import pytest

from sim.helpers import DEBIAN_12_NEW, G1_SMALL, unique
from sim.signer import client_for


@pytest.fixture(scope="module")
def api(cli_sim):
    return client_for(cli_sim)


def test_catalog_listings(triton, cli_sim):
    images = triton.json_lines("images", "-j")
    assert {(i["name"], i["version"]) for i in images} >= {("debian-12", "20250115"),
                                                           ("ubuntu-24.04", "20250201")}
    assert all(i["state"] == "active" for i in images)
    table = triton.run("images").stdout
    assert "debian-12" in table and "20250115" in table and "ubuntu-24.04" in table

    packages = triton.json_lines("packages", "-j")
    assert {p["name"]: p["vcpus"] for p in packages}["g1-large"] == 4
    assert "g1-small" in triton.run("packages").stdout

    networks = triton.json_lines("networks", "-j")
    assert sorted(n["public"] for n in networks) == [False, True]
    assert "sim-public" in triton.run("networks").stdout

    keys = triton.json_lines("keys", "-j")
    assert [k["fingerprint"] for k in keys] == [cli_sim.fingerprint]
    assert cli_sim.fingerprint in triton.run("keys").stdout

    assert triton.json("account", "get", "-j")["login"] == cli_sim.account


@pytest.fixture(scope="module")
def worker(triton, api):
    """Created by image and package *names*, with tags and metadata, waited for (-w)."""
    name = unique("worker")
    lines = triton.json_lines("instance", "create", "-w", "-j", "-n", name, "-t", "role=worker",
                              "-t", "count=3", "-t", "spot=true", "-m", "motd=hello",
                              "debian-12", "g1-small")
    assert len(lines) == 2
    created, running = lines
    assert created["state"] == "provisioning" and created["name"] == name
    assert running["state"] == "running" and running["id"] == created["id"]
    assert running["image"] == DEBIAN_12_NEW           # newest debian-12 wins
    assert running["package"] == "g1-small"
    assert running["tags"] == {"role": "worker", "count": 3, "spot": True}
    assert running["metadata"]["motd"] == "hello"
    assert running["primaryIp"] in running["ips"]
    server_side = api.get(f"/my/machines/{created['id']}").json()
    assert server_side["tags"] == {"role": "worker", "count": 3, "spot": True}
    return running


def test_create_by_ids(triton, api):
    name = unique("byid")
    lines = triton.json_lines("instance", "create", "-w", "-j", "-n", name, DEBIAN_12_NEW,
                              G1_SMALL)
    assert lines[-1]["state"] == "running"
    assert (lines[-1]["image"], lines[-1]["package"]) == (DEBIAN_12_NEW, "g1-small")
    out = triton.run("instance", "create", "-n", unique("plain"), "ubuntu-24.04", "g1-nano").stdout
    assert out.startswith("Creating instance ") and "ubuntu-24.04@20250201" in out


def test_list_and_filters(triton, worker):
    everything = triton.json_lines("instance", "list", "-j")
    assert worker["id"] in {i["id"] for i in everything}
    workers = triton.json_lines("instance", "list", "-j", "tag.role=worker")
    assert [i["id"] for i in workers] == [worker["id"]]
    assert triton.json_lines("instance", "list", "-j", "tag.count=3")[0]["id"] == worker["id"]
    assert triton.run("instance", "list", "-j", "tag.role=nobody").stdout.strip() == ""
    running = triton.json_lines("instance", "list", "-j", "state=running")
    assert worker["id"] in {i["id"] for i in running}
    table = triton.run("instance", "list").stdout
    assert worker["name"] in table and "debian-12@20250115" in table


def test_get_by_name_short_id_and_uuid(triton, worker):
    for ident in (worker["name"], worker["id"][:8], worker["id"]):
        got = triton.json("instance", "get", "-j", ident)
        assert got["id"] == worker["id"] and got["state"] == "running"


def test_tags(triton, api, worker):
    name, mid = worker["name"], worker["id"]
    tags = triton.json("instance", "tag", "set", "-w", "-j", name, "env=prod", "weight=2.5",
                       "ok=false")
    assert tags == {"role": "worker", "count": 3, "spot": True, "env": "prod", "weight": 2.5,
                    "ok": False}
    assert triton.json("instance", "tag", "list", "-j", name) == tags
    assert triton.run("instance", "tag", "get", name, "env").stdout.strip() == "prod"
    assert triton.json("instance", "tag", "get", "-j", name, "weight") == 2.5
    # by UUID the CLI calls GetMachineTag, which answers "" for non-strings
    assert triton.json("instance", "tag", "get", "-j", mid, "env") == "prod"
    assert triton.json("instance", "tag", "get", "-j", mid, "weight") == ""

    replaced = triton.json("instance", "tag", "replace-all", "-w", "-j", name, "role=worker",
                           "tier=gold")
    assert replaced == {"role": "worker", "tier": "gold"}
    out = triton.run("instance", "tag", "delete", "-w", name, "tier").stdout
    assert "tier" in out
    assert triton.json("instance", "tag", "list", "-j", name) == {"role": "worker"}
    assert api.get(f"/my/machines/{mid}/tags").json() == {"role": "worker"}
    bad = triton.run("instance", "tag", "set", name, "triton.bogus=1", check=False)
    assert bad.returncode != 0 and "ValidationFailed" in bad.stderr


def test_stop_start_reboot(triton, api):
    name = unique("cycle")
    triton.run("instance", "create", "-w", "-n", name, "debian-12", "g1-small")
    out = triton.run("instance", "stop", "-w", name).stdout
    assert out.startswith("Stop instance " + name)
    assert triton.json("instance", "get", "-j", name)["state"] == "stopped"
    out = triton.run("instance", "start", "-w", name).stdout
    assert out.startswith("Start instance " + name)
    assert triton.json("instance", "get", "-j", name)["state"] == "running"
    out = triton.run("instance", "reboot", "-w", name).stdout
    assert f"Rebooted instance {name}" in out
    mid = triton.json("instance", "get", "-j", name)["id"]
    audit = api.get(f"/my/machines/{mid}/audit").json()
    assert [a["action"] for a in audit[:3]] == ["reboot", "start", "stop"]


def test_rename(triton, worker):
    new = unique("renamed")
    out = triton.run("instance", "rename", worker["id"], new).stdout
    assert f'to "{new}"' in out
    assert triton.json("instance", "get", "-j", new)["id"] == worker["id"]
    worker["name"] = new


def test_image_create_from_instance(triton, api):
    name = unique("imgsrc")
    triton.run("instance", "create", "-w", "-n", name, "debian-12", "g1-small")
    lines = triton.json_lines("image", "create", "-w", "-j", name, "golden", "1.2.3")
    assert lines[-1]["state"] == "active"
    image = lines[-1]
    assert (image["name"], image["version"], image["public"]) == ("golden", "1.2.3", False)
    assert triton.json("image", "get", "-j", image["id"])["state"] == "active"
    assert any(i["id"] == image["id"] for i in triton.json_lines("images", "-j", "name=golden"))
    # and it is provisionable by name@version
    made = triton.json_lines("instance", "create", "-w", "-j", "golden@1.2.3", "g1-nano")
    assert made[-1]["image"] == image["id"] and made[-1]["state"] == "running"


def test_delete(triton, api):
    name = unique("doomed")
    mid = triton.json_lines("instance", "create", "-w", "-j", "-n", name, "debian-12",
                            "g1-small")[-1]["id"]
    out = triton.run("instance", "delete", "-w", "-f", name).stdout
    assert out.startswith(f"Delete instance {name} ({mid}")
    assert mid not in {i["id"] for i in triton.json_lines("instance", "list", "-j")}
    gone = triton.run("instance", "get", "-j", mid, check=False)
    assert gone.returncode != 0 and "deleted" in gone.stderr
    assert api.get(f"/my/machines/{mid}").status_code == 410


def test_failure_surfaces_as_cli_error(triton, cli_sim):
    cli_sim.set_faults({"provision_fail": 1.0})
    try:
        result = triton.run("instance", "create", "-w", "-n", unique("fail"), "debian-12",
                            "g1-small", check=False)
    finally:
        cli_sim.set_faults({})
    assert result.returncode != 0 and "failed to create instance" in result.stderr

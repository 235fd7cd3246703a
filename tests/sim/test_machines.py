"""CreateMachine, GetMachine, the actions, DeleteMachine, MachineAudit and ListMachines filters."""

import datetime as dt
import time

import pytest

from sim.helpers import (BASE_64, DEBIAN_12_NEW, DISABLED_IMAGE, G1_LARGE, G1_SMALL,
                         PRIVATE_NET, PUBLIC_NET, UBUNTU_NEW, create, create_running, error,
                         unique)
from sim.signer import client_for


@pytest.fixture(scope="module")
def sim(tritonsim_module_factory):
    return tritonsim_module_factory(provision_delay=0.2, action_delay=0.2)


@pytest.fixture(scope="module")
def client(sim):
    return client_for(sim)


# ---- create

def test_create_answers_201_provisioning_then_runs(sim, client):
    name = unique()
    resp = client.post("/my/machines", {"image": DEBIAN_12_NEW, "package": "g1-small",
                                        "name": name, "tag.role": "web", "tag.n": 3,
                                        "tag.on": True, "metadata.user-script": "#!/bin/sh"})
    assert resp.status_code == 201, resp.text
    m = resp.json()
    assert resp.headers["Location"] == f"/{sim.account}/machines/{m['id']}"
    assert m["state"] == "provisioning"
    assert m["ips"] == [] and m["networks"] == [] and m["compute_node"] is None
    assert "nics" not in m and "primaryIp" not in m
    assert (m["name"], m["package"], m["image"]) == (name, "g1-small", DEBIAN_12_NEW)
    assert (m["memory"], m["disk"]) == (2048, 51200)
    assert m["tags"] == {"role": "web", "n": 3, "on": True}
    assert m["metadata"]["user-script"] == "#!/bin/sh"
    assert m["metadata"]["root_authorized_keys"] == sim.pub_path.read_text().strip()
    assert m["deletion_protection"] is False and m["firewall_enabled"] is False
    assert m["created"].endswith("Z")

    running = client.wait_state(m["id"], ["running"])
    assert running["networks"] == [PUBLIC_NET, PRIVATE_NET]
    assert len(running["nics"]) == 2
    primary = [n for n in running["nics"] if n["primary"]]
    assert len(primary) == 1 and primary[0]["network"] == PUBLIC_NET
    assert running["primaryIp"] == primary[0]["ip"]
    assert running["ips"] == [n["ip"] for n in running["nics"]]
    assert len(running["compute_node"]) == 36
    assert running["updated"] >= running["created"]


def test_default_name_is_short_id(client):
    m = create(client)
    assert m["name"] == m["id"][:8]
    m = create(client, name="web-{{shortId}}")
    assert m["name"] == "web-" + m["id"][:8]


def test_nested_tags_and_metadata_and_dropped_keys(sim, client):
    m = create(client, unique(), tags={"a": "nested", "b": 1}, metadata={"x": "nested"},
               **{"tag.a": "flat", "metadata.secret_pw": "no", "metadata.credentials": "{}",
                  "metadata.root_authorized_keys": "mine"})
    assert m["tags"] == {"a": "flat", "b": 1}
    assert m["metadata"] == {"x": "nested",
                             "root_authorized_keys": sim.pub_path.read_text().strip()}


def test_brand_and_type_follow_the_image(client):
    for image, brand, kind in ((DEBIAN_12_NEW, "bhyve", "virtualmachine"),
                               (UBUNTU_NEW, "lx", "smartmachine"),
                               (BASE_64, "joyent", "smartmachine")):
        m = create(client, image=image)
        assert (m["brand"], m["type"]) == (brand, kind)


def test_package_by_id_and_requested_networks(client):
    m = create(client, package=G1_SMALL, networks=[PRIVATE_NET])
    m = client.wait_state(m["id"], ["running"])
    assert m["package"] == "g1-small"
    assert m["networks"] == [PRIVATE_NET]
    assert m["nics"][0]["primary"] is True
    m = create(client, networks=[{"ipv4_uuid": PUBLIC_NET, "ipv4_ips": ["198.18.100.100"]}])
    assert client.wait_state(m["id"], ["running"])["primaryIp"] == "198.18.100.100"


def test_unique_names_among_live_machines(client):
    name = unique()
    first = create(client, name)
    body = error(client.post("/my/machines", {"image": DEBIAN_12_NEW, "package": "g1-small",
                                              "name": name}), 409, "ValidationFailed")
    assert body["errors"] == [{"field": "alias", "code": "Duplicate",
                               "message": "Already exists for this owner_uuid"}]
    client.wait_state(first["id"], ["running"])
    assert client.delete(f"/my/machines/{first['id']}").status_code == 204
    second = create(client, name)
    assert second["id"] != first["id"]


@pytest.mark.parametrize("body,status,code,message", [
    ({"package": "g1-small"}, 409, "MissingParameter", "image must be specified"),
    ({"image": "debian-12", "package": "g1-small"}, 409, "InvalidArgument",
     "debian-12 is not a valid image"),
    ({"image": "00000000-0000-0000-0000-000000000000", "package": "g1-small"}, 404,
     "ResourceNotFound", None),
    ({"image": DISABLED_IMAGE, "package": "g1-small"}, 409, "InvalidArgument", "is not active"),
    ({"image": DEBIAN_12_NEW}, 409, "MissingParameter", "package must be specified"),
    ({"image": DEBIAN_12_NEW, "package": "g9-giant"}, 409, "InvalidArgument",
     "g9-giant is not a valid package"),
    ({"image": DEBIAN_12_NEW, "package": "g1-small", "name": "bad name!"}, 409,
     "ValidationFailed", None),
    ({"image": DEBIAN_12_NEW, "package": "g1-small", "tag.x": {"no": "objects"}}, 409,
     "ValidationFailed", None),
    ({"image": DEBIAN_12_NEW, "package": "g1-small", "tag.triton.bogus": "x"}, 409,
     "ValidationFailed", None),
    ({"image": DEBIAN_12_NEW, "package": "g1-small",
      "networks": ["00000000-0000-0000-0000-000000000000"]}, 404, "ResourceNotFound",
     "network 00000000-0000-0000-0000-000000000000 not found"),
])
def test_create_validation(client, body, status, code, message):
    error(client.post("/my/machines", body), status, code, message)


def test_key_required_without_account_keys(tritonsim_factory):
    sim = tritonsim_factory(key_type=None, users=["bob"])
    bob = client_for(sim, user="bob")
    error(bob.post("/my/machines", {"image": DEBIAN_12_NEW, "package": "g1-small"}), 409,
          "KeyRequired", "At least one SSH key is required to provision")


def test_form_encoded_create(client):
    resp = client.session.post(client.url + "/my/machines", data={
        "image": DEBIAN_12_NEW, "package": "g1-small", "tag.kind": "form"},
        headers={**client.signer.headers("POST", "/my/machines"), "Accept-Version": "~9"})
    assert resp.status_code == 201, resp.text
    assert resp.json()["tags"] == {"kind": "form"}


def test_invalid_json_body(client):
    resp = client.session.post(client.url + "/my/machines", data="{not json",
                               headers={**client.signer.headers("POST", "/my/machines"),
                                        "Content-Type": "application/json"})
    error(resp, 400, "InvalidContent")


# ---- get / delete

def test_get_unknown_machine(client):
    error(client.get("/my/machines/00000000-0000-0000-0000-000000000000"), 404,
          "ResourceNotFound", "VM not found")


def test_delete_then_gone(client):
    m = create_running(client)
    resp = client.delete(f"/my/machines/{m['id']}")
    assert resp.status_code == 204 and resp.content == b""
    resp = client.get(f"/my/machines/{m['id']}")
    assert resp.status_code == 410
    body = resp.json()
    assert body["id"] == m["id"] and body["state"] == "deleted" and body["name"] == m["name"]
    assert client.delete(f"/my/machines/{m['id']}").status_code == 410
    resp = client.post(f"/my/machines/{m['id']}", {"action": "stop"})
    assert resp.status_code == 410 and resp.json()["state"] == "deleted"
    assert client.get(f"/my/machines/{m['id']}/tags").status_code == 410
    audit = client.get(f"/my/machines/{m['id']}/audit").json()
    assert audit[0]["action"] == "destroy"


def test_deletion_protection(client):
    m = create_running(client, deletion_protection=True)
    assert m["deletion_protection"] is True
    error(client.delete(f"/my/machines/{m['id']}"), 409, "CannotDestroyMachineError",
          '"deletion_protection" enabled')
    assert client.post(f"/my/machines/{m['id']}",
                       {"action": "disable_deletion_protection"}).status_code == 202
    assert client.get(f"/my/machines/{m['id']}").json()["deletion_protection"] is False
    assert client.delete(f"/my/machines/{m['id']}").status_code == 204
    m = create_running(client)
    assert client.post(f"/my/machines/{m['id']}?action=enable_deletion_protection"
                       ).status_code == 202
    error(client.delete(f"/my/machines/{m['id']}"), 409, "CannotDestroyMachineError")


# ---- actions

def test_actions_rejected_while_provisioning(tritonsim_factory):
    sim = tritonsim_factory(provision_delay=30)
    c = client_for(sim)
    m = create(c)
    for action in ("stop", "start", "reboot"):
        error(c.post(f"/my/machines/{m['id']}", {"action": action}), 409, "UnallocatedVM",
              f"Cannot call {action} for a VM that has not been provisioned yet")
    assert c.get(f"/my/machines/{m['id']}").json()["state"] == "provisioning"
    # deleting is still possible, and the delayed completion must not revive it
    assert c.delete(f"/my/machines/{m['id']}").status_code == 204


def test_stop_start_reboot(client):
    m = create_running(client)
    url = f"/my/machines/{m['id']}"
    resp = client.post(url, {"action": "stop"})
    assert resp.status_code == 202 and resp.content == b""
    assert client.get(url).json()["state"] == "stopping"
    client.wait_state(m["id"], ["stopped"])
    assert client.post(url, {"action": "stop"}).status_code == 202   # already stopped: no-op
    assert client.post(url, {"action": "start"}).status_code == 202
    client.wait_state(m["id"], ["running"])
    before = time.time()
    assert client.post(url + "?action=reboot").status_code == 202    # action in the query
    client.wait_state(m["id"], ["running"])
    time.sleep(0.3)
    audit = client.get(url + "/audit").json()
    assert [a["action"] for a in audit[:4]] == ["reboot", "start", "stop", "provision"]
    assert all(a["success"] == "yes" for a in audit)
    assert audit[0]["caller"] == {"type": "signature", "ip": "127.0.0.1",
                                  "keyId": client.signer.key_id}
    assert dt.datetime.fromisoformat(audit[0]["time"].replace("Z", "+00:00")).timestamp() > before


def test_resize_rename_firewall(client):
    m = create_running(client)
    url = f"/my/machines/{m['id']}"
    assert client.post(url, {"action": "resize", "package": G1_LARGE}).status_code == 202
    got = client.get(url).json()
    assert (got["package"], got["memory"], got["disk"]) == ("g1-large", 8192, 204800)
    error(client.post(url, {"action": "resize"}), 409, "MissingParameter")
    error(client.post(url, {"action": "resize", "package": "nope"}), 409, "InvalidArgument")

    new_name = unique("renamed")
    assert client.post(url, {"action": "rename", "name": new_name}).status_code == 202
    assert client.get(url).json()["name"] == new_name
    assert client.get(f"/my/machines?name={new_name}").json()[0]["id"] == m["id"]
    error(client.post(url, {"action": "rename"}), 409, "MissingParameter",
          "New name must be specified")
    other = create(client, unique())
    error(client.post(url, {"action": "rename", "name": other["name"]}), 409, "ValidationFailed")

    assert client.post(url, {"action": "enable_firewall"}).status_code == 202
    assert client.get(url).json()["firewall_enabled"] is True
    assert client.post(url, {"action": "disable_firewall"}).status_code == 202
    assert client.get(url).json()["firewall_enabled"] is False
    actions = [a["action"] for a in client.get(url + "/audit").json()]
    assert actions[:4] == ["disable_firewall", "enable_firewall", "rename", "resize"]


def test_action_errors(client):
    m = create_running(client)
    error(client.post(f"/my/machines/{m['id']}", {}), 409, "MissingParameter",
          "action is required")
    error(client.post(f"/my/machines/{m['id']}", {"action": "explode"}), 409,
          "InvalidArgument", "explode is not a valid action")
    error(client.post("/my/machines/00000000-0000-0000-0000-000000000000", {"action": "stop"}),
          404, "ResourceNotFound")


# ---- ListMachines

@pytest.fixture(scope="module")
def fleet(sim):
    """A separate account-full of machines for filter tests."""
    c = client_for(sim)
    machines = {
        "a": create(c, unique("flt"), **{"tag.frole": "worker", "tag.fn": 1, "tag.fon": True}),
        "b": create(c, unique("flt"), image=UBUNTU_NEW, package="g1-large",
                    **{"tag.frole": "worker", "tag.fn": "1", "tag.fon": "true"}),
        "c": create(c, unique("flt"), **{"tag.frole": "db"}),
    }
    for m in machines.values():
        c.wait_state(m["id"], ["running"])
    c.post(f"/my/machines/{machines['c']['id']}", {"action": "stop"})
    c.wait_state(machines["c"]["id"], ["stopped"])
    return {k: m["id"] for k, m in machines.items()}


def _ids(client, query):
    resp = client.get("/my/machines?" + query)
    assert resp.status_code == 200, resp.text
    return {m["id"] for m in resp.json()}


def test_list_filters(client, fleet):
    a, b, c = fleet["a"], fleet["b"], fleet["c"]
    assert _ids(client, "tag.frole=worker") == {a, b}
    assert _ids(client, "tag.frole=db") == {c}
    # type tolerant: "1" matches 1 and "1", "true" matches true and "true"
    assert _ids(client, "tag.fn=1") == {a, b}
    assert _ids(client, "tag.fon=true") == {a, b}
    assert _ids(client, "tag.frole=worker&tag.fn=1&brand=lx") == {b}
    assert {a, b} <= _ids(client, "state=running") and c not in _ids(client, "state=running")
    assert c in _ids(client, "state=stopped") and a not in _ids(client, "state=stopped")
    assert {a, b, c} <= _ids(client, "state=active")
    assert {a, b, c} <= _ids(client, "state=provisioning")   # CloudAPI quirk: means "active"
    assert b in _ids(client, f"image={UBUNTU_NEW}") and a not in _ids(client, f"image={UBUNTU_NEW}")
    assert b in _ids(client, "memory=8192") and a not in _ids(client, "memory=8192")
    assert b in _ids(client, "type=smartmachine") and a in _ids(client, "type=virtualmachine")
    name = client.get(f"/my/machines/{a}").json()["name"]
    assert _ids(client, f"name={name}") == {a}
    assert _ids(client, "name=" + name[:-1]) == set()
    assert _ids(client, "docker=true") == set()
    error(client.get("/my/machines?state=deleted"), 409, "InvalidArgument",
          "deleted is not a valid state")
    error(client.get("/my/machines?type=container"), 409, "InvalidArgument")


def test_deleted_hidden_unless_tombstone_or_destroyed(client):
    m = create_running(client)
    client.delete(f"/my/machines/{m['id']}")
    assert m["id"] not in _ids(client, "limit=1000")
    assert m["id"] in _ids(client, "tombstone=true")
    assert m["id"] in _ids(client, "tombstone=false")   # any value counts, as in CloudAPI
    assert m["id"] in _ids(client, "state=destroyed")


def test_list_headers_limit_offset_and_order(client, fleet):
    resp = client.get("/my/machines?limit=2")
    assert resp.headers["x-query-limit"] == "2" and resp.headers["x-resource-count"] == "2"
    everything = client.get("/my/machines").json()
    assert client.get("/my/machines").headers["x-query-limit"] == "1000"
    assert [m["id"] for m in everything] == [m["id"] for m in client.get("/my/machines").json()]
    page = client.get("/my/machines?limit=2&offset=1").json()
    assert [m["id"] for m in page] == [m["id"] for m in everything[1:3]]
    created = [m["created"] for m in everything]
    assert created == sorted(created)
    for bad in ("limit=0", "limit=1001", "limit=x", "offset=-1"):
        error(client.get("/my/machines?" + bad), 409, "ValidationFailed")


def test_head_list_and_get(client, fleet):
    resp = client.request("HEAD", "/my/machines")
    assert resp.status_code == 200 and resp.content == b""
    assert resp.headers["x-resource-count"]
    assert client.request("HEAD", f"/my/machines/{fleet['a']}").status_code == 200


def test_networks_omitted_for_version_7_0(sim, fleet):
    old = client_for(sim, accept_version="~7.0")
    body = old.get(f"/my/machines/{fleet['a']}").json()
    assert "networks" not in body and body["ips"]
    assert "networks" in client_for(sim).get(f"/my/machines/{fleet['a']}").json()

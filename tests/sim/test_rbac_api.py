"""RBAC in tritonsim over real HTTP: users, keys, policies, roles, role tags and
enforcement for sub-users (cloudapi.md 7.3 and the 7.4 recipe)."""

from urllib.parse import quote

import pytest

from sim.helpers import DEBIAN_12_NEW, G1_SMALL
from sim.signer import Client, Signer, client_for
from tritonsim.testing import generate_key

PASSWORD = "Not-A-Real-Secret-42"


@pytest.fixture(scope="module")
def sim(tritonsim_module_factory):
    return tritonsim_module_factory(users=["watcher"])


@pytest.fixture(scope="module")
def api(sim):
    return client_for(sim)


def _error(resp, status, code, message=None):
    assert resp.status_code == status, resp.text
    assert resp.json()["code"] == code
    if message is not None:
        assert resp.json()["message"] == message


def _machine(api, headers=None):
    resp = api.post("/my/machines", {"image": DEBIAN_12_NEW, "package": G1_SMALL},
                    headers=headers)
    assert resp.status_code == 201, resp.text
    return api.wait_state(resp.json()["id"], ["running"])["id"]


def _sub_user(sim, api, login):
    """Created through the API (7.4 steps 1-2), with a key of its own; a signed Client."""
    resp = api.post("/my/users", {"login": login, "email": f"{login}@example.com",
                                  "password": PASSWORD})
    assert resp.status_code == 201, resp.text
    assert resp.headers["Location"] == f"/{sim.account}/users/{login}"
    kp = generate_key(sim.data_dir.parent / "keys" / "api-users", login)
    resp = api.post(f"/my/users/{login}/keys", {"key": kp.pub_path.read_text(), "name": "k1"})
    assert resp.status_code == 201, resp.text
    assert resp.json()["fingerprint"] == kp.fingerprint
    return Client(sim.url, sim.account,
                  Signer(kp.key_path, f"/{sim.account}/users/{login}/keys/{kp.fingerprint}"))


@pytest.fixture(scope="module")
def recipe(sim, api):
    """cloudapi.md 7.4: user w-m, policy self-stop, role w-m bound to machine M by role tag."""
    worker = _sub_user(sim, api, "w-m")
    resp = api.post("/my/policies", {"name": "self-stop",
                                     "rules": ["CAN getmachine and stopmachine"]})
    assert resp.status_code == 201, resp.text
    resp = api.post("/my/roles", {"name": "w-m", "policies": [{"name": "self-stop"}],
                                  "members": [{"type": "subuser", "login": "w-m",
                                               "default": True}]})
    assert resp.status_code == 201, resp.text
    mine, other = _machine(api), _machine(api)
    resp = api.put(f"/my/machines/{mine}", {"role-tag": ["w-m"]})
    assert resp.status_code == 200
    assert resp.json() == {"name": f"/{sim.account}/machines/{mine}", "role-tag": ["w-m"]}
    return worker, mine, other


def test_recipe_get_and_stop_own_machine(recipe, api):
    worker, mine, other = recipe
    assert worker.get(f"/my/machines/{mine}").json()["id"] == mine
    assert worker.post(f"/my/machines/{mine}", {"action": "stop"}).status_code == 202
    assert api.wait_state(mine, ["stopped"])["state"] == "stopped"
    assert worker.post(f"/my/machines/{mine}", {"action": "start"}).status_code == 403


@pytest.mark.parametrize("call, path_of, action", [
    (lambda w, m, o: w.get(f"/my/machines/{o}"), lambda m, o: f"/my/machines/{o}", "getmachine"),
    (lambda w, m, o: w.post(f"/my/machines/{o}", {"action": "stop"}),
     lambda m, o: f"/my/machines/{o}", "stopmachine"),
    (lambda w, m, o: w.delete(f"/my/machines/{m}"), lambda m, o: f"/my/machines/{m}",
     "deletemachine"),
    (lambda w, m, o: w.post("/my/machines", {"image": DEBIAN_12_NEW, "package": G1_SMALL}),
     lambda m, o: "/my/machines", "createmachine"),
    (lambda w, m, o: w.get("/my/machines"), lambda m, o: "/my/machines", "listmachines"),
    (lambda w, m, o: w.get("/my/keys"), lambda m, o: "/my/keys", "listkeys"),
    (lambda w, m, o: w.get(f"/my/machines/{m}/tags"), lambda m, o: f"/my/machines/{m}/tags",
     "listmachinetags"),
    (lambda w, m, o: w.put(f"/my/machines/{m}", {"role-tag": []}),
     lambda m, o: f"/my/machines/{m}", "setroletags"),
    (lambda w, m, o: w.get("/my/users"), lambda m, o: "/my/users", "listusers"),
])
def test_recipe_denials(recipe, call, path_of, action):
    worker, mine, other = recipe
    _error(call(worker, mine, other), 403, "NotAuthorized",
           f"You do not have permission to access {path_of(mine, other)} ({action})")


def test_role_tag_header_and_collections(recipe, sim, api):
    worker, mine, other = recipe
    assert api.get(f"/my/machines/{mine}").headers["Role-Tag"] == "w-m"
    assert "Role-Tag" not in api.get(f"/my/machines/{other}").headers
    resp = api.put("/my/keys", {"role-tag": ["w-m"]})
    assert resp.json() == {"name": f"/{sim.account}/keys", "role-tag": ["w-m"]}
    _error(api.put("/my/machines", {"role-tag": ["nope"]}), 409, "InvalidArgument",
           "Role(s) nope not found")
    _error(api.put("/my/machines/00000000-0000-4000-8000-000000000000", {"role-tag": ["w-m"]}),
           404, "ResourceNotFound", "VM not found")
    assert api.put("/my/keys", {"role-tag": []}).json()["role-tag"] == []


def test_delete_with_deletemachine_policy(sim, api):
    worker = _sub_user(sim, api, "w-del")
    api.post("/my/policies", {"name": "may-delete", "rules": "CAN getmachine and deletemachine"})
    api.post("/my/roles", {"name": "w-del", "policies": ["may-delete"],
                           "members": [{"type": "subuser", "login": "w-del", "default": True}]})
    machine = _machine(api, headers={"Role-Tag": "w-del"})
    assert api.get(f"/my/machines/{machine}").headers["Role-Tag"] == "w-del"
    assert worker.delete(f"/my/machines/{machine}").status_code == 204
    assert api.wait_state(machine, ["deleted"])["state"] == "deleted"


def test_as_role_and_non_default_roles(sim, api):
    worker = _sub_user(sim, api, "w-as")
    api.post("/my/policies", {"name": "read-keys", "rules": ["CAN listkeys"]})
    api.post("/my/roles", {"name": "keyreader", "policies": [{"name": "read-keys"}],
                           "members": [{"type": "subuser", "login": "w-as", "default": False}]})
    api.put("/my/keys", {"role-tag": ["keyreader"]})
    _error(worker.get("/my/keys"), 403, "NotAuthorized")            # not a default role
    assert worker.get("/my/keys?as-role=keyreader").status_code == 200
    _error(worker.get("/my/keys?as-role=nope"), 409, "InvalidArgument",
           'invalid "as-role" param: user w-as does not have the following roles: nope')
    _error(worker.get("/my/keys?as-role=w-m"), 409, "InvalidArgument")   # not a member


def test_sub_user_create_tags_with_active_roles(sim, api):
    worker = _sub_user(sim, api, "w-mk")
    api.post("/my/policies", {"name": "maker", "rules": ["CAN createmachine and getmachine"]})
    api.post("/my/roles", {"name": "maker", "policies": [{"name": "maker"}],
                           "members": [{"type": "subuser", "login": "w-mk", "default": True}]})
    api.put("/my/machines", {"role-tag": ["maker"]})
    resp = worker.post("/my/machines", {"image": DEBIAN_12_NEW, "package": G1_SMALL})
    assert resp.status_code == 201, resp.text
    machine = resp.json()["id"]
    assert api.get(f"/my/machines/{machine}").headers["Role-Tag"] == "maker"
    assert worker.get(f"/my/machines/{machine}").status_code == 200
    api.put("/my/machines", {"role-tag": []})


def test_command_line_user_is_administrator(sim, api):
    watcher = client_for(sim, user="watcher")
    machine = _machine(api)
    assert watcher.get("/my/machines").status_code == 200
    assert watcher.post(f"/my/machines/{machine}", {"action": "stop"}).status_code == 202
    roles = {r["name"]: r for r in api.get("/my/roles").json()}
    assert roles["administrator"]["members"][0]["login"] == "watcher"
    assert roles["administrator"]["members"][0]["default"] is True


def test_users_crud_and_no_password_anywhere(sim, api):
    _error(api.post("/my/users", {"login": "x1"}), 409, "MissingParameter",
           "Request is missing required parameters: email is required, password is required")
    _error(api.post("/my/users", {"login": "x1", "email": "nope", "password": PASSWORD}), 409,
           "InvalidArgument", "email: nope is invalid")
    created = api.post("/my/users", {"login": "x1", "email": "x1@example.com",
                                     "password": PASSWORD, "firstName": "X"}).json()
    assert "password" not in created and created["firstName"] == "X"
    _error(api.post("/my/users", {"login": "x1", "email": "x1@example.com",
                                  "password": PASSWORD}), 409, "InvalidArgument")
    assert api.get(f"/my/users/{created['id']}").json()["login"] == "x1"
    updated = api.post("/my/users/x1", {"lastName": "Y"}).json()
    assert updated["lastName"] == "Y"
    assert "x1" in {u["login"] for u in api.get("/my/users").json()}
    for path in (sim.data_dir / "tritonsim.sqlite", sim.log_path):
        assert PASSWORD.encode() not in path.read_bytes()
    for wal in sim.data_dir.glob("tritonsim.sqlite-*"):
        assert PASSWORD.encode() not in wal.read_bytes()
    assert api.delete("/my/users/x1").status_code == 204
    _error(api.get("/my/users/x1"), 404, "ResourceNotFound", "x1 does not exist")


def test_user_and_account_keys(sim, api):
    _sub_user(sim, api, "w-keys")
    keys = api.get("/my/users/w-keys/keys").json()
    assert [k["name"] for k in keys] == ["k1"]
    assert api.get("/my/users/w-keys/keys/k1").json()["fingerprint"] == keys[0]["fingerprint"]
    _error(api.post("/my/users/w-keys/keys", {"key": keys[0]["key"]}), 409, "InvalidArgument",
           "key already exists or is invalid")
    _error(api.post("/my/users/w-keys/keys", {}), 409, "MissingParameter",
           "key is a required argument")
    _error(api.post("/my/users/w-keys/keys", {"key": "garbage"}), 409, "InvalidArgument",
           "key is invalid")
    assert api.delete("/my/users/w-keys/keys/k1").status_code == 204
    assert api.get("/my/users/w-keys/keys").json() == []
    kp = generate_key(sim.data_dir.parent / "keys" / "extra-account", "acct2")
    resp = api.post("/my/keys", {"key": kp.pub_path.read_text(), "name": "second"})
    assert resp.status_code == 201
    assert resp.headers["Location"] == f"/{sim.account}/keys/{quote(kp.fingerprint, safe='')}"
    assert api.get("/my/keys/second").json()["fingerprint"] == kp.fingerprint
    assert api.delete("/my/keys/second").status_code == 204
    _error(api.get("/my/keys/second"), 404, "ResourceNotFound", "second does not exist")


def test_policies_and_roles_shapes(sim, api):
    _error(api.post("/my/policies", {"name": "bad", "rules": ["CAN"]}), 409, "InvalidArgument")
    _error(api.post("/my/policies", {"name": "bad"}), 409, "MissingParameter",
           "Request is missing required parameters: rules is required")
    policy = api.post("/my/policies", {"name": "p-shape", "rules": ["CAN getaccount"],
                                       "description": "d"}).json()
    assert set(policy) == {"id", "name", "rules", "description"}
    assert api.post(f"/my/policies/{policy['id']}", {"rules": ["CAN *"]}).json()["rules"] == \
        ["CAN *"]
    _error(api.post("/my/roles", {}), 409, "MissingParameter",
           "Request is missing required parameter: name")
    _error(api.post("/my/roles", {"name": "r", "policies": ["nope"]}), 409, "InvalidArgument",
           "Invalid policy nope")
    role = api.post("/my/roles", {"name": "r-shape", "policies": [{"id": policy["id"]}],
                                  "members": ["watcher"], "default_members": ["watcher"]})
    assert role.status_code == 201
    old = client_for(sim, accept_version="~8").get("/my/roles/r-shape").json()
    assert old["members"] == ["watcher"] and old["default_members"] == ["watcher"]
    assert old["policies"] == ["p-shape"]
    assert api.delete("/my/policies/p-shape").status_code == 204
    assert api.get("/my/roles/r-shape").json()["policies"] == []
    assert api.delete("/my/roles/r-shape").status_code == 204


def test_update_account_and_limits(sim, api):
    resp = api.post("/my", {"firstName": "Ada", "triton_cns_enabled": True})
    assert resp.status_code == 200
    assert resp.json()["firstName"] == "Ada" and resp.json()["triton_cns_enabled"] is True
    assert api.get("/my").json()["firstName"] == "Ada"
    assert api.get("/my/limits").json() == []


def test_persistence_across_restart(sim, api, recipe):
    worker, mine, other = recipe
    sim.restart()
    assert worker.get(f"/my/machines/{mine}").status_code == 200
    _error(worker.get(f"/my/machines/{other}"), 403, "NotAuthorized")
    assert api.get(f"/my/machines/{mine}").headers["Role-Tag"] == "w-m"
    assert "self-stop" in {p["name"] for p in api.get("/my/policies").json()}
    assert api.get("/my").json()["firstName"] == "Ada"
    assert api.get("/my/users/w-keys/keys").json() == []


def test_password_in_query_string_stays_out_of_the_request_log(tritonsim_factory):
    logged = tritonsim_factory(extra_args=["--log-requests"])
    api = client_for(logged)
    resp = api.post(f"/my/users?login=q1&email=q1@example.com&password={PASSWORD}")
    assert resp.status_code == 201, resp.text
    log = logged.log_path.read_text()
    assert "/my/users?login=q1" in log and "password=[redacted]" in log
    assert PASSWORD not in log


def test_new_keys_take_the_role_tag_header(sim, api):
    kp = generate_key(sim.data_dir.parent / "keys" / "tagged-account", "tagged")
    resp = api.post("/my/keys", {"key": kp.pub_path.read_text()}, headers={"Role-Tag": "w-m"})
    assert resp.status_code == 201, resp.text
    assert api.get(f"/my/keys/{kp.fingerprint}").headers["Role-Tag"] == "w-m"
    _error(api.post("/my/keys", {"key": kp.pub_path.read_text()}, headers={"Role-Tag": "nope"}),
           409, "InvalidArgument", "Role(s) nope not found")
    assert api.delete(f"/my/keys/{kp.fingerprint}").status_code == 204

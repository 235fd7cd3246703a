"""The official triton CLI's `rbac` commands, `triton -u SUBUSER` and `triton account`
against tritonsim's RBAC."""

import json
import shutil
from pathlib import Path

import pytest

from cli.conftest import TritonCLI
from sim.signer import client_for
from tritonsim.testing import generate_key

PASSWORD = "Cli-Not-A-Secret-7"


@pytest.fixture(scope="module")
def api(cli_sim):
    return client_for(cli_sim)


def _write(home, name, obj):
    path = Path(home) / name
    path.write_text(json.dumps(obj))
    return path


@pytest.fixture(scope="module")
def setup(triton, cli_sim, api):
    """User, key, policy and role made by the CLI; a machine role-tagged by the CLI."""
    home = triton.env["HOME"]
    out = triton.run("rbac", "user", "-a", _write(home, "user.json", {
        "login": "w-cli", "email": "w-cli@example.com", "password": PASSWORD})).stdout
    assert "w-cli" in out
    kp = generate_key(Path(home) / "gen", "w_cli")
    ssh = Path(home) / ".ssh"
    shutil.copy(kp.key_path, ssh / "w_cli")
    shutil.copy(kp.pub_path, ssh / "w_cli.pub")
    (ssh / "w_cli").chmod(0o600)
    triton.run("rbac", "key", "-a", "-n", "k1", "w-cli", kp.pub_path)
    triton.run("rbac", "policy", "-a", _write(home, "policy.json", {
        "name": "cli-self-stop", "description": "get and stop",
        "rules": ["CAN getmachine and stopmachine"]}))
    triton.run("rbac", "role", "-a", _write(home, "role.json", {
        "name": "cli-worker", "policies": [{"name": "cli-self-stop"}],
        "members": [{"type": "subuser", "login": "w-cli", "default": True}]}))
    lines = triton.json_lines("instance", "create", "-w", "-j", "-n", "rbac-mine",
                              "debian-12", "g1-small")
    mine = lines[-1]["id"]
    lines = triton.json_lines("instance", "create", "-w", "-j", "-n", "rbac-other",
                              "debian-12", "g1-small")
    other = lines[-1]["id"]
    triton.run("rbac", "instance-role-tags", "-y", "-s", "cli-worker", "rbac-mine")
    sub = TritonCLI(cli_sim, home)
    sub.env.update(TRITON_USER="w-cli", TRITON_KEY_ID=kp.fingerprint)
    return {"sub": sub, "mine": mine, "other": other, "fingerprint": kp.fingerprint}


def test_listings_show_what_the_cli_made(triton, setup):
    users = triton.json_lines("rbac", "users", "-j")
    assert "w-cli" in {u["login"] for u in users}
    user = triton.json("rbac", "user", "-j", "w-cli")
    assert user["email"] == "w-cli@example.com" and "password" not in user
    keys = triton.json_lines("rbac", "keys", "-j", "w-cli")
    assert [(k["name"], k["fingerprint"]) for k in keys] == [("k1", setup["fingerprint"])]
    policies = {p["name"]: p for p in triton.json_lines("rbac", "policies", "-j")}
    assert policies["cli-self-stop"]["rules"] == ["CAN getmachine and stopmachine"]
    role = triton.json("rbac", "role", "-j", "cli-worker")
    assert role["members"][0]["login"] == "w-cli" and role["members"][0]["default"] is True
    assert role["policies"][0]["name"] == "cli-self-stop"
    assert "cli-worker" in {r["name"] for r in triton.json_lines("rbac", "roles", "-j")}
    tags = triton.run("rbac", "instance-role-tags", "rbac-mine").stdout.split()
    assert tags == ["cli-worker"]
    assert PASSWORD not in triton.run("rbac", "user", "w-cli").stdout


def test_sub_user_may_get_and_stop_its_machine(setup, api):
    sub, mine = setup["sub"], setup["mine"]
    assert sub.json("instance", "get", "-j", mine)["id"] == mine
    sub.run("instance", "stop", "-w", mine)
    assert api.get(f"/my/machines/{mine}").json()["state"] == "stopped"


def test_sub_user_sees_403(setup):
    sub = setup["sub"]
    for args in (("instance", "get", setup["other"]),
                 ("instance", "delete", "-f", setup["mine"]), ("keys",), ("instance", "list")):
        result = sub.run(*args, check=False)
        assert result.returncode != 0, args
        assert "You do not have permission to access" in result.stderr, result.stderr


def test_role_tags_set_and_cleared(triton, setup):
    triton.run("rbac", "instance-role-tags", "-y", "-D", "rbac-other")
    assert triton.run("rbac", "instance-role-tags", "rbac-other").stdout.strip() == ""
    triton.run("rbac", "instance-role-tags", "-y", "-a", "cli-worker", "rbac-other")
    assert triton.run("rbac", "instance-role-tags", "rbac-other").stdout.split() == \
        ["cli-worker"]
    triton.run("rbac", "instance-role-tags", "-y", "-D", "rbac-other")


def test_account_update_and_limits(triton):
    triton.run("account", "update", "firstName=Cli", "triton_cns_enabled=false")
    account = triton.json("account", "get", "-j")
    assert account["firstName"] == "Cli"
    assert triton.run("account", "limits", "-j").stdout.strip() == "[]"


def test_deletes(triton, setup):
    triton.run("rbac", "key", "-d", "-y", "w-cli", "k1")
    assert triton.run("rbac", "keys", "-j", "w-cli").stdout.strip() == ""
    triton.run("rbac", "role", "-d", "-y", "cli-worker")
    triton.run("rbac", "policy", "-d", "-y", "cli-self-stop")
    triton.run("rbac", "user", "-d", "-y", "w-cli")
    assert "w-cli" not in {u["login"] for u in triton.json_lines("rbac", "users", "-j")}

"""playbooks/tasks/watcher_identity.yml against tritonsim's RBAC: the idle watcher's sub-user may look at and
stop (or delete) its own cluster's machines and nothing else; teardown.yml removes it with the cluster."""

import stat

from sim.signer import Client, Signer, client_for, md5_fingerprint_of_pub
from support.control import REPO

PLAYBOOKS = REPO / "playbooks"


def identity_book(tmp_path, name="identity.yml", workers=2):
    """What spawn_slaves.yml's first play does for the identity and the machines (no SSH plays), then what a
    fleet host (added like spawn_slaves adds them) gets for the watcher role's settings."""
    book = tmp_path / name
    book.write_text("""
- hosts: localhost
  gather_facts: false
  vars_files: [%(vars)s]
  tasks:
    - name: Watcher identity
      ansible.builtin.include_tasks: %(tasks)s
      when: watcher_subuser | bool
    - name: master
      locustfleet.triton.joyent_machine:
        name: "{{ cluster }}-master"
        image: debian-12
        package: g1-small
        tags: "{{ fleet_tags | combine({'locustfleet.role': 'master'}) }}"
        role_tags: "{{ [cluster ~ '-watcher'] if watcher_subuser | bool else omit }}"
        wait_timeout: 60
    - name: workers
      locustfleet.triton.joyent_machine:
        count: %(workers)d
        count_tags: {locustfleet.cluster: "{{ cluster }}", locustfleet.role: worker}
        name_prefix: "{{ cluster }}-worker-"
        image: debian-12
        package: g1-small
        tags: "{{ fleet_tags }}"
        role_tags: "{{ [cluster ~ '-watcher'] if watcher_subuser | bool else omit }}"
        wait_timeout: 60
    - name: a fleet host
      ansible.builtin.add_host: {name: fleethost, ansible_connection: local}
      changed_when: false

- hosts: fleethost
  gather_facts: false
  vars_files: [%(vars)s]
  tasks:
    - name: watcher settings
      ansible.builtin.debug:
        msg:
          user: "{{ locust_idle_watcher_user }}"
          key_id: "{{ locust_idle_watcher_key_id }}"
          src: "{{ locust_idle_watcher_private_key_src }}"
          idle_action: "{{ idle_action }}"
""" % {"vars": PLAYBOOKS / "vars" / "fleet.yml", "tasks": PLAYBOOKS / "tasks" / "watcher_identity.yml",
       "workers": workers})
    return book


def watcher_client(sim, key_path, login):
    fingerprint = md5_fingerprint_of_pub(str(key_path) + ".pub")
    return Client(sim.url, sim.account, Signer(key_path, "/%s/users/%s/keys/%s" % (sim.account, login, fingerprint)))


IDENTITY_TASKS = ("Watcher identity - ed25519 key pair (made once)", "Watcher identity - sub-user holding only that key",
                  "Watcher identity - policy allowing only what the watcher calls",
                  "Watcher identity - role binding the user to the policy")


def test_watcher_key_stops_only_its_own_fleet(tritonsim, playbook, tmp_path):
    tritonsim.seed_machines(1, tags={"locustfleet.cluster": "other"}, name_prefix="outsider-")
    (outsider,) = client_for(tritonsim).get("/my/machines?tag.locustfleet.cluster=other").json()
    book = identity_book(tmp_path)
    extra = {"cluster": "wid", "watcher_subuser": True}

    check = playbook(tritonsim, book, extra_vars=extra, check=True)
    assert client_for(tritonsim).get("/my/users/wid-watcher").status_code == 404
    assert check.result("Watcher identity - sub-user holding only that key")["changed"] is True

    run = playbook(tritonsim, book, extra_vars=extra)
    home = tmp_path / "home"
    key_dir = home / ".locustfleet" / "keys"
    key = key_dir / "wid-watcher"
    assert stat.S_IMODE(key_dir.stat().st_mode) == 0o700 and stat.S_IMODE(key.stat().st_mode) == 0o600
    private = key.read_text()
    assert private.split("\n", 1)[1][:40] not in run.output  # no part of the private key in any output
    fingerprint = md5_fingerprint_of_pub(str(key) + ".pub")
    settings = run.result("watcher settings")["msg"]
    assert settings == {"user": "wid-watcher", "key_id": fingerprint, "src": str(key), "idle_action": "stop"}

    api = client_for(tritonsim)
    assert [k["fingerprint"] for k in api.get("/my/users/wid-watcher/keys").json()] == [fingerprint]
    assert api.get("/my/policies/wid-watcher").json()["rules"] == ["CAN getmachine and stopmachine"]
    role = api.get("/my/roles/wid-watcher").json()
    assert [(m["login"], m["default"]) for m in role["members"]] == [("wid-watcher", True)]
    fleet = api.get("/my/machines?tag.locustfleet.cluster=wid").json()
    assert len(fleet) == 3
    for machine in fleet:
        assert api.get("/my/machines/%s" % machine["id"]).headers.get("Role-Tag") == "wid-watcher"

    watcher = watcher_client(tritonsim, key, "wid-watcher")
    worker = next(m for m in fleet if m["name"] == "wid-worker-1")
    master = next(m for m in fleet if m["name"] == "wid-master")
    assert watcher.get("/my/machines/%s" % master["id"]).status_code == 200
    assert watcher.get("/my/machines/%s" % worker["id"]).status_code == 200
    denied = watcher.get("/my/machines/%s" % outsider["id"])
    assert denied.status_code == 403 and denied.json()["code"] == "NotAuthorized"
    assert watcher.delete("/my/machines/%s" % worker["id"]).status_code == 403
    assert watcher.post("/my/machines/%s" % outsider["id"], {"action": "stop"}).status_code == 403
    assert watcher.post("/my/machines", {"image": "debian-12", "package": "g1-small"}).status_code == 403
    assert watcher.get("/my/keys").status_code == 403
    assert watcher.get("/my/machines").status_code == 403
    assert watcher.post("/my/machines/%s" % worker["id"], {"action": "stop"}).status_code == 202
    api.wait_state(worker["id"], ["stopped"])

    # Again: nothing changes, the key pair is reused.
    tritonsim.reset_stats()
    again = playbook(tritonsim, book, extra_vars=extra)
    assert [again.result(name)["changed"] for name in IDENTITY_TASKS] == [False] * len(IDENTITY_TASKS)
    assert [e["status"] for e in again.entries if e["task"] == IDENTITY_TASKS[0]] == ["skipped"]  # key made: no run
    assert key.read_text() == private
    by_route = tritonsim.stats()["by_route"]
    assert not [r for r in by_route if r.startswith(("Create", "Update", "Delete", "Replace"))], by_route

    # teardown.yml of the whole cluster removes the identity too; the outsider stays.
    playbook(tritonsim, PLAYBOOKS / "teardown.yml", extra_vars={"cluster": "wid", "teardown_all": True})
    for path in ("/my/users/wid-watcher", "/my/policies/wid-watcher", "/my/roles/wid-watcher"):
        assert api.get(path).status_code == 404, path
    assert api.get("/my/machines/%s" % outsider["id"]).json()["state"] == "running"


def test_delete_policy_when_idle_action_is_delete(tritonsim, playbook, tmp_path):
    book = identity_book(tmp_path, workers=1)
    playbook(tritonsim, book, extra_vars={"cluster": "wdel", "watcher_subuser": True, "idle_action": "delete"})
    api = client_for(tritonsim)
    assert api.get("/my/policies/wdel-watcher").json()["rules"] == ["CAN getmachine and deletemachine"]
    watcher = watcher_client(tritonsim, tmp_path / "home" / ".locustfleet" / "keys" / "wdel-watcher", "wdel-watcher")
    (worker,) = api.get("/my/machines?tag.locustfleet.role=worker&tag.locustfleet.cluster=wdel").json()
    assert watcher.post("/my/machines/%s" % worker["id"], {"action": "stop"}).status_code == 403
    assert watcher.delete("/my/machines/%s" % worker["id"]).status_code == 204


def test_without_the_option_nothing_is_made(tritonsim, playbook, tmp_path):
    run = playbook(tritonsim, identity_book(tmp_path, workers=1), extra_vars={"cluster": "wnone"})
    assert client_for(tritonsim).get("/my/users").json() == []
    assert run.result("watcher settings")["msg"] == {"user": "", "key_id": "", "src": "", "idle_action": "poweroff"}
    assert not (tmp_path / "home" / ".locustfleet").exists()

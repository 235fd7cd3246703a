"""joyent_machine through ansible-playbook against tritonsim: single machines and fleets."""

import json
import os

from support.control import live_machines as machines, sim_client

READ_ROUTES = ("List", "Get", "MachineAudit", "Ping")


def write_calls(sim):
    """Calls that change something, by route, from tritonsim's counters."""
    return {route: codes for route, codes in sim.stats()["by_route"].items() if not route.startswith(READ_ROUTES)}


FLEET = """
- name: fleet
  locustfleet.triton.joyent_machine:
    count: "{{ count }}"
    count_tags: {cluster: demo, role: worker}
    image: debian-12
    package: g1-medium
    tags: {owner: qa}
    metadata: {locust-master: 10.0.0.5}
    wait_timeout: "{{ timeout | default(120) }}"
    poll_interval: 0.3
    replace_failed: "{{ replace | default(false) }}"
"""


def test_single_machine_lifecycle_and_idempotency(tritonsim, playbook):
    create = """
        - name: machine
          locustfleet.triton.joyent_machine:
            name: web-1
            state: "{{ want }}"
            image: ubuntu-24.04@20240701
            package: g1-small
            networks: [sim-public]
            tags: {role: web, weight: 3, canary: true}
            user_script: "#!/bin/sh\\necho hello"
            poll_interval: 0.2
    """
    run = playbook(tritonsim, create, extra_vars={"want": "present"})
    machine = run.result("machine")["machine"]
    assert run.result("machine")["changed"] and machine["state"] == "running"
    assert machine["tags"] == {"role": "web", "weight": 3, "canary": True}
    assert run.result("machine")["created_ids"] == [machine["id"]]
    listed = machines(tritonsim)
    assert [m["name"] for m in listed] == ["web-1"]
    assert listed[0]["metadata"]["user-script"] == "#!/bin/sh\necho hello"
    assert listed[0]["image"] == run.result("machine")["machine"]["image"]

    tritonsim.reset_stats()
    again = playbook(tritonsim, create, extra_vars={"want": "present"})
    assert again.recap["changed"] == 0 and write_calls(tritonsim) == {}

    for want, state in (("stopped", "stopped"), ("running", "running")):
        run = playbook(tritonsim, create, extra_vars={"want": want})
        assert run.result("machine")["changed"] and run.result("machine")["machine"]["state"] == state
        tritonsim.reset_stats()
        assert playbook(tritonsim, create, extra_vars={"want": want}).recap["changed"] == 0
        assert write_calls(tritonsim) == {}

    tritonsim.reset_stats()
    run = playbook(tritonsim, create, extra_vars={"want": "restarted"})
    assert run.result("machine")["changed"] and run.result("machine")["machine"]["state"] == "running"
    assert write_calls(tritonsim) == {"RebootMachine": {"202": 1}}

    run = playbook(tritonsim, create, extra_vars={"want": "absent"})
    assert run.result("machine")["deleted_ids"] == [machine["id"]] and machines(tritonsim) == []
    assert playbook(tritonsim, create, extra_vars={"want": "absent"}).recap["changed"] == 0


def test_check_mode_writes_nothing_and_diff_shows_the_plan(tritonsim, playbook):
    task = """
        - name: machine
          locustfleet.triton.joyent_machine:
            name: db-1
            image: debian-12
            package: g1-small
            tags: {role: db}
    """
    run = playbook(tritonsim, task, check=True, diff=True)
    result = run.result("machine")
    assert result["changed"] and result["diff"] == {
        "before": {}, "after": {"name": "db-1", "state": "running", "tags": {"role": "db"}}}
    assert write_calls(tritonsim) == {} and machines(tritonsim) == []

    playbook(tritonsim, task)
    tritonsim.reset_stats()
    run = playbook(tritonsim, task.replace("{role: db}", "{role: db, tier: 2}").replace("name: db-1\n",
                   "name: db-1\n            state: stopped\n"), check=True, diff=True)
    diff = run.result("machine")["diff"]
    assert diff["before"]["state"] == "running" and diff["after"]["state"] == "stopped"
    assert diff["after"]["tags"] == {"role": "db", "tier": 2}
    assert write_calls(tritonsim) == {}


def test_fleet_grows_shrinks_and_is_idempotent(tritonsim, playbook):
    run = playbook(tritonsim, FLEET, extra_vars={"count": 5})
    fleet = run.result("fleet")
    assert len(fleet["created_ids"]) == 5 and len(fleet["machines"]) == 5
    names = sorted(m["name"] for m in machines(tritonsim, cluster="demo"))
    assert names == ["demo-worker-%d" % i for i in range(1, 6)]
    assert all(m["state"] == "running" and m["tags"]["owner"] == "qa" for m in fleet["machines"])

    tritonsim.reset_stats()
    again = playbook(tritonsim, FLEET, extra_vars={"count": 5})
    assert again.recap["changed"] == 0 and write_calls(tritonsim) == {}
    assert tritonsim.route_stats("ListMachines") == {"200": 1}

    run = playbook(tritonsim, FLEET, extra_vars={"count": 3}, diff=True)
    first_three = ["demo-worker-1", "demo-worker-2", "demo-worker-3"]
    assert len(run.result("fleet")["deleted_ids"]) == 2
    assert sorted(run.result("fleet")["diff"]["after"]["machines"]) == first_three
    assert sorted(m["name"] for m in machines(tritonsim, cluster="demo")) == first_three
    run = playbook(tritonsim, FLEET, extra_vars={"count": 4})
    assert [m["name"] for m in machines(tritonsim, cluster="demo") if m["id"] in run.result("fleet")["created_ids"]] \
        == ["demo-worker-4"]

    run = playbook(tritonsim, FLEET, extra_vars={"count": 0})
    assert len(run.result("fleet")["deleted_ids"]) == 4 and machines(tritonsim, cluster="demo") == []


def test_fleet_state_absent_and_stopped(tritonsim, playbook):
    playbook(tritonsim, FLEET, extra_vars={"count": 3})
    tritonsim.seed_machines(2, tags={"cluster": "other"}, name_prefix="other-")
    run = playbook(tritonsim, FLEET.replace('count: "{{ count }}"', "count: 3\n    state: stopped"))
    assert {m["state"] for m in run.result("fleet")["machines"]} == {"stopped"}
    run = playbook(tritonsim, """
        - name: gone
          locustfleet.triton.joyent_machine:
            count_tags: {cluster: demo}
            state: absent
            poll_interval: 0.2
    """)
    assert len(run.result("gone")["deleted_ids"]) == 3
    assert [m["tags"]["cluster"] for m in machines(tritonsim)] == ["other", "other"]


def test_fleet_state_running_starts_stopped_members(tritonsim, playbook):
    """What spawn_slaves relies on when workers were stopped by their idle watchers: kept, started again."""
    playbook(tritonsim, FLEET, extra_vars={"count": 2})
    playbook(tritonsim, FLEET.replace('count: "{{ count }}"', "count: 2\n    state: stopped"))
    running = FLEET.replace('count: "{{ count }}"', 'count: "{{ count }}"\n    state: running')
    run = playbook(tritonsim, running, extra_vars={"count": 3})
    fleet = run.result("fleet")
    assert run.recap["changed"] == 1 and len(fleet["created_ids"]) == 1 and fleet["deleted_ids"] == []
    assert sorted((m["name"], m["state"]) for m in machines(tritonsim, cluster="demo")) == \
        [("demo-worker-%d" % i, "running") for i in (1, 2, 3)]
    assert playbook(tritonsim, running, extra_vars={"count": 3}).recap["changed"] == 0


def test_fleet_of_50_converges_through_faults_without_duplicates(tritonsim_factory, playbook):
    sim = tritonsim_factory(throttle="10:30", faults={"503": 0.1, "drop": 0.05, "lost_create": 0.05}, seed=7,
                            provision_delay=1.0)
    run = playbook(sim, FLEET, extra_vars={"count": 50, "timeout": 300})
    fleet = run.result("fleet")
    live = machines(sim, cluster="demo")
    assert len(live) == 50 and len({m["name"] for m in live}) == 50
    assert sorted(fleet["created_ids"]) == sorted(m["id"] for m in live)
    assert fleet["failed_ids"] == [] and all(m["state"] == "running" for m in live)
    stats = sim.stats()["by_route"]
    assert stats["CreateMachine"].get("503") or stats["CreateMachine"].get("drop"), stats["CreateMachine"]
    assert sum(stats["CreateMachine"].values()) >= 50
    sim.set_faults({})
    sim.reset_stats()
    assert playbook(sim, FLEET, extra_vars={"count": 50}).recap["changed"] == 0
    assert write_calls(sim) == {}


def test_provisioning_failures_reported_or_replaced(tritonsim_factory, playbook):
    sim = tritonsim_factory(faults={"provision_fail": 1.0})
    run = playbook(sim, FLEET, extra_vars={"count": 2}, expect_rc=2)
    fleet = run.result("fleet")
    assert len(fleet["failed_ids"]) == 2 and fleet["msg"].startswith("2 machine(s) ended in state failed: ")
    assert all(mid in fleet["msg"] for mid in fleet["failed_ids"])

    sim.set_faults({"provision_fail": 0.5})
    run = playbook(sim, FLEET, extra_vars={"count": 4, "replace": True, "timeout": 120})
    assert len(machines(sim, cluster="demo")) == 4
    assert all(m["state"] == "running" for m in run.result("fleet")["machines"])


def test_timeout_lists_every_machine_and_its_last_state(tritonsim_factory, playbook):
    sim = tritonsim_factory(provision_delay=60)
    run = playbook(sim, FLEET, extra_vars={"count": 2, "timeout": 2}, expect_rc=2)
    result = run.result("fleet")
    assert result["msg"].startswith("timed out after 2s waiting for 2 machine(s) to settle; last states: ")
    for machine_id in result["created_ids"]:
        assert "%s (demo-worker-" % machine_id in result["msg"]
    assert result["msg"].count(": provisioning") == 2


def test_lost_create_response_never_duplicates(tritonsim, playbook):
    tritonsim.set_faults({"lost_create": 1.0})
    run = playbook(tritonsim, """
        - name: machine
          locustfleet.triton.joyent_machine:
            name: solo
            image: debian-12
            package: g1-small
            poll_interval: 0.2
    """)
    assert [m["name"] for m in machines(tritonsim)] == ["solo"]
    assert run.result("machine")["created_ids"] == [machines(tritonsim)[0]["id"]]
    assert tritonsim.route_stats("CreateMachine") == {"drop": 1}  # committed, then the connection closed


def test_user_errors_are_one_line(tritonsim, playbook):
    cases = [
        ({"image": "debian-99", "package": "g1-small"}, "image 'debian-99' not found"),
        ({"image": "debian-12", "package": "huge"},
         "package 'huge' not found; available packages: g1-large, g1-medium"),
        ({"image": "debian-12", "package": "g1-small", "networks": ["nope"]},
         "network 'nope' not found; available networks: sim-private, sim-public"),
    ]
    for options, message in cases:
        task = "- name: bad\n  locustfleet.triton.joyent_machine: %s\n" % json.dumps(dict(options, name="x"))
        run = playbook(tritonsim, task, expect_rc=2)
        msg = run.result("bad")["msg"]
        assert message in msg and "\n" not in msg and "Traceback (most recent call last)" not in run.output
    run = playbook(tritonsim, """
        - name: bad
          locustfleet.triton.joyent_machine: {name: x}
    """, expect_rc=2)
    assert run.result("bad")["msg"] == "image and package are required to create machine x"
    run = playbook(tritonsim, """
        - name: bad
          locustfleet.triton.joyent_machine: {count: 2, count_tags: {}}
    """, expect_rc=2)
    assert run.result("bad")["msg"] == "count_tags must name at least one tag that identifies the fleet"
    assert machines(tritonsim) == []
    assert json.dumps(write_calls(tritonsim)) == "{}"


def test_an_invalid_name_fails_at_once_and_is_not_retried_under_other_names(tritonsim, playbook):
    """Only CloudAPI's Duplicate code means "name taken": an invalid alias (also a 409
    ValidationFailed on alias, whose message mentions the name) used to be retried forever."""
    tritonsim.reset_stats()
    run = playbook(tritonsim, """
        - name: fleet
          locustfleet.triton.joyent_machine:
            count: 2
            count_tags: {cluster: bad}
            name_prefix: "$(id);"
            image: debian-12
            package: g1-small
            wait_timeout: 10
    """, expect_rc=2)
    msg = run.result("fleet")["msg"]
    assert "409 ValidationFailed" in msg and "Invalid machine name" in msg and "\n" not in msg
    assert sum(tritonsim.route_stats("CreateMachine").values()) == 2  # one attempt per machine
    assert machines(tritonsim) == []


def test_a_name_taken_outside_the_fleet_is_skipped_under_the_next_name(tritonsim, playbook):
    tritonsim.seed_machines(1, tags={"owner": "someone"}, name_prefix="demo-worker-")  # demo-worker-1, not ours
    members = {m["name"] for m in machines(tritonsim)}
    assert members == {"demo-worker-1"}
    playbook(tritonsim, FLEET, extra_vars={"count": 1})
    fleet = [m for m in machines(tritonsim) if m["tags"].get("cluster") == "demo"]
    assert [m["name"] for m in fleet] == ["demo-worker-2"]


def test_user_script_is_never_shown(tritonsim, playbook):
    """A user-script often carries credentials: not in the output at -vvv, nor in the task result
    (invocation), yet the machine gets it."""
    marker = "s3cret-token-%d" % os.getpid()
    run = playbook(tritonsim, """
        - name: machine
          locustfleet.triton.joyent_machine:
            name: script-1
            image: ubuntu-24.04@20240701
            package: g1-small
            user_script: "#!/bin/sh\\nexport TOKEN=%s"
            poll_interval: 0.2
    """ % marker, env={"ANSIBLE_VERBOSITY": "3"})
    assert run.result("machine")["changed"]
    assert marker not in run.output
    assert marker not in json.dumps(run.results)
    assert machines(tritonsim)[0]["metadata"]["user-script"] == "#!/bin/sh\nexport TOKEN=%s" % marker


def metadata_of(sim, machine_id):
    """ListMachineMetadata of one machine, straight from the sim's CloudAPI."""
    return sim_client(sim).get("/%s/machines/%s/metadata" % (sim.account, machine_id), expect=dict)


MASTER = """
- name: master
  locustfleet.triton.joyent_machine:
    name: demo-master
    image: debian-12
    package: g1-small
    tags: {cluster: demo, role: master}
    wait: "{{ wait_all }}"
    poll_interval: 0.3
"""
WORKERS = """
- name: fleet
  locustfleet.triton.joyent_machine:
    count: 2
    count_tags: {cluster: demo, role: worker}
    image: debian-12
    package: g1-medium
    metadata: {locust-master: 10.0.0.5}
    wait: "{{ wait_all }}"
    poll_interval: 0.3
"""


def test_wait_true_waits_for_machines_an_earlier_task_left_provisioning(tritonsim_factory, playbook):
    """A task with wait: false, then the same task with wait: true: the second run creates nothing and
    changes nothing, yet returns every machine running, with its address (a fleet, then one machine)."""
    # Long enough that a loaded machine's ansible-playbook start-up does not outlast the provisioning.
    sim = tritonsim_factory(provision_delay=15)
    first = playbook(sim, WORKERS, extra_vars={"wait_all": False}).result("fleet")
    assert [m["state"] for m in first["machines"]] == ["provisioning", "provisioning"]
    sim.reset_stats()
    run = playbook(sim, WORKERS, extra_vars={"wait_all": True})
    fleet = run.result("fleet")
    assert run.recap["changed"] == 0 and write_calls(sim) == {} and fleet["created_ids"] == []
    assert [(m["id"], m["name"], m["state"]) for m in fleet["machines"]] == [
        (m["id"], m["name"], "running") for m in first["machines"]]
    assert all(m["primaryIp"] for m in fleet["machines"])
    assert sum(sim.route_stats("ListMachines").values()) > 2  # polled: one call per poll for the fleet
    assert fleet["metadata_updated_ids"] == [] and "warnings" not in fleet

    first = playbook(sim, MASTER, extra_vars={"wait_all": False}).result("master")["machine"]
    assert first["state"] == "provisioning"
    sim.reset_stats()
    run = playbook(sim, MASTER, extra_vars={"wait_all": True})
    master = run.result("master")
    assert run.recap["changed"] == 0 and write_calls(sim) == {} and master["created_ids"] == []
    assert master["machine"]["id"] == first["id"]
    assert master["machine"]["state"] == "running" and master["machine"]["primaryIp"]
    assert master["machines"] == [master["machine"]]
    assert sum(sim.route_stats("GetMachine").values()) >= 2  # polled

    sim.reset_stats()
    again = playbook(sim, MASTER + WORKERS, extra_vars={"wait_all": True})
    assert again.recap["changed"] == 0 and write_calls(sim) == {}
    assert sim.route_stats("ListMachines") == {"200": 2}  # the master by name, the fleet: nothing waited for
    assert "GetMachine" not in sim.stats()["by_route"]


def test_a_kept_machine_that_fails_while_waited_for_is_reported_or_replaced(tritonsim_factory, playbook):
    sim = tritonsim_factory(provision_delay=3, faults={"provision_fail": 1.0})
    first = playbook(sim, WORKERS, extra_vars={"wait_all": False}).result("fleet")
    sim.set_faults({})
    run = playbook(sim, WORKERS, extra_vars={"wait_all": True}, expect_rc=2).result("fleet")
    assert sorted(run["failed_ids"]) == sorted(first["created_ids"]) and run["created_ids"] == []
    assert run["msg"].startswith("2 machine(s) ended in state failed: ")

    sim.set_faults({"provision_fail": 1.0})
    first = playbook(sim, WORKERS, extra_vars={"wait_all": False}).result("fleet")
    sim.set_faults({})
    replace = WORKERS.replace("    poll_interval: 0.3", "    poll_interval: 0.3\n    replace_failed: true")
    run = playbook(sim, replace, extra_vars={"wait_all": True}).result("fleet")
    assert sorted(run["deleted_ids"]) == sorted(first["created_ids"]) and len(run["created_ids"]) == 2
    assert [m["state"] for m in run["machines"]] == ["running", "running"]
    assert sorted(m["id"] for m in machines(sim, cluster="demo")) == sorted(run["created_ids"])


ONE_WAVE_WITH_MASTER_ADDRESS = """
- name: master
  locustfleet.triton.joyent_machine: {name: demo-master, image: debian-12, package: g1-small, wait: false}
- name: workers
  locustfleet.triton.joyent_machine:
    count: 2
    count_tags: {cluster: demo, role: worker}
    image: debian-12
    package: g1-medium
    metadata: {locust-master: unknown}
    wait: false
- name: master again
  locustfleet.triton.joyent_machine: {name: demo-master, image: debian-12, package: g1-small, poll_interval: 0.3}
  register: master
- name: workers again
  locustfleet.triton.joyent_machine:
    count: 2
    count_tags: {cluster: demo, role: worker}
    image: debian-12
    package: g1-medium
    metadata: {locust-master: unknown, locust_master_host: "{{ master.machine.primaryIp }}"}
    poll_interval: 0.3
"""


def test_one_provisioning_wave_then_the_master_address_as_metadata(tritonsim_factory, playbook):
    """spawn_slaves' order: everything asked for without waiting, then waited for; the workers that were still
    provisioning get the master's address once they run (one AddMachineMetadata each), only the key that differs."""
    sim = tritonsim_factory(provision_delay=4)
    run = playbook(sim, ONE_WAVE_WITH_MASTER_ADDRESS)
    address = run.result("master again")["machine"]["primaryIp"]
    workers = run.result("workers again")
    assert address and [m["state"] for m in workers["machines"]] == ["running", "running"]
    created = run.result("workers")["created_ids"]
    assert workers["changed"] and sorted(workers["metadata_updated_ids"]) == sorted(created)
    assert sim.route_stats("AddMachineMetadata") == {"200": 2}
    for machine_id in created:
        metadata = metadata_of(sim, machine_id)
        assert metadata["locust_master_host"] == address and metadata["locust-master"] == "unknown"
        assert metadata["root_authorized_keys"]

    sim.reset_stats()
    again = playbook(sim, ONE_WAVE_WITH_MASTER_ADDRESS)
    assert again.recap["changed"] == 0 and write_calls(sim) == {}
    assert again.result("workers")["metadata_updated_ids"] == [] and "warnings" not in again.result("workers")


def test_metadata_is_merged_into_existing_machines_once(tritonsim, playbook):
    playbook(tritonsim, FLEET, extra_vars={"count": 3})
    old = sorted(m["id"] for m in machines(tritonsim, cluster="demo"))
    client = sim_client(tritonsim)
    client.post("/%s/machines/%s/metadata" % (tritonsim.account, old[0]), {"set-by-hand": "kept"}, expect=dict)
    changed = FLEET.replace("metadata: {locust-master: 10.0.0.5}",
                            "metadata: {locust-master: 10.0.0.6, slots: 8, canary: true, user-script: new}\n"
                            '    user_script: "#!/bin/sh\\necho new"')
    tritonsim.reset_stats()

    check = playbook(tritonsim, changed, extra_vars={"count": 4}, check=True, diff=True)
    result = check.result("fleet")
    assert result["changed"] and result["metadata_updated_ids"] == [] and write_calls(tritonsim) == {}
    names = ["demo-worker-1", "demo-worker-2", "demo-worker-3"]
    assert result["diff"]["before"]["metadata"] == {name: {"locust-master": "10.0.0.5"} for name in names}
    assert result["diff"]["after"]["metadata"] == {
        name: {"locust-master": "10.0.0.6", "slots": "8", "canary": "true"} for name in names}
    assert "demo-worker-4" in result["diff"]["after"]["machines"]  # created with its metadata, not updated

    run = playbook(tritonsim, changed, extra_vars={"count": 4}, diff=True)
    result = run.result("fleet")
    assert result["changed"] and sorted(result["metadata_updated_ids"]) == old
    assert len(result["created_ids"]) == 1 and result["created_ids"][0] not in old
    assert write_calls(tritonsim) == {"CreateMachine": {"201": 1}, "AddMachineMetadata": {"200": 3}}
    assert result["diff"]["after"]["metadata"]["demo-worker-2"]["locust-master"] == "10.0.0.6"
    for machine_id in old:
        metadata = metadata_of(tritonsim, machine_id)
        assert {k: metadata[k] for k in ("locust-master", "slots", "canary")} == \
            {"locust-master": "10.0.0.6", "slots": "8", "canary": "true"}
        assert "user-script" not in metadata and metadata["root_authorized_keys"]
        assert client.get("/%s/machines/%s" % (tritonsim.account, machine_id), expect=dict)["metadata"] == metadata
    assert metadata_of(tritonsim, old[0])["set-by-hand"] == "kept"
    new = metadata_of(tritonsim, result["created_ids"][0])
    assert new["user-script"] == "#!/bin/sh\necho new" and new["locust-master"] == "10.0.0.6"

    tritonsim.reset_stats()
    again = playbook(tritonsim, changed, extra_vars={"count": 4})
    assert again.recap["changed"] == 0 and write_calls(tritonsim) == {}
    assert again.result("fleet")["metadata_updated_ids"] == []
    assert tritonsim.route_stats("ListMachines") == {"200": 1}  # metadata comes with the list: no other read
    check = playbook(tritonsim, changed, extra_vars={"count": 4}, check=True, diff=True)
    assert not check.result("fleet")["changed"] and "metadata" not in check.result("fleet")["diff"]["after"]


def test_metadata_of_one_machine_by_name(tritonsim_factory, playbook):
    sim = tritonsim_factory(provision_delay=3)
    task = """
        - name: machine
          locustfleet.triton.joyent_machine:
            name: solo
            image: debian-12
            package: g1-small
            metadata: {role: "{{ role }}", slots: 4}
            wait: "{{ wait_all | default(true) }}"
            poll_interval: 0.2
    """
    created = playbook(sim, task, extra_vars={"role": "worker"}).result("machine")["machine"]
    sim.reset_stats()
    check = playbook(sim, task, extra_vars={"role": "master"}, check=True, diff=True).result("machine")
    assert check["changed"] and write_calls(sim) == {}
    assert check["diff"]["before"]["metadata"] == {"role": "worker"}
    assert check["diff"]["after"]["metadata"] == {"role": "master"}

    run = playbook(sim, task, extra_vars={"role": "master"}, diff=True).result("machine")
    assert run["changed"] and run["metadata_updated_ids"] == [created["id"]]
    assert write_calls(sim) == {"AddMachineMetadata": {"200": 1}}
    assert metadata_of(sim, created["id"])["role"] == "master"
    sim.reset_stats()
    assert not playbook(sim, task, extra_vars={"role": "master"}).result("machine")["changed"]
    assert write_calls(sim) == {}

    # a machine still provisioning: with wait false it is left alone (a warning says so), with wait true
    # it is waited for, then updated
    late = task.replace("name: solo", "name: late")
    run = playbook(sim, late + late.replace("name: machine", "name: again").replace("{{ role }}", "master"),
                   extra_vars={"role": "worker", "wait_all": False})
    skipped = run.result("again")
    assert not skipped["changed"] and skipped["metadata_updated_ids"] == []
    assert "AddMachineMetadata" not in sim.stats()["by_route"]
    assert skipped["machine"]["state"] == "provisioning"
    assert len(skipped["warnings"]) == 1 and "metadata not applied to 1 machine(s)" in skipped["warnings"][0]
    assert "late: provisioning" in skipped["warnings"][0]
    sim.reset_stats()
    done = playbook(sim, late, extra_vars={"role": "master"}).result("machine")
    assert done["machine"]["state"] == "running" and done["metadata_updated_ids"] == [done["machine"]["id"]]
    assert write_calls(sim) == {"AddMachineMetadata": {"200": 1}}
    assert metadata_of(sim, done["machine"]["id"])["role"] == "master"


def test_metadata_values_must_be_scalars(tritonsim, playbook):
    run = playbook(tritonsim, """
        - name: bad
          locustfleet.triton.joyent_machine: {name: x, image: debian-12, package: g1-small, metadata: {a: {b: 1}}}
    """, expect_rc=2)
    assert run.result("bad")["msg"] == "metadata a must be a string, number or boolean, got dict"
    assert machines(tritonsim) == []

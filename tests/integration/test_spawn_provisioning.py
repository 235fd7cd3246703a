"""spawn_slaves.yml's provisioning play as users run it, limited to the control node (no SSH plays), against
tritonsim: the first run waits for the machines it asked for; a re-run that finds the fleet up waits for nothing
and still puts every machine in the run's inventory; a re-run that finds a stopped worker waits for it again."""

from sim.signer import client_for
from support.control import REPO

SPAWN = REPO / "playbooks" / "spawn_slaves.yml"
WAITS = ("Master machine", "Worker machines, told their master")


def spawn(sim, playbook, check=False):
    return playbook(sim, SPAWN, limit="localhost", check=check,
                    extra_vars={"cluster": "prov", "count": 2, "firewall_ssh_from": "127.0.0.1"})


def statuses(run, tasks):
    return {entry["task"]: entry["status"] for entry in run.entries if entry["task"] in tasks}


def fleet(sim):
    return {m["name"]: m for m in client_for(sim).get("/my/machines?tag.locustfleet.cluster=prov").json()}


def run_inventory(run):
    """{name: ansible_host} of the hosts the run added for its SSH plays."""
    added = [entry["result"] for entry in run.entries if entry["task"].endswith("in the inventory of this run")]
    items = [item for result in added for item in result.get("results", [result])]
    return {item["add_host"]["host_name"]: item["add_host"]["host_vars"]["ansible_host"] for item in items}


def test_a_re_run_waits_only_for_machines_that_are_not_up(tritonsim_factory, playbook):
    sim = tritonsim_factory(provision_delay=1.5, action_delay=1.5)
    planned = spawn(sim, playbook, check=True)
    assert statuses(planned, WAITS) == dict.fromkeys(WAITS, "ok") and fleet(sim) == {}
    first = spawn(sim, playbook)
    assert statuses(first, WAITS) == dict.fromkeys(WAITS, "ok")
    machines = fleet(sim)
    assert sorted(machines) == ["prov-master", "prov-worker-1", "prov-worker-2"]
    assert run_inventory(first) == {name: m["primaryIp"] for name, m in machines.items()}

    sim.reset_stats()
    again = spawn(sim, playbook)
    assert statuses(again, WAITS) == dict.fromkeys(WAITS, "skipped")
    assert again.recap["changed"] == 0
    assert run_inventory(again) == run_inventory(first)
    assert spawn(sim, playbook, check=True).recap["changed"] == 0
    assert "GetMachine" not in sim.stats()["by_route"]  # what the waiters ask each machine

    # Stopped by its idle watcher: started again, and this run waits until it runs.
    client_for(sim).post("/my/machines/%s?action=stop" % machines["prov-worker-2"]["id"], {})
    woken = spawn(sim, playbook)
    assert statuses(woken, WAITS) == dict.fromkeys(WAITS, "ok")
    assert fleet(sim)["prov-worker-2"]["state"] == "running"
    assert run_inventory(woken) == run_inventory(first)

"""spawn_slaves on the roles path (no fleet_template) on real hosts, with the collection as users get
it (a tarball of this checkout installed into a user's directory, run by FQCN from there), against
tritonsim --backend nspawn: the re-run gate, both ways.

Each fleet machine keeps /etc/locustfleet/applied, the digest of what configured it (the roles, the
locustfiles, the locust_/idle_ settings, its role and its master). A re-run that finds that digest
ends the host before any role runs; anything else (a changed locustfile, -e fleet_reconfigure=true, a
record lost because a run died) runs the roles there again:

    spawn count=1 -> again, nothing changed (no role runs) -> the locustfile changed (both apply it)
    -> fleet_reconfigure=true (roles run, change nothing) -> the worker's record gone (only the worker
    applies) -> teardown_all -> nothing left, tritonsim stopped, the host as it was.

The template path (build_template, spawn_slaves -e fleet_template=...) is tests/e2e/test_fleet_playbooks.py.
"""

import re
import time

import pytest

from support.control import live_machines
from support.installed import user_env
from support.realfleet import nspawn_cloud, run_playbook, ssh

CLUSTER = "gate"
COUNT = 1
MASTER = CLUSTER + "-master"
WORKER = CLUSTER + "-worker-1"
# A watcher acts on a machine up IDLE_GRACE s and idle IDLE_TIMEOUT s: far beyond this test, so no
# machine is powered off while spawn_slaves runs.
IDLE_GRACE = 7200
IDLE_TIMEOUT = 7200
APPLIED = "/etc/locustfleet/applied"
DEPLOYED_LOCUSTFILE = "/opt/locust/tests/fleetcheck.py"
# Every role task line of the default callback: locust, locust_master, locust_worker, locust_idle_watcher.
ROLE_TASK = "TASK [locustfleet.triton.locust"
# What the gate leaves of a no-change run on a machine (recap ok): on each, "Wait for the connection"
# and "Read what the machine last applied" (meta end_host adds nothing); then on the worker the play
# "Count the worker processes" (1 raw), on the master "Check that the master sees every worker
# process" (uri and the summary: 2).
GATED_OK = {MASTER: 4, WORKER: 3}
# The record's own tasks, the ones around the roles that change when the roles run on a machine that
# holds a record: it is removed first (so a run cut short is applied again) and written last.
RECORD_TASKS = {"Forget what was applied", "Remember what was applied"}
# Where the roles ran, a machine has dozens of ok tasks (the gate leaves GATED_OK).
ROLES_OK = 25
TIMINGS = []


@pytest.fixture(scope="module")
def cloud(tritonsim_module_factory, tmp_path_factory):
    with nspawn_cloud(tritonsim_module_factory, tmp_path_factory, "the roles-path spawn test on real hosts") as (
            sim, user):
        try:
            yield sim, user
        finally:
            # Also when the test failed half-way: the cluster goes the way users remove it.
            if live_machines(sim, **{"locustfleet.cluster": CLUSTER}):
                run(sim, user, "teardown", "teardown_all=true")
    print("\n[gate] timings: " + ", ".join("%s %.0fs" % item for item in TIMINGS))


def run(sim, user, playbook, *extra):
    """ansible-playbook locustfleet.triton.PLAYBOOK --forks COUNT+1 from the user's directory: (output, recap)."""
    extra_vars = {
        "cluster": CLUSTER,
        "locust_files": [str(user / "fleetcheck.py")],
        "idle_timeout": IDLE_TIMEOUT, "idle_grace": IDLE_GRACE,
        "watcher_subuser": False,
    }
    env = user_env(sim, user, LOCUSTFLEET_CLUSTER=CLUSTER, ANSIBLE_PRIVATE_KEY_FILE=str(sim.key_path))
    output, recap, dummy = run_playbook(sim, user, playbook, extra_vars, *extra, env=env,
                                        options=("--forks", str(COUNT + 1)), timings=TIMINGS, tag="gate")
    assert all(counts["failed"] == 0 and counts["unreachable"] == 0 for counts in recap.values()), recap
    return output, recap


def spawn(sim, user, *extra):
    """spawn_slaves count=COUNT: (output, recap, seconds)."""
    output, recap = run(sim, user, "spawn_slaves", "count=%d" % COUNT, *extra)
    assert set(recap) == {"localhost", MASTER, WORKER}, recap
    return output, recap, TIMINGS[-1][1]


def results(output):
    """{(task, host): {statuses}} of an ansible-playbook output (the default callback's lines)."""
    found = {}
    task = None
    for line in output.splitlines():
        header = re.match(r"(?:TASK|RUNNING HANDLER) \[(.*)\] \*+$", line)
        if header:
            task = header.group(1)
            continue
        result = re.match(r"(ok|changed|skipping|fatal|failed): \[([^\]]+?)(?: -> [^\]]+)?\]", line)
        if result and task:
            found.setdefault((task, result.group(2)), set()).add(result.group(1))
    return found


def changed_tasks(output, host):
    return {task for (task, name), statuses in results(output).items() if name == host and "changed" in statuses}


def role_tasks(output, host):
    """The role tasks (and role handlers) that ran on ``host``."""
    return {task for (task, name) in results(output) if name == host and task.startswith("locustfleet.triton.")}


def addresses(sim):
    machines = {m["name"]: m for m in live_machines(sim, **{"locustfleet.cluster": CLUSTER})}
    assert sorted(machines) == [MASTER, WORKER], sorted(machines)
    assert all(m["state"] == "running" for m in machines.values()), machines
    return {name: m["primaryIp"] for name, m in machines.items()}


def applied(sim, ips):
    """{host: the digest in its record}: there, and 64 hex characters."""
    found = {}
    for host, address in ips.items():
        read = ssh(sim, address, "cat " + APPLIED)
        assert read.returncode == 0, (host, read.stdout, read.stderr)
        assert re.fullmatch(r"[0-9a-f]{64}\n", read.stdout), (host, read.stdout)
        found[host] = read.stdout.strip()
    return found


def fleet_summary(output):
    summary = re.search(r"Cluster %s: master %s \(.*\) with (\d+) worker processes on (\d+) worker machines"
                        % (CLUSTER, MASTER), output)
    assert summary and int(summary.group(1)) >= 1 and summary.group(2) == str(COUNT), output[-3000:]


def test_spawn_roles_path_rerun_gate(cloud):
    sim, user = cloud
    started = time.monotonic()

    # 1. The fleet from the base image: the roles configure both machines, each keeps its own digest.
    output, recap, first_spawn = spawn(sim, user)
    ips = addresses(sim)
    fleet_summary(output)
    for host in (MASTER, WORKER):
        assert recap[host]["changed"] > 0 and recap[host]["ok"] >= ROLES_OK, recap
        assert role_tasks(output, host) and RECORD_TASKS & changed_tasks(output, host) == {"Remember what was applied"}
    assert ROLE_TASK in output  # the lines step 2 must not have
    first = applied(sim, ips)
    assert first[MASTER] != first[WORKER]  # the role is part of the digest
    print("\n[gate] spawn 1: %s" % recap)

    # 2. Again, nothing changed: the gate ends each host before its roles; no fact gathering either.
    output, recap, no_change = spawn(sim, user)
    assert all(counts["changed"] == 0 for counts in recap.values()), recap
    assert {host: recap[host]["ok"] for host in GATED_OK} == GATED_OK, recap
    assert ROLE_TASK not in output
    for host in (MASTER, WORKER):
        assert not role_tasks(output, host)
        ran = {task for (task, name) in results(output) if name == host}
        assert not ran & ({"Facts the roles use"} | RECORD_TASKS), ran
    fleet_summary(output)
    assert applied(sim, ips) == first
    print("[gate] spawn 2 (no change): %s" % recap)
    print("[gate] wall time: first spawn %.1fs, no-change re-run %.1fs" % (first_spawn, no_change))

    # 3. The user's locustfile changed: part of both digests, so both machines run their roles and get it.
    locustfile = user / "fleetcheck.py"
    locustfile.write_text(locustfile.read_text() + "# changed by the re-run gate test\n")
    output, recap, dummy = spawn(sim, user)
    for host in (MASTER, WORKER):
        assert recap[host]["changed"] > 0 and recap[host]["ok"] >= ROLES_OK, recap
        assert "locustfleet.triton.locust : Deploy the locustfiles" in changed_tasks(output, host)
        deployed = ssh(sim, ips[host], "cat " + DEPLOYED_LOCUSTFILE)
        assert deployed.returncode == 0 and deployed.stdout == locustfile.read_text(), (host, deployed.stderr)
    third = applied(sim, ips)
    assert third[MASTER] != first[MASTER] and third[WORKER] != first[WORKER] and third[MASTER] != third[WORKER]
    fleet_summary(output)
    print("[gate] spawn 3 (locustfile changed): %s" % recap)

    # 4. fleet_reconfigure=true: the roles run on both although their records match, and change
    # nothing (idempotent); the record around them is rewritten with the same digest, which is no change.
    output, recap, dummy = spawn(sim, user, "fleet_reconfigure=true")
    assert ROLE_TASK in output
    for host in (MASTER, WORKER):
        assert recap[host]["ok"] >= ROLES_OK and role_tasks(output, host), recap
        assert recap[host]["changed"] == 0, (host, changed_tasks(output, host), recap)
    assert recap["localhost"]["changed"] == 0, recap
    assert applied(sim, ips) == third
    fleet_summary(output)
    print("[gate] spawn 4 (fleet_reconfigure=true): %s" % recap)

    # 5. A run that died on the worker before it wrote its record: the next run applies the worker
    # again (its roles change nothing, the record is written back); the master is gated as in step 2.
    removed = ssh(sim, ips[WORKER], "rm " + APPLIED)
    assert removed.returncode == 0, removed.stderr
    output, recap, dummy = spawn(sim, user)
    assert recap[WORKER]["ok"] >= ROLES_OK and role_tasks(output, WORKER), recap
    assert any(task.startswith("locustfleet.triton.locust_worker : ") for task in role_tasks(output, WORKER))
    assert changed_tasks(output, WORKER) == {"Remember what was applied"} and recap[WORKER]["changed"] == 1, recap
    assert recap[MASTER] == {**recap[MASTER], "ok": GATED_OK[MASTER], "changed": 0}, recap
    assert not role_tasks(output, MASTER) and recap["localhost"]["changed"] == 0, recap
    assert applied(sim, ips) == third
    fleet_summary(output)
    print("[gate] spawn 5 (worker record removed): %s" % recap)

    # 6. The whole cluster goes.
    run(sim, user, "teardown", "teardown_all=true")
    assert live_machines(sim) == []
    print("[gate] test body %.0fs" % (time.monotonic() - started))

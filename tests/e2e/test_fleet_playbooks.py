"""The whole flow users run, on real hosts: spawn -> graph -> load test -> shrink -> idle stop ->
scheduled teardown -> nothing left. tritonsim --backend nspawn plays the cloud; the playbooks
and the inventory plugin are run exactly as the README shows, with real ansible-playbook."""

import json
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parents[1]
for folder in ("hosts", "roles"):
    if str(TESTS / folder) not in sys.path:
        sys.path.insert(0, str(TESTS / folder))

from hostutil import assert_host_clean, host_snapshot, require_real_hosts, wait_until  # noqa: E402
from rolesutil import FILES, TargetServer  # noqa: E402
from support.control import REPO, control_env, live_machines, sim_client, venv_bin  # noqa: E402

CLUSTER = "e2e"
PLAYBOOKS = REPO / "playbooks"
IDLE_TIMEOUT = 60
# Long enough for spawn, a second spawn, the graph and the test to happen before any worker may idle.
IDLE_GRACE = 420


@pytest.fixture(scope="module")
def cloud(tritonsim_module_factory, tmp_path_factory):
    require_real_hosts("the end-to-end test on real hosts")
    from tritonsim.nspawn import build_base_image
    build_base_image()
    before = host_snapshot()
    sim = tritonsim_module_factory(users=["watcher"], extra_args=["--backend", "nspawn"], throttle="10:30")
    info = sim._sim("GET", "/__sim/info")  # pylint: disable=protected-access
    work = tmp_path_factory.mktemp("e2e")
    target = TargetServer(info["guest_url"].split("//")[1].split(":")[0])
    thread = threading.Thread(target=target.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True)
    thread.start()
    yield sim, info["guest_url"], target, work
    target.shutdown()
    target.server_close()
    client = sim_client(sim)
    for machine in live_machines(sim):
        client.delete("/%s/machines/%s" % (sim.account, machine["id"]))
    assert sim.stop(timeout=180) == 0
    assert_host_clean(before, host_snapshot(), mine=[str(sim.data_dir)])


def run(cloud_, playbook, *extra, expect_rc=0):
    sim, guest_url, target, work = cloud_
    watcher = sim.users["watcher"]
    extra_vars = {
        "cluster": CLUSTER,
        "locust_files": [str(FILES / "fleetcheck.py")],
        "locust_activity_interval": 5,
        "idle_timeout": IDLE_TIMEOUT, "idle_grace": IDLE_GRACE, "idle_watcher_interval": 5,
        "locust_idle_watcher_url": guest_url, "locust_idle_watcher_account": sim.account,
        "locust_idle_watcher_user": "watcher", "locust_idle_watcher_key_id": watcher.fingerprint,
        "locust_idle_watcher_private_key_src": str(watcher.key_path),
    }
    args = [venv_bin("ansible-playbook"), str(PLAYBOOKS / playbook), "-e", json.dumps(extra_vars)]
    for item in extra:
        args += ["-e", item]
    env = control_env(sim, work / "home")
    env.pop("ANSIBLE_CALLBACKS_ENABLED")  # the result recorder of tests/integration is not needed here
    env.update(ANSIBLE_PIPELINING="1", ANSIBLE_FORKS="10", ANSIBLE_PRIVATE_KEY_FILE=str(sim.key_path))
    started = time.monotonic()
    proc = subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True, timeout=1500, check=False)
    output = proc.stdout + proc.stderr
    (work / ("%s-%d.log" % (playbook, int(started)))).write_text(output)
    print("\n[e2e] %s %s: %.0fs" % (playbook, " ".join(extra), time.monotonic() - started))
    assert proc.returncode == expect_rc, output[-8000:]
    recap = {host: {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", rest)}
             for host, rest in re.findall(r"^(\S+)\s+:\s+(ok=.*)$", proc.stdout, re.M)}
    return output, recap


def fleet(sim):
    return {m["name"]: m for m in live_machines(sim, **{"locustfleet.cluster": CLUSTER})}


def test_spawn_test_shrink_idle_and_scheduled_teardown(cloud):
    sim, guest_url, target, work = cloud

    output, recap = run(cloud, "spawn_slaves.yml", "count=3")
    machines = fleet(sim)
    workers = sorted(name for name, m in machines.items() if m["tags"]["locustfleet.role"] == "worker")
    assert workers == ["e2e-worker-1", "e2e-worker-2", "e2e-worker-3"] and "e2e-master" in machines
    summary = re.search(r"with (\d+) worker processes on (\d+) worker machines", output)
    assert summary and summary.group(2) == "3"
    processes = int(summary.group(1))
    assert processes >= 3 and processes % 3 == 0  # one per vCPU on each worker

    output, recap = run(cloud, "spawn_slaves.yml", "count=3")
    assert all(counts["changed"] == 0 for counts in recap.values()), recap

    env = control_env(sim, work / "home")
    env["LOCUSTFLEET_CLUSTER"] = CLUSTER
    graph = subprocess.run([venv_bin("ansible-inventory"), "-i", str(REPO / "inventory" / "tritonsim.joyent.yml"),
                            "--graph"], cwd=REPO, env=env, capture_output=True, text=True, check=True).stdout
    master_group = graph.split("@locust_master:")[1].split("@")[0]
    worker_group = graph.split("@locust_workers:")[1].split("@")[0]
    assert "e2e-master" in master_group
    assert sorted(re.findall(r"e2e-worker-\d", worker_group)) == workers

    target.reset()
    output, recap = run(cloud, "run_test.yml", "target_host=%s" % target.url, "users=%d" % (processes * 2),
                        "spawn_rate=%d" % (processes * 2), "run_time=20s")
    by_worker = target.snapshot()
    assert len(by_worker) == processes, by_worker  # every worker process sent requests
    assert {key.split("/")[0] for key in by_worker} == set(workers)
    totals = re.search(r"(\d+) requests, (\d+) failures from (\d+) worker processes", output)
    assert totals and int(totals.group(1)) > 0 and totals.group(2) == "0" and totals.group(3) == str(processes)
    reports = sorted((REPO / "reports" / CLUSTER).iterdir())[-1]
    assert {"report.json", "report.html", "locust_stats.csv"} <= {p.name for p in reports.iterdir()}

    output, recap = run(cloud, "spawn_slaves.yml", "count=2")
    assert sorted(n for n, m in fleet(sim).items() if m["tags"]["locustfleet.role"] == "worker") == workers[:2]

    # No test runs any more: each worker's watcher stops its own machine through CloudAPI.
    wait_until(lambda: all(fleet(sim)[name]["state"] == "stopped" for name in workers[:2]),
               timeout=IDLE_GRACE + IDLE_TIMEOUT + 240, interval=5, what="idle workers stopped by their watchers")
    assert fleet(sim)["e2e-master"]["state"] == "running"
    assert sim.route_stats("StopMachine").get("202", 0) >= 2

    # The scheduled teardown (as installed by schedule_teardown.yml) deletes the stopped machines.
    run(cloud, "schedule_teardown.yml", "teardown_every_minutes=5")
    name = "locustfleet-teardown-" + CLUSTER
    env_file = "/etc/locustfleet/%s.env" % name
    try:
        if os.path.isdir("/run/systemd/system"):
            unit = Path("/etc/systemd/system/%s.service" % name).read_text()
            command = next(line for line in unit.splitlines() if line.startswith("ExecStart=")).split("=", 1)[1]
        else:
            crontab = subprocess.run(["crontab", "-l"], capture_output=True, text=True, check=True).stdout
            command = next(line for line in crontab.splitlines()
                           if "teardown.yml" in line and not line.startswith("#"))
            command = command.split(" ", 5)[5]
        job_env = {k: v for k, v in control_env(sim, work / "home").items() if not k.startswith("TRITON_")}
        done = subprocess.run(["sh", "-c", "set -a; . %s; set +a; %s" % (env_file, command)], env=job_env,
                              capture_output=True, text=True, timeout=600, check=False)
        assert done.returncode == 0, done.stdout + done.stderr
    finally:
        run(cloud, "schedule_teardown.yml", "schedule_state=absent")
    assert sorted(fleet(sim)) == ["e2e-master"]

    run(cloud, "teardown.yml", "teardown_all=true")
    assert live_machines(sim) == []

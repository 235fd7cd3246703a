"""The roles on real hosts: a Locust master and two workers on nspawn machines made through
tritonsim's CloudAPI, configured by ansible-playbook over SSH; then the idle watcher stopping
machines through CloudAPI, and not stopping busy ones.

The tests share one fleet and run in order: each phase starts from the state the previous one
left (see conftest.py for the timings used).
"""

import json
import time

from rolesutil import IDLE_TIMEOUT, WATCH_INTERVAL, WORKERS, wait_until

KEY = "/etc/locustfleet-idle-watcher/cloudapi.key"


def expected_processes(fleet):
    return {name: fleet.nproc(name) for name in WORKERS}


def worker_names(fleet):
    """The X-Worker values every worker process sends: hostname/supervisor process name."""
    return {"%s/locust-worker_%02d" % (name, i) for name, n in expected_processes(fleet).items() for i in range(n)}


def expected_processes_stopped(fleet, name):
    """Worker processes of a stopped machine (its supervisord program, read from its disk)."""
    conf = fleet.upper_file(name, "/etc/supervisor/conf.d/locust-worker.conf")
    return int(conf.split("numprocs=")[1].split()[0])


def stop_calls(fleet):
    return sum(fleet.sim.route_stats("StopMachine").values())


def watcher_stops(fleet, name):
    """This machine's audit records of stops requested with the watcher's key from its own address."""
    return [entry for entry in fleet.audit(name) if entry["action"] == "stop"
            and "/users/watcher/" in entry["caller"].get("keyId", "") and entry["caller"].get("ip") == fleet.ip(name)]


def test_first_run_configured_every_machine(fleet):
    assert set(fleet.first_run.recap) == {"master", *WORKERS}
    for name, recap in fleet.first_run.recap.items():
        assert recap["failed"] == 0 and recap["unreachable"] == 0 and recap["changed"] > 0, (name, recap)
    versions = {fleet.out(name, "/opt/locust/venv/bin/locust --version").split()[1] for name in ("master", *WORKERS)}
    assert versions == {"2.47.0"}
    for name in ("master", *WORKERS):
        assert fleet.out(name, "cat /opt/locust/etc/locust.conf").splitlines()[-1] == \
            "locustfile = /opt/locust/tests/fleetcheck.py,/opt/locust/tests/locustfleet_activity.py"
        assert fleet.out(name, "cat /opt/locust/tests/fleetdata.txt") == "extra file deployed by locust_extra_files"
        assert fleet.out(name, "/opt/locust/venv/bin/python -c 'import six; print(six.__version__)'") == "1.16.0"


def test_workers_run_one_process_per_vcpu_under_supervisord(fleet):
    for name, nproc in expected_processes(fleet).items():
        status = fleet.out(name, "supervisorctl status", check=False)
        running = [line.split()[0] for line in status.splitlines() if line.split()[1:2] == ["RUNNING"]]
        assert running == ["locust-worker:locust-worker_%02d" % i for i in range(nproc)], status
        assert fleet.out(name, "pgrep -u locust -f 'locust --config' | wc -l") == str(nproc)
        # the master address came from metadata, one log per process, supervisor on at boot
        assert "--master-host %s " % fleet.ip("master") in fleet.out(name, "ps -o args= -u locust")
        logs = fleet.out(name, "ls /var/log/locust").split()
        assert {"worker_%02d.log" % i for i in range(nproc)} <= set(logs)
        assert fleet.out(name, "systemctl is-enabled supervisor") == "enabled"
        assert fleet.out(name, "systemctl is-active locustfleet-idle-watcher.timer") == "active"


def test_master_reports_every_worker_process(fleet):
    total = sum(expected_processes(fleet).values())
    wait_until(lambda: fleet.connected_workers() == total, timeout=60, interval=1,
               what="%d workers connected to the master" % total)
    stats = fleet.master_stats()
    by_host = {}
    for worker in stats["workers"]:
        if worker["state"] == "missing":  # replaced processes, until the master drops them
            continue
        host = worker["id"].rsplit("_", 1)[0]
        by_host[host] = by_host.get(host, 0) + 1
    assert by_host == expected_processes(fleet)
    assert fleet.out("master", "ss -ltnH 'sport = :8089'").split()[3] == "127.0.0.1:8089"


def test_headless_run_sends_requests_from_every_worker_process(fleet, target):
    total = sum(expected_processes(fleet).values())
    target.reset()
    started = time.monotonic()
    res = fleet.run("master", "/opt/locust/bin/locust-headless -u 20 -r 20 -t 20s -w %d -o /var/lib/locust/reports/smoke "
                    "-H %s" % (total, target.url), check=False, timeout=240)
    took = time.monotonic() - started
    assert res.returncode == 0, res.stdout + res.stderr
    counts = target.snapshot()
    print("\n[roles] headless run %.0fs; requests per worker process: %s" % (took, json.dumps(counts, sort_keys=True)))
    assert set(counts) == worker_names(fleet)
    assert all(n >= 20 for n in counts.values()), counts
    reports = fleet.out("master", "ls /var/lib/locust/reports/smoke").split()
    assert {"locust_stats.csv", "locust_stats_history.csv", "locust_failures.csv", "report.html", "report.json",
            "master.log"} <= set(reports)
    report = json.loads(fleet.out("master", "cat /var/lib/locust/reports/smoke/report.json"))
    requests = sum(entry["num_requests"] for entry in report if entry["name"] == "/")
    assert requests == sum(counts.values())
    # the service is back and the workers (restarted by supervisord) rejoined it
    assert fleet.out("master", "systemctl is-active locust-master") == "active"
    wait_until(lambda: fleet.connected_workers() == total, timeout=60, interval=1, what="workers back on the service")
    for name in WORKERS:
        log = fleet.out(name, "cat /var/log/locust/worker_00.log")
        assert "locustfleet-activity: event=start" in log and "event=tick users=" in log
        assert "locustfleet-activity: event=stop" in log


def test_second_run_changes_nothing(fleet):
    run = fleet.apply("site.yml")
    assert set(run.recap) == {"master", *WORKERS}
    assert all(recap["changed"] == 0 for recap in run.recap.values()), run.recap


def test_watcher_key_is_readable_by_root_only(fleet):
    for name in WORKERS:
        res = fleet.run(name, "sudo -u locust cat %s" % KEY, check=False)
        assert res.returncode != 0 and "Permission denied" in res.stderr, (res.stdout, res.stderr)
        assert "PRIVATE KEY" not in res.stdout
        assert fleet.out(name, "stat -c '%%a %%U %%G' %s /etc/locustfleet-idle-watcher" % KEY).splitlines() == \
            ["600 root root", "700 root root"]
        assert "PRIVATE KEY-----" in fleet.out(name, "head -1 %s" % KEY)


def test_dry_run_decides_idle_and_stops_nothing(fleet):
    fleet.sim.reset_stats()

    def idle_logged(name):
        return any("decision=idle" in line and "action=dry-run" in line for dummy, line in fleet.journal(name))
    for name in WORKERS:
        wait_until(lambda n=name: idle_logged(n), timeout=IDLE_TIMEOUT + 60, interval=2, what="dry-run idle on %s" % name)
    time.sleep(2 * WATCH_INTERVAL)
    assert stop_calls(fleet) == 0
    assert [fleet.state(name) for name in WORKERS] == ["running", "running"]
    line = [entry for dummy, entry in fleet.journal(WORKERS[0]) if "decision=idle" in entry][-1]
    print("\n[roles] dry run: %s" % line)
    assert 'result="would stop"' in line


def test_idle_worker_is_stopped_through_cloudapi(fleet):
    fleet.sim.reset_stats()
    fleet.apply("watcher.yml", limit="worker1", extra_vars={"idle_dry_run": False})
    started = time.monotonic()
    fleet.wait_state("worker1", "stopped", timeout=IDLE_TIMEOUT + 90)
    print("\n[roles] idle worker1 stopped %.0fs after the watcher went live" % (time.monotonic() - started))
    assert stop_calls(fleet) == 1
    assert len(watcher_stops(fleet, "worker1")) == 1
    assert fleet.state("worker2") == "running"  # still dry-run
    # started again, it is a worker again without any Ansible run (supervisord at boot, master from mdata)
    fleet.action("worker1", "start")
    fleet.wait_state("worker1", "running")
    total = sum(expected_processes(fleet).values())
    wait_until(lambda: fleet.connected_workers() == total, timeout=90, interval=1, what="worker1 rejoined the master")


def test_busy_workers_are_not_stopped_during_a_long_test(fleet, target):
    total = sum(expected_processes(fleet).values())
    run_time = 3 * IDLE_TIMEOUT + 15
    fleet.run("master", "systemd-run --unit=locust-longrun --collect /opt/locust/bin/locust-headless -u 8 -r 8 -t %ds "
              "-w %d -o /var/lib/locust/reports/long -H %s" % (run_time, total, target.url))
    target.reset()
    wait_until(lambda: set(target.snapshot()) == worker_names(fleet), timeout=90, interval=1,
               what="load from every worker process")
    load_started = time.time()
    fleet.apply("watcher.yml", limit="worker2", extra_vars={"idle_dry_run": False})  # now both act for real
    stops_before = stop_calls(fleet)
    while fleet.out("master", "systemctl is-active locust-longrun", check=False) in ("active", "activating"):
        assert [fleet.state(name) for name in WORKERS] == ["running", "running"]
        assert stop_calls(fleet) == stops_before
        time.sleep(3)
    load_ended = time.time()
    busy_for = load_ended - load_started
    assert busy_for >= 3 * IDLE_TIMEOUT, busy_for
    assert stop_calls(fleet) == stops_before
    report = json.loads(fleet.out("master", "cat /var/lib/locust/reports/long/report.json"))
    assert sum(entry["num_requests"] for entry in report if entry["name"] == "/") > 0
    for name in WORKERS:
        # every watcher run while the load ran (after the switch to real actions) said busy
        during = [line for stamp, line in fleet.journal(name)
                  if load_started + 2 * WATCH_INTERVAL <= stamp <= load_ended - 5 and line.startswith("decision=")]
        assert len(during) >= 3 * IDLE_TIMEOUT / WATCH_INTERVAL - 8, during
        assert all(line.startswith("decision=busy") for line in during), during
    print("\n[roles] %.0fs of load (3 x idle_timeout = %ds): no machine stopped; e.g. %s"
          % (busy_for, 3 * IDLE_TIMEOUT, during[-1]))


def test_workers_are_stopped_when_the_master_is_gone(fleet):
    stops_before = stop_calls(fleet)
    fleet.action("master", "stop")
    fleet.wait_state("master", "stopped")
    gone = time.monotonic()
    seen = {name: {"no_master_lines": False, "decisions": []} for name in WORKERS}

    def all_stopped():
        for name in WORKERS:
            if fleet.state(name) == "stopped":
                continue
            res = fleet.run(name, "grep -h 'Failed to connect to master' /var/log/locust/worker_*.log | tail -1; "
                            "journalctl -q -o cat -t locustfleet-idle-watcher -n 1 --no-pager", check=False, timeout=20)
            if res.returncode == 0:
                seen[name]["no_master_lines"] |= "Failed to connect to master" in res.stdout
                seen[name]["decisions"].append(res.stdout.strip().splitlines()[-1])
        return all(fleet.state(name) == "stopped" for name in WORKERS)
    wait_until(all_stopped, timeout=IDLE_TIMEOUT + 120, interval=2, what="both workers stopped")
    print("\n[roles] workers stopped %.0fs after the master; last decisions seen: %s"
          % (time.monotonic() - gone, {n: s["decisions"][-1:] for n, s in seen.items()}))
    assert stop_calls(fleet) == stops_before + 1 + 2  # the master by the test, each worker by its watcher
    for name in WORKERS:
        assert watcher_stops(fleet, name), fleet.audit(name)
        # the workers' "Failed to connect to master" retries did not keep them up
        logs = "".join(fleet.upper_file(name, "/var/log/locust/worker_%02d.log" % i)
                       for i in range(expected_processes_stopped(fleet, name)))
        assert seen[name]["no_master_lines"] or "Failed to connect to master" in logs, seen[name]

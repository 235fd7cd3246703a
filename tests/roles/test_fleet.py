"""The roles on real hosts: a Locust master and two workers on nspawn machines made through
tritonsim's CloudAPI, configured by ansible-playbook over SSH; then the idle watchers (on the
workers and on the master) stopping machines through CloudAPI once no test uses them, and not
stopping busy ones: workers with 0 users, a LoadTestShape that starts at 0 users, a daylight-saving
fall-back, this host's clock stepped forward and back, and a broken state file.

The tests share one fleet and run in order: each phase starts from the state the previous one
left (see conftest.py for the timings used).
"""

import base64
import json
import subprocess
import tempfile
import time

from rolesutil import CLUSTER, IDLE_TIMEOUT, MACHINES, ODD_ARG, WATCH_INTERVAL, WORKERS, wait_until

KEY = "/etc/locustfleet-idle-watcher/config.json"  # the watcher's settings hold its key
STATE = "/var/lib/locustfleet-idle-watcher/state.json"
# The time a stop takes to show: one watcher run may start just before the idle_timeout is
# reached (one period), the next one acts; then CloudAPI and this test's 1 s polling.
STOP_BOUND = IDLE_TIMEOUT + 2 * WATCH_INTERVAL + 5
# Seconds of the tests' clock steps: more than idle_timeout, so a wall-clock watcher fails, and less
# than Locust's MASTER_HEARTBEAT_TIMEOUT (60 s, compared on the wall clock: a bigger forward step
# makes every worker quit the test by itself).
STEP = 50
REJOIN_GRACE = 90


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
            "locustfile = /opt/locust/tests/fleetcheck.py,/opt/locust/tests/locustfleet_activity.py,/opt/locust/tests/locustfleet_results.py"
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
    assert fleet.out("master", "systemctl is-active locustfleet-idle-watcher.timer") == "active"


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
            "master.log", "progress.jsonl", "locustfleet_run.json"} <= set(reports)
    report = json.loads(fleet.out("master", "cat /var/lib/locust/reports/smoke/report.json"))
    requests = sum(entry["num_requests"] for entry in report)
    # when the run time is up Locust kills its users at once: a request already answered by the
    # target but not yet recorded is lost, at most one per user (-u 20); CI saw 1952 of 1955
    assert sum(counts.values()) - 20 <= requests <= sum(counts.values()), (requests, counts)
    # the service is back and the workers (restarted by supervisord) rejoined it
    assert fleet.out("master", "systemctl is-active locust-master") == "active"
    wait_until(lambda: fleet.connected_workers() == total, timeout=60, interval=1, what="workers back on the service")
    # the activity plugin wrote start, ticks and stop with epoch stamps, in its own files only
    for name in MACHINES:
        files = fleet.out(name, "ls /var/log/locust/").split()
        expected = ["activity_master.log"] if name == "master" else \
            ["activity_worker_%02d.log" % i for i in range(fleet.nproc(name))]
        assert sorted(f for f in files if f.startswith("activity_")) == expected, files
        lines = fleet.out(name, "cat /var/log/locust/%s" % expected[0]).splitlines()
        events = [line.split()[1] for line in lines]
        assert events[0] == "event=start" and "event=tick" in events and events[-1] == "event=stop", lines
        assert all(abs(float(line.split()[0][3:]) - time.time()) < 600 for line in lines), lines
    assert "ts=" not in fleet.out(WORKERS[0], "cat /var/log/locust/worker_00.log")


def test_headless_locust_holds_no_terminal_and_no_root_descriptor(fleet, target):
    """An admin starts locust-headless from a root shell (a terminal: script(1) gives it one): the
    locustfile's process must hold neither that terminal (TIOCSTI would type into root's shell
    after the run) nor the root-owned lock file."""
    total = sum(expected_processes(fleet).values())
    fleet.run("master", "systemd-run --unit=lf-ttyrun --collect script -qfec '/opt/locust/bin/locust-headless -u 1 -r 1 "
              "-t 5s -w %d -o /var/lib/locust/reports/tty -H %s' /dev/null" % (total, target.url))
    pid = wait_until(lambda: fleet.out("master", "pgrep -o -u locust -f -- --headless || true"), timeout=60, interval=0.5,
                     what="the headless Locust process")
    stat = fleet.out("master", "cat /proc/%s/stat" % pid)
    assert stat.rsplit(")", 1)[1].split()[4] == "0", stat  # tty_nr: no controlling terminal
    fds = fleet.out("master", "for fd in /proc/%s/fd/*; do readlink \"$fd\"; done" % pid).split()
    assert not [fd for fd in fds if fd.startswith("/dev/pts") or fd.startswith("/dev/tty") or "locust-headless" in fd], fds
    assert fleet.out("master", "stat -c %U /proc/" + pid) == "locust"
    wait_until(lambda: fleet.run("master", "systemctl is-active --quiet lf-ttyrun", check=False).returncode != 0,
               timeout=120, interval=1, what="the headless run under a terminal to end")
    assert "report.json" in fleet.out("master", "ls /var/lib/locust/reports/tty").split()
    assert fleet.out("master", "systemctl is-active locust-master") == "active"
    wait_until(lambda: fleet.connected_workers() == total, timeout=90, interval=1, what="workers back on the service")


def test_second_run_changes_nothing_and_follows_no_link_of_the_locust_user(fleet):
    """Also the role run after the locust user replaced its reports directory with a symlink to a
    root directory: the run must not chown (or create) the target."""
    fleet.run("master", "mkdir -p -m 700 /root/victim-reports && mv /var/lib/locust/reports /var/lib/locust/reports.real"
              " && sudo -u locust ln -s /root/victim-reports /var/lib/locust/reports")
    try:
        run = fleet.apply("site.yml")
        assert fleet.out("master", "stat -c '%U %G %a' /root/victim-reports") == "root root 700"
    finally:
        fleet.run("master", "rm -f /var/lib/locust/reports && mv /var/lib/locust/reports.real /var/lib/locust/reports"
                  " && rmdir /root/victim-reports")
    assert set(run.recap) == {"master", *WORKERS}
    assert all(recap["changed"] == 0 for recap in run.recap.values()), run.recap


def test_watcher_key_is_readable_by_root_only(fleet):
    for name in MACHINES:
        res = fleet.run(name, "sudo -u locust cat %s" % KEY, check=False)
        assert res.returncode != 0 and "Permission denied" in res.stderr, (res.stdout, res.stderr)
        assert "PRIVATE KEY" not in res.stdout
        assert fleet.out(name, "stat -c '%%a %%U %%G' %s /etc/locustfleet-idle-watcher" % KEY).splitlines() == \
            ["600 root root", "700 root root"]
        assert "PRIVATE KEY-----" in json.loads(fleet.out(name, "cat %s" % KEY))["cloudapi"]["private_key"]
        assert fleet.run(name, "test -e /etc/locustfleet-idle-watcher/cloudapi.key", check=False).returncode == 1


def test_master_unit_hands_odd_values_to_locust_verbatim(fleet):
    pid = fleet.out("master", "systemctl show -p MainPID --value locust-master")
    argv = fleet.out("master", "tr '\\0' '\\n' </proc/%s/cmdline" % pid).split("\n")
    at = argv.index("--exclude-tags")
    assert argv[at + 1] == ODD_ARG, argv
    assert fleet.run("master", "test -e /tmp/pwned", check=False).returncode != 0


def supervisord_open_files(fleet, name):
    pid = fleet.out(name, "cat /var/run/supervisord.pid")
    return set(fleet.out(name, "for fd in /proc/%s/fd/*; do readlink \"$fd\"; done" % pid).split())


def test_locust_user_cannot_make_supervisord_write_through_a_symlink(fleet):
    """The locust user (the locustfile's) owns /var/log/locust: a log that root writes there can be
    swapped for a symlink to a root file, and the locustfile's prints appended to it."""
    name = WORKERS[0]
    nproc = fleet.nproc(name)
    fleet.run(name, "printf canary >/root/canary && chmod 600 /root/canary")
    for i in range(nproc):
        fleet.run(name, "sudo -u locust ln -sfn /root/canary /var/log/locust/locust-worker_%02d.out" % i)
    fleet.run(name, "supervisorctl restart 'locust-worker:*'")
    opened = supervisord_open_files(fleet, name)
    assert "/root/canary" not in opened
    logs = sorted(path for path in opened if path.endswith(".out"))
    assert logs == ["/var/log/supervisor/locust-worker_%02d.out" % i for i in range(nproc)], opened
    assert fleet.out(name, "stat -c '%U %a' /var/log/supervisor") == "root 755"
    res = fleet.run(name, "sudo -u locust ln -s /root/canary /var/log/supervisor/x.out", check=False)
    assert res.returncode != 0 and "Permission denied" in res.stderr
    assert fleet.out(name, "cat /root/canary") == "canary"
    fleet.run(name, "rm -f /root/canary /var/log/locust/locust-worker_*.out")
    total = sum(expected_processes(fleet).values())
    wait_until(lambda: fleet.connected_workers() == total, timeout=90, interval=1, what="workers back on the master")


def test_locust_user_cannot_make_headless_chown_through_a_symlink(fleet):
    """/var/lib/locust/reports is the locust user's: a report directory planted there as a symlink must
    not make root create or chown its target."""
    fleet.run("master", "mkdir -p /root/victim && chmod 700 /root/victim")
    fleet.run("master", "sudo -u locust ln -sfn /root/victim /var/lib/locust/reports/planted")
    fleet.run("master", "sudo -u locust ln -sfn /etc/cron.d/planted /var/lib/locust/reports/dangling")
    for planted in ("planted", "dangling"):
        res = fleet.run("master", "/opt/locust/bin/locust-headless -u 1 -r 1 -t 1s -w 1 -o /var/lib/locust/reports/%s"
                        % planted, check=False, timeout=120)
        assert res.returncode == 2, res.stdout + res.stderr
        assert "locust-headless: the locust user cannot create the report directory /var/lib/locust/reports/%s" \
            % planted in res.stderr
    assert fleet.out("master", "stat -c '%U %G %a' /root/victim") == "root root 700"
    assert fleet.run("master", "test -e /etc/cron.d/planted", check=False).returncode != 0
    assert fleet.out("master", "systemctl is-active locust-master") == "active"
    fleet.run("master", "rm -rf /root/victim /var/lib/locust/reports/planted /var/lib/locust/reports/dangling")


def test_dry_run_decides_idle_and_stops_nothing(fleet):
    fleet.sim.reset_stats()

    def idle_logged(name):
        return any("decision=idle" in line and "action=dry-run" in line for dummy, line in fleet.journal(name))
    for name in MACHINES:
        wait_until(lambda n=name: idle_logged(n), timeout=IDLE_TIMEOUT + 60, interval=2, what="dry-run idle on %s" % name)
    time.sleep(2 * WATCH_INTERVAL)
    assert stop_calls(fleet) == 0
    assert [fleet.state(name) for name in MACHINES] == ["running", "running", "running"]
    line = [entry for dummy, entry in fleet.journal(WORKERS[0]) if "decision=idle" in entry][-1]
    print("\n[roles] dry run: %s" % line)
    assert 'result="would stop"' in line


class HostClock:
    """Steps this host's wall clock, and with it every nspawn machine's (one kernel); restore()
    puts it back where it would be without the steps (the monotonic clock never moved)."""

    def __init__(self):
        self.offset = time.time() - time.monotonic()

    @staticmethod
    def step(seconds):
        time.clock_settime(time.CLOCK_REALTIME, time.time() + seconds)

    def restore(self):
        time.clock_settime(time.CLOCK_REALTIME, time.monotonic() + self.offset)


def fall_back_zone(at):
    """A compiled time zone (zic) whose daylight-saving time ends at epoch ``at``: the hour before
    it is lived twice, as in New York on the first Sunday of November."""
    when = time.gmtime(at)
    fields = (when.tm_year, when.tm_year, time.strftime("%b", when), when.tm_mday, when.tm_hour, when.tm_min, when.tm_sec)
    source = ("Rule LF %d only - Jan 1 0:00u 1:00 D\nRule LF %d only - %s %d %02d:%02d:%02du 0 S\n"
              "Zone Locustfleet/FallBack -5:00 LF X%%sT\n" % fields)
    with tempfile.TemporaryDirectory() as tmp:
        with open(tmp + "/zone", "w") as handle:
            handle.write(source)
        subprocess.run(["zic", "-d", tmp, tmp + "/zone"], check=True)
        with open(tmp + "/Locustfleet/FallBack", "rb") as handle:
            return handle.read()


def activity_lines(fleet, name):
    return fleet.out(name, "cat /var/log/locust/activity_*.log", check=False).splitlines()


def test_busy_machines_are_not_stopped_with_zero_users_dst_clock_steps_and_a_broken_state(fleet, target):
    """One test of 3 x idle_timeout with fewer users than worker processes: a LoadTestShape with 0
    users for 50 s, then 1 user (the issue's case: a 1-user test on 2 workers x 2 processes). On
    every machine a time zone whose daylight saving ends during the test; this host's clock
    stepped STEP s forward and back; worker2's state file broken. Nothing may be stopped."""
    total = sum(expected_processes(fleet).values())
    assert total >= 2  # so 1 user leaves a worker process with 0 users
    run_time = 180  # rampshape.py END
    # the time zone, active for every process started from now on
    zone = base64.b64encode(fall_back_zone(time.time() + 120)).decode()
    for name in MACHINES:
        fleet.run(name, "mkdir -p /usr/local/share/zoneinfo/Locustfleet && echo %s | base64 -d > "
                  "/usr/local/share/zoneinfo/Locustfleet/FallBack && ln -sf /usr/local/share/zoneinfo/Locustfleet/FallBack "
                  "/etc/localtime && systemctl restart %s" % (zone, "locust-master" if name == "master" else "supervisor"))
        assert fleet.out(name, "date +%Z") == "XDT"
    wait_until(lambda: fleet.connected_workers() == total, timeout=90, interval=1, what="workers back on the master")
    # Every watcher acts for real from now on (idle time counts from this new config). The longer
    # grace is for the last test, which starts the machines again and watches them rejoin.
    fleet.apply("watcher.yml", extra_vars={"idle_dry_run": False, "idle_grace": REJOIN_GRACE})
    stops_before = stop_calls(fleet)
    fleet.run("master", "systemd-run --unit=locust-busyrun --collect /opt/locust/bin/locust-headless -u 1 -r 1 -t 600s "
              "-w %d -o /var/lib/locust/reports/busy -H %s -- -f /opt/locust/tests/fleetcheck.py,"
              "/opt/locust/tests/rampshape.py,/opt/locust/tests/locustfleet_activity.py,/opt/locust/tests/locustfleet_results.py" % (total, target.url))
    started = time.monotonic()
    clock = HostClock()
    done = {"forward": None, "back": None, "state": None}
    try:
        while fleet.out("master", "systemctl is-active locust-busyrun", check=False) in ("active", "activating"):
            assert [fleet.state(name) for name in MACHINES] == ["running"] * 3
            assert stop_calls(fleet) == stops_before
            elapsed = time.monotonic() - started
            if elapsed > 90 and done["forward"] is None:
                clock.step(STEP)
                done["forward"] = time.monotonic()
            if done["forward"] and time.monotonic() - done["forward"] > 2 * WATCH_INTERVAL + 2 and done["back"] is None:
                clock.restore()  # a step of STEP s backwards
                done["back"] = time.monotonic()
            if elapsed > 130 and done["state"] is None:
                fleet.run("worker2", "echo '{\"version\": 2, \"files\": [\"broken' > %s" % STATE)
                done["state"] = time.monotonic()
            assert elapsed < run_time + 120, "the test did not end"
            time.sleep(2)
    finally:
        clock.restore()
    ended = time.monotonic()
    assert ended - started >= 3 * IDLE_TIMEOUT and all(done.values()), done
    assert stop_calls(fleet) == stops_before
    assert [fleet.state(name) for name in MACHINES] == ["running"] * 3
    # the time zone did fall back during the test: the workers' Locust logs went from XDT hours to XST hours
    assert fleet.out("master", "date +%Z") == "XST"
    # worker processes with 0 users took part and ticked
    zero = [line for name in WORKERS for line in activity_lines(fleet, name)
            if " event=tick " in line and " users=0 " in line and " state=running " in line]
    assert zero, "no tick with 0 users"
    report = json.loads(fleet.out("master", "cat /var/lib/locust/reports/busy/report.json"))
    assert sum(entry["num_requests"] for entry in report if entry["name"] == "/") > 0
    for name in MACHINES:
        during = [line for stamp, line in fleet.journal(name)
                  if started + 2 * WATCH_INTERVAL <= stamp <= ended - 2 and line.startswith("decision=")]
        assert len(during) >= (ended - started) / WATCH_INTERVAL - 12, during
        assert all(line.startswith("decision=busy") for line in during), [x for x in during if "busy" not in x]
    replaced = [line for stamp, line in fleet.journal("worker2") if stamp >= done["state"] and "state file" in line]
    assert replaced and "replaced" in replaced[0], replaced
    stepped = [line for name in MACHINES for stamp, line in fleet.journal(name) if "from now" in line]
    print("\n[roles] %.0fs test with 1 user over %d worker processes (0 users for the first 50 s), DST fall-back, "
          "clock +%ds and back, worker2 state broken: nothing stopped; %d zero-user ticks; after the step: %s; "
          "state: %s" % (ended - started, total, STEP, len(zero), stepped[:1], replaced[0]))
    fleet.busy_run_ended = ended


def test_a_forgotten_fleet_ends_fully_stopped(fleet):
    """After the last test nobody runs another: every worker and the master are stopped within
    idle_timeout + 2 timer periods, even with the clock stepped back right after the test."""
    ended = fleet.busy_run_ended
    clock = HostClock()
    clock.step(-STEP)
    requested = {}
    try:
        def all_requested():
            for name in MACHINES:
                if name not in requested and fleet.state(name) != "running":
                    requested[name] = time.monotonic() - ended
            return len(requested) == len(MACHINES)
        wait_until(all_requested, timeout=STOP_BOUND + 60, interval=1, what="every machine stopped by its watcher")
    finally:
        clock.restore()
    print("\n[roles] forgotten fleet: seconds from the end of the test to each stop: %s (bound %ds = idle_timeout "
          "%ds + 2 x %ds + 5)" % ({n: round(v) for n, v in requested.items()}, STOP_BOUND, IDLE_TIMEOUT, WATCH_INTERVAL))
    assert all(IDLE_TIMEOUT - 2 * WATCH_INTERVAL <= took <= STOP_BOUND for took in requested.values()), requested
    for name in MACHINES:
        fleet.wait_state(name, "stopped")
        assert watcher_stops(fleet, name), fleet.audit(name)
    tags = {name: fleet.client.get(fleet.path(name), expect=dict)["tags"] for name in MACHINES}
    assert {t["locustfleet.cluster"] for t in tags.values()} == {CLUSTER}


def test_machines_started_again_rejoin_without_ansible(fleet):
    """Stopped by their watchers and started again, the machines are a fleet again without any
    Ansible run: supervisord starts the workers at boot and they read the master from metadata."""
    for name in MACHINES:
        fleet.action(name, "start")
    for name in MACHINES:
        fleet.wait_state(name, "running")
    started = time.monotonic()
    total = sum(expected_processes(fleet).values())
    wait_until(lambda: fleet.connected_workers() == total, timeout=REJOIN_GRACE, interval=1,
               what="the workers rejoined the master")
    print("\n[roles] started again: %d worker processes back on the master after %.0fs" % (total, time.monotonic() - started))

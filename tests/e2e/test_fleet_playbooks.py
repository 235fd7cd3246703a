"""The whole flow users run, on real hosts, with the collection as users get it: built into a
tarball from this checkout, installed with ansible-galaxy into a user's directory outside the
repository, and run by FQCN from there (cwd and PWD = that directory, no ansible.cfg, the user's
collections dir, the user's own inventory file), against tritonsim --backend nspawn:

    build_template -> spawn master and workers from the image, behind the fleet's Cloud Firewall, with the watcher's
    own sub-user -> what the firewall and that sub-user's key let through -> again (no change) ->
    graph -> load tests (progress while they run, thresholds, saturation, comparison) -> shrink -> idle stop of the workers and the master, by the sub-user ->
    scheduled teardown, run as cron runs it -> nothing left (machines, rules, sub-user).

The fleet comes from the template image on purpose: that path (build_template.yml, then
spawn_slaves.yml -e fleet_template=...) is only tested here, and it is the faster one, since no
role runs on any machine; the roles on base-image machines are run by tests/roles and scripts/main.
"""

import csv
import json
import os
import re
import sys
import threading
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parents[1]
for folder in ("hosts", "roles"):
    if str(TESTS / folder) not in sys.path:
        sys.path.insert(0, str(TESTS / folder))

from hostutil import wait_until  # noqa: E402
from rolesutil import TargetServer  # noqa: E402
from support.control import REPO, live_machines, sim_client  # noqa: E402
from ansible_collections.locustfleet.triton.plugins.module_utils._client import (  # noqa: E402
    CloudAPIClient, CloudAPIError)
from ansible_collections.locustfleet.triton.plugins.module_utils._config import CloudAPIConfig  # noqa: E402
from ansible_collections.locustfleet.triton.plugins.module_utils._keys import load_private_key  # noqa: E402
from support.installed import ansible, cron_command, cron_line, installed_copy, run_as_cron, user_env  # noqa: E402
from support.realfleet import nspawn_cloud, run_playbook, ssh  # noqa: E402

CLUSTER = "e2e"
# A machine is stopped by its watcher once it is up IDLE_GRACE s and idle IDLE_TIMEOUT s. Nothing
# runs on the workers between their boot and the load test, so IDLE_GRACE covers the spawns and
# the graph (120-290 s after the boot here); after the test, IDLE_TIMEOUT covers the shrink
# (35-140 s): a watcher that stopped its worker while spawn_slaves runs would fail that run.
IDLE_GRACE = 420
IDLE_TIMEOUT = 240
TIMINGS = []


@pytest.fixture(scope="module")
def cloud(tritonsim_module_factory, tmp_path_factory):
    # The sim, the user's directory (installed collection, the user's locustfile fleetcheck.py); at
    # the end, no machine left, the sim stopped and the host as it was (support.realfleet).
    with nspawn_cloud(tritonsim_module_factory, tmp_path_factory, "the end-to-end test on real hosts",
                      throttle="10:30") as (sim, user):
        info = sim.info()  # /__sim/info, with the admin token (tritonsim.testing)
        target = TargetServer(info["guest_url"].split("//")[1].split(":")[0], profile=True)
        thread = threading.Thread(target=target.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True)
        thread.start()
        yield sim, info["guest_url"], target, user
        target.shutdown()
        target.server_close()
    print("\n[e2e] timings: " + ", ".join("%s %.0fs" % item for item in TIMINGS))


def shell_env(sim, user):
    """The user's shell: what a user of the README sets, and nothing from the repository."""
    return user_env(sim, user, LOCUSTFLEET_CLUSTER=CLUSTER, ANSIBLE_PIPELINING="1", ANSIBLE_FORKS="10",
                    ANSIBLE_PRIVATE_KEY_FILE=str(sim.key_path))


def run(cloud_, playbook, *extra, expect_rc=0):
    """ansible-playbook locustfleet.triton.PLAYBOOK from the user's directory; (output, recap)."""
    output, recap, dummy = run_timed(cloud_, playbook, *extra, expect_rc=expect_rc)
    return output, recap


def run_timed(cloud_, playbook, *extra, expect_rc=0):
    """run(), and each line of the output with the seconds since the start when it came."""
    sim, guest_url, dummy, user = cloud_
    extra_vars = {
        "cluster": CLUSTER,
        "locust_files": [str(user / "fleetcheck.py")],
        "locust_activity_interval": 5,
        "idle_timeout": IDLE_TIMEOUT, "idle_grace": IDLE_GRACE, "idle_watcher_interval": 5,
        "locust_idle_watcher_url": guest_url, "locust_idle_watcher_account": sim.account,
        "watcher_subuser": True,
    }
    return run_playbook(sim, user, playbook, extra_vars, *extra, env=shell_env(sim, user), expect_rc=expect_rc,
                        timings=TIMINGS, tag="e2e")


def fleet(sim):
    return {m["name"]: m for m in live_machines(sim, **{"locustfleet.cluster": CLUSTER})}


def images(sim, name):
    return sim_client(sim).get("/%s/images" % sim.account, {"name": name, "state": "all"}, expect=list)


def reaches(sim, source, address, port):
    """Whether machine ``source`` opens a TCP connection to ``address``:``port`` within 5 s."""
    probe = ssh(sim, source, "timeout 5 bash -c '</dev/tcp/%s/%d'" % (address, port))
    assert probe.returncode in (0, 1, 124), probe.stdout + probe.stderr  # 255: the SSH itself failed
    return probe.returncode == 0


def outsider(sim):
    """A machine of the same account outside the cluster (no cluster tag, no firewall)."""
    client = sim_client(sim)
    image = client.get("/%s/images" % sim.account, {"name": "debian-12"}, expect=list)[-1]
    made = client.post("/%s/machines" % sim.account,
                       {"name": "e2e-outsider", "image": image["id"], "package": "g1-small"}, expect=dict)
    wait_until(lambda: client.get("/%s/machines/%s" % (sim.account, made["id"]), expect=dict)["state"] == "running",
               timeout=300, interval=2, what="the outsider machine running")
    machine = client.get("/%s/machines/%s" % (sim.account, made["id"]), expect=dict)
    wait_until(lambda: ssh(sim, machine["primaryIp"], "true").returncode == 0, timeout=120, interval=2,
               what="SSH to the outsider machine")
    return machine


def watcher_client(sim, user):
    """CloudAPI as the watcher's sub-user, with the key spawn_slaves made for it in the user's home."""
    key = user / "home" / ".locustfleet" / "keys" / (CLUSTER + "-watcher")
    assert oct(key.stat().st_mode & 0o777) == "0o600" and oct(key.parent.stat().st_mode & 0o777) == "0o700"
    private = load_private_key(str(key))
    config = CloudAPIConfig(url=sim.url, account=sim.account, user=CLUSTER + "-watcher", key_id=private.fingerprint,
                            rate_limit=0, retries=0)
    return CloudAPIClient(config, key=private)


def refused(call):
    try:
        call()
    except CloudAPIError as exc:
        return exc.status == 403 and exc.code == "NotAuthorized"
    return False


def check_firewall_and_watcher_key(sim, user, outside, target):
    machines = fleet(sim)
    master = machines[CLUSTER + "-master"]["primaryIp"]
    worker = machines[CLUSTER + "-worker-1"]
    assert all(m["firewall_enabled"] for m in machines.values()), machines
    rules = sim_client(sim).get("/%s/fwrules" % sim.account, expect=list)
    assert sorted(r["description"] for r in rules) == [
        "locustfleet e2e: Locust workers to the master", "locustfleet e2e: SSH from the control node"]
    # A worker reaches the master's Locust port; a machine outside the cluster reaches neither that
    # nor SSH, though its network works (the test's target server on the bridge answers it).
    assert reaches(sim, worker["primaryIp"], master, 5557)
    assert not reaches(sim, outside["primaryIp"], master, 5557)
    assert not reaches(sim, outside["primaryIp"], master, 22)
    assert not reaches(sim, outside["primaryIp"], worker["primaryIp"], 22)
    assert reaches(sim, outside["primaryIp"], *target.server_address[:2])

    # The watcher's key: its own fleet's machines, to look at and stop; nothing else.
    watcher = watcher_client(sim, user)
    account = sim.account
    assert watcher.get("/%s/machines/%s" % (account, worker["id"]), expect=dict)["id"] == worker["id"]
    assert refused(lambda: watcher.get("/%s/machines/%s" % (account, outside["id"]), expect=dict))
    assert refused(lambda: watcher.post("/%s/machines/%s" % (account, outside["id"]), {"action": "stop"}))
    assert refused(lambda: watcher.delete("/%s/machines/%s" % (account, worker["id"])))
    assert refused(lambda: watcher.post("/%s/machines" % account,
                                        {"name": "x", "image": worker["image"], "package": "g1-small"}))
    assert refused(lambda: watcher.get("/%s/keys" % account, expect=list))
    assert worker["id"] in {m["id"] for m in live_machines(sim)}


# Thresholds of the target's profile (tests/roles/rolesutil.TargetServer): "/" answers at once,
# "/slow" after 250 ms, every second "/flaky" request fails; fleetcheck.py asks "/" 3 times as often.
KEPT = {"Aggregated": {"fail_ratio": 0.3, "rps_min": 1}, "/": {"p95_ms": 200, "fail_ratio": 0},
        "/slow": {"p50_ms": 2000}}
BREACHED = {"Aggregated": {"rps_min": 100000}, "/": {"fail_ratio": 0.01}, "/slow": {"p50_ms": 100},
            "/flaky": {"fail_ratio": 0.1}}
PROGRESS = re.compile(r"run_test: (\d+)s elapsed \((\w+)\), (\d+) users, [\d.]+ req/s, [\d.]+% failures, "
                      r"(\d+) of (\d+) workers connected")


def number(value):
    """A figure as the results lines print it: 400, 12.4, 0.0125."""
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)


def check_progress(lines, users, processes):
    """During the test, a progress line at least every 10 s, with the run's numbers."""
    follow = [(when, PROGRESS.fullmatch(line)) for when, line in lines if line.startswith("run_test: ")]
    assert len(follow) >= 6, lines[-40:]
    assert max(b - a for (a, dummy), (b, dummy) in zip(follow, follow[1:])) <= 10, follow
    running = [match for dummy, match in follow if match and match.group(2) == "running"]
    assert max(int(match.group(1)) for match in running) >= 50  # lines until the end of the 60 s test
    assert any(int(m.group(3)) == users and m.group(4) == m.group(5) == str(processes) for m in running), running


def check_results(reports, thresholds, passed, workers):
    """summary.json and junit.xml of a run: its figures are those of Locust's own locust_stats.csv,
    one threshold result per limit with the measured value, the worker machines' CPU."""
    summary = json.loads((reports / "summary.json").read_text())
    with (reports / "locust_stats.csv").open(newline="") as handle:
        stats = {row["Name"]: row for row in csv.DictReader(handle)}
    assert set(summary["figures"]) == set(stats) == {"Aggregated", "/", "/slow", "/flaky"}
    for name, row in stats.items():
        figure = summary["figures"][name]
        assert (figure["requests"], figure["failures"]) == (int(row["Request Count"]), int(row["Failure Count"]))
        assert [figure[key] for key in ("p50_ms", "p90_ms", "p95_ms", "p99_ms")] == \
            [int(row[column]) for column in ("50%", "90%", "95%", "99%")], (name, figure, row)
    # Requests/s over the run as report.json spans it (first request to last, all names); Locust's CSV
    # counts from the test's start, a little earlier, which report.json does not hold.
    report = json.loads((reports / "report.json").read_text())
    span = max(e["last_request_timestamp"] for e in report) - min(e["start_time"] for e in report)
    assert summary["figures"]["Aggregated"]["rps"] == round(sum(e["num_requests"] for e in report) / span, 3)
    assert summary["figures"]["Aggregated"]["rps"] == pytest.approx(float(stats["Aggregated"]["Requests/s"]), rel=0.05)
    assert summary["figures"]["/slow"]["p50_ms"] >= 250  # the target's profile
    assert 0.4 <= summary["figures"]["/flaky"]["fail_ratio"] <= 0.6 and summary["figures"]["/"]["failures"] == 0
    expected = [(name, metric, limit) for name, limits in thresholds.items() for metric, limit in limits.items()]
    assert [(t["name"], t["metric"], t["limit"]) for t in summary["thresholds"]] == expected
    assert [t["passed"] for t in summary["thresholds"]] == passed
    for result in summary["thresholds"]:
        figure = summary["figures"][result["name"]]["rps" if result["metric"] == "rps_min" else result["metric"]]
        assert result["value"] == figure
    assert [machine["host"] for machine in summary["workers"]] == workers
    assert all(0 <= machine["peak_cpu"] for machine in summary["workers"])
    suite = ET.parse(reports / "junit.xml").getroot().find("testsuite")
    cases = suite.findall("testcase")
    assert len(cases) == len(expected) + 1  # one per threshold, one for the load generators
    assert [case.find("failure") is None for case in cases[:-1]] == passed
    saturated_failure = summary["generator_bound"] and summary["fail_on_saturation"]
    assert int(suite.get("failures")) == passed.count(False) + int(saturated_failure)
    return summary


def workers_of(sim):
    return sorted(name for name, m in fleet(sim).items() if m["tags"].get("locustfleet.role") == "worker")


def test_template_spawn_test_shrink_idle_and_scheduled_teardown(cloud, tmp_path):
    sim, dummy, target, user = cloud
    collection = installed_copy(user)
    repo_reports = sorted((REPO / "reports" / CLUSTER).glob("*")) if (REPO / "reports" / CLUSTER).is_dir() else []

    # The fleet's image: template machine -> roles -> stopped -> image <cluster>-fleet@<UTC time> -> deleted.
    output, recap = run(cloud, "build_template")
    (image,) = images(sim, CLUSTER + "-fleet")
    assert image["state"] == "active" and re.fullmatch(r"\d{8}T\d{6}Z", image["version"]), image
    assert image["tags"] == {"locustfleet.cluster": CLUSTER, "locustfleet.role": "fleet-template"}
    assert "Image %s-fleet@%s (%s)" % (CLUSTER, image["version"], image["id"]) in output
    assert fleet(sim) == {}  # the template machine is gone
    assert recap["localhost"]["failed"] == 0
    # The image has the watcher but not its CloudAPI key: every clone would carry it.
    image_root = Path(sim.data_dir) / "nspawn" / "images" / image["id"] / "rootfs"
    settings = json.loads((image_root / "etc/locustfleet-idle-watcher/config.json").read_text())
    assert settings["cloudapi"]["private_key"] == "" and settings["cluster"] == CLUSTER
    assert not (image_root / "etc/locustfleet-idle-watcher/cloudapi.key").exists()

    # The fleet from that image: no role runs on any machine, each takes its role (and a worker its
    # master) from metadata; the changes on each are this fleet's watcher settings (its sub-user and its key, one
    # file) and the record of what was applied. Meanwhile a machine outside the fleet boots.
    outside_ready = {}
    booting = threading.Thread(target=lambda: outside_ready.update(machine=outsider(sim)), daemon=True)
    booting.start()
    output, recap = run(cloud, "spawn_slaves", "count=3", "fleet_template=%s-fleet" % CLUSTER)
    machines = fleet(sim)
    workers = workers_of(sim)
    assert workers == ["e2e-worker-1", "e2e-worker-2", "e2e-worker-3"] and "e2e-master" in machines
    assert {machines[name]["image"] for name in workers + ["e2e-master"]} == {image["id"]}
    assert all(recap[name]["changed"] == 2 for name in workers + ["e2e-master"]), recap
    summary = re.search(r"with (\d+) worker processes on (\d+) worker machines", output)
    assert summary and summary.group(2) == "3"
    processes = int(summary.group(1))
    assert processes >= 3 and processes % 3 == 0  # one per vCPU on each worker

    booting.join(timeout=600)
    check_firewall_and_watcher_key(sim, user, outside_ready["machine"], target)
    sim_client(sim).delete("/%s/machines/%s" % (sim.account, outside_ready["machine"]["id"]))

    output, recap = run(cloud, "spawn_slaves", "count=3", "fleet_template=%s-fleet" % CLUSTER)
    assert all(counts["changed"] == 0 for counts in recap.values()), recap

    # The user's own inventory file: the shipped example, copied from the installed collection.
    (user / "fleet.joyent.yml").write_text((collection / "inventory" / "triton.joyent.yml").read_text())
    started = time.monotonic()
    graph = ansible("ansible-inventory", sim, user, "-i", "fleet.joyent.yml", "--graph",
                    env=dict(shell_env(sim, user), ANSIBLE_INVENTORY_ANY_UNPARSED_IS_FAILED="true"))
    TIMINGS.append(("ansible-inventory --graph", time.monotonic() - started))
    assert graph.returncode == 0, graph.stderr
    master_group = graph.stdout.split("@locust_master:")[1].split("@")[0]
    worker_group = graph.stdout.split("@locust_workers:")[1].split("@")[0]
    assert "e2e-master" in master_group
    assert sorted(re.findall(r"e2e-worker-\d", worker_group)) == workers

    # A 60 s test within its thresholds: progress while it runs, then the results.
    target.reset()
    load = ("target_host=%s" % target.url, "users=%d" % (processes * 2), "spawn_rate=%d" % (processes * 2))
    output, recap, lines = run_timed(cloud, "run_test", *load, "run_time=60s", json.dumps({"thresholds": KEPT}))
    check_progress(lines, users=processes * 2, processes=processes)
    by_worker = target.snapshot()
    assert len(by_worker) == processes, by_worker  # every worker process sent requests
    assert {key.split("/")[0] for key in by_worker} == set(workers)
    totals = re.search(r"(\d+) requests, (\d+) failures from (\d+) worker processes", output)
    assert totals and int(totals.group(1)) > 0 and int(totals.group(2)) > 0 and totals.group(3) == str(processes)
    # Reports land in the user's directory (where ansible-playbook ran), not in the installed collection.
    (first,) = (user / "reports" / CLUSTER).iterdir()
    assert re.fullmatch(r"\d{8}T\d{6}Z", first.name)
    assert {"report.json", "report.html", "locust_stats.csv", "summary.json", "junit.xml",
            "comparison.html"} <= {p.name for p in first.iterdir()}
    assert "reports in %s" % first in output
    assert not [p for p in collection.rglob("*") if p.name in ("reports", "report.json", "locust_stats.csv")]
    if (REPO / "reports" / CLUSTER).is_dir():
        assert sorted((REPO / "reports" / CLUSTER).glob("*")) == repo_reports
    summary_a = check_results(first, KEPT, passed=[True] * 5, workers=workers)
    assert summary_a["passed"] and not summary_a["generator_bound"] and summary_a["previous"] is None
    assert "no comparison: no earlier run of cluster e2e with these locustfiles" in output

    # The same locustfiles again, with one worker process burning CPU and thresholds it breaches:
    # the play fails naming each breach; the run is flagged generator-bound and compared with the first.
    burner = sorted(by_worker)[0]
    target.burn = {burner: 1000}  # ms per request: its process stays near 100% of a core
    # Locust's 90% needs a core to itself, which this 2-core machine cannot promise while it hosts the
    # whole fleet: the run's limit is 50% (the default, 90, is that of Run A and of tests/unit).
    output, recap, lines = run_timed(cloud, "run_test", *load, "run_time=45s", "saturation_cpu=50",
                                     json.dumps({"thresholds": BREACHED}), expect_rc=2)
    target.burn = {}
    (second,) = [path for path in (user / "reports" / CLUSTER).iterdir() if path != first]
    summary_b = check_results(second, BREACHED, passed=[False, True, False, False], workers=workers)
    failed = re.search(r"^fatal: \[e2e-master\]: FAILED! => (\{.*\})$", output, re.M)
    assert failed, output[-4000:]
    breaches = [(t["name"], t["metric"], t["value"], t["limit"]) for t in summary_b["thresholds"] if not t["passed"]]
    assert re.findall(r'threshold breached: "([^"]+)" (\w+) ([\d.]+) [<>] limit ([\d.]+)',
                      json.loads(failed.group(1))["msg"]) == [
        (name, metric, number(value), number(limit)) for name, metric, value, limit in breaches]
    assert [name for name, *dummy in breaches] == ["Aggregated", "/slow", "/flaky"]
    assert summary_b["generator_bound"] and not summary_b["passed"]
    peaks = {machine["host"]: machine["peak_cpu"] for machine in summary_b["workers"]}
    hot = burner.split("/")[0]
    assert max(peaks, key=peaks.get) == hot and peaks[hot] > 50 and summary_b["saturation_cpu"] == 50, peaks
    assert all(peak < peaks[hot] / 3 for host, peak in peaks.items() if host != hot), peaks
    assert "add workers" in summary_b["generator_advice"] and "FastHttpUser" in summary_b["generator_advice"]
    # The comparison is with the first run, and its numbers are the two runs' own.
    assert summary_b["previous"] == {"run": first.name, "figures": summary_a["figures"]}
    for name, metrics in summary_b["comparison"].items():
        for metric, entry in metrics.items():
            before, after = summary_a["figures"][name][metric], summary_b["figures"][name][metric]
            assert (entry["previous"], entry["current"]) == (before, after)
            assert entry["delta"] == pytest.approx(after - before, abs=1e-3)
            assert entry["delta_pct"] == (pytest.approx(100 * (after - before) / before, abs=0.05) if before else None)
    assert set(summary_b["comparison"]) == set(summary_a["figures"])
    page = (second / "comparison.html").read_text()
    assert first.name in page and second.name in page and "<svg" in page

    output, recap = run(cloud, "spawn_slaves", "count=2", "fleet_template=%s-fleet" % CLUSTER)
    assert workers_of(sim) == workers[:2]

    # No test runs any more: each machine's watcher (the workers' from the image, the master's from
    # spawn_slaves) stops it through CloudAPI: the forgotten fleet ends fully stopped.
    started = time.monotonic()
    wait_until(lambda: all(m["state"] == "stopped" for m in fleet(sim).values()),
               timeout=IDLE_GRACE + IDLE_TIMEOUT + 240, interval=5, what="idle fleet stopped by its watchers")
    TIMINGS.append(("wait for the idle stop", time.monotonic() - started))
    assert sorted(fleet(sim)) == ["e2e-master"] + workers[:2]
    assert sim.route_stats("StopMachine").get("202", 0) >= 3
    # ... each with the watcher's sub-user key, not an account key.
    for machine in fleet(sim).values():
        audit = sim_client(sim).get("/%s/machines/%s/audit" % (sim.account, machine["id"]), expect=list)
        stop = next(entry for entry in audit if entry["action"] == "stop")
        assert "/users/%s-watcher/keys/" % CLUSTER in stop["caller"]["keyId"], stop

    # The scheduled teardown (as schedule_teardown installs it) deletes the stopped machines, run
    # exactly as cron (or the systemd service) runs it: no agent, so it signs with a key file it is given.
    key = tmp_path / "teardown-key"
    key.write_bytes(Path(sim.key_path).read_bytes())
    key.chmod(0o600)
    name = "locustfleet-teardown-" + CLUSTER
    env_file = Path("/etc/locustfleet/%s.env" % name)
    run(cloud, "schedule_teardown", "teardown_every_minutes=5", "teardown_private_key_path=%s" % key)
    try:
        if os.path.isdir("/run/systemd/system"):
            unit = Path("/etc/systemd/system/%s.service" % name).read_text()
            command = next(line for line in unit.splitlines() if line.startswith("ExecStart=")).split("=", 1)[1]
            job = "set -a; . %s; set +a; %s" % (env_file, command)
        else:
            line = cron_line(name)
            assert line.startswith("*/5 * * * * ")
            job = cron_command(line)
        assert str(collection / "playbooks" / "teardown.yml") in job
        started = time.monotonic()
        done = run_as_cron(job, timeout=600)
        TIMINGS.append(("the scheduled job", time.monotonic() - started))
        assert done.returncode == 0, done.stdout + done.stderr
    finally:
        run(cloud, "schedule_teardown", "schedule_state=absent")
    assert fleet(sim) == {}  # every machine was stopped, so the teardown deleted them all
    assert not env_file.exists()

    run(cloud, "teardown", "teardown_all=true")
    assert live_machines(sim) == []
    # The cluster's firewall rules and its watcher's sub-user, policy and role went with it.
    client = sim_client(sim)
    assert [r for r in client.get("/%s/fwrules" % sim.account, expect=list)
            if r.get("description", "").startswith("locustfleet e2e:")] == []
    assert [u["login"] for u in client.get("/%s/users" % sim.account, expect=list)] == []
    assert [r["name"] for r in client.get("/%s/roles" % sim.account, expect=list)] == []
    assert [p["name"] for p in client.get("/%s/policies" % sim.account, expect=list)] == []

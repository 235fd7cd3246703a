"""The idle watcher's decision logic (roles/locust_idle_watcher/files/locustfleet_idle_watcher.py)
on real temporary log files: activity lines, "no master" retries, grace, rotation, truncation,
missing logs, offsets kept between runs, the action guard, and the CloudAPI actions against
tritonsim through the collection's own client code deployed the way the role deploys it."""

import ast
import importlib.util
import json
import os
import shutil
import stat
import time
from pathlib import Path

import pytest
import yaml

from sim.signer import client_for
from support import scripted

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "roles" / "locust_idle_watcher" / "files" / "locustfleet_idle_watcher.py"
MODULE_UTILS = REPO / "plugins" / "module_utils"


def role_client_files():
    """The module_utils files the role copies (the loop of "Install the collection's CloudAPI client")."""
    tasks = yaml.safe_load((REPO / "roles" / "locust_idle_watcher" / "tasks" / "main.yml").read_text())
    (task,) = [t for t in tasks if t.get("name") == "Install the collection's CloudAPI client"]
    return tuple(task["loop"])


CLIENT_FILES = role_client_files()

T0 = 1_800_000_000.0  # a fixed "now" for the tests (2027-01-15)


def load_watcher():
    spec = importlib.util.spec_from_file_location("locustfleet_idle_watcher_under_test", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


W = load_watcher()


def stamp(epoch):
    """A Locust log timestamp for ``epoch`` (local time, as Locust writes it)."""
    return "[%s,%03d]" % (time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(epoch)), int(epoch * 1000) % 1000)


def tick(epoch, users=5):
    return "%s w1/INFO/locustfleet.activity: locustfleet-activity: event=tick users=%d state=running\n" % (stamp(epoch), users)


def start(epoch):
    return "%s w1/INFO/locustfleet.activity: locustfleet-activity: event=start users=0 state=ready\n" % stamp(epoch)


def stop(epoch):
    return "%s w1/INFO/locustfleet.activity: locustfleet-activity: event=stop users=0 state=stopped\n" % stamp(epoch)


def no_master(epoch, n=7):
    return "%s w1/INFO/locust.runners: Failed to connect to master 10.0.0.1:5557, retry %d/60.\n" % (stamp(epoch), n)


def other(epoch, text="locust.main: Starting Locust 2.47.0"):
    return "%s w1/INFO/%s\n" % (stamp(epoch), text)


class Box:
    """A watcher config on temp dirs, and helpers to write worker logs and run the watcher."""

    def __init__(self, tmp_path, **overrides):
        self.logs = tmp_path / "log"
        self.logs.mkdir()
        self.state_dir = tmp_path / "state"
        self.config = dict(W.DEFAULTS)
        self.config.update(idle_timeout=600.0, idle_grace=300.0, action="stop", dry_run=False,
                           log_glob=str(self.logs / "worker_*.log"), state_dir=str(self.state_dir))
        self.config.update(overrides)
        self.actions = []
        self.fail_actions = False
        self.boot = T0 - 3600  # up for an hour unless a test says otherwise

    def log(self, name="worker_00.log"):
        return self.logs / name

    def append(self, *lines, name="worker_00.log"):
        with open(self.log(name), "a") as handle:
            handle.write("".join(lines))

    def _act(self, config, action):
        if self.fail_actions:
            raise RuntimeError("CloudAPI said no")
        self.actions.append(action)
        return "%s done" % action

    def run(self, now):
        decision, line, status = W.run_once(self.config, now=now, boot=self.boot, do_action=self._act)
        assert "\n" not in line
        return decision, line, status

    def state(self):
        return json.loads((self.state_dir / "state.json").read_text())


@pytest.fixture
def box(tmp_path):
    return Box(tmp_path)


# ------------------------------------------------------------------------------------------ lines

@pytest.mark.parametrize("line, kind", [
    (start(T0), "activity"),
    (stop(T0), "activity"),
    (tick(T0, users=3), "activity"),
    (tick(T0, users=0), None),
    (no_master(T0), "no-master"),
    (other(T0, "locust.runners: Didn't get heartbeat from master in over 60s"), "no-master"),
    (other(T0, "locust.main: Failed to connect to the Locust master: ..."), "no-master"),
    (other(T0), None),
    (other(T0, "locust.runners: Got quit message from master, shutting down..."), None),
    ("Traceback (most recent call last):\n", None),
    ("", None),
])
def test_classify(line, kind):
    assert W.classify(line) == kind


def test_line_time_reads_locust_timestamps():
    assert W.line_time(tick(T0 + 0.25), None) == pytest.approx(T0 + 0.25, abs=0.002)
    assert W.line_time("no timestamp here", 42) == 42
    assert W.line_time("[2026-13-45 99:99:99,000] junk", 7) == 7


# ------------------------------------------------------------------------------------------ decide

def test_decide_grace_period_after_boot():
    decision = W.decide(now=T0, boot_time=T0 - 100, last_activity=None, idle_timeout=60, idle_grace=300)
    assert not decision.idle and "grace" in decision.reason


def test_decide_counts_from_boot_without_activity():
    decision = W.decide(now=T0, boot_time=T0 - 700, last_activity=None, idle_timeout=600, idle_grace=300)
    assert decision.idle and decision.age == 700 and "boot" in decision.reason
    decision = W.decide(now=T0, boot_time=T0 - 500, last_activity=None, idle_timeout=600, idle_grace=300)
    assert not decision.idle


def test_decide_activity_before_boot_does_not_count():
    # a machine stopped and started again: its old logs say nothing about this boot
    decision = W.decide(now=T0, boot_time=T0 - 400, last_activity=T0 - 5000, idle_timeout=600, idle_grace=300)
    assert not decision.idle and decision.age == 400


def test_decide_idle_and_busy_by_last_activity():
    assert not W.decide(T0, T0 - 9999, T0 - 599, 600, 300).idle
    decision = W.decide(T0, T0 - 9999, T0 - 600, 600, 300)
    assert decision.idle and decision.age == 600 and "last activity" in decision.reason


def test_decide_counts_from_a_watcher_reconfiguration():
    # installing or changing the watcher (an Ansible run) gives a full idle_timeout before acting
    decision = W.decide(T0, T0 - 9999, T0 - 5000, 600, 300, configured_at=T0 - 100)
    assert not decision.idle and decision.age == 100 and "watcher configured" in decision.reason
    decision = W.decide(T0, T0 - 9999, T0 - 50, 600, 300, configured_at=T0 - 100)
    assert not decision.idle and decision.age == 50 and "last activity" in decision.reason
    assert W.decide(T0, T0 - 9999, None, 600, 300, configured_at=T0 - 700).idle
    # a template image's config is older than the boot: the boot counts
    decision = W.decide(T0, T0 - 400, None, 600, 300, configured_at=T0 - 99999)
    assert not decision.idle and decision.age == 400


def test_decide_names_a_missing_master():
    decision = W.decide(T0, T0 - 9999, T0 - 900, 600, 300, last_no_master=T0 - 5)
    assert decision.idle and "cannot reach the master" in decision.reason


# ------------------------------------------------------------------------------------------ runs on real logs

def test_no_logs_at_all_is_idle_after_timeout_since_boot(box):
    box.boot = T0 - 200
    decision, line, status = box.run(T0)
    assert not decision.idle and status == 0 and "grace" in line
    decision, line, status = box.run(T0 + 500)
    assert decision.idle and box.actions == ["stop"]
    assert line.startswith("decision=idle last_activity_age=700s idle_timeout=600s")
    assert "logs=0" in line and "action=stop" in line


def test_busy_worker_with_ticks_is_never_idle(box):
    # a long test: one tick every 30 s; the watcher runs every 60 s for three hours
    now = T0
    for minute in range(180):
        box.append(tick(now - 30), tick(now - 0.5))
        decision, line, status = box.run(now)
        assert not decision.idle, (minute, line)
        now += 60
    assert box.actions == []


def test_silence_after_test_stop_becomes_idle(box):
    box.append(start(T0 - 100), tick(T0 - 70), tick(T0 - 40), stop(T0 - 30))
    decision, line, status = box.run(T0)
    assert not decision.idle and decision.age == pytest.approx(30, abs=1)
    decision, line, status = box.run(T0 + 569)
    assert not decision.idle
    decision, line, status = box.run(T0 + 571)
    assert decision.idle and box.actions == ["stop"] and status == 0


def test_failed_to_connect_retries_count_as_idle_time(box):
    box.append(tick(T0 - 1000), stop(T0 - 990))
    for i in range(120):  # a retry every 5 s for the last 10 minutes
        box.append(no_master(T0 - 600 + 5 * i, n=i % 60 + 1))
    box.append(other(T0 - 2, "locust.main: Starting Locust 2.47.0"))
    decision, line, status = box.run(T0)
    assert decision.idle and "cannot reach the master" in line
    assert box.state()["last_no_master"] == pytest.approx(T0 - 5, abs=1)


def test_any_worker_log_with_activity_keeps_the_machine_busy(box):
    box.append(other(T0 - 900), name="worker_00.log")
    box.append(tick(T0 - 10), name="worker_01.log")
    decision, line, status = box.run(T0)
    assert not decision.idle and "logs=2" in line


def test_lines_are_read_once_and_partial_lines_wait(box):
    box.append(tick(T0 - 100))
    box.run(T0)
    offset = box.state()["files"][str(box.log())]["offset"]
    assert offset == box.log().stat().st_size
    # a line being written: not complete yet, so not read and the offset stays before it
    partial = tick(T0 - 1)
    box.append(partial[:20])
    decision, line, status = box.run(T0 + 1)
    assert "new_lines=0" in line and box.state()["files"][str(box.log())]["offset"] == offset
    box.append(partial[20:])
    decision, line, status = box.run(T0 + 2)
    assert "new_lines=1" in line and box.state()["last_activity"] == pytest.approx(T0 - 1, abs=0.01)
    decision, line, status = box.run(T0 + 3)
    assert "new_lines=0" in line


def test_activity_is_remembered_when_logs_disappear(box):
    box.append(tick(T0 - 100))
    box.run(T0)
    box.log().unlink()
    decision, line, status = box.run(T0 + 60)
    assert not decision.idle and decision.age == pytest.approx(160, abs=1)
    decision, line, status = box.run(T0 + 600)
    assert decision.idle


def test_rotation_by_rename_reads_the_rest_of_the_old_file(box):
    box.append(tick(T0 - 1000))
    box.run(T0 - 900)
    # more lines, then logrotate renames the file and the worker starts a new one
    box.append(tick(T0 - 50))
    os.rename(box.log(), box.log("worker_00.log.1"))
    box.append(other(T0 - 10))
    decision, line, status = box.run(T0)
    assert not decision.idle and decision.age == pytest.approx(50, abs=1)
    assert "worker_00.log rotated" in line
    entry = box.state()["files"][str(box.log())]
    assert entry["ino"] == box.log().stat().st_ino and entry["offset"] == box.log().stat().st_size


def test_rotated_away_and_not_recreated_yet(box):
    box.append(tick(T0 - 1000))
    box.run(T0 - 900)
    box.append(tick(T0 - 40))
    os.rename(box.log(), box.log("worker_00.log.1"))
    decision, line, status = box.run(T0)
    assert not decision.idle and decision.age == pytest.approx(40, abs=1) and "missing" in line


def test_copytruncate_reads_the_copy_and_starts_over(box):
    box.append(tick(T0 - 1000))
    box.run(T0 - 900)
    box.append(tick(T0 - 45))  # written after the last run, before the rotation
    shutil.copy(box.log(), box.log("worker_00.log.1"))
    with open(box.log(), "w"):
        pass
    box.append(other(T0 - 5))
    decision, line, status = box.run(T0)
    assert not decision.idle and decision.age == pytest.approx(45, abs=1) and "truncated" in line


def test_truncated_and_regrown_beyond_the_old_offset_is_noticed(box):
    box.append(other(T0 - 2000))
    box.run(T0 - 1900)
    old_offset = box.state()["files"][str(box.log())]["offset"]
    # truncated in place (no copy kept), then more than the old size written again
    with open(box.log(), "w") as handle:
        handle.write(other(T0 - 100, "x" * 200))
        handle.write(tick(T0 - 30))
    assert box.log().stat().st_size > old_offset
    decision, line, status = box.run(T0)
    assert not decision.idle and decision.age == pytest.approx(30, abs=1) and "truncated" in line


def test_a_huge_log_seen_first_is_read_from_its_tail(box, monkeypatch):
    monkeypatch.setattr(W, "FIRST_READ_MAX", 4096)
    box.append(*[other(T0 - 5000 + i, "locust.user.task: some error %d" % i) for i in range(2000)])
    box.append(tick(T0 - 20))
    decision, line, status = box.run(T0)
    assert not decision.idle
    assert int(line.split("new_lines=")[1].split()[0]) < 100


def test_future_timestamps_count_as_now(box):
    box.append(tick(T0 + 3600))
    box.run(T0)
    assert box.state()["last_activity"] == T0


# ------------------------------------------------------------------------------------------ acting

def test_dry_run_never_acts(box):
    box.config["dry_run"] = True
    box.append(stop(T0 - 5000))
    decision, line, status = box.run(T0)
    assert decision.idle and box.actions == [] and status == 0
    assert 'action=dry-run result="would stop"' in line


def test_action_is_not_repeated_within_retry_after(box):
    box.append(stop(T0 - 5000))
    box.run(T0)
    decision, line, status = box.run(T0 + 60)
    assert box.actions == ["stop"] and "action=skipped" in line
    box.run(T0 + W.RETRY_AFTER + 1)
    assert box.actions == ["stop", "stop"]


def test_a_failed_action_is_logged_and_retried(box):
    box.fail_actions = True
    box.append(stop(T0 - 5000))
    decision, line, status = box.run(T0)
    assert status == 1 and 'result="failed: CloudAPI said no"' in line
    box.fail_actions = False
    decision, line, status = box.run(T0 + 60)
    assert status == 0 and box.actions == ["stop"]


def test_a_new_boot_gets_a_new_grace_period(box):
    box.append(stop(T0 - 5000))
    box.run(T0)
    assert box.actions == ["stop"]
    # stopped, started again later: the old activity and the old action do not count
    box.boot = T0 + 1000
    decision, line, status = box.run(T0 + 1100)
    assert not decision.idle and "grace" in line
    decision, line, status = box.run(T0 + 1000 + 601)
    assert decision.idle and box.actions == ["stop", "stop"]


def test_boot_time_uses_pid1_start(tmp_path):
    proc = tmp_path / "proc"
    (proc / "1").mkdir(parents=True)
    (proc / "uptime").write_text("5000.00 100.00\n")
    ticks = os.sysconf("SC_CLK_TCK")
    fields = ["S"] + ["0"] * 18 + [str(4000 * ticks)] + ["0"] * 20
    (proc / "1" / "stat").write_text("1 (systemd) " + " ".join(fields) + "\n")
    # a container started 4000 s after the host kernel: up for 1000 s
    assert W.boot_time(now=T0, proc=str(proc)) == pytest.approx(T0 - 1000)
    (proc / "1" / "stat").write_text("garbage")
    assert W.boot_time(now=T0, proc=str(proc)) == pytest.approx(T0 - 5000)


def test_main_prints_one_line_and_keeps_state(tmp_path, capsys):
    logs = tmp_path / "log"
    logs.mkdir()
    (logs / "worker_00.log").write_text(tick(time.time() - 5))
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"idle_timeout": 600, "idle_grace": 0, "action": "poweroff",
                                  "log_glob": str(logs / "worker_*.log"), "state_dir": str(tmp_path / "state")}))
    assert W.main(["--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and out.startswith("decision=busy")
    assert (tmp_path / "state" / "state.json").exists()
    assert stat.S_IMODE((tmp_path / "state").stat().st_mode) == 0o700
    # the config was written just now: no idle decision before idle_timeout, whatever the logs say
    (logs / "worker_00.log").write_text(stop(time.time() - 5000))
    os.utime(logs / "worker_00.log")
    shutil.rmtree(tmp_path / "state")
    assert W.main(["--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("decision=busy") and "watcher configured" in out
    config.write_text(json.dumps({"action": "reboot"}))
    assert W.main(["--config", str(config)]) == 2


# ------------------------------------------------------------------------------------------ CloudAPI

def imported_client_files():
    """The module_utils files the watcher imports from locustfleet_cloudapi, and what they import
    with ``from .x import ...``, transitively."""
    tree = ast.parse(SCRIPT.read_text())
    todo = [node.module.split(".", 1)[1] + ".py" for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("locustfleet_cloudapi.")]
    assert todo, "the watcher no longer imports locustfleet_cloudapi: update this test"
    seen = set()
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.add(current)
        tree = ast.parse((MODULE_UTILS / current).read_text())
        todo.extend(node.module + ".py" for node in ast.walk(tree)
                    if isinstance(node, ast.ImportFrom) and node.level == 1 and node.module)
    return seen


def test_the_role_deploys_everything_the_client_imports():
    """A module_utils file the watcher's imports reach (say _client's _version) must be copied too,
    or the watcher fails on the host with ImportError."""
    needed = imported_client_files()
    assert needed <= set(CLIENT_FILES), "add %s to roles/locust_idle_watcher/tasks/main.yml" % sorted(
        needed - set(CLIENT_FILES))


def deploy_client(tmp_path):
    """The collection's client files as the package locustfleet_cloudapi, as the role installs them."""
    lib = tmp_path / "lib"
    package = lib / "locustfleet_cloudapi"
    package.mkdir(parents=True)
    for name in CLIENT_FILES:
        shutil.copy(MODULE_UTILS / name, package / name)
    (package / "__init__.py").write_text("")
    return lib


def fake_mdata_get(tmp_path, machine_id):
    script = tmp_path / "mdata-get"
    script.write_text('#!/bin/sh\n[ "$1" = "sdc:uuid" ] && echo %s && exit 0\necho "No metadata for $1" >&2\nexit 1\n'
                      % machine_id)
    script.chmod(0o755)
    return str(script)


@pytest.mark.parametrize("action, final", [("stop", "stopped"), ("delete", "deleted")])
def test_cloudapi_actions_with_the_collection_client(tritonsim_factory, tmp_path, action, final):
    sim = tritonsim_factory(users=["watcher"])
    first = sim.seed_machines(2, name_prefix="w-")["first"]
    api = client_for(sim)
    ids = [m["id"] for m in api.get("/my/machines").json()]
    other_id = [i for i in ids if i != first][0]
    watcher = sim.users["watcher"]
    config = dict(W.DEFAULTS, lib_dir=str(deploy_client(tmp_path)), mdata_get=fake_mdata_get(tmp_path, first),
                  cloudapi={"url": sim.url, "account": sim.account, "user": "watcher",
                            "key_id": watcher.fingerprint, "private_key_path": str(watcher.key_path)})
    sim.reset_stats()
    assert first in W.act(config, action)
    route = {"stop": "StopMachine", "delete": "DeleteMachine"}[action]
    assert sum(sim.route_stats(route).values()) == 1
    if final == "deleted":
        assert api.get("/my/machines/%s" % first).status_code == 410
    else:
        assert api.wait_state(first, ["stopped"])["state"] == "stopped"
    assert api.get("/my/machines/%s" % other_id).json()["state"] == "running"


@pytest.mark.parametrize("answer, said", [
    ((302, None, {"Location": "https://portal.example/", "Request-Id": "r-w"}), "302 Found, a redirect to"),
    (scripted.raw(200, b"<html>wifi login</html>", "text/html", {"Request-Id": "r-w"}), "200 OK with a text/html page"),
    ((429, {"code": "TooManyRequests", "message": "slow"}, {"Retry-After": "soon-ish", "Request-Id": "r-w"}),
     "said 429 TooManyRequests"),
])
def test_an_odd_answer_is_a_failed_stop_not_an_accepted_one(tmp_path, answer, said):
    """A redirect or an HTML page used to be logged as "StopMachine accepted", and an unreadable
    Retry-After as an uncaught ValueError."""
    cloud = scripted.start(tmp_path / "keys")
    try:
        cloud.server.default = answer
        config = dict(W.DEFAULTS, lib_dir=str(deploy_client(tmp_path)), mdata_get=fake_mdata_get(tmp_path, "m-1"),
                      state_dir=str(tmp_path / "state"), log_glob=str(tmp_path / "none-*.log"), idle_timeout=60,
                      idle_grace=0, cloudapi={"url": cloud.url, "account": cloud.account, "key_id": cloud.fingerprint,
                                              "private_key_path": cloud.key_path})
        decision, line, status = W.run_once(config, now=T0, boot=T0 - 3600)
    finally:
        scripted.stop(cloud)
    assert decision.idle and status == 1
    assert "accepted" not in line and 'result="failed: POST /jdoe/machines/m-1: CloudAPI ' in line
    assert said in line and "[request id r-w]" in line and "\n" not in line


def test_cloudapi_problems_are_reported(tmp_path):
    config = dict(W.DEFAULTS, lib_dir=str(deploy_client(tmp_path)), mdata_get=fake_mdata_get(tmp_path, "x"),
                  cloudapi={"url": "http://127.0.0.1:9"})
    with pytest.raises(RuntimeError, match="missing in the config: account, key_id, private_key_path"):
        W.act(config, "stop")
    config["mdata_get"] = str(tmp_path / "no-such-mdata-get")
    with pytest.raises(OSError):
        W.machine_id(config)

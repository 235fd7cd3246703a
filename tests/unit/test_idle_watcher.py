"""The idle watcher (roles/locust_idle_watcher/files/locustfleet_idle_watcher.py) on real temporary
activity files, with its clocks given by the tests: what counts as activity (zero-user ticks
included), grace, silence, clock steps both ways, time zones, future stamps, reboots, malformed
state, the action guard, and the CloudAPI actions against tritonsim through the collection's own
client code deployed the way the role deploys it, including the check that the machine is this
fleet's before stopping it."""

import ast
import json
import os
import stat
import sys
import time
from pathlib import Path

import pytest

from sim.signer import client_for
from support import scripted
from support.watcher import activity_line as line, deploy_client, fake_mdata_get, load_script, role_client_files

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "roles" / "locust_idle_watcher" / "files" / "locustfleet_idle_watcher.py"
MODULE_UTILS = REPO / "plugins" / "module_utils"


CLIENT_FILES = role_client_files()

T0 = 1_800_000_000.0  # the epoch of the tests' first run (2027-01-15)
UP = 3600.0  # the machine has been up this long at T0, unless a test says otherwise
BOOT_KEY = "boot-1/0"


W = load_script(SCRIPT, "locustfleet_idle_watcher_under_test")


class Box:
    """A watcher config on temp dirs, a machine clock the test moves, and activity files."""

    def __init__(self, tmp_path, **overrides):
        self.dir = tmp_path / "log"
        self.dir.mkdir()
        self.state_dir = tmp_path / "state"
        self.config_path = tmp_path / "config.json"
        self.config_path.write_text("{}")
        self.config = dict(W.DEFAULTS)
        self.config.update(idle_timeout=600.0, idle_grace=300.0, action="stop", dry_run=False, cluster="c1",
                           role="worker", log_glob=str(self.dir / "activity_*.log"), state_dir=str(self.state_dir),
                           signature=W.config_signature(str(self.config_path)))
        self.config.update(overrides)
        self.actions = []
        self.failure = None  # the exception the action raises, if any
        self.boot_key = BOOT_KEY
        self.t0 = T0
        self.booted = 1000.0  # on the boot clock: up for UP seconds at t0
        self.skew = 0.0  # wall clock minus true time: a clock step changes it
        self.seq = 0

    def now(self, t):
        """The clocks at true time ``t`` (epoch seconds of an unstepped clock); the boot clock reads
        1000 + UP at ``t0``."""
        return W.Now(epoch=t + self.skew, clock=1000.0 + UP + (t - self.t0), booted=self.booted, boot_key=self.boot_key)

    def write(self, t, event="tick", users=0, name="activity_worker_00.log"):
        """The plugin writes a line at true time ``t`` with the machine's (maybe stepped) wall clock."""
        self.seq += 1
        with open(self.dir / name, "a") as handle:
            handle.write(line(t + self.skew, event, users, seq=self.seq))

    def _act(self, config, action):
        if self.failure is not None:
            raise self.failure
        self.actions.append(action)
        return "%s done" % action

    def run(self, t):
        decision, text, status = W.run_once(self.config, now=self.now(t), do_action=self._act)
        assert "\n" not in text
        return decision, text, status

    def state(self):
        return json.loads((self.state_dir / "state.json").read_text())


@pytest.fixture
def box(tmp_path):
    """A watcher installed (first run) 3000 s before T0, on a machine booted 3600 s before T0."""
    box = Box(tmp_path)
    box.run(T0 - 3000)
    return box


def idle_run(config):
    """run_once on a machine up for 4000 s whose watcher was installed 1000 s ago, without activity."""
    W.run_once(config, now=W.Now(epoch=T0 - 1000, clock=4000.0, booted=1000.0, boot_key=BOOT_KEY))
    return W.run_once(config, now=W.Now(epoch=T0, clock=5000.0, booted=1000.0, boot_key=BOOT_KEY))


def busy_test(box, start, end, every=30, run_every=60, users=0):
    """Ticks every ``every`` s from ``start`` to ``end`` while the watcher runs every ``run_every`` s;
    returns the decisions of the runs in that span."""
    decisions = []
    t, next_run = start, start
    box.write(start, "start", users)
    while t <= end:
        if t >= next_run:
            decisions.append(box.run(t)[0])
            next_run += run_every
        t += every
        box.write(t, "tick", users)
    box.write(end, "stop", 0)
    return decisions


# ------------------------------------------------------------------------------------------ lines

@pytest.mark.parametrize("text, ts", [
    (line(T0), T0),
    (line(T0 + 0.125, "start"), T0 + 0.125),
    (line(T0, "stop"), T0),
    (line(T0, users=0, state="spawning"), T0),
    ("ts=1800000000 event=tick role=master state=running users=0 pid=1 seq=9", T0),
    # the old plugin's Locust log lines (local time) and anything else are not activity
    ("[2027-01-15 08:00:00,000] w1/INFO/locustfleet.activity: locustfleet-activity: event=tick users=4 state=running", None),
    ("ts=1800000000 event=hello role=worker", None),
    ("ts=soon event=tick role=worker", None),
    ("Traceback (most recent call last):", None),
    ("", None),
])
def test_activity_time(text, ts):
    assert W.activity_time(text) == ts


def test_the_last_activity_line_of_a_file(tmp_path):
    path = tmp_path / "activity_worker_00.log"
    path.write_text(line(T0 - 60, seq=1) + line(T0 - 30, seq=2) + "garbage\n" + "ts=18000")  # a cut-off last write
    assert W.last_activity_line(str(path)) == line(T0 - 30, seq=2).strip()
    path.write_text("")
    assert W.last_activity_line(str(path)) == ""


def test_a_huge_file_is_read_from_its_tail_only(tmp_path, monkeypatch):
    path = tmp_path / "activity_worker_00.log"
    with open(path, "w") as handle:
        for i in range(200_000):
            handle.write(line(T0 - 200_000 + i, seq=i))
    reads = []
    real_pread = os.pread
    monkeypatch.setattr(W.os, "pread", lambda fd, n, offset: reads.append(n) or real_pread(fd, n, offset))
    assert W.last_activity_line(str(path)).startswith("ts=%.3f " % (T0 - 1))
    assert reads == [W.TAIL_BYTES]


def test_links_and_fifos_in_the_log_directory_are_not_followed_or_waited_on(tmp_path):
    """The directory is the locust user's: a symlink to a root-only file or a FIFO that would
    block a reader are reported as unreadable, and nothing is read through them."""
    secret = tmp_path / "secret"
    secret.write_text(line(T0))
    secret.chmod(0o600)
    logs = tmp_path / "log"
    logs.mkdir()
    (logs / "activity_worker_00.log").symlink_to(secret)
    os.mkfifo(logs / "activity_worker_01.log")
    (logs / "activity_worker_02.log").write_text(line(T0 - 5))
    started = time.monotonic()
    lines, notes = W.read_activity(str(logs / "activity_*.log"))
    assert time.monotonic() - started < 5
    assert lines == {str(logs / "activity_worker_02.log"): line(T0 - 5).strip()}
    assert len(notes) == 2 and "activity_worker_00.log unreadable" in notes[0] and "activity_worker_01.log unreadable" in notes[1]


def test_a_flood_of_activity_files_is_read_only_up_to_the_cap(tmp_path):
    """The locust user can create any number of files in its log directory: one run reads at most
    MAX_FILES of them and says so, instead of running into its service timeout."""
    for i in range(W.MAX_FILES + 40):
        (tmp_path / ("activity_worker_%04d.log" % i)).write_text(line(T0))
    lines, notes = W.read_activity(str(tmp_path / "activity_*.log"))
    assert len(lines) == W.MAX_FILES
    assert notes == ["%d activity files, read the first %d" % (W.MAX_FILES + 40, W.MAX_FILES)]


# ------------------------------------------------------------------------------------------ decisions

def test_workers_with_zero_users_in_a_running_test_are_busy(box):
    """The issue's case: 1 user on 2 machines x 2 processes, idle_timeout 60 s, a 170 s test. The
    processes without the user tick with users=0 and keep the machine busy."""
    box.config["idle_timeout"] = 60.0
    decisions = busy_test(box, T0, T0 + 170, every=5, run_every=5, users=0)
    assert decisions and not any(d.idle for d in decisions)


def test_silence_after_the_test_is_idle_after_idle_timeout_and_not_before(box):
    busy_test(box, T0, T0 + 300)
    assert not box.run(T0 + 300 + 599)[0].idle
    decision, text, status = box.run(T0 + 300 + 601)
    assert decision.idle and box.actions == ["stop"] and status == 0
    assert "last activity 601s ago >= idle_timeout 600s" in text and 'result="stop done"' in text


def test_any_activity_file_keeps_the_machine_busy(box):
    box.write(T0 - 500, "stop", name="activity_worker_00.log")
    box.run(T0 - 400)
    box.write(T0 - 10, name="activity_worker_01.log")
    assert not box.run(T0 + 500)[0].idle  # the newest activity counts, wherever it is


def test_a_line_already_seen_is_not_activity_again(box):
    box.write(T0, "stop")
    box.run(T0 + 10)
    box.run(T0 + 300)
    decision = box.run(T0 + 611)[0]
    assert decision.idle and decision.age == pytest.approx(611, abs=1)


def test_grace_period_after_boot(box):
    box.boot_key, box.booted = "boot-2/0", 1000.0 + UP - 100  # rebooted, up for 100 s at T0
    decision, text, status = box.run(T0 + 1)
    assert not decision.idle and "grace period after boot: up 101s < idle_grace 300s" in text


def test_no_activity_at_all_counts_from_the_installation_then_from_a_reconfiguration(box):
    decision, text, status = box.run(T0)
    assert decision.idle and "watcher configured (no activity since) 3000s ago" in text
    box.actions.clear()
    box.config["signature"] = "changed"  # an Ansible run wrote a new config
    decision, text, status = box.run(T0 + 400)
    assert not decision.idle and "watcher configured (no activity since) 0s ago" in text
    assert box.run(T0 + 1001)[0].idle


def test_a_forward_clock_step_during_a_test_stops_nothing(box):
    """NTP steps the clock two hours ahead while the test runs: stamps written before the step
    look two hours old, stamps after it are fresh; the watcher's own time does not jump."""
    decisions = busy_test(box, T0, T0 + 200)
    box.skew = 7200.0
    decisions += busy_test(box, T0 + 215, T0 + 2000)
    assert not any(d.idle for d in decisions)


def test_a_step_between_a_write_and_its_reading_counts_the_line_as_now(box):
    box.write(T0, "tick")
    box.run(T0 + 1)
    box.write(T0 + 30)
    box.skew = 7200.0  # the line above is read after the step: 2 h old by the new clock
    decision, text, status = box.run(T0 + 60)
    assert not decision.idle and "stamped -7230s from now" in text
    assert box.run(T0 + 60 + 599)[0].idle is False
    assert box.run(T0 + 60 + 601)[0].idle


def test_a_backward_clock_step_neither_stops_a_busy_machine_nor_keeps_an_idle_one(box):
    decisions = busy_test(box, T0, T0 + 200)
    box.skew = -3600.0  # new stamps look older than the ones before
    decisions += busy_test(box, T0 + 215, T0 + 2000)
    assert not any(d.idle for d in decisions)
    assert not box.run(T0 + 2000 + 590)[0].idle
    assert box.run(T0 + 2000 + 610)[0].idle  # idle after idle_timeout, not an hour later


def test_a_stamp_from_the_future_is_clamped_not_trusted(box):
    box.write(T0 + 86400)
    box.run(T0)
    assert box.state()["last_active"] == pytest.approx(box.now(T0).clock)
    assert box.run(T0 + 601)[0].idle  # not busy until tomorrow


def test_time_zones_and_daylight_saving_change_nothing(tmp_path, monkeypatch):
    """Ticks through New York's fall-back hour (2026-11-01 01:00-02:00 happens twice)."""
    fall_back = 1793512800.0  # 2026-11-01 06:00 UTC = 02:00 EDT -> 01:00 EST
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    try:
        assert time.localtime(fall_back - 1800).tm_hour == time.localtime(fall_back + 1800).tm_hour == 1
        box = Box(tmp_path)
        box.t0 = fall_back - 1800
        box.run(box.t0 - 3000)
        decisions = busy_test(box, box.t0, box.t0 + 3600)
        assert not any(d.idle for d in decisions)
        assert not box.run(box.t0 + 3600 + 599)[0].idle
        assert box.run(box.t0 + 3600 + 601)[0].idle
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()


def test_the_watcher_never_reads_local_time():
    names = {node.attr for node in ast.walk(ast.parse(SCRIPT.read_text())) if isinstance(node, ast.Attribute)}
    assert not names & {"mktime", "localtime", "strptime", "strftime", "ctime", "now", "today"}


def test_a_new_boot_gets_a_new_grace_period_and_old_lines_are_not_new(box):
    box.write(T0 - 100, "stop")
    box.run(T0)
    box.boot_key, box.booted = "boot-2/0", 1000.0 + UP + 1000  # rebooted at T0 + 1000
    decision, text, status = box.run(T0 + 1100)
    assert not decision.idle and "grace period" in text
    decision = box.run(T0 + 1000 + 601)[0]
    assert decision.idle and decision.age == pytest.approx(601, abs=1)  # counted from the boot


@pytest.mark.parametrize("content", [
    "{not json", "[]", '"x"', "{}", '{"version": 1, "files": {}}',
    '{"version": 2, "files": [], "last_active": "yesterday", "acted": {"at": "x"}}',
    '{"version": 2, "last_run": null, "configured": true, "boot": 7}',
    '{"version": 2, "last_active": NaN, "last_run": Infinity}',
])
def test_a_malformed_state_file_is_reported_and_replaced(box, content):
    box.write(T0 - 30)
    box.run(T0 - 20)
    (box.state_dir / "state.json").write_text(content)
    box.write(T0 - 5)
    decision, text, status = box.run(T0)
    assert status == 0 and not decision.idle
    assert "state file malformed" in text or "state file unreadable" in text
    assert box.state()["version"] == W.STATE_VERSION
    decision, text, status = box.run(T0 + 60)
    assert "state file" not in text  # replaced by a good one


def test_an_unreadable_state_path_is_replaced(box):
    box.run(T0 - 60)
    path = box.state_dir / "state.json"
    path.unlink()
    path.mkdir()  # a directory where the file belongs
    (path / "x").write_text("")
    decision, text, status = box.run(T0)
    assert status == 0 and "state file unreadable" in text
    assert path.is_file() and box.state()["version"] == W.STATE_VERSION


def test_dry_run_never_acts(box):
    box.config["dry_run"] = True
    decision, text, status = box.run(T0)
    assert decision.idle and box.actions == [] and 'action=dry-run result="would stop"' in text


def test_an_action_is_not_repeated_within_retry_after_and_a_failed_one_is(box):
    assert box.run(T0)[0].idle and box.actions == ["stop"]
    decision, text, status = box.run(T0 + 60)
    assert box.actions == ["stop"] and "action=skipped" in text
    box.run(T0 + W.RETRY_AFTER + 1)
    assert box.actions == ["stop", "stop"]
    box.failure = RuntimeError("CloudAPI said no")
    decision, text, status = box.run(T0 + 2 * W.RETRY_AFTER + 2)
    assert status == 1 and 'result="failed: CloudAPI said no"' in text
    box.failure = None
    box.run(T0 + 2 * W.RETRY_AFTER + 62)
    assert box.actions == ["stop", "stop", "stop"]


def test_not_our_machine_is_refused_and_logged(box):
    box.failure = W.NotOurMachine("machine m-1 has tag locustfleet.cluster=\"other\", not \"c1\"")
    decision, text, status = box.run(T0)
    assert decision.idle and status == 1 and "action=refused" in text and "not done: machine m-1" in text


@pytest.mark.parametrize("machine, problem", [
    ({"id": "m-2", "tags": {"locustfleet.cluster": "c1", "locustfleet.role": "worker"}}, "answered for machine 'm-2'"),
    ({"id": "m-1", "tags": {"locustfleet.cluster": "c2", "locustfleet.role": "worker"}}, 'locustfleet.cluster="c2", not "c1"'),
    ({"id": "m-1", "tags": {"locustfleet.role": "worker"}}, "locustfleet.cluster=null"),
    ({"id": "m-1", "tags": {"locustfleet.cluster": "c1", "locustfleet.role": "template"}}, 'locustfleet.role="template"'),
    ({"id": "m-1", "tags": {"locustfleet.cluster": "c1"}}, "locustfleet.role=null"),
    ({"id": "m-1"}, "locustfleet.cluster=null"),
])
def test_check_own_machine(machine, problem, tmp_path):
    deploy_client_on_path(tmp_path)
    with pytest.raises(W.NotOurMachine, match=problem.replace("(", r"\(").replace("'", "'")):
        W.check_own_machine(machine, "m-1", "c1", "worker")
    W.check_own_machine({"id": "m-1", "tags": {"locustfleet.cluster": "c1", "locustfleet.role": "worker"}},
                        "m-1", "c1", "worker")


def test_stop_and_delete_need_the_fleet_in_the_config(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"action": "stop", "cluster": "", "role": "worker"}))
    with pytest.raises(ValueError, match="action stop needs cluster"):
        W.load_config(str(path))
    path.write_text(json.dumps({"action": "delete", "cluster": "c1", "role": "template"}))
    with pytest.raises(ValueError, match="role master or worker"):
        W.load_config(str(path))
    path.write_text(json.dumps({"action": "poweroff"}))
    assert W.load_config(str(path))["action"] == "poweroff"


def test_read_now_uses_the_boot_clock_and_pid1_start(tmp_path):
    proc = tmp_path / "proc"
    (proc / "1").mkdir(parents=True)
    (proc / "sys" / "kernel" / "random").mkdir(parents=True)
    (proc / "sys" / "kernel" / "random" / "boot_id").write_text("abc\n")
    (proc / "uptime").write_text("5000.00 100.00\n")
    ticks = os.sysconf("SC_CLK_TCK")
    fields = ["S"] + ["0"] * 18 + [str(4000 * ticks)] + ["0"] * 20
    (proc / "1" / "stat").write_text("1 (systemd) " + " ".join(fields) + "\n")
    now = W.read_now(proc=str(proc))
    # a container started 4000 s after the host kernel: up for 1000 s
    assert (now.clock, now.booted, now.uptime, now.boot_key) == (5000.0, 4000.0, 1000.0, "abc/4000")
    assert abs(now.epoch - time.time()) < 5
    (proc / "1" / "stat").write_text("garbage")
    assert W.read_now(proc=str(proc)).uptime == 5000.0


def test_main_prints_one_line_and_keeps_state(tmp_path, capsys):
    logs = tmp_path / "log"
    logs.mkdir()
    (logs / "activity_worker_00.log").write_text(line(time.time() - 5))
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"idle_timeout": 60, "idle_grace": 0, "action": "stop", "cluster": "c1",
                                  "role": "worker", "log_glob": str(logs / "activity_*.log"),
                                  "state_dir": str(tmp_path / "state")}))
    assert W.main(["--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and out.startswith("decision=") and "activity_files=1" in out
    assert stat.S_IMODE((tmp_path / "state").stat().st_mode) == 0o700
    state = json.loads((tmp_path / "state" / "state.json").read_text())
    assert list(state["files"]) == [str(logs / "activity_worker_00.log")]
    config.write_text("{")
    assert W.main(["--config", str(config)]) == 2
    assert "bad config" in capsys.readouterr().err


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
    assert {"_tags.py", "_waiters.py"} <= needed
    assert needed <= set(CLIENT_FILES), "add %s to roles/locust_idle_watcher/tasks/main.yml" % sorted(
        needed - set(CLIENT_FILES))


def deploy_client_on_path(tmp_path):
    lib = str(deploy_client(tmp_path))
    if lib not in sys.path:
        sys.path.insert(0, lib)
    return lib


FLEET_TAGS = {"locustfleet.cluster": "c1", "locustfleet.role": "worker"}


def watcher_config(tmp_path, sim, machine_id, **overrides):
    watcher = sim.users["watcher"]
    config = dict(W.DEFAULTS, lib_dir=str(deploy_client(tmp_path)), mdata_get=fake_mdata_get(tmp_path, machine_id),
                  cluster="c1", role="worker",
                  cloudapi={"url": sim.url, "account": sim.account, "user": "watcher",
                            # as the role writes it: lookup('file') drops the key's last newline
                            "key_id": watcher.fingerprint, "private_key": Path(watcher.key_path).read_text().rstrip("\n")})
    config.update(overrides)
    return config


@pytest.mark.parametrize("action, final", [("stop", "stopped"), ("delete", "deleted")])
def test_cloudapi_actions_with_the_collection_client(tritonsim_factory, tmp_path, action, final):
    sim = tritonsim_factory(users=["watcher"])
    first = sim.seed_machines(2, tags=FLEET_TAGS, name_prefix="w-")["first"]
    api = client_for(sim)
    ids = [m["id"] for m in api.get("/my/machines").json()]
    other_id = [i for i in ids if i != first][0]
    config = watcher_config(tmp_path, sim, first)
    sim.reset_stats()
    assert first in W.act(config, action)
    route = {"stop": "StopMachine", "delete": "DeleteMachine"}[action]
    assert sum(sim.route_stats(route).values()) == 1
    assert sum(sim.route_stats("GetMachine").values()) == 1  # the check before acting
    if final == "deleted":
        assert api.get("/my/machines/%s" % first).status_code == 410
    else:
        assert api.wait_state(first, ["stopped"])["state"] == "stopped"
    assert api.get("/my/machines/%s" % other_id).json()["state"] == "running"


@pytest.mark.parametrize("tags, config, said", [
    ({"locustfleet.cluster": "c2", "locustfleet.role": "worker"}, {}, 'locustfleet.cluster="c2", not "c1"'),
    ({"locustfleet.cluster": "c1", "locustfleet.role": "master"}, {}, 'locustfleet.role="master", not "worker"'),
    ({}, {}, "locustfleet.cluster=null"),
    (FLEET_TAGS, {"cluster": "c10"}, 'locustfleet.cluster="c1", not "c10"'),
])
@pytest.mark.parametrize("action", ["stop", "delete"])
def test_a_machine_that_is_not_this_fleets_is_left_alone(tritonsim_factory, tmp_path, tags, config, said, action):
    """The watcher acts on whatever mdata-get sdc:uuid says only if CloudAPI shows that machine
    with its fleet's tags; otherwise the run logs why and makes no StopMachine/DeleteMachine call."""
    sim = tritonsim_factory(users=["watcher"])
    first = sim.seed_machines(1, tags=tags, name_prefix="w-")["first"]
    cfg = watcher_config(tmp_path, sim, first, action=action, idle_timeout=60.0, idle_grace=0.0,
                         state_dir=str(tmp_path / "state"), log_glob=str(tmp_path / "none-*.log"), **config)
    sim.reset_stats()
    decision, text, status = idle_run(cfg)
    assert decision.idle and status == 1 and "action=refused" in text and json.dumps(said)[1:-1] in text, text
    assert sum(sim.route_stats("StopMachine").values()) == sum(sim.route_stats("DeleteMachine").values()) == 0
    assert client_for(sim).get("/my/machines/%s" % first).json()["state"] == "running"


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
                      idle_grace=0, cluster="c1", role="worker",
                      cloudapi={"url": cloud.url, "account": cloud.account, "key_id": cloud.fingerprint,
                                "private_key": Path(cloud.key_path).read_text()})
        decision, text, status = idle_run(config)
    finally:
        scripted.stop(cloud)
    assert decision.idle and status == 1
    assert "accepted" not in text and 'result="failed: GET /jdoe/machines/m-1: CloudAPI ' in text
    assert said in text and "[request id r-w]" in text and "\n" not in text


def test_cloudapi_problems_are_reported(tmp_path):
    config = dict(W.DEFAULTS, lib_dir=str(deploy_client(tmp_path)), mdata_get=fake_mdata_get(tmp_path, "x"),
                  cloudapi={"url": "http://127.0.0.1:9"})
    with pytest.raises(RuntimeError, match="missing in the config: account, key_id, private_key$"):
        W.act(config, "stop")
    config["mdata_get"] = str(tmp_path / "no-such-mdata-get")
    with pytest.raises(OSError):
        W.machine_id(config)

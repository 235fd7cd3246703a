"""The activity plugin (roles/locust/files/locustfleet_activity.py) in real Locust processes (the
pinned version) on loopback: a master and three worker processes, against a local HTTP server.

What the idle watcher relies on: every process that takes part in a test writes start, ticks and
stop to its activity file, stamped with epoch seconds, whatever its number of users (0 included,
also under a LoadTestShape that starts at 0 users); the master writes too; a worker connected to
a master without a running test writes nothing; and the Locust log gets none of it.
"""

import json
import re
import signal
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from support.locusts import LOCUST, Locusts, free_port, http_target

REPO = Path(__file__).resolve().parents[2]
PLUGIN = REPO / "roles" / "locust" / "files" / "locustfleet_activity.py"
LINE = re.compile(r"^ts=(\d+\.\d{3}) event=(start|tick|stop) role=(master|worker) state=(\w+) users=(\d+) "
                  r"pid=(\d+) seq=(\d+)$")

LOCUSTFILE = """
from locust import HttpUser, constant, task


class Visitor(HttpUser):
    wait_time = constant(0.2)

    @task
    def index(self):
        self.client.get("/")
"""

SHAPE = """
from locust import LoadTestShape


class StartsAtZero(LoadTestShape):
    \"\"\"0 users for 4 s, then 1 user until 9 s.\"\"\"

    def tick(self):
        run_time = self.get_run_time()
        if run_time < 4:
            return (0, 1)
        if run_time < 9:
            return (1, 1)
        return None
"""


@pytest.fixture
def target():
    with http_target() as url:
        yield url


class ActivityLocusts(Locusts):
    """Each process with its own activity file, ticking every second."""

    def env(self, name):
        return {"LOCUSTFLEET_ACTIVITY_LOG": str(self.tmp / ("activity_%s.log" % name)),
                "LOCUSTFLEET_ACTIVITY_INTERVAL": "1"}

    def lines(self, name):
        path = self.tmp / ("activity_%s.log" % name)
        if not path.exists():
            return []
        found = [LINE.match(text) for text in path.read_text().splitlines()]
        assert all(found), path.read_text()
        return [{"ts": float(m.group(1)), "event": m.group(2), "role": m.group(3), "state": m.group(4),
                 "users": int(m.group(5)), "seq": int(m.group(7))} for m in found]


@pytest.fixture
def locusts(tmp_path):
    if not LOCUST.exists():
        pytest.fail("locust is not installed beside %s (tests/requirements.txt pins it)" % sys.executable)
    fleet = ActivityLocusts(tmp_path, [PLUGIN], {"locustfile.py": LOCUSTFILE, "shape.py": SHAPE})
    yield fleet
    fleet.stop()


def headless(locusts, target, users, run_time, files=("locustfile.py",), workers=3):
    started = time.time()
    locusts.workers(workers)
    master = locusts.master("--headless", "-u", str(users), "-r", "10", "-t", run_time, "--expect-workers",
                            str(workers), "--expect-workers-max-wait", "60", "-H", target, "--exit-code-on-error", "0",
                            files=files)
    err = master.communicate(timeout=120)[1]
    assert master.returncode == 0, err.decode()[-3000:]
    return started


def test_every_process_in_a_test_ticks_with_zero_users_too(locusts, target):
    """1 user over 3 worker processes: the two without a user take part in the test and tick."""
    started = headless(locusts, target, users=1, run_time="6s")
    ended = time.time()
    zero_user_ticks = 0
    for name in ("worker_00", "worker_01", "worker_02", "master"):
        lines = locusts.lines(name)
        events = [line["event"] for line in lines]
        assert events[0] == "start" and events[-1] == "stop" and events.count("tick") >= 4, (name, lines)
        assert {line["role"] for line in lines} == {"master" if name == "master" else "worker"}
        assert all(line["state"] in ("spawning", "running") for line in lines if line["event"] == "tick")
        assert all(started - 1 <= line["ts"] <= ended + 1 for line in lines), lines  # epoch seconds
        assert [line["seq"] for line in lines] == list(range(1, len(lines) + 1))
        if name != "master":
            zero_user_ticks += all(line["users"] == 0 for line in lines)
    assert zero_user_ticks == 2
    # nothing of it in Locust's own logs (a busy worker logs nothing at INFO)
    for name in ("worker_00", "master"):
        assert "ts=" not in (locusts.tmp / ("%s.log" % name)).read_text()


def test_a_shape_that_starts_at_zero_users_ticks_from_the_start(locusts, target):
    headless(locusts, target, users=1, run_time="30s", files=("locustfile.py", "shape.py"), workers=2)
    for name in ("worker_00", "worker_01", "master"):
        lines = locusts.lines(name)
        first = lines[0]["ts"]
        early = [line for line in lines if line["event"] == "tick" and line["ts"] < first + 3.5]
        assert len(early) >= 2 and all(line["users"] == 0 for line in early), (name, lines)
        assert lines[-1]["event"] == "stop"


def test_a_connected_worker_without_a_test_writes_nothing(locusts, target):
    web_port = free_port()
    locusts.master("--web-host", "127.0.0.1", "--web-port", str(web_port), "-H", target)
    locusts.workers(2)
    deadline = time.monotonic() + 30
    while "ready" not in _workers_state(web_port) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert "ready" in _workers_state(web_port)
    time.sleep(4)  # four tick intervals
    assert [locusts.lines(name) for name in ("worker_00", "worker_01", "master")] == [[], [], []]
    # the master goes away: Locust fires test_stop in the quitting idle workers, which is no activity
    master, workers = locusts.procs[0], locusts.procs[1:]
    master.send_signal(signal.SIGTERM)
    for proc in workers:
        proc.wait(timeout=30)
    assert "Got quit message" in (locusts.tmp / "worker_00.log").read_text()
    assert [locusts.lines(name) for name in ("worker_00", "worker_01", "master")] == [[], [], []]


def _workers_state(port):
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d/stats/requests" % port, timeout=2) as answer:
            workers = json.loads(answer.read())["workers"]
    except OSError:
        return ""
    return " ".join(worker["state"] for worker in workers) if len(workers) == 2 else ""


def test_an_unwritable_activity_file_is_one_warning_not_a_crash(locusts, target, tmp_path):
    (tmp_path / "activity_worker_00.log").mkdir()  # cannot be opened for writing
    headless(locusts, target, users=2, run_time="4s", workers=1)
    log = (tmp_path / "worker_00.log").read_text()
    assert log.count("locustfleet activity: cannot write") == 1, log
    assert "Traceback" not in log

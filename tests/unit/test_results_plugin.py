"""The results plugin (roles/locust/files/locustfleet_results.py) in real Locust processes (the pinned
version) on loopback: a headless master and two worker processes, one of which burns CPU, against a
local HTTP server; and its parts in this process, with stand-ins for locust (importing locust
monkey-patches the importing process).

What run_test.yml relies on: the master writes a progress line every LOCUSTFLEET_PROGRESS_INTERVAL
seconds and locustfleet_run.json with the locustfiles' sha256 and each worker's peak CPU; a worker
given LOCUSTFLEET_RUN_DIR writes nothing.
"""

import hashlib
import importlib.util
import json
import logging
import re
import socket
import sys
import time
import types
from pathlib import Path

import pytest

from support.locusts import LOCUST, Locusts, http_target

REPO = Path(__file__).resolve().parents[2]
FILES = REPO / "roles" / "locust" / "files"
PLUGIN = FILES / "locustfleet_results.py"

# With BURN=1, each request also costs ~150 ms of CPU, and the worker writes its Locust id to burner_id.
LOCUSTFILE = """
import os
import time

from locust import HttpUser, constant, events, task

BURN = os.environ.get("BURN") == "1"


@events.init.add_listener
def tell_who_burns(environment, **kwargs):
    if BURN:
        with open("burner_id", "w") as handle:
            handle.write(environment.runner.client_id)


class Visitor(HttpUser):
    wait_time = constant(0.2)

    @task
    def index(self):
        self.client.get("/")
        end = time.process_time() + 0.15
        while BURN and time.process_time() < end:
            pass
"""

KEYS = {"ts", "elapsed", "state", "users", "rps", "fail_ratio", "requests", "workers"}


def test_a_headless_master_records_progress_and_worker_cpu(tmp_path):
    if not LOCUST.exists():
        pytest.fail("locust is not installed beside %s (tests/requirements.txt pins it)" % sys.executable)
    run_dir, worker_run_dir = tmp_path / "run", tmp_path / "worker_run"
    run_dir.mkdir()
    worker_run_dir.mkdir()
    fleet = Locusts(tmp_path, [PLUGIN], {"locustfile.py": LOCUSTFILE})
    try:
        with http_target() as target:
            started = time.time()
            fleet.worker("burner", env={"BURN": "1", "LOCUSTFLEET_RUN_DIR": str(worker_run_dir)})
            fleet.worker("idler", env={"LOCUSTFLEET_RUN_DIR": str(worker_run_dir)})
            master = fleet.master("--headless", "-u", "4", "-r", "4", "-t", "25s", "--expect-workers", "2",
                                  "--expect-workers-max-wait", "60", "-H", target, "--exit-code-on-error", "0",
                                  env={"LOCUSTFLEET_RUN_DIR": str(run_dir), "LOCUSTFLEET_PROGRESS_INTERVAL": "1"})
            err = master.communicate(timeout=120)[1]
            ended = time.time()
    finally:
        fleet.stop()
    assert master.returncode == 0, err.decode()[-3000:]
    assert list(worker_run_dir.iterdir()) == []  # workers write nothing
    for name in ("master", "burner", "idler"):
        assert "Traceback" not in (tmp_path / ("%s.log" % name)).read_text(), name

    lines = [json.loads(text) for text in (run_dir / "progress.jsonl").read_text().splitlines()]
    assert all(set(line) == KEYS for line in lines), lines
    assert all(started <= line["ts"] <= ended for line in lines), (started, ended, lines)  # epoch seconds
    in_test = [line for line in lines if line["elapsed"] is not None]
    assert in_test and lines[-len(in_test):] == in_test, lines  # once started, always elapsed
    assert len(in_test) >= 20, lines  # every second, not the default 2 s
    assert all(b["ts"] - a["ts"] <= 2.0 for a, b in zip(in_test, in_test[1:])), in_test
    elapsed = [line["elapsed"] for line in in_test]
    assert elapsed == sorted(elapsed) and 24 <= elapsed[-1] <= 30, elapsed
    assert any(line["state"] == "running" and line["users"] == 4 and line["workers"] == 2 and line["requests"] > 0
               for line in in_test), lines
    assert in_test[-1]["requests"] > 100, in_test[-1]

    record = json.loads((run_dir / "locustfleet_run.json").read_text())
    digest = hashlib.sha256((tmp_path / "locustfile.py").read_bytes()).hexdigest()
    assert record["version"] == 1
    assert record["locustfiles"] == [{"name": "locustfile.py", "sha256": digest}]  # not the plugin
    assert started < record["started"] < record["stopped"] < ended
    workers = record["workers"]
    assert len(workers) == 2, workers
    for worker_id, worker in workers.items():
        assert re.fullmatch(re.escape(socket.gethostname()) + "_[0-9a-f]{32}", worker_id), worker_id
        assert worker["host"] == socket.gethostname()
        assert isinstance(worker["peak_cpu"], float) and worker["peak_cpu"] >= 0, worker
        assert worker["samples"] >= 20, worker  # a heartbeat's figure each second of the test
    burner = (tmp_path / "burner_id").read_text()
    idler = (set(workers) - {burner}).pop()
    # ~86 % on an idle 2-core machine, ~30 % when other jobs load it; an idle worker's is ~2 %
    assert workers[burner]["peak_cpu"] > max(20, 3 * workers[idler]["peak_cpu"]), workers


@pytest.fixture
def plugin(monkeypatch):
    """The plugin module, imported with stand-ins for locust and locust.runners."""
    locust = types.ModuleType("locust")
    locust.events = types.SimpleNamespace(**{name: types.SimpleNamespace(add_listener=lambda listener: listener)
                                             for name in ("init", "test_start", "test_stop")})
    runners = types.ModuleType("locust.runners")
    runners.STATE_MISSING = "missing"
    runners.MasterRunner = type("MasterRunner", (), {})
    monkeypatch.setitem(sys.modules, "locust", locust)
    monkeypatch.setitem(sys.modules, "locust.runners", runners)
    spec = importlib.util.spec_from_file_location("locustfleet_results_under_test", PLUGIN)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_worker_host_interval_and_digests(plugin, tmp_path):
    assert plugin.worker_host("m1_" + "a" * 32) == "m1"
    assert plugin.worker_host("e2e_worker_1_" + "0" * 32) == "e2e_worker_1"
    assert plugin.worker_host("odd") == "odd"
    assert plugin.worker_host("m1_" + "a" * 31) == "m1_" + "a" * 31
    assert plugin.progress_interval({}) == 2.0
    assert plugin.progress_interval({"LOCUSTFLEET_PROGRESS_INTERVAL": "3"}) == 3.0
    assert plugin.progress_interval({"LOCUSTFLEET_PROGRESS_INTERVAL": "0.1"}) == 0.5
    assert plugin.progress_interval({"LOCUSTFLEET_PROGRESS_INTERVAL": "soon"}) == 2.0
    (tmp_path / "z.py").write_bytes(b"z")
    paths = [tmp_path / "z.py", tmp_path / "gone.py", PLUGIN, FILES / "locustfleet_activity.py"]
    assert plugin.file_digests([str(path) for path in paths]) == [
        {"name": "gone.py", "sha256": None}, {"name": "z.py", "sha256": hashlib.sha256(b"z").hexdigest()}]


def test_a_recorder_counts_connected_workers_and_their_cpu_during_the_test_only(plugin, tmp_path):
    clock = iter(range(1000, 2000)).__next__
    recorder = plugin.RunRecorder(str(tmp_path), [], clock=clock, monotonic=clock)
    node = types.SimpleNamespace
    runner = types.SimpleNamespace(
        state="running", user_count=3, clients={"a": node(id="m1_" + "a" * 32, state="running", cpu_usage=40),
                                                "b": node(id="m2_" + "b" * 32, state="missing", cpu_usage=99)},
        stats=types.SimpleNamespace(total=types.SimpleNamespace(current_rps=1.234, fail_ratio=0.5, num_requests=7)))
    assert recorder.sample(runner)["elapsed"] is None
    assert recorder.run_record()["workers"] == {}  # heard before the test: no load generator
    recorder.test_started()
    line = recorder.sample(runner)
    assert line == {"ts": line["ts"], "elapsed": line["elapsed"], "state": "running", "users": 3, "rps": 1.23,
                    "fail_ratio": 0.5, "requests": 7, "workers": 1}
    assert line["elapsed"] > 0
    runner.clients["a"].cpu_usage = 20
    recorder.sample(runner)
    recorder.test_stopped()
    runner.clients["a"].cpu_usage = 80
    recorder.sample(runner)
    assert recorder.run_record()["workers"] == {"m1_" + "a" * 32: {"host": "m1", "peak_cpu": 40.0, "samples": 2}}


def test_a_symlinked_progress_file_is_not_followed(plugin, tmp_path, caplog):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.write_text("precious\n")
    (run_dir / "progress.jsonl").symlink_to(elsewhere)
    recorder = plugin.RunRecorder(str(run_dir), [])
    with caplog.at_level(logging.WARNING, logger="locustfleet.results"):
        recorder.write({"ts": 1.0})
        recorder.write({"ts": 2.0})
    assert recorder.failing
    assert elsewhere.read_text() == "precious\n"
    assert sorted(path.name for path in run_dir.iterdir()) == ["progress.jsonl"]
    assert len(caplog.records) == 1, caplog.records  # one warning, not one per interval

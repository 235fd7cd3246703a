# Copyright: locustfleet.triton contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""locustfleet results plugin: what a headless run's master hears, kept for run_test.yml.

Loaded by every Locust process of the fleet, it acts only in a master started by locust-headless,
which sets LOCUSTFLEET_RUN_DIR to the run's report directory. Every LOCUSTFLEET_PROGRESS_INTERVAL
seconds (default 2) it appends a progress line to ``progress.jsonl`` there:

    {"ts": 1796300030.1, "elapsed": 20.0, "state": "running", "users": 50, "rps": 61.3,
     "fail_ratio": 0.01, "requests": 1203, "workers": 6}

and rewrites ``locustfleet_run.json``: the locustfiles' names and sha256 (the run's identity for
comparisons) and, per worker process, the peak of the CPU usage its heartbeats report (Locust's
workers measure their own process every 10 s and send it to the master each second):

    {"version": 1, "locustfiles": [{"name": "fleetcheck.py", "sha256": "..."}],
     "workers": {"<worker id>": {"host": "e2e-worker-1", "peak_cpu": 97.3, "samples": 12}},
     "started": 1796300010.0, "stopped": 1796300070.4}

``ts``/``started``/``stopped`` are epoch seconds; ``elapsed`` counts from the test's start on the
monotonic clock. Nothing goes to Locust's log.
"""

import hashlib
import json
import logging
import os
import time

import gevent
from locust import events
from locust.runners import STATE_MISSING, MasterRunner

DEFAULT_INTERVAL = 2.0
OWN_PLUGINS = ("locustfleet_activity.py", "locustfleet_results.py")

log = logging.getLogger("locustfleet.results")


def progress_interval(environ=None):
    """Seconds between progress lines, from LOCUSTFLEET_PROGRESS_INTERVAL (at least 0.5)."""
    environ = os.environ if environ is None else environ
    try:
        value = float(environ.get("LOCUSTFLEET_PROGRESS_INTERVAL") or DEFAULT_INTERVAL)
    except ValueError:
        value = DEFAULT_INTERVAL
    return max(0.5, value)


def worker_host(worker_id):
    """The machine of a worker: Locust names a worker ``<hostname>_<32 hex digits>``."""
    host, sep, suffix = worker_id.rpartition("_")
    return host if sep and len(suffix) == 32 else worker_id


def file_digests(paths):
    """Name and sha256 of each locustfile, without the fleet's own plugins."""
    digests = []
    for path in paths:
        name = os.path.basename(path)
        if name in OWN_PLUGINS:
            continue
        try:
            with open(path, "rb") as handle:
                digest = hashlib.sha256(handle.read()).hexdigest()
        except OSError:
            digest = None
        digests.append({"name": name, "sha256": digest})
    return sorted(digests, key=lambda item: item["name"])


class RunRecorder:
    """Keeps the run's progress and each worker's peak CPU; writes them to ``run_dir``."""

    def __init__(self, run_dir, locustfiles, clock=time.time, monotonic=time.monotonic):
        self.run_dir = run_dir
        self.clock = clock
        self.monotonic = monotonic
        self.locustfiles = locustfiles
        self.workers = {}
        self.started = None
        self.started_monotonic = None
        self.stopped = None
        self.failing = False

    def test_started(self):
        self.started = self.clock()
        self.started_monotonic = self.monotonic()

    def test_stopped(self):
        self.stopped = self.clock()

    def sample(self, runner):
        """One look at the runner: record each worker's CPU, return the progress line's fields."""
        connected = 0
        for node in list(runner.clients.values()):
            if node.state == STATE_MISSING:
                continue
            connected += 1
            record = self.workers.setdefault(node.id, {"host": worker_host(node.id), "peak_cpu": 0.0, "samples": 0})
            if self.started is not None and self.stopped is None:
                record["peak_cpu"] = max(record["peak_cpu"], round(float(node.cpu_usage or 0), 1))
                record["samples"] += 1
        total = runner.stats.total
        elapsed = None if self.started_monotonic is None else round(self.monotonic() - self.started_monotonic, 1)
        return {"ts": round(self.clock(), 3), "elapsed": elapsed, "state": runner.state,
                "users": runner.user_count, "rps": round(total.current_rps, 2),
                "fail_ratio": round(total.fail_ratio, 6), "requests": total.num_requests, "workers": connected}

    def run_record(self):
        # Only workers heard during the test: an idle one that quit before it is no load generator.
        workers = {wid: rec for wid, rec in self.workers.items() if rec["samples"]}
        return {"version": 1, "locustfiles": self.locustfiles, "workers": workers,
                "started": self.started, "stopped": self.stopped}

    def write(self, progress):
        try:
            self._append(os.path.join(self.run_dir, "progress.jsonl"), json.dumps(progress, sort_keys=True) + "\n")
            self._replace(os.path.join(self.run_dir, "locustfleet_run.json"), json.dumps(self.run_record(), indent=1))
        except OSError as exc:
            if not self.failing:
                log.warning("locustfleet results: cannot write in %s: %s", self.run_dir, exc.strerror)
            self.failing = True
            return
        self.failing = False

    @staticmethod
    def _append(path, text):
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
        try:
            os.write(fd, text.encode())
        finally:
            os.close(fd)

    @staticmethod
    def _replace(path, text):
        temporary = "%s.%d.tmp" % (path, os.getpid())
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
        try:
            os.write(fd, text.encode())
        finally:
            os.close(fd)
        os.replace(temporary, path)


def record_every(recorder, runner, interval, sleep=gevent.sleep):
    while True:
        recorder.write(recorder.sample(runner))
        sleep(interval)


_recorder = None


@events.init.add_listener
def on_init(environment, **kwargs):  # pylint: disable=unused-argument
    global _recorder  # pylint: disable=global-statement
    run_dir = os.environ.get("LOCUSTFLEET_RUN_DIR")
    if not run_dir or not isinstance(environment.runner, MasterRunner):
        return
    _recorder = RunRecorder(run_dir, file_digests(environment.parsed_locustfiles or []))
    gevent.spawn(record_every, _recorder, environment.runner, progress_interval())


@events.test_start.add_listener
def on_test_start(environment, **kwargs):  # pylint: disable=unused-argument
    if _recorder is not None:
        _recorder.test_started()


@events.test_stop.add_listener
def on_test_stop(environment, **kwargs):  # pylint: disable=unused-argument
    if _recorder is not None:
        _recorder.write(_recorder.sample(environment.runner))  # the last CPU figures heard in the test
        _recorder.test_stopped()
        _recorder.write(_recorder.sample(environment.runner))

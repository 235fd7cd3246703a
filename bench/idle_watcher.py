#!/usr/bin/env python
"""Idle watcher: CPU time per run over 50 MiB logs, and detection latency against tritonsim.

1. CPU time per watcher run (user+sys of the child, resource.getrusage(RUSAGE_CHILDREN) deltas,
   and wall time), --repeat interleaved rounds, in a temp dir holding 8 Locust worker logs of
   50 MiB (locust_log_maxsize 50M: error lines, tracebacks, warnings, with the old plugin's
   ``locustfleet-activity:`` lines sprinkled in) and 8 activity files of 50 MiB (new-format lines;
   the worst case, they are normally tiny):
     pass        ``python -c pass``: interpreter start-up, the floor;
     new         roles/locust_idle_watcher/files/locustfleet_idle_watcher.py over the activity
                 files, dry_run (no CloudAPI);
     old first   the watcher of commit 3b7130e (git show) over the worker logs, first run (no
                 state: reads the last FIRST_READ_MAX of each log);
     old steady  the same after each log grew by READ_MAX (16 MiB) since its previous run, its
                 steady-state worst case (its state after the first run is put back before each).
   Prints medians, the ratios new/old, and the bytes of log each reads per run.
2. Detection latency: tritonsim (127.0.0.1, throttle off, action delay 0) with one machine tagged
   locustfleet.cluster=bench / locustfleet.role=worker; the watcher (CloudAPI client deployed as the
   role deploys it, sub-user key, fake mdata-get) runs every --interval s like its timer
   (OnUnitActiveSec), first before any activity (the "configured" run); a fake activity plugin,
   starting --phase intervals after that run (0.5: the last activity falls midway between two runs),
   writes start, a tick every 1 s for --busy s and stop into 2 activity files. The watcher runs
   until it has stopped the machine. Latency = time of the machine's "stop" audit entry minus the
   ts of the last activity line; bound = idle_timeout + 2 x interval. Prints the CloudAPI calls
   of all watcher runs (/__sim/stats) and every run's decision.

    .venv/bin/python bench/idle_watcher.py --repeat 10 --interval 2 --idle-timeout 10
"""

import argparse
import datetime
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path


REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "tests"), str(REPO / "collections")]

from support.control import route_calls, sim_client  # noqa: E402  (needs the path above)
from support.watcher import activity_line, deploy_client, fake_mdata_get, load_script  # noqa: E402
from tritonsim.testing import launcher  # noqa: E402

WATCHER = REPO / "roles" / "locust_idle_watcher" / "files" / "locustfleet_idle_watcher.py"
OLD_COMMIT = "3b7130e"
MIB = 1 << 20
LOG_SIZE = 50 * MIB  # the role's locust_log_maxsize (logrotate's 50M)
FILES = 8
FLEET_TAGS = {"locustfleet.cluster": "bench", "locustfleet.role": "worker"}


# ---------------------------------------------------------------------------------------------
# 1. CPU time per run

def locust_log_block(worker, start):
    """About 1 MiB of a busy Locust worker's log (--logfile format) from epoch ``start`` on: failed
    requests with tracebacks, warnings, and every 30th entry the old plugin's activity line."""
    lines, t, n = [], start, 0
    while n % 30 or sum(len(x) + 1 for x in lines) < MIB:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t)) + ",%03d" % (n * 37 % 1000)
        head = "[%s] w%d/" % (stamp, worker)
        kind = n % 30
        if kind == 0:
            lines.append(head + "INFO/locustfleet.activity: locustfleet-activity: event=tick users=%d state=running"
                         % (4 + n % 3))
        elif kind == 29:
            lines.append(head + "WARNING/locust.runners: CPU usage above 90%! This may constrain your throughput "
                         "and may even give inconsistent response time measurements! See "
                         "https://docs.locust.io/en/stable/running-distributed.html for how to distribute the load "
                         "over multiple CPU cores or machines")
        elif kind % 3 == 0:
            lines.append(head + "ERROR/locust.user.task: HTTPConnectionPool(host='10.0.0.%d', port=8080): Max retries "
                         "exceeded with url: /api/items/%d (Caused by NewConnectionError('<urllib3.connection."
                         "HTTPConnection object at 0x7f3a%08x>: Failed to establish a new connection: [Errno 111] "
                         "Connection refused'))" % (n % 250, n, n))
            lines.extend([
                "Traceback (most recent call last):",
                '  File "/opt/locust/venv/lib/python3.11/site-packages/locust/user/task.py", line 347, in run',
                "    self.execute_next_task()",
                '  File "/opt/locust/venv/lib/python3.11/site-packages/locust/user/task.py", line 372, '
                "in execute_next_task",
                "    self.execute_task(self._task_queue.popleft())",
                '  File "/opt/locust/venv/lib/python3.11/site-packages/locust/user/task.py", line 493, in execute_task',
                "    task(self.user)",
                '  File "/opt/locust/tests/locustfile.py", line 21, in browse',
                '    self.client.get("/api/items/%d", name="/api/items/[id]").raise_for_status()' % n,
                '  File "/opt/locust/venv/lib/python3.11/site-packages/requests/models.py", line 1021, '
                "in raise_for_status",
                "    raise HTTPError(http_error_msg, response=self)",
                "requests.exceptions.HTTPError: 503 Server Error: Service Unavailable for url: "
                "http://10.0.0.%d:8080/api/items/%d" % (n % 250, n),
            ])
        else:
            lines.append(head + "ERROR/locust.user.task: 503 Server Error: Service Unavailable for url: "
                         "http://10.0.0.%d:8080/api/cart/%d (response time %d ms)" % (n % 250, n, 100 + n % 900))
        n += 1
        t += 0.05
    return ("\n".join(lines) + "\n").encode("utf-8"), t


def activity_block(worker, start):
    """About 1 MiB of new-format activity lines (a tick a second)."""
    lines, seq = [], 0
    while seq % 1000 or sum(len(x) for x in lines) < MIB:
        seq += 1
        lines.append(activity_line(start + seq, users=seq % 5, pid=800 + worker, seq=seq))
    return "".join(lines).encode("ascii"), start + seq


def fill(path, size, block_of, worker, start):
    """Write whole lines of block_of(worker, t) until ``path`` reaches ``size`` bytes; returns the end time."""
    t = start
    block, t = block_of(worker, t)
    with open(path, "ab") as handle:
        written = os.fstat(handle.fileno()).st_size
        while written < size:
            chunk = block if written + len(block) <= size else block[:block.rfind(b"\n", 0, size - written) + 1]
            if not chunk:
                break
            handle.write(chunk)
            written += len(chunk)
    return t


def run_measured(args):
    """(CPU seconds user+sys, wall seconds, stdout) of one child process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    proc = subprocess.run(args, capture_output=True, text=True, check=False)
    wall = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise RuntimeError("%s exited %d: %s" % (" ".join(args), proc.returncode, proc.stderr.strip()))
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return cpu, wall, proc.stdout.strip()


def write_config(path, **config):
    path.write_text(json.dumps(config, indent=1, sort_keys=True))
    return str(path)


def cpu_bench(work, repeat, new, old, old_script):
    logs = work / "log"
    logs.mkdir()
    started = time.monotonic()
    t0 = time.time() - 86400
    for i in range(FILES):
        fill(logs / ("worker_%02d.log" % i), LOG_SIZE, locust_log_block, i, t0)
        fill(logs / ("activity_worker_%02d.log" % i), LOG_SIZE, activity_block, i, t0)
    print("data: %d worker logs and %d activity files of %d MiB each in %s (written in %.1f s)"
          % (FILES, FILES, LOG_SIZE // MIB, logs, time.monotonic() - started))

    py = sys.executable
    new_cfg = write_config(work / "new.json", idle_timeout=900, idle_grace=600, action="stop", dry_run=True,
                           cluster="bench", role="worker", log_glob=str(logs / "activity_*.log"),
                           state_dir=str(work / "state-new"))
    old_first_cfg = write_config(work / "old-first.json", idle_timeout=900, idle_grace=600, action="stop",
                                 dry_run=True, log_glob=str(logs / "worker_*.log"),
                                 state_dir=str(work / "state-old-first"))
    old_steady_cfg = write_config(work / "old-steady.json", idle_timeout=900, idle_grace=600, action="stop",
                                  dry_run=True, log_glob=str(logs / "worker_*.log"),
                                  state_dir=str(work / "state-old-steady"))

    # the old watcher's state after its first run, when every log was 50 MiB; then each log grows by READ_MAX
    subprocess.run([py, str(old_script), "--config", old_steady_cfg], check=True, capture_output=True)
    saved = work / "old-state-after-first.json"
    shutil.copy(work / "state-old-steady" / "state.json", saved)
    growth = old.READ_MAX
    for i in range(FILES):
        path = logs / ("worker_%02d.log" % i)
        fill(path, path.stat().st_size + growth, locust_log_block, i, t0 + 86000)
    grown = [(logs / ("worker_%02d.log" % i)).stat().st_size for i in range(FILES)]
    offsets = [entry["offset"] for entry in json.loads(saved.read_text())["files"].values()]
    new_bytes = [(logs / ("activity_worker_%02d.log" % i)).stat().st_size for i in range(FILES)]

    runs = {
        "pass": [py, "-c", "pass"],
        "new": [py, str(WATCHER), "--config", new_cfg],
        "old first": [py, str(old_script), "--config", old_first_cfg],
        "old steady": [py, str(old_script), "--config", old_steady_cfg],
    }
    cpu = {name: [] for name in runs}
    wall = {name: [] for name in runs}
    out = {}
    for dummy in range(repeat):
        for name, command in runs.items():
            if name == "old first":
                shutil.rmtree(work / "state-old-first", ignore_errors=True)
            elif name == "old steady":
                shutil.copy(saved, work / "state-old-steady" / "state.json")
            seconds, elapsed, out[name] = run_measured(command)
            cpu[name].append(seconds)
            wall[name].append(elapsed)

    read = {
        "pass": 0,
        "new": sum(min(size, new.TAIL_BYTES) for size in new_bytes),
        "old first": sum(min(size, old.FIRST_READ_MAX) for size in grown),
        "old steady": sum(min(size - offset, old.READ_MAX) for size, offset in zip(grown, offsets)),
    }
    labels = {"pass": "python -c pass (floor)", "new": "new watcher, 8 activity files",
              "old first": "old watcher, first run", "old steady": "old watcher, logs +16 MiB each"}
    median = {name: statistics.median(values) * 1000 for name, values in cpu.items()}
    print("CPU time per run (user+sys of the child, ms), median of %d interleaved runs; %s" % (repeat, py))
    for name in runs:
        print("  %-32s cpu %8.1f ms  (%s)  wall %8.1f ms  over the floor %+8.1f ms  reads %s"
              % (labels[name], median[name], " ".join("%.0f" % (v * 1000) for v in cpu[name]),
                 statistics.median(wall[name]) * 1000, median[name] - median["pass"],
                 "%d bytes (%.2f MiB)" % (read[name], read[name] / MIB) if name != "pass" else "-"))
    for name in ("new", "old first", "old steady"):
        line = out[name]
        print("  %s: %s" % (name, line if len(line) < 240 else line[:237] + "..."))
    for base in ("old first", "old steady"):
        over_new, over_base = median["new"] - median["pass"], median[base] - median["pass"]
        print("ratio new / %s: CPU x%.3f (%.1fx less); over the floor x%.4f; bytes read x%.5f (%.0fx less)"
              % (base, median["new"] / median[base], median[base] / median["new"], over_new / over_base,
                 read["new"] / read[base], read[base] / read["new"]))
    print("new watcher: TAIL_BYTES %d x %d files = %d bytes per run, whatever the files' size"
          % (new.TAIL_BYTES, FILES, read["new"]))


# ---------------------------------------------------------------------------------------------
# 2. detection latency

class FakePlugin(threading.Thread):
    """Writes start, a tick every second for ``busy`` seconds and stop into each activity file, as the
    activity plugin does (epoch ts); ``last_ts`` is the ts of the last line written."""

    def __init__(self, paths, busy):
        super().__init__(daemon=True)
        self.paths, self.busy = paths, busy
        self.begin = 0.0  # time.monotonic() at which to write "start"
        self.first_ts = self.last_ts = None
        self.lines = 0

    def write(self, event, seq, state):
        for number, path in enumerate(self.paths):
            ts = time.time()
            with open(path, "a", encoding="ascii") as handle:
                handle.write(activity_line(ts, event, state=state, pid=900 + number, seq=seq))
            self.lines += 1
            self.last_ts = ts
            self.first_ts = self.first_ts or ts

    def run(self):
        time.sleep(max(0.0, self.begin - time.monotonic()))
        began = time.monotonic()
        self.write("start", 1, "spawning")
        seq = 1
        while time.monotonic() - began < self.busy:
            seq += 1
            time.sleep(max(0.0, began + seq - 1 - time.monotonic()))
            self.write("tick", seq, "running")
        self.write("stop", seq + 1, "stopping")


def iso_epoch(text):
    return datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=datetime.timezone.utc).timestamp()


def latency_bench(work, interval, idle_timeout, busy, phase):
    start, stop_all = launcher()
    try:
        sim = start(users=["watcher"], throttle="off", action_delay=0)
        machine = sim.seed_machines(1, tags=FLEET_TAGS, name_prefix="bench-")["first"]
        watcher = sim.users["watcher"]
        logs = work / "activity"
        logs.mkdir()
        config = write_config(work / "latency.json", idle_timeout=idle_timeout, idle_grace=0, action="stop",
                              dry_run=False, cluster=FLEET_TAGS["locustfleet.cluster"],
                              role=FLEET_TAGS["locustfleet.role"], log_glob=str(logs / "activity_*.log"),
                              state_dir=str(work / "state-latency"), lib_dir=deploy_client(work / "latency"),
                              mdata_get=fake_mdata_get(work, machine),
                              cloudapi={"url": sim.url, "account": sim.account, "user": "watcher",
                                        "key_id": watcher.fingerprint, "private_key": Path(watcher.key_path).read_text()})
        plugin = FakePlugin([logs / "activity_worker_00.log", logs / "activity_worker_01.log"], busy)
        sim.reset_stats()
        runs = []  # (start epoch, seconds, decision line)
        deadline = time.monotonic() + busy + idle_timeout + 10 * interval + 30
        next_run = time.monotonic()
        while time.monotonic() < deadline:
            time.sleep(max(0.0, next_run - time.monotonic()))
            if not runs:
                plugin.begin = time.monotonic() + phase * interval
            next_run = time.monotonic() + interval  # OnUnitActiveSec: from the start of the previous run
            began = time.time()
            proc = subprocess.run([sys.executable, str(WATCHER), "--config", config], capture_output=True, text=True,
                                  check=False)
            runs.append((began, time.time() - began, proc.stdout.strip() or proc.stderr.strip()))
            if len(runs) == 1:
                plugin.start()  # the activity begins after the watcher's first ("configured") run
            if sum(sim.route_stats("StopMachine").values()):
                break
        plugin.join()
        calls = route_calls(sim)
        client = sim_client(sim)
        state = client.get("/%s/machines/%s" % (sim.account, machine), expect=dict)["state"]
        audit = client.get("/%s/machines/%s/audit" % (sim.account, machine), expect=list)
    finally:
        stop_all()

    stops = [entry for entry in audit if entry.get("action") == "stop"]
    print("watcher runs every %g s, idle_timeout %g s, idle_grace 0; fake plugin, from %g s after the first run: "
          "start, a tick every 1 s for %g s, stop, into 2 activity files (%d lines, first ts %.3f, last ts %.3f)"
          % (interval, idle_timeout, phase * interval, busy, plugin.lines, plugin.first_ts, plugin.last_ts))
    for number, (began, seconds, line) in enumerate(runs, 1):
        short = re.sub(r" reason=.*", "", line)
        print("  run %2d at last activity %+6.2f s (%.2f s): %s" % (number, began - plugin.last_ts, seconds, short))
    if not stops:
        print("machine %s: state %s, no stop in its audit: the watcher did not stop it" % (machine, state))
        sys.exit(1)
    stopped_at = iso_epoch(stops[0]["time"])
    latency = stopped_at - plugin.last_ts
    bound = idle_timeout + 2 * interval
    print("machine %s: state %s; audit stop at %s by %s"
          % (machine, state, stops[0]["time"], (stops[0].get("caller") or {}).get("keyId")))
    print("latency (audit stop - last activity ts): %.2f s; bound idle_timeout + 2 x interval = %g s: %s; "
          "latency / idle_timeout = %.3f" % (latency, bound, "within" if latency <= bound else "EXCEEDED",
                                             latency / idle_timeout))
    print("CloudAPI calls of all %d watcher runs: %d %s"
          % (len(runs), sum(calls.values()), json.dumps(calls, sort_keys=True)))
    return latency <= bound and calls == {"GetMachine": 1, "StopMachine": 1}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--repeat", type=int, default=10, help="CPU-time runs of each kind")
    parser.add_argument("--interval", type=float, default=2.0, help="seconds between watcher runs (the timer)")
    parser.add_argument("--idle-timeout", type=float, default=10.0)
    parser.add_argument("--busy", type=float, default=8.0, help="seconds the fake plugin ticks")
    parser.add_argument("--phase", type=float, default=0.5,
                        help="the fake plugin starts this many intervals after the first watcher run starts")
    parser.add_argument("--skip-cpu", action="store_true")
    parser.add_argument("--skip-latency", action="store_true")
    args = parser.parse_args()

    new = load_script(WATCHER, "watcher_new")
    work = Path(tempfile.mkdtemp(prefix="bench-idle-watcher-"))
    ok = True
    try:
        old_path = work / ("locustfleet_idle_watcher_%s.py" % OLD_COMMIT)
        old_path.write_bytes(subprocess.run(["git", "show", "%s:%s" % (OLD_COMMIT, WATCHER.relative_to(REPO))],
                                            cwd=REPO, check=True, capture_output=True).stdout)
        old = load_script(old_path, "watcher_old")
        started = time.monotonic()
        if not args.skip_cpu:
            cpu_bench(work, args.repeat, new, old, old_path)
            print("(CPU part: %.1f s)" % (time.monotonic() - started))
        if not args.skip_latency:
            started = time.monotonic()
            ok = latency_bench(work, args.interval, args.idle_timeout, args.busy, args.phase)
            print("(latency part: %.1f s)" % (time.monotonic() - started))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if not ok:
        sys.exit(1)


if __name__ == "__main__":
    main()

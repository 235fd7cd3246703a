#!/usr/bin/env python
"""run_test.yml's results: what following the test and the report cost, against baselines in the same run.

1. Following: ansible-playbook -vvv -c local runs a job of N s (sleeps, appends a progress.jsonl record every 2 s as
   the results plugin does) as a synchronous ansible.builtin.command (the baseline), then with async + poll: 0 and
   locustfleet.triton.locust_follow (interval 5, read_as ""). Wall and CPU time (RUSAGE_CHILDREN: the detached async
   job is not in it, the synchronous one is), the progress lines, and the follow task's module runs: its -vvv lines
   "EXEC ... python .../AnsiballZ_<module>.py", one per run; per line, the time from the follow waking to the line.
2. The report: Locust's own RequestStats and StatsCSVFileWriter, driven on a fake clock in a child Python, leave a
   --history-seconds run of --names request names (report.json as --json-file, locust_stats_history.csv as
   --csv-full-history), with locustfleet_run.json (12 worker processes) and an earlier run (10% faster, its
   summary.json made first). ansible-playbook of locust_report (its 3 files removed before each) against one of
   ansible.builtin.debug, and the module run alone, --repeat interleaved times.
3. The results plugin in Locust: a master and 2 workers on 127.0.0.1 against a local HTTP server (20 users at 5
   requests/s) with and without locustfleet_results.py in -f, --locust-rounds rounds: requests/s, master CPU (wait4).

    .venv/bin/python bench/run_results.py --seconds 30 33 120 --repeat 5 --locust-rounds 3
"""

import argparse
import hashlib
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from http.server import ThreadingHTTPServer
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "tests"), str(REPO / "collections")]

from ansible_collections.locustfleet.triton.plugins.module_utils._results import figures  # noqa: E402
from support.control import ansible_env, venv_bin  # noqa: E402
from support.locusts import Locusts, http_target  # noqa: E402

# A worker stopped in the middle of a request is no error here: no traceback from the target server.
ThreadingHTTPServer.handle_error = lambda self, request, client_address: None

PLUGIN = REPO / "roles" / "locust" / "files" / "locustfleet_results.py"
MODULE = REPO / "plugins" / "modules" / "locust_report.py"
OUTPUTS = ("comparison.html", "summary.json", "junit.xml")
JOB = textwrap.dedent('''
    import json, sys, time
    progress, seconds, start = sys.argv[1], float(sys.argv[2]), time.monotonic()
    while True:
        elapsed = time.monotonic() - start
        state = "running" if elapsed < seconds else "stopped"
        with open(progress, "a") as handle:
            handle.write(json.dumps({"ts": round(time.time(), 3), "elapsed": round(elapsed, 1), "state": state, "users": 50,
                                     "rps": 61.3, "fail_ratio": 0.001, "requests": int(61.3 * elapsed), "workers": 12}) + "\\n")
        if state == "stopped":
            break
        time.sleep(min(2.0, seconds - elapsed))
''')
GENERATE = textwrap.dedent('''
    import json, math, random, sys, time, types
    from locust.stats import PERCENTILES_TO_REPORT, RequestStats, StatsCSVFileWriter
    out, seconds, names, seed, slow = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
    random.seed(seed)
    clock = [1796300000.0]
    time.time = lambda: clock[0]   # Locust's stats read the time from here
    stats, runner = RequestStats(use_response_times_cache=True), types.SimpleNamespace(user_count=0)
    writer = StatsCSVFileWriter(types.SimpleNamespace(stats=stats, runner=runner), PERCENTILES_TO_REPORT, out + "/locust", True)
    writer.stats_history_csv_writer.writerow(writer.stats_history_csv_columns)
    routes = [("POST" if i % 4 == 0 else "GET", "/api/%02d" % i, 20 + 15 * i, 1 + i % 5) for i in range(names)]
    start = clock[0]
    for second in range(seconds):
        runner.user_count = min(200, 10 * (second + 1))
        for method, name, median, per_second in routes:
            for _ in range(per_second):
                clock[0] = start + second + random.random()
                stats.log_request(method, name, random.lognormvariate(math.log(median * slow), 0.5), 1200)
                if random.random() < 0.002:
                    stats.log_error(method, name, "HTTPError('503 Server Error')")
        clock[0] = start + second + 1
        writer._stats_history_data_rows(writer.stats_history_csv_writer, clock[0])   # Locust's row(s) each second
    writer.close_files()
    with open(out + "/report.json", "w") as handle:
        json.dump(stats.serialize_stats(), handle, indent=4)   # locust.stats.save_stats_json
''')
LOCUSTFILE = textwrap.dedent('''
    from locust import HttpUser, constant_throughput, task

    class Visitor(HttpUser):
        wait_time = constant_throughput(5)
        @task
        def index(self):
            self.client.get("/")
''')
EXECUTED = re.compile(r"<localhost> EXEC /bin/sh -c '\S*python\S* \S+/AnsiballZ_(\w+)\.py")


def cpu_children():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def play(workdir, name, tasks, verbose=False):
    """ansible-playbook over one play on localhost: (wall s, CPU s, [(epoch, line)])."""
    book = workdir / (name + ".yml")
    book.write_text("- hosts: localhost\n  gather_facts: false\n  tasks:\n" + textwrap.indent(textwrap.dedent(tasks), "    "))
    env = ansible_env(workdir / ".ansible-tmp")
    env.update(HOME=str(workdir), ANSIBLE_ASYNC_DIR=str(workdir / "async"), PYTHONUNBUFFERED="1")
    args = [venv_bin("ansible-playbook"), "-i", "localhost,", "-c", "local", "-e", "ansible_python_interpreter=" + sys.executable,
            str(book)] + (["-vvv"] if verbose else [])
    lines, cpu, started = [], cpu_children(), time.monotonic()
    with subprocess.Popen(args, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as proc:
        for line in proc.stdout:
            lines.append((time.time(), line.rstrip("\n")))
    wall, cpu = time.monotonic() - started, cpu_children() - cpu
    if proc.returncode:
        raise SystemExit("%s failed:\n%s" % (name, "\n".join(text for dummy, text in lines[-40:])))
    return wall, cpu, lines


def follow_costs(lines):
    """The follow task's module runs by module, the seconds each progress line's runs took, its last line, its end."""
    runs, busy, in_follow, woke, last, ended = {}, [], False, None, None, None
    for stamp, text in lines:
        if text.startswith("TASK ["):
            in_follow, woke = text.startswith("TASK [Follow"), stamp
        elif not in_follow:
            continue
        elif EXECUTED.search(text):
            module = EXECUTED.search(text).group(1)
            runs[module] = runs.get(module, 0) + 1
        elif text.startswith("bench: "):
            busy.append(stamp - woke)
            woke, last = None, text
        elif text.startswith(("ok: [", "changed: [")):
            ended = stamp
        elif woke is None:
            woke = stamp  # the first line after a progress line: the follow woke up
    return runs, busy, last, ended


def bench_follow(workdir, seconds, interval):
    job = workdir / "job.py"
    job.write_text(JOB)
    progress = {kind: workdir / ("progress-%s-%d.jsonl" % (kind, seconds)) for kind in ("sync", "follow")}
    argv = {kind: json.dumps([sys.executable, str(job), str(path), str(seconds)]) for kind, path in progress.items()}
    base = play(workdir, "sync", "- name: Run the test\n  ansible.builtin.command: {argv: %s}\n" % argv["sync"], verbose=True)
    follow = play(workdir, "follow", """\
        - {name: Run the test, ansible.builtin.command: {argv: %s}, async: %d, poll: 0, register: run_job}
        - name: Follow the test
          locustfleet.triton.locust_follow: {jid: "{{ run_job.ansible_job_id }}", progress_file: "%s", read_as: "", interval: %s,
                                             timeout: %d, expected_workers: 12, label: bench}
        """ % (argv["follow"], seconds + 60, progress["follow"], interval, seconds + 90), verbose=True)
    runs, busy, last, ended = follow_costs(follow[2])
    job_end = json.loads(progress["follow"].read_text().splitlines()[-1])["ts"]
    total = sum(runs.values())
    print("follow N=%ds: sync command %.1f s (CPU %.2f s), async + locust_follow %.1f s (CPU %.2f s): overhead %+.1f s, x%.3f"
          % (seconds, base[0], base[1], follow[0], follow[1], follow[0] - base[0], follow[0] / base[0]))
    print("  %d progress lines, %d module runs (%s), %.3f s CPU over the baseline per module run; per line: median %.2f s"
          " wall (max %.2f); the follow ended %.1f s after the job's last record\n  last line: %s"
          % (len(busy), total, ", ".join("%s %d" % item for item in sorted(runs.items())), (follow[1] - base[1]) / total,
             statistics.median(busy), max(busy), ended - job_end, last))


def run_module(run_dir, thresholds):
    args = run_dir.parent / "args.json"
    args.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": {"report_dir": str(run_dir), "cluster": "bench", "thresholds": thresholds}}))
    cpu, started = cpu_children(), time.monotonic()
    proc = subprocess.run([sys.executable, str(MODULE), str(args)], env=dict(os.environ, PYTHONPATH=str(REPO / "collections")),
                          capture_output=True, text=True, check=True)
    return time.monotonic() - started, cpu_children() - cpu, json.loads(proc.stdout)


def bench_report(workdir, seconds, names, repeat):
    root = workdir / "reports" / "bench"
    current, previous = root / "20261204T081500Z", root / "20261203T101500Z"
    workers = {"bench-worker-%d_%032x" % (n // 4, n): {"host": "bench-worker-%d" % (n // 4), "peak_cpu": 40.0 + 3 * n,
                                                       "samples": 360} for n in range(12)}
    record = {"version": 1, "locustfiles": [{"name": "locustfile.py", "sha256": hashlib.sha256(LOCUSTFILE.encode()).hexdigest()}],
              "workers": workers, "started": 1796300000.0, "stopped": 1796300000.0 + seconds}
    started, children = time.monotonic(), []
    for run_dir, seed, slow in ((current, 1, 1.0), (previous, 2, 0.9)):
        run_dir.mkdir(parents=True)
        (run_dir / "locustfleet_run.json").write_text(json.dumps(record, indent=1))
        argv = [sys.executable, "-c", GENERATE, str(run_dir), str(seconds), str(names), str(seed), str(slow)]
        children.append(subprocess.Popen(argv))
    if any(child.wait() for child in children):
        raise SystemExit("generating the runs failed")
    thresholds = {"Aggregated": {"rps_min": 50, "fail_ratio": 0.01, "p95_ms": 800}, "/api/19": {"p99_ms": 1000}}
    run_module(previous, thresholds)  # its summary.json
    history = current / "locust_stats_history.csv"
    print("report: %d s of %d names generated in %.1f s: report.json %.2f MB, locust_stats_history.csv %.2f MB (%d rows)"
          % (seconds, names, time.monotonic() - started, (current / "report.json").stat().st_size / 1e6,
             history.stat().st_size / 1e6, len(history.read_text().splitlines()) - 1))
    task = "- name: Report\n  locustfleet.triton.locust_report: {report_dir: %s, cluster: bench, thresholds: %s}\n" % (
        current, json.dumps(thresholds))
    times = {"debug": [], "report": [], "module": []}
    for dummy in range(repeat):
        times["debug"].append(play(workdir, "debug", "- name: Baseline\n  ansible.builtin.debug: {msg: hello}\n")[:2])
        for name in OUTPUTS:
            (current / name).unlink(missing_ok=True)
        times["report"].append(play(workdir, "report", task)[:2])
        for name in OUTPUTS:
            (current / name).unlink()
        *measured, result = run_module(current, thresholds)
        times["module"].append(measured)
    base, report, alone = ((statistics.median(w for w, dummy in runs), statistics.median(c for dummy, c in runs)) for runs in times.values())
    print("report: ansible.builtin.debug %.2f s (CPU %.2f s), locust_report %.2f s (CPU %.2f s): %+.2f s, x%.2f; the module"
          " alone %.2f s (CPU %.2f s); median of %d" % (*base, *report, report[0] - base[0], report[0] / base[0], *alone, repeat))
    print("  wrote: " + ", ".join("%s %.1f KB" % (name, (current / name).stat().st_size / 1e3) for name in OUTPUTS))
    print("\n".join("  | " + line for line in result["lines"]))


def locust_run(workdir, target, with_plugin, seconds):
    """(requests/s, master CPU s, progress lines) of one headless run."""
    tmp = workdir / ("locust-%s-%d" % ("plugin" if with_plugin else "plain", time.monotonic_ns()))
    (tmp / "run").mkdir(parents=True)
    env = {"LOCUSTFLEET_RUN_DIR": str(tmp / "run"), "LOCUSTFLEET_PROGRESS_INTERVAL": "2"}
    fleet = Locusts(tmp, [PLUGIN] if with_plugin else [], {"locustfile.py": LOCUSTFILE})
    try:
        fleet.workers(2, env=env)
        master = fleet.master("--headless", "-u", "20", "-r", "20", "-t", "%ds" % seconds, "--expect-workers", "2",
                              "--json-file", str(tmp / "report"), "-H", target, "--exit-code-on-error", "0", env=env)
        guard = threading.Timer(seconds + 120, master.kill)
        guard.start()
        dummy, status, usage = os.wait4(master.pid, 0)  # the master's own rusage
        guard.cancel()
        master.returncode = os.waitstatus_to_exitcode(status)
        if master.returncode:
            raise SystemExit("locust master failed:\n" + master.stderr.read().decode()[-3000:])
    finally:
        fleet.stop()
    progress = tmp / "run" / "progress.jsonl"
    return (figures(json.loads((tmp / "report.json").read_text()))["Aggregated"]["rps"], usage.ru_utime + usage.ru_stime,
            len(progress.read_text().splitlines()) if progress.exists() else 0)


def bench_locust(workdir, seconds, rounds):
    runs = {False: [], True: []}
    with http_target() as target:
        for dummy in range(rounds):
            for with_plugin in runs:
                runs[with_plugin].append(locust_run(workdir, target, with_plugin, seconds))
    for with_plugin, results in runs.items():
        for rps, cpu, lines in results:
            print("locust %d s, %-28s %.1f req/s, master CPU %.2f s, %d progress lines"
                  % (seconds, "with locustfleet_results.py:" if with_plugin else "without it:", rps, cpu, lines))
    rps, cpu = ({key: statistics.median(r[i] for r in results) for key, results in runs.items()} for i in (0, 1))
    print("locust: with/without, median of %d: req/s x%.3f, master CPU %+.2f s (x%.3f)"
          % (rounds, rps[True] / rps[False], cpu[True] - cpu[False], cpu[True] / cpu[False]))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--seconds", type=int, nargs="+", default=[30], help="job lengths to follow")
    parser.add_argument("--interval", type=float, default=5.0)
    parser.add_argument("--history-seconds", type=int, default=3600)
    parser.add_argument("--names", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--locust-seconds", type=int, default=20)
    parser.add_argument("--locust-rounds", type=int, default=1)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="bench-results-"))
    try:
        print("load average at the start: %.2f %.2f %.2f" % os.getloadavg())
        for seconds in args.seconds:
            bench_follow(workdir, seconds, args.interval)
        bench_report(workdir, args.history_seconds, args.names, args.repeat)
        if args.locust_seconds:
            bench_locust(workdir, args.locust_seconds, args.locust_rounds)
        print("load average at the end: %.2f %.2f %.2f" % os.getloadavg())
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()

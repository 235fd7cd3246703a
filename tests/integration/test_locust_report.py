"""locustfleet.triton.locust_report through the real ansible-playbook, over synthetic run directories
as run_test.yml fetches them (reports/<cluster>/<stamp>/): thresholds, the files it writes, the previous
run and the deltas, check mode, and the one-line failures.

The module runs on localhost and makes no CloudAPI call, so no tritonsim: ``run_play`` runs
ansible-playbook the way conftest's ``playbook`` fixture does (this checkout's ansible.cfg and
collection, the record_results callback), without CloudAPI settings.
"""

import json
import os
import shutil
import subprocess
import textwrap
import xml.etree.ElementTree as ET

import pytest

from ansible_collections.locustfleet.triton.plugins.module_utils._results import locustfile_id
from integration.test_return_docs import check_result
from support.control import INTEGRATION, REPO, ansible_env, venv_bin

FIRST, SECOND, LATER = "20261203T101500Z", "20261204T081500Z", "20261205T090000Z"
LOCUSTFILES = [{"name": "fleetcheck.py", "sha256": "a" * 64}]
HISTORY_HEADER = ("Timestamp,User Count,Type,Name,Requests/s,Failures/s,50%,66%,75%,80%,90%,95%,98%,99%,99.9%,"
                  "99.99%,100%,Total Request Count,Total Failure Count,Total Median Response Time,"
                  "Total Average Response Time,Total Min Response Time,Total Max Response Time,Total Average Content Size")


def stats_entry(name, method, times, failures=0, start=1796300000.0, last=1796300060.0):
    """One entry of Locust's report.json; ``times`` {ms bucket: count}."""
    return {"name": name, "method": method, "last_request_timestamp": last, "start_time": start,
            "num_requests": sum(times.values()), "num_none_requests": 0, "num_failures": failures,
            "total_response_time": sum(ms * n for ms, n in times.items()), "max_response_time": max(times),
            "min_response_time": min(times), "total_content_length": 0,
            "response_times": {str(ms): n for ms, n in times.items()}, "num_reqs_per_sec": {}, "num_fail_per_sec": {}}


def write_run(root, stamp, slow_checkout, cpu, locustfiles=None):
    """A run of 60 s: "/" 3000 requests at 10-50 ms, "/checkout" 600 (p95 300 ms, or 520 when slow)."""
    run_dir = root / stamp
    run_dir.mkdir(parents=True)
    checkout = {100: 300, 200: 240, 520 if slow_checkout else 300: 60}
    report = [stats_entry("/", "GET", {10: 2000, 20: 900, 50: 100}),
              stats_entry("/checkout", "POST", checkout, failures=6 if slow_checkout else 3)]
    (run_dir / "report.json").write_text(json.dumps(report, indent=4))
    workers = {"%s_%032x" % (host, n): {"host": host, "peak_cpu": peak, "samples": 30}
               for n, (host, peak) in enumerate([("demo-worker-1", cpu), ("demo-worker-1", 40.0), ("demo-worker-2", 35.5)])}
    record = {"version": 1, "locustfiles": locustfiles or LOCUSTFILES, "workers": workers, "started": 1796300000.0,
              "stopped": 1796300060.0}
    (run_dir / "locustfleet_run.json").write_text(json.dumps(record))
    rows = [HISTORY_HEADER]
    for t in range(60):
        p95 = 520 if slow_checkout else 300
        rows.append("%d,50,,Aggregated,60.0,0.1,%s,1,1,1,1,%d,1,%d,1,1,1,10,0,1,1,1,1,1"
                    % (1796300000 + t, "N/A" if t == 0 else 20, p95, p95 + 100))
    (run_dir / "locust_stats_history.csv").write_text("\n".join(rows) + "\n")
    return run_dir


def run_play(tmp_path, tasks):
    """ansible-playbook over one play on localhost: (rc, output, {task name: (status, result)})."""
    book = tmp_path / "play.yml"
    book.write_text("- hosts: localhost\n  gather_facts: false\n  tasks:\n"
                    + textwrap.indent(textwrap.dedent(tasks).strip() + "\n", "    "))
    record = tmp_path / "results.jsonl"
    env = ansible_env(tmp_path / ".ansible-tmp")
    env.update(HOME=str(tmp_path), RECORD_RESULTS_FILE=str(record),
               ANSIBLE_CALLBACK_PLUGINS=str(INTEGRATION / "callback_plugins"), ANSIBLE_CALLBACKS_ENABLED="record_results")
    proc = subprocess.run([venv_bin("ansible-playbook"), str(book)], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=300, check=False)
    entries = [json.loads(line) for line in record.read_text().splitlines()] if record.exists() else []
    return proc.returncode, proc.stdout + proc.stderr, {e["task"]: (e["status"], e["result"]) for e in entries}


def written(run_dir):
    return sorted(name for name in os.listdir(run_dir) if name in ("summary.json", "junit.xml", "comparison.html"))


@pytest.fixture
def reports(tmp_path):
    root = tmp_path / "reports" / "demo"
    write_run(root, FIRST, slow_checkout=False, cpu=62.0)
    write_run(root, SECOND, slow_checkout=True, cpu=97.3)
    return root


THRESHOLDS = {"Aggregated": {"rps_min": 50, "fail_ratio": 0.01}, "/checkout": {"p95_ms": 400}}


def test_two_runs_thresholds_files_previous_and_deltas(tmp_path, reports):
    shutil.copytree(reports / SECOND, reports / LATER)
    rc, output, results = run_play(tmp_path, """
        - name: first
          locustfleet.triton.locust_report:
            report_dir: "{0}/{1}"
            cluster: demo
            thresholds: {2}
            run_settings: {{target_host: "http://127.0.0.1:8089", users: 50, spawn_rate: 10, run_time: 1m}}
        - name: second
          locustfleet.triton.locust_report:
            report_dir: "{0}/{3}/"
            cluster: demo
            thresholds: {2}
            fail_on_saturation: true
        - name: second again
          locustfleet.triton.locust_report:
            report_dir: "{0}/{3}"
            cluster: demo
            thresholds: {2}
            fail_on_saturation: true
        - name: later in check mode
          locustfleet.triton.locust_report:
            report_dir: "{0}/{4}"
            cluster: demo
            thresholds: {{"Aggregated": {{"p95_ms": "600"}}}}
          check_mode: true
    """.format(reports, FIRST, json.dumps(THRESHOLDS), SECOND, LATER))
    assert rc == 0, output
    for status, result in results.values():
        assert status == "ok"
        check_result("locust_report", result)

    status, first = results["first"]
    assert first["changed"] and first["passed"] and first["breaches"] == []
    assert first["lines"] == [
        'threshold passed: "Aggregated" rps_min 60 >= limit 50',
        'threshold passed: "Aggregated" fail_ratio 0.000833 <= limit 0.01',
        'threshold passed: "/checkout" p95_ms 300 <= limit 400',
        "load generators below 90% CPU: the busiest, demo-worker-1, peaked at 62% (2 machines, 3 worker processes)",
        "no comparison: no earlier run of cluster demo with these locustfiles"]
    assert first["summary"]["previous"] is None and first["summary"]["comparison"] is None
    assert first["summary"]["run_settings"] == {"target_host": "http://127.0.0.1:8089", "users": 50,
                                                "spawn_rate": 10, "run_time": "1m"}
    assert first["files"] == {"summary": str(reports / FIRST / "summary.json"),
                              "junit": str(reports / FIRST / "junit.xml"),
                              "comparison": str(reports / FIRST / "comparison.html")}
    assert "No earlier run of this cluster and locustfile" in (reports / FIRST / "comparison.html").read_text()

    status, second = results["second"]
    summary = second["summary"]
    assert second["changed"] and not second["passed"] and not summary["passed"]
    assert second["breaches"] == ['threshold breached: "/checkout" p95_ms 520 > limit 400']
    assert summary["generator_bound"] and summary["fail_on_saturation"]
    assert summary["workers"] == [{"host": "demo-worker-1", "peak_cpu": 97.3, "processes": 2},
                                  {"host": "demo-worker-2", "peak_cpu": 35.5, "processes": 1}]
    assert second["lines"][3] == summary["generator_advice"] == (
        "load generators saturated: demo-worker-1 peaked at 97.3% CPU (Locust warns above 90%): the results may "
        "understate the service; add workers (spawn_slaves.yml -e count=N) or use FastHttpUser")
    assert summary["previous"] == {"run": FIRST, "figures": first["summary"]["figures"]}
    aggregated = summary["comparison"]["Aggregated"]
    assert aggregated["p95_ms"] == {"previous": 200, "current": 200, "delta": 0, "delta_pct": 0.0}
    assert aggregated["fail_ratio"] == {"previous": 0.000833, "current": 0.001667, "delta": 0.000834,
                                        "delta_pct": 100.1}
    assert summary["comparison"]["/checkout"]["p95_ms"] == {"previous": 300, "current": 520, "delta": 220,
                                                            "delta_pct": 73.3}
    assert summary["comparison"]["/checkout"]["rps"] == {"previous": 10.0, "current": 10.0, "delta": 0.0,
                                                         "delta_pct": 0.0}
    assert second["lines"][4] == ("vs 20261203T101500Z: 60 req/s (0, 0%), p50 10 ms (0, 0%), p95 200 ms (0, 0%), "
                                  "p99 520 ms (+220, +73.3%), failures 0.1667% (+0.0834, +100.1%)")
    assert summary["locustfile_id"] == first["summary"]["locustfile_id"] == locustfile_id(LOCUSTFILES)

    on_disk = json.loads((reports / SECOND / "summary.json").read_text())
    assert on_disk == summary
    for name in ("summary.json", "junit.xml", "comparison.html"):
        assert (reports / SECOND / name).stat().st_mode & 0o777 == 0o644
    assert not [name for name in os.listdir(reports / SECOND) if name.endswith(".tmp")]
    junit = ET.parse(reports / SECOND / "junit.xml").getroot()
    assert (junit.get("tests"), junit.get("failures")) == ("4", "2")
    assert junit.find("testsuite").get("timestamp") == "2026-12-04T08:15:00"
    page = (reports / SECOND / "comparison.html").read_text()
    assert "20261203T101500Z" in page and 'stroke-dasharray="6 4"' in page and "No earlier run" not in page

    status, again = results["second again"]
    assert not again["changed"] and again["summary"] == summary

    status, later = results["later in check mode"]
    assert later["changed"] and later["passed"] and written(reports / LATER) == []
    assert later["summary"]["previous"]["run"] == SECOND   # the latest earlier run, not the first
    assert later["lines"][0] == 'threshold passed: "Aggregated" p95_ms 200 <= limit 600'


def test_another_locustfile_has_no_previous_run(tmp_path, reports):
    write_run(reports, LATER, slow_checkout=False, cpu=10.0, locustfiles=[{"name": "other.py", "sha256": "b" * 64}])
    rc, output, results = run_play(tmp_path, """
        - name: later
          locustfleet.triton.locust_report:
            report_dir: "{0}/{1}"
            cluster: demo
    """.format(reports, LATER))
    assert rc == 0, output
    status, later = results["later"]
    assert later["summary"]["previous"] is None and later["passed"] and later["summary"]["thresholds"] == []
    assert written(reports / LATER) == ["comparison.html", "junit.xml", "summary.json"]


def test_a_lower_saturation_limit_flags_a_busier_generator(tmp_path, reports):
    write_run(reports, LATER, slow_checkout=False, cpu=62.0)
    rc, output, results = run_play(tmp_path, """
        - name: limit 60
          locustfleet.triton.locust_report:
            report_dir: "{0}/{1}"
            cluster: demo
            saturation_cpu: 60
            fail_on_saturation: true
    """.format(reports, LATER))
    assert rc == 0, output
    status, result = results["limit 60"]
    summary = result["summary"]
    assert summary["generator_bound"] and summary["saturation_cpu"] == 60.0 and not result["passed"]
    assert summary["generator_advice"].startswith("load generators saturated: demo-worker-1 peaked at 62% CPU "
                                                  "(saturation_cpu 60%)")
    junit = ET.parse(reports / LATER / "junit.xml").getroot()
    (case,) = [c for c in junit.iter("testcase") if c.get("classname") == "locustfleet.demo.load_generators"]
    assert case.get("name") == "load generators below 60% CPU" and case.find("failure") is not None


def test_bad_input_fails_with_one_line(tmp_path, reports):
    broken = reports / LATER
    broken.mkdir()
    (broken / "report.json").write_text('{"stats": [')
    odd = reports / "20261206T000000Z"
    odd.mkdir()
    (odd / "report.json").write_text(json.dumps([{"name": "/", "num_requests": "many"}]))
    rc, output, results = run_play(tmp_path, """
        - name: bad thresholds
          locustfleet.triton.locust_report:
            report_dir: "{0}/{1}"
            cluster: demo
            thresholds: {{"/checkout": {{"p95_ms": -1, "p42_ms": 1}}}}
          ignore_errors: true
        - name: broken report
          locustfleet.triton.locust_report:
            report_dir: "{0}/{2}"
            cluster: demo
          ignore_errors: true
        - name: not a report
          locustfleet.triton.locust_report:
            report_dir: "{0}/{3}"
            cluster: demo
          ignore_errors: true
        - name: no report
          locustfleet.triton.locust_report:
            report_dir: "{0}"
            cluster: demo
          ignore_errors: true
        - name: no directory
          locustfleet.triton.locust_report:
            report_dir: "{0}/nothing"
            cluster: demo
          ignore_errors: true
        - name: saturation limit
          locustfleet.triton.locust_report:
            report_dir: "{0}/{1}"
            cluster: demo
            saturation_cpu: 0
          ignore_errors: true
    """.format(reports, SECOND, LATER, odd.name))
    assert rc == 0, output
    messages = {task: result["msg"] for task, (status, result) in results.items() if status == "failed"}
    assert messages == {
        "bad thresholds": 'thresholds: "/checkout" p95_ms -1 is negative; thresholds: "/checkout" has the unknown '
                          'metric "p42_ms" (valid: fail_ratio, p50_ms, p90_ms, p95_ms, p99_ms, rps_min)',
        "broken report": "%s/report.json: not valid JSON (Expecting value: line 1 column 12 (char 11))" % broken,
        "not a report": '%s/report.json: entry 0 ("/"): num_requests "many" is not a whole number >= 0' % odd,
        "no report": "%s/report.json not found (Locust's --json-file report of the run)" % reports,
        "no directory": "report_dir %s/nothing is not a directory" % reports,
        "saturation limit": "saturation_cpu must be 1 to 100 (percent of one core), got 0.0",
    }
    for task, (status, result) in results.items():
        assert "\n" not in result["msg"] and result.get("exception") in (None, "(traceback unavailable)"), task
    assert "Traceback" not in output
    assert written(reports / SECOND) == [] and written(broken) == []


def test_untrusted_files_are_data(tmp_path, reports):
    """The run directory's files are written by the customer's code: odd ones are left out with a warning,
    names reach the page escaped, and a tampered earlier summary is no previous run."""
    write_run(reports, LATER, slow_checkout=False, cpu=10.0)
    odd = reports / "20261206T000000Z"
    odd.mkdir()
    (odd / "report.json").write_text(json.dumps([stats_entry('<script>alert(1)</script>&"', "GET", {5: 3})]))
    (odd / "locustfleet_run.json").write_text(json.dumps(
        {"locustfiles": "fleetcheck.py", "workers": {"w": {"host": "<b>", "peak_cpu": "99"}, "x": ["y"]}}))
    (odd / "locust_stats_history.csv").write_text("no,header\x00here\n")
    rc, output, results = run_play(tmp_path, """
        - name: first
          locustfleet.triton.locust_report:
            report_dir: "{0}/{1}"
            cluster: demo
        - name: tamper with the second
          ansible.builtin.copy:
            dest: "{0}/{2}/summary.json"
            content: '{{"locustfile_id": "{4}", "figures": {{"Aggregated": {{"rps": "<img src=x>"}}}}}}'
            mode: "0644"
        - name: later
          locustfleet.triton.locust_report:
            report_dir: "{0}/{3}"
            cluster: demo
        - name: odd
          locustfleet.triton.locust_report:
            report_dir: "{5}"
            cluster: demo
            thresholds: {{"<script>alert(1)</script>&\\"": {{"p95_ms": 1}}}}
    """.format(reports, FIRST, SECOND, LATER, locustfile_id(LOCUSTFILES), odd))
    assert rc == 0, output
    status, later_result = results["later"]
    assert status == "ok" and later_result["summary"]["previous"]["run"] == FIRST
    status, odd_result = results["odd"]
    assert status == "ok", odd_result
    summary = odd_result["summary"]
    assert summary["workers"] == [] and summary["locustfiles"] == [] and summary["locustfile_id"] is None
    assert odd_result["breaches"] == ['threshold breached: "<script>alert(1)</script>&\\"" p95_ms 5 > limit 1']
    assert any("locustfleet_run.json: locustfiles is not a list" in w for w in odd_result["warnings"])
    assert any("locust_stats_history.csv" in w for w in odd_result["warnings"])
    page = (odd / "comparison.html").read_text()
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;&amp;&quot;" in page and "<svg" not in page
    assert ET.parse(odd / "junit.xml").getroot().get("failures") == "1"

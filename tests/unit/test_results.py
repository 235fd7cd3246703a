"""module_utils._results: the results of a load test, from Locust's own files to thresholds, the load
generators' CPU, the comparison with the previous run, JUnit XML and the comparison page.

Locust's own computations run in a child Python (``locust_computes``): importing locust monkey-patches
the process with gevent, which the rest of the test session must not get.
"""

import json
import re
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET
from html.parser import HTMLParser

import pytest

from ansible_collections.locustfleet.triton.plugins.filter.results import FilterModule, locust_timespan
from ansible_collections.locustfleet.triton.plugins.module_utils import _results as results
from ansible_collections.locustfleet.triton.plugins.module_utils._results import (
    AGGREGATED, breach_lines, build_summary, clean_figures, compare, comparison_html, comparison_lines, evaluate,
    figures, generator_advice, generator_bound, history_series, junit_xml, locustfile_id, parse_timespan,
    pick_previous, saturation, threshold_errors, threshold_lines, worker_machines)

TIMESPANS = ["90", "0", "90s", "1m30s", "1h", "2h30m15s", "3m", "1h20m", "1m90s", "90\n", "007s",
             "", "abc", "1d", "1.5h", "30s1m", "-5", " 90", "90 s", "1H", "h", "1h 2m", "1s1s"]

LOCUST_SCRIPT = textwrap.dedent(r"""
    import csv, io, json, random, sys, types
    from locust.stats import PERCENTILES_TO_REPORT, RequestStats, StatsCSV, StatsEntry
    from locust.util.timespan import parse_timespan

    random.seed(7)
    stats = RequestStats(use_response_times_cache=False)
    for _ in range(3000):   # every bucket size: ms, tens, hundreds, thousands
        stats.log_request("GET", "/", random.choice([0, 1, 3, 47, 99, 100, 147, 999, 1234, 5678, 15000, 61000])
                          + random.random() * 4, 100)
    for i in range(400):
        stats.log_request("POST", "/checkout", random.expovariate(1 / 300.0), 10)
        if i % 9 == 0:
            stats.log_error("POST", "/checkout", "HTTPError 500")
    for _ in range(77):
        stats.log_request("GET", "/checkout", random.expovariate(1 / 30.0), 10)
    for _ in range(5):
        stats.log_request("GET", "/async", None, 0)   # no response time: not in the percentiles' denominator
    for ms in (12, 30, 31):
        stats.log_request("GET", "/async", ms, 0)
    stats.log_error("GET", "/failed-only", "ConnectionError")
    stats.log_request("GET", "/one", 8, 0)

    out = io.StringIO()
    StatsCSV(types.SimpleNamespace(stats=stats, runner=None), PERCENTILES_TO_REPORT).requests_csv(csv.writer(out))
    merged = {}
    for (name, method), entry in stats.entries.items():
        merged.setdefault(name, StatsEntry(stats, name, "")).extend(entry)
    by_name = {name: {"num_requests": e.num_requests, "num_failures": e.num_failures,
                      "percentiles": [e.get_response_time_percentile(p) for p in (0.5, 0.9, 0.95, 0.99)]}
               for name, e in merged.items()}
    spans = {}
    for text in json.loads(sys.argv[1]):
        try:
            spans[text] = parse_timespan(text)
        except ValueError:
            spans[text] = None
    report = json.loads(json.dumps(stats.serialize_stats()))   # as --json-file writes it (serialize resets)
    print(json.dumps({"csv": out.getvalue(), "report": report, "merged": by_name, "timespans": spans}))
""")


@pytest.fixture(scope="module")
def locust_computes():
    proc = subprocess.run([sys.executable, "-c", LOCUST_SCRIPT, json.dumps(TIMESPANS)], capture_output=True,
                          text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def entry(name, method="GET", times=None, requests=None, failures=0, none=0, start=1000.0, last=1010.0):
    """A report.json entry; ``times`` {ms: count}."""
    times = times if times is not None else {}
    count = sum(times.values()) + none if requests is None else requests
    return {"name": name, "method": method, "last_request_timestamp": last, "start_time": start,
            "num_requests": count, "num_none_requests": none, "num_failures": failures,
            "total_response_time": sum(ms * n for ms, n in times.items()), "max_response_time": max(times, default=0),
            "min_response_time": min(times, default=None), "total_content_length": 0,
            "response_times": {str(ms): n for ms, n in times.items()}, "num_reqs_per_sec": {}, "num_fail_per_sec": {}}


# -- figures against Locust's own computation -------------------------------------------------------------

def test_percentiles_equal_locusts_csv_and_its_own_percentile_function(locust_computes):
    run = figures(locust_computes["report"])
    rows = list(__import__("csv").DictReader(locust_computes["csv"].splitlines()))
    columns = {"p50_ms": "50%", "p90_ms": "90%", "p95_ms": "95%", "p99_ms": "99%"}
    checked = 0
    for row in rows:   # names with one method, and the Aggregated row
        name = row["Name"]
        if name == "/checkout":
            continue
        for key, column in columns.items():
            assert run[name][key] == (None if row[column] == "N/A" else int(row[column])), (name, key)
        assert run[name]["requests"] == int(row["Request Count"])
        assert run[name]["failures"] == int(row["Failure Count"])
        checked += 1
    assert checked == 5
    for name, locust in locust_computes["merged"].items():   # /checkout: GET and POST merged, as StatsEntry.extend does
        expected = locust["percentiles"] if locust["num_requests"] else [None] * 4   # the CSV's N/A
        assert [run[name][key] for key in columns] == expected, name
        assert run[name]["requests"] == locust["num_requests"]
        assert run[name]["failures"] == locust["num_failures"]
    assert run["/async"]["requests"] == 8 and run["/async"]["p50_ms"] == 30   # denominator 3, not 8
    assert run["/failed-only"] == {"requests": 0, "failures": 1, "fail_ratio": 1.0, "rps": 0.0, "p50_ms": None,
                                   "p90_ms": None, "p95_ms": None, "p99_ms": None}
    assert run[AGGREGATED]["fail_ratio"] == round(run[AGGREGATED]["failures"] / run[AGGREGATED]["requests"], 6)
    assert list(run)[0] == AGGREGATED


def test_parse_timespan_accepts_what_locust_accepts(locust_computes):
    for text, seconds in locust_computes["timespans"].items():
        if seconds is None:
            with pytest.raises(ValueError, match="is not a Locust time span"):
                parse_timespan(text)
        else:
            assert parse_timespan(text) == seconds, text
    assert locust_computes["timespans"]["2h30m15s"] == 9015 and locust_computes["timespans"]["1m90s"] == 150


# -- figures on synthetic reports -------------------------------------------------------------------------

def test_rps_is_counted_over_the_whole_run_for_every_name():
    run = figures([entry("/a", times={10: 30}, start=1000.0, last=1010.0),
                   entry("/b", times={20: 20}, start=1005.0, last=1020.0),
                   entry("/b", method="POST", times={40: 10}, failures=3, start=1001.0, last=1012.0)])
    assert run[AGGREGATED]["rps"] == 3.0 and run[AGGREGATED]["requests"] == 60
    assert run["/a"]["rps"] == 1.5 and run["/b"]["rps"] == 1.5 and run["/b"]["requests"] == 30
    assert run["/b"]["fail_ratio"] == 0.1 and run["/b"]["p99_ms"] == 40 and run["/b"]["p50_ms"] == 20
    assert list(run) == [AGGREGATED, "/a", "/b"]


def test_an_empty_report_and_a_request_named_aggregated():
    assert figures([])[AGGREGATED] == {"requests": 0, "failures": 0, "fail_ratio": 0.0, "rps": 0.0, "p50_ms": None,
                                       "p90_ms": None, "p95_ms": None, "p99_ms": None}
    run = figures([entry("Aggregated", times={900: 1}), entry("/", times={10: 9})])
    assert set(run) == {AGGREGATED, "/"} and run[AGGREGATED]["requests"] == 10 and run[AGGREGATED]["p99_ms"] == 900


@pytest.mark.parametrize("report, message", [
    ({"stats": []}, "expected a list of stats entries"),
    ("[]", "expected a list"),
    ([["/"]], "entry 0 is"),
    ([{"method": "GET"}], "entry 0 has no request name"),
    ([dict(entry("/"), num_requests="3")], 'entry 0 ("/"): num_requests "3" is not a whole number'),
    ([dict(entry("/"), num_failures=True)], "num_failures true is not a whole number"),
    ([dict(entry("/"), num_requests=-1)], "num_requests -1"),
    ([dict(entry("/", times={1: 1}), num_none_requests=5)], "num_none_requests is more than num_requests"),
    ([dict(entry("/"), response_times=[1, 2])], "response_times [1, 2] is not an object"),
    ([dict(entry("/"), response_times={"fast": 1})], 'response_times has "fast": 1'),
    ([dict(entry("/"), response_times={"-5": 1})], "not milliseconds"),
    ([dict(entry("/"), response_times={"5": 1.5})], "not milliseconds"),
    ([dict(entry("/"), start_time="yesterday")], 'start_time "yesterday" is not a time'),
    ([dict(entry("/"), start_time=float("nan"))], "start_time NaN is not a time"),
    ([dict(entry("/"), last_request_timestamp=[1])], "last_request_timestamp [1]"),
    ([dict(entry("/"), method=5)], "method 5 is not a string"),
])
def test_anything_but_locusts_report_is_refused_in_one_line(report, message):
    with pytest.raises(ValueError) as caught:
        figures(report)
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_clean_figures_keeps_only_figures():
    run = figures([entry("/", times={10: 9})])
    assert clean_figures(json.loads(json.dumps(run))) == run
    assert clean_figures({"/": run["/"]}) is None   # no Aggregated
    assert clean_figures({AGGREGATED: dict(run[AGGREGATED], rps="5")}) is None
    assert clean_figures({AGGREGATED: dict(run[AGGREGATED], p95_ms="<b>")}) is None
    assert clean_figures([run]) is None


# -- thresholds -----------------------------------------------------------------------------------------

def test_valid_thresholds_have_no_errors():
    assert threshold_errors({}) == []
    assert threshold_errors({"Aggregated": {"rps_min": 50, "fail_ratio": 0.01}, "/checkout": {"p95_ms": 400},
                             "/x": {"p50_ms": "120", "p90_ms": 0, "p99_ms": "1.5e3", "fail_ratio": "1"}}) == []


@pytest.mark.parametrize("thresholds, error", [
    ([1], 'thresholds must be a dict of request names to {metric: limit}, got [1]'),
    ("p95_ms=400", 'thresholds must be a dict of request names to {metric: limit}, got "p95_ms=400"'),
    ({"": {"p95_ms": 1}}, 'thresholds: request name "" is not a non-empty string'),
    ({5: {"p95_ms": 1}}, "thresholds: request name 5 is not a non-empty string"),
    ({"/a": {}}, 'thresholds: "/a" must be a non-empty dict of metric: limit, got {}'),
    ({"/a": 400}, 'thresholds: "/a" must be a non-empty dict of metric: limit, got 400'),
    ({"/a": {"p42_ms": 1}}, 'thresholds: "/a" has the unknown metric "p42_ms" '
                            '(valid: fail_ratio, p50_ms, p90_ms, p95_ms, p99_ms, rps_min)'),
    ({"/a": {"p95_ms": "fast"}}, 'thresholds: "/a" p95_ms "fast" is not a number'),
    ({"/a": {"p95_ms": True}}, 'thresholds: "/a" p95_ms true is not a number'),
    ({"/a": {"p95_ms": None}}, 'thresholds: "/a" p95_ms null is not a number'),
    ({"/a": {"p95_ms": [400]}}, 'thresholds: "/a" p95_ms [400] is not a number'),
    ({"/a": {"p95_ms": -1}}, 'thresholds: "/a" p95_ms -1 is negative'),
    ({"/a": {"rps_min": "-0.5"}}, 'thresholds: "/a" rps_min "-0.5" is negative'),
    ({"/a": {"fail_ratio": 1.5}}, 'thresholds: "/a" fail_ratio 1.5 is above 1 (fail_ratio is a ratio: 0.01 means 1%)'),
    ({"/a": {"p95_ms": float("nan")}}, 'thresholds: "/a" p95_ms NaN is not a finite number'),
    ({"/a": {"p95_ms": float("inf")}}, 'thresholds: "/a" p95_ms Infinity is not a finite number'),
    ({"/a": {"p95_ms": "1e999"}}, 'thresholds: "/a" p95_ms "1e999" is not a finite number'),
    ({"/a": {"p95_ms": "nan"}}, 'thresholds: "/a" p95_ms "nan" is not a number'),
])
def test_threshold_errors_name_the_option_request_metric_and_value(thresholds, error):
    assert threshold_errors(thresholds) == [error]


def test_every_problem_is_listed_in_order():
    errors = threshold_errors({"/a": {"p95_ms": -1, "p99_ms": "x"}, "/b": []})
    assert [e.split(" ", 3)[1:3] for e in errors] == [['"/a"', "p95_ms"], ['"/a"', "p99_ms"], ['"/b"', "must"]]


def test_evaluate_in_the_order_given_and_the_lines():
    run = {AGGREGATED: {"rps": 12.4, "fail_ratio": 0.0, "p95_ms": 300}, "/checkout": {"p95_ms": 523, "rps": 3.0},
           "/empty": {"p95_ms": None, "rps": 0.0}}
    thresholds = {"/checkout": {"p95_ms": 400}, AGGREGATED: {"rps_min": 50, "fail_ratio": "0.01", "p95_ms": 300},
                  "/x": {"p95_ms": 400}, "/empty": {"p95_ms": 400}, "/fast": {"rps_min": 0}}
    found = evaluate(thresholds, dict(run, **{"/fast": {"rps": 0.0}}))
    assert [(r["name"], r["metric"], r["limit"], r["value"], r["passed"]) for r in found] == [
        ("/checkout", "p95_ms", 400, 523, False), (AGGREGATED, "rps_min", 50, 12.4, False),
        (AGGREGATED, "fail_ratio", 0.01, 0.0, True), (AGGREGATED, "p95_ms", 300, 300, True),
        ("/x", "p95_ms", 400, None, False), ("/empty", "p95_ms", 400, None, False), ("/fast", "rps_min", 0, 0.0, True)]
    assert breach_lines(found) == [
        'threshold breached: "/checkout" p95_ms 523 > limit 400',
        'threshold breached: "Aggregated" rps_min 12.4 < limit 50',
        'threshold breached: "/x" p95_ms: no request named "/x" in this run',
        'threshold breached: "/empty" p95_ms: no request named "/empty" in this run']
    assert threshold_lines(found)[2:4] == ['threshold passed: "Aggregated" fail_ratio 0 <= limit 0.01',
                                           'threshold passed: "Aggregated" p95_ms 300 <= limit 300']
    with pytest.raises(ValueError, match="is negative"):
        evaluate({"/x": {"p95_ms": -1}}, run)


# -- load generators ------------------------------------------------------------------------------------

WORKERS = {
    "e2e-worker-1_" + "a" * 32: {"host": "e2e-worker-1", "peak_cpu": 97.34, "samples": 12},
    "e2e-worker-1_" + "b" * 32: {"host": "e2e-worker-1", "peak_cpu": 60, "samples": 12},
    "e2e-worker-2_" + "c" * 32: {"host": "e2e-worker-2", "peak_cpu": 45.0, "samples": 12},
    "odd": {"host": "e2e-worker-3", "peak_cpu": "99"},     # a string is no CPU figure
    "odder": ["x"], "nan": {"host": "x", "peak_cpu": float("nan")}, "negative": {"host": "y", "peak_cpu": -1},
    "nohost_" + "d" * 32: {"peak_cpu": 12.0},
}


def test_worker_machines_and_the_advice():
    machines = worker_machines(WORKERS)
    assert machines == [{"host": "e2e-worker-1", "peak_cpu": 97.3, "processes": 2},
                        {"host": "e2e-worker-2", "peak_cpu": 45.0, "processes": 1},
                        {"host": "nohost_" + "d" * 32, "peak_cpu": 12.0, "processes": 1}]
    assert generator_bound(machines) and not generator_bound(machines, limit=97.3)
    assert generator_advice(machines) == (
        "load generators saturated: e2e-worker-1 peaked at 97.3% CPU (Locust warns above 90%): the results may "
        "understate the service; add workers (spawn_slaves.yml -e count=N) or use FastHttpUser")
    assert "e2e-worker-1 peaked at 97.3% CPU, e2e-worker-2 at 45% (saturation_cpu 40%): " in generator_advice(machines, limit=40)
    assert saturation(machines) == {"passed": True, "message": generator_advice(machines)}
    assert saturation(machines, fail_on_saturation=True)["passed"] is False
    assert saturation(machines[1:]) == {"passed": True, "message": "load generators below 90% CPU: the busiest, "
                                        "e2e-worker-2, peaked at 45% (2 machines, 2 worker processes)"}
    assert saturation([]) is None and generator_advice([]) is None and not generator_bound([])
    assert worker_machines(None) == [] and worker_machines([WORKERS]) == []
    assert worker_machines({"w": {"host": "a\nb\x1b[31m", "peak_cpu": 1}})[0]["host"] == "a?b?[31m"


# -- the previous run and the comparison ------------------------------------------------------------------

def test_locustfile_id():
    files = [{"name": "b.py", "sha256": "b" * 64}, {"name": "a.py", "sha256": "a" * 64}]
    assert locustfile_id(files) == locustfile_id(list(reversed(files)))
    assert re.fullmatch("[0-9a-f]{64}", locustfile_id(files))
    assert locustfile_id(files) != locustfile_id([dict(files[0], sha256="c" * 64), files[1]])
    assert locustfile_id(files) != locustfile_id(files[:1])
    for bad in (None, [], "a.py", [{"name": "a.py"}], [{"name": "a.py", "sha256": None}], [{"sha256": "a" * 64}],
                [{"name": "a.py", "sha256": "not hex"}], [files[0], "x"]):
        assert locustfile_id(bad) is None, bad


def test_pick_previous():
    same, other = {"locustfile_id": "abc"}, {"locustfile_id": "xyz"}
    candidates = [("20261201T000000Z", same), ("20261203T101500Z", same), ("20261203T120000Z", other),
                  ("20261204T081500Z", same), ("20261205T000000Z", same), ("junk", same), ("20261202T000000Z", "x")]
    assert pick_previous("20261204T081500Z", "abc", candidates) == ("20261203T101500Z", same)
    assert pick_previous("20261204T081500Z", "xyz", candidates) == ("20261203T120000Z", other)
    assert pick_previous("20261201T000000Z", "abc", candidates) is None
    assert pick_previous("20261204T081500Z", None, candidates + [("20261203T130000Z", {"locustfile_id": None})]) is None
    assert pick_previous("latest", "abc", candidates) is None


def test_compare_and_the_comparison_line():
    previous = {AGGREGATED: {"rps": 51.3, "p50_ms": 120, "p95_ms": 350, "p99_ms": 0, "fail_ratio": 0.01},
                "/a": {"rps": 1.0, "p50_ms": None, "p95_ms": None, "p99_ms": None, "fail_ratio": 0.0},
                "/gone": {"rps": 1.0, "p50_ms": 1, "p95_ms": 1, "p99_ms": 1, "fail_ratio": 0.0}}
    current = {AGGREGATED: {"rps": 48.1, "p50_ms": 120, "p95_ms": 410, "p99_ms": 800, "fail_ratio": 0.0125},
               "/a": {"rps": 2.0, "p50_ms": 10, "p95_ms": 20, "p99_ms": 30, "fail_ratio": 0.0},
               "/new": {"rps": 1.0, "p50_ms": 1, "p95_ms": 1, "p99_ms": 1, "fail_ratio": 0.0}}
    comparison = compare(current, previous)
    assert list(comparison) == [AGGREGATED, "/a"]
    assert comparison[AGGREGATED]["rps"] == {"previous": 51.3, "current": 48.1, "delta": -3.2, "delta_pct": -6.2}
    assert comparison[AGGREGATED]["p95_ms"] == {"previous": 350, "current": 410, "delta": 60, "delta_pct": 17.1}
    assert comparison[AGGREGATED]["p99_ms"] == {"previous": 0, "current": 800, "delta": 800, "delta_pct": None}
    assert comparison[AGGREGATED]["fail_ratio"] == {"previous": 0.01, "current": 0.0125, "delta": 0.0025,
                                                    "delta_pct": 25.0}
    assert comparison["/a"]["p50_ms"] == {"previous": None, "current": 10, "delta": None, "delta_pct": None}
    assert comparison["/a"]["fail_ratio"]["delta_pct"] is None
    assert comparison_lines(comparison, "20261203T101500Z") == [
        "vs 20261203T101500Z: 48.1 req/s (-3.2, -6.2%), p50 120 ms (0, 0%), p95 410 ms (+60, +17.1%), "
        "p99 800 ms (+800), failures 1.25% (+0.25, +25%)"]
    assert comparison_lines(None, "x") == [] and comparison_lines({}, "x") == []


# -- the history CSV ------------------------------------------------------------------------------------

HISTORY_HEADER = ("Timestamp,User Count,Type,Name,Requests/s,Failures/s,50%,66%,75%,80%,90%,95%,98%,99%,99.9%,"
                  "99.99%,100%,Total Request Count,Total Failure Count,Total Median Response Time,"
                  "Total Average Response Time,Total Min Response Time,Total Max Response Time,Total Average Content Size")


def history_row(ts, users, kind, name, rps, p50, p95, p99):
    return ",".join(str(v) for v in (ts, users, kind, name, rps, "0.000000", p50, 1, 1, 1, 1, p95, 1, p99, 1, 1, 1,
                                     10, 0, 1, 1.5, 1, 1, 1))


def test_history_series_keeps_the_aggregated_rows():
    rows = [HISTORY_HEADER,
            history_row(1796300000, 0, "GET", "/", "0.000000", "N/A", "N/A", "N/A"),
            history_row(1796300000, 0, "", "Aggregated", "0.000000", "N/A", "N/A", "N/A"),
            history_row(1796300001, 10, "GET", "Aggregated", "9.000000", 1, 1, 1),   # a request named Aggregated
            history_row(1796300001, 10, "", "Aggregated", "4.500000", 110, 250, 400),
            history_row(1796300002, 20, "", "Aggregated", "nan", 1, 1, 1),      # not a number: left out
            history_row(1796300003, 20, "", "Aggregated", "x", 1, 1, 1),
            "1796300004,20,,Aggregated,short",
            history_row(1796300005, 20, "", "Aggregated", "11.25", 120, 260, 410)]
    assert history_series("\n".join(rows) + "\n") == [
        {"t": 0, "users": 0, "rps": 0.0, "p50_ms": None, "p95_ms": None, "p99_ms": None},
        {"t": 1, "users": 10, "rps": 4.5, "p50_ms": 110, "p95_ms": 250, "p99_ms": 400},
        {"t": 5, "users": 20, "rps": 11.25, "p50_ms": 120, "p95_ms": 260, "p99_ms": 410}]
    assert history_series(HISTORY_HEADER + "\n") == []
    for bad in ("", "a,b,c\n1,2,3\n"):
        with pytest.raises(ValueError):
            history_series(bad)


# -- JUnit XML ------------------------------------------------------------------------------------------

def test_junit_xml_parses_with_the_right_counts_and_escapes():
    found = evaluate({'<b>&"x"': {"p95_ms": 400}, AGGREGATED: {"rps_min": 50, "fail_ratio": 0.01}},
                     {'<b>&"x"': {"p95_ms": 523}, AGGREGATED: {"rps": 61.2, "fail_ratio": 0.0}})
    sat = {"passed": False, "message": "load generators saturated: w\x01 peaked at 97% CPU"}
    text = junit_xml("locustfleet.demo", found, sat, timestamp="2026-12-04T08:15:00")
    root = ET.fromstring(text.encode())
    assert root.tag == "testsuites" and (root.get("tests"), root.get("failures")) == ("4", "2")
    (suite,) = root
    assert suite.tag == "testsuite" and suite.get("timestamp") == "2026-12-04T08:15:00"
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("4", "2", "0")
    cases = suite.findall("testcase")
    assert [(c.get("classname"), c.get("name")) for c in cases] == [
        ("locustfleet.demo.thresholds", '"<b>&\\"x\\"" p95_ms <= 400'),
        ("locustfleet.demo.thresholds", '"Aggregated" rps_min >= 50'),
        ("locustfleet.demo.thresholds", '"Aggregated" fail_ratio <= 0.01'),
        ("locustfleet.demo.load_generators", "load generators below 90% CPU")]
    assert cases[0].find("failure").get("message") == 'threshold breached: "<b>&\\"x\\"" p95_ms 523 > limit 400'
    assert cases[1].find("failure") is None and cases[2].find("failure") is None
    assert cases[3].find("failure").get("message") == "load generators saturated: w\ufffd peaked at 97% CPU"

    passing = ET.fromstring(junit_xml("locustfleet.demo", found[1:], {"passed": True, "message": "fine"}))
    assert passing.get("failures") == "0" and passing.find("testsuite/testcase/system-out").text == "fine"
    empty = ET.fromstring(junit_xml("locustfleet.demo", []))
    assert empty.get("tests") == "0" and re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", empty[0].get("timestamp"))


# -- the comparison page --------------------------------------------------------------------------------

class Elements(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags, self.attrs, self.text = [], [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attrs += attrs

    def handle_data(self, data):
        self.text.append(data)


NASTY = '<script>alert(1)</script>&"\''


def page_runs():
    current = figures([entry(NASTY, times={100: 8, 900: 2}), entry("/", times={10: 10}, start=1000.0, last=1020.0)])
    previous = figures([entry(NASTY, times={100: 10}), entry("/gone", times={10: 1})])
    series = [{"t": t, "users": 10, "rps": 1.0, "p50_ms": 100 + t, "p95_ms": None if t == 3 else 200 + t,
               "p99_ms": 300} for t in range(10)]
    return ({"stamp": "20261204T081500Z", "cluster": "demo<&>", "figures": current, "series": series},
            {"stamp": "20261203T101500Z", "figures": previous, "series": [dict(p, p95_ms=200) for p in series[:5]]})


def test_comparison_html_escapes_every_value_and_loads_nothing():
    current, previous = page_runs()
    text = comparison_html(current, previous)
    parser = Elements()
    parser.feed(text)
    assert "script" not in parser.tags and "link" not in parser.tags and "img" not in parser.tags
    assert not [value for name, value in parser.attrs if name in ("src", "href") or (value or "").startswith("http")
                and value != "http://www.w3.org/2000/svg"]
    assert "<script>" not in text and "&lt;script&gt;alert(1)&lt;/script&gt;&amp;&quot;&#x27;" in text
    assert NASTY in "".join(parser.text) and "locustfleet demo<&>: run 20261204T081500Z" in "".join(parser.text)
    assert "Compared with" in text and "20261203T101500Z" in text
    svg = text[text.index("<svg"):text.index("</svg>") + 6]
    chart = ET.fromstring(svg)
    lines = chart.findall("{http://www.w3.org/2000/svg}polyline")
    dashed = [line for line in lines if line.get("stroke-dasharray")]
    assert len(lines) == 7 and len(dashed) == 3   # p95 of the current run is cut in two by its N/A
    assert "seconds since the start of the run" in svg and "response time (ms)" in svg
    assert "current 20261204T081500Z" in svg and "previous 20261203T101500Z" in svg


def test_comparison_html_without_a_previous_run():
    current, previous = page_runs()
    text = comparison_html(current, None)
    assert "No earlier run of this cluster and locustfile: the current run alone." in text
    assert "was " not in text and "stroke-dasharray=\"6 4\" points" not in text
    text = comparison_html(dict(current, series=[]), None)
    assert "<svg" not in text and "No response time history" in text


# -- summary, filters ----------------------------------------------------------------------------------

def test_build_summary():
    run = figures([entry("/", times={10: 10})])
    found = evaluate({AGGREGATED: {"p95_ms": 100}}, run)
    files = [{"name": "fleetcheck.py", "sha256": "a" * 64}]
    machines = worker_machines(WORKERS)
    summary = build_summary("demo", "20261204T081500Z", files, {"users": 10}, run, found, machines)
    assert set(summary) == {"version", "cluster", "run", "locustfile_id", "locustfiles", "run_settings", "figures",
                            "thresholds", "passed", "workers", "generator_bound", "generator_advice",
                            "fail_on_saturation", "saturation_cpu", "previous", "comparison"}
    assert summary["saturation_cpu"] == 90.0
    assert summary["passed"] is True and summary["generator_bound"] is True and summary["previous"] is None
    assert summary["locustfile_id"] == locustfile_id(files) and summary["generator_advice"].startswith("load gen")
    failing = build_summary("demo", "20261204T081500Z", files, {}, run, found, machines, fail_on_saturation=True,
                            previous=("20261203T101500Z", run), comparison=compare(run, run))
    assert failing["passed"] is False and failing["previous"] == {"run": "20261203T101500Z", "figures": run}
    json.dumps(failing, allow_nan=False)


def test_the_filters():
    filters = FilterModule().filters()
    assert filters["locust_threshold_errors"]({"/a": {"p95_ms": -1}}) == ['thresholds: "/a" p95_ms -1 is negative']
    assert filters["locust_timespan"]("1m30s") == 90 and locust_timespan(120) == 120
    from ansible.errors import AnsibleFilterError

    for bad in ("5 minutes", 1.5, True, -1, None):
        with pytest.raises(AnsibleFilterError, match=r"^locust_timespan: .* is not a Locust time span \(valid: 20, "):
            locust_timespan(bad)


def test_stamps():
    assert results.stamp_time("20261204T081500Z") == "2026-12-04T08:15:00"
    assert results.stamp_time("20261304T081500Z") is None and results.stamp_time("x") is None

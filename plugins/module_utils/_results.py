# -*- coding: utf-8 -*-
# Copyright: locustfleet.triton contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# PRIVATE to the collection: may change without notice between releases.
"""The results of a load test, as pure functions: Locust's report.json turned into figures, thresholds
checked against them, the load generators' CPU, a comparison with the previous run, JUnit XML and HTML.

Every input comes from files of the run directory, which the customer's locustfile could have
written: anything malformed raises ValueError with one line, or is left out where the input is
optional (worker CPU figures, the history CSV, an earlier summary).
"""

from __future__ import annotations

import csv
import hashlib
import html
import io
import json
import math
import re
import xml.etree.ElementTree as ET
from datetime import datetime, timedelta, timezone

AGGREGATED = "Aggregated"
# metric -> (the figure it limits, True when the figure must be at least the limit, else at most)
THRESHOLD_METRICS = {
    "fail_ratio": ("fail_ratio", False),
    "p50_ms": ("p50_ms", False),
    "p90_ms": ("p90_ms", False),
    "p95_ms": ("p95_ms", False),
    "p99_ms": ("p99_ms", False),
    "rps_min": ("rps", True),
}
PERCENTILES = {"p50_ms": 0.5, "p90_ms": 0.9, "p95_ms": 0.95, "p99_ms": 0.99}
FIGURE_KEYS = ("requests", "failures", "fail_ratio", "rps", *PERCENTILES)
# The figures compared with the previous run, and the decimals their deltas keep.
COMPARED = {"rps": 3, "p50_ms": 0, "p95_ms": 0, "p99_ms": 0, "fail_ratio": 6}
CPU_WARNING = 90.0  # locust.runners.CPU_WARNING_THRESHOLD: Locust warns above it
STAMP = re.compile(r"\d{8}T\d{6}Z\Z")
TIMESPAN_FORMATS = "20, 20s, 3m, 2h, 1h20m, 3h30m10s"

_NUMBER_TEXT = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?\Z")
_TIME_KEY = re.compile(r"\d+(\.\d+)?\Z")
_TIMESPAN = re.compile(r"((?P<hours>\d+?)h)?((?P<minutes>\d+?)m)?((?P<seconds>\d+?)s)?")  # locust/util/timespan.py
_SHA256 = re.compile(r"[0-9a-f]{64}\Z")
_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


# -- small helpers -------------------------------------------------------------------------------------

def _json(value, width=80):
    """``value`` as one line of JSON (shortened past ``width`` characters), for messages."""
    try:
        text = json.dumps(value, ensure_ascii=False, sort_keys=True, default=repr)
    except (TypeError, ValueError):
        text = repr(value)
    text = _UNPRINTABLE.sub("?", text)
    return text if len(text) <= width else text[:width - 3] + "..."


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _is_count(value):
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _num(value):
    """A number as people write it: 400, 12.4, 0.0125; None as n/a."""
    if value is None:
        return "n/a"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _signed(value):
    return ("+" if value > 0 else "") + _num(value)


def is_stamp(text):
    """True for the name of a run directory: a UTC time like 20261204T081500Z (which sorts by time)."""
    return isinstance(text, str) and bool(STAMP.match(text))


def stamp_time(stamp):
    """The run's stamp as an ISO 8601 time without zone (UTC, as JUnit wants it), or None."""
    if not is_stamp(stamp):
        return None
    try:
        return datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").isoformat()
    except ValueError:
        return None


# -- thresholds ----------------------------------------------------------------------------------------

def threshold_limit(value):
    """The number a threshold value stands for, or None when it is none.

    Numbers are numbers (a boolean is not); so is a string holding a decimal number, such as ``"0.5"``
    or ``"400"``, because values given as ``-e key=value`` or through templates arrive as strings.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, str) and _NUMBER_TEXT.match(value.strip()):
        text = value.strip()
        return int(text) if re.fullmatch(r"[+-]?\d+", text) else float(text)
    return None


def threshold_errors(thresholds):
    """What is wrong with the ``thresholds`` option, one short line each ([] when nothing is).

    ``thresholds`` maps Locust request names ("Aggregated" for the whole run) to ``{metric: limit}``.
    """
    if not isinstance(thresholds, dict):
        return ["thresholds must be a dict of request names to {metric: limit}, got %s" % _json(thresholds)]
    errors = []
    valid = ", ".join(THRESHOLD_METRICS)
    for name, limits in thresholds.items():
        if not isinstance(name, str) or not name:
            errors.append("thresholds: request name %s is not a non-empty string" % _json(name))
            continue
        where = "thresholds: %s" % _json(name)
        if not isinstance(limits, dict) or not limits:
            errors.append("%s must be a non-empty dict of metric: limit, got %s" % (where, _json(limits)))
            continue
        for metric, value in limits.items():
            if metric not in THRESHOLD_METRICS:
                errors.append("%s has the unknown metric %s (valid: %s)" % (where, _json(metric), valid))
                continue
            problem = _limit_problem(metric, value)
            if problem:
                errors.append("%s %s %s %s" % (where, metric, _json(value), problem))
    return errors


def _limit_problem(metric, value):
    limit = threshold_limit(value)
    if limit is None:
        return "is not a number"
    if not math.isfinite(limit):
        return "is not a finite number"
    if limit < 0:
        return "is negative"
    if metric == "fail_ratio" and limit > 1:
        return "is above 1 (fail_ratio is a ratio: 0.01 means 1%)"
    return None


# -- Locust's own parsing ------------------------------------------------------------------------------

def parse_timespan(text):
    """Seconds in a Locust time span (``--run-time``), accepting exactly what Locust's
    ``locust.util.timespan.parse_timespan`` accepts: ``90``, ``90s``, ``1m30s``, ``1h``, ``2h30m15s``
    (hours, minutes, seconds in this order, each optional). A whole number >= 0 is taken as seconds.
    """
    if isinstance(text, int) and not isinstance(text, bool) and text >= 0:
        return int(text)
    if not isinstance(text, str) or not text:
        raise ValueError("%s is not a Locust time span (valid: %s)" % (_json(text), TIMESPAN_FORMATS))
    try:
        if re.match(r"^\d+$", text):  # Locust's test, which lets a final line break through, as int() does
            return int(text)
        parts = _TIMESPAN.match(text)
        if parts and parts.group(0) == text:
            spans = {unit: int(value) for unit, value in parts.groupdict().items() if value}
            if spans:
                return int(timedelta(**spans).total_seconds())
    except (ValueError, OverflowError):
        pass
    raise ValueError("%s is not a Locust time span (valid: %s; hours, minutes, seconds in this order)"
                     % (_json(text), TIMESPAN_FORMATS))


def _percentile(response_times, num_requests, percent):
    """locust.stats.calculate_response_time_percentile, the same steps."""
    num_of_request = int(num_requests * percent)
    processed_count = 0
    for response_time in sorted(response_times, reverse=True):
        processed_count += response_times[response_time]
        if num_requests - processed_count <= num_of_request:
            return response_time
    return 0


# -- figures from report.json ---------------------------------------------------------------------------

def _stats_entry(index, entry):
    """One entry of report.json, checked and reduced to what the figures need."""
    where = "entry %d" % index
    if not isinstance(entry, dict):
        raise ValueError("%s is %s, not a Locust stats entry (an object)" % (where, _json(entry, 40)))
    name = entry.get("name")
    if not isinstance(name, str):
        raise ValueError("%s has no request name (name: %s)" % (where, _json(name, 40)))
    where = "entry %d (%s)" % (index, _json(name, 60))
    if not isinstance(entry.get("method", ""), (str, type(None))):
        raise ValueError("%s: method %s is not a string" % (where, _json(entry.get("method"), 40)))
    counts = {}
    for key in ("num_requests", "num_none_requests", "num_failures"):
        if not _is_count(entry.get(key)):
            raise ValueError("%s: %s %s is not a whole number >= 0" % (where, key, _json(entry.get(key), 40)))
        counts[key] = entry[key]
    if counts["num_none_requests"] > counts["num_requests"]:
        raise ValueError("%s: num_none_requests is more than num_requests" % where)
    times = entry.get("response_times")
    if not isinstance(times, dict):
        raise ValueError("%s: response_times %s is not an object" % (where, _json(times, 40)))
    response_times = {}
    for key, count in times.items():
        if not isinstance(key, str) or not _TIME_KEY.match(key) or not _is_count(count):
            raise ValueError("%s: response_times has %s: %s, not milliseconds: count"
                             % (where, _json(key, 30), _json(count, 30)))
        response_time = int(key) if key.isdigit() else float(key)
        response_times[response_time] = response_times.get(response_time, 0) + count
    start = entry.get("start_time")
    last = entry.get("last_request_timestamp")
    if not _is_number(start):
        raise ValueError("%s: start_time %s is not a time" % (where, _json(start, 40)))
    if last is not None and not _is_number(last):
        raise ValueError("%s: last_request_timestamp %s is not a time" % (where, _json(last, 40)))
    return dict(counts, name=name, response_times=response_times, start_time=start, last_request_timestamp=last)


def _merged(entries, window):
    requests = sum(e["num_requests"] for e in entries)
    none_requests = sum(e["num_none_requests"] for e in entries)
    failures = sum(e["num_failures"] for e in entries)
    response_times = {}
    for entry in entries:
        for response_time, count in entry["response_times"].items():
            response_times[response_time] = response_times.get(response_time, 0) + count
    if requests:
        fail_ratio = failures / requests
    else:
        fail_ratio = 1.0 if failures else 0.0  # StatsEntry.fail_ratio
    figure = {"requests": requests, "failures": failures, "fail_ratio": round(fail_ratio, 6),
              "rps": round(requests / window, 3) if window > 0 else 0.0}
    for key, percent in PERCENTILES.items():
        # as the percentile columns of locust_stats.csv: N/A without requests, else int(percentile or 0)
        figure[key] = int(_percentile(response_times, requests - none_requests, percent) or 0) if requests else None
    return figure


def figures(report_entries):
    """``{name: {requests, failures, fail_ratio, rps, p50_ms, p90_ms, p95_ms, p99_ms}}`` from Locust's
    JSON report (``--json-file``: the list of ``StatsEntry.serialize()`` dicts), plus "Aggregated"
    for the whole run, first.

    Entries of one name with different methods are merged under the name. Percentiles are Locust's
    own (its algorithm over the summed response-time buckets, without the requests that had no
    response time), so they equal the percentile columns of locust_stats.csv; a name without
    requests has None. ``rps`` is requests per second over the whole run (earliest start_time to
    latest last_request_timestamp of all entries), the same window for every name.

    A request named "Aggregated" counts in the whole run only (the name stands for the run).
    """
    if not isinstance(report_entries, list):
        raise ValueError("not Locust's JSON report: expected a list of stats entries, got %s"
                         % _json(report_entries, 40))
    entries = [_stats_entry(index, entry) for index, entry in enumerate(report_entries)]
    lasts = [e["last_request_timestamp"] for e in entries if e["last_request_timestamp"] is not None]
    window = max(lasts) - min(e["start_time"] for e in entries) if lasts else 0.0
    by_name = {}
    for entry in entries:
        if entry["name"] != AGGREGATED:
            by_name.setdefault(entry["name"], []).append(entry)
    result = {AGGREGATED: _merged(entries, window)}
    for name in sorted(by_name):
        result[name] = _merged(by_name[name], window)
    return result


def clean_figures(value):
    """Figures read back from an earlier summary.json, or None when they are not figures()'s shape."""
    if not isinstance(value, dict) or not isinstance(value.get(AGGREGATED), dict):
        return None
    cleaned = {}
    for name, figure in value.items():
        if not isinstance(name, str) or not isinstance(figure, dict):
            return None
        if not all(_is_count(figure.get(key)) for key in ("requests", "failures")):
            return None
        if not all(_is_number(figure.get(key)) and figure[key] >= 0 for key in ("fail_ratio", "rps")):
            return None
        if not all(figure.get(key) is None or _is_count(figure.get(key)) for key in PERCENTILES):
            return None
        cleaned[name] = {key: figure.get(key) for key in FIGURE_KEYS}
    return cleaned


# -- thresholds against figures -------------------------------------------------------------------------

def evaluate(thresholds, run_figures):
    """One ``{name, metric, limit, value, passed}`` per threshold, in the order given. A request name
    that is not in the run (or had no response time) has ``value`` None and does not pass."""
    errors = threshold_errors(thresholds)
    if errors:
        raise ValueError("; ".join(errors))
    results = []
    for name, limits in thresholds.items():
        for metric, raw in limits.items():
            figure, at_least = THRESHOLD_METRICS[metric]
            limit = threshold_limit(raw)
            value = (run_figures.get(name) or {}).get(figure)
            passed = value is not None and (value >= limit if at_least else value <= limit)
            results.append({"name": name, "metric": metric, "limit": limit, "value": value, "passed": passed})
    return results


def result_line(result):
    """One threshold result as a line, e.g. ``threshold breached: "/checkout" p95_ms 523 > limit 400``."""
    name, metric = _json(result["name"]), result["metric"]
    if result["value"] is None:
        return "threshold breached: %s %s: no request named %s in this run" % (name, metric, name)
    at_least = THRESHOLD_METRICS[metric][1]
    if result["passed"]:
        word, operator = "passed", ">=" if at_least else "<="
    else:
        word, operator = "breached", "<" if at_least else ">"
    return "threshold %s: %s %s %s %s limit %s" % (word, name, metric, _num(result["value"]), operator,
                                                   _num(result["limit"]))


def threshold_lines(results):
    """Every threshold result, one line each."""
    return [result_line(result) for result in results]


def breach_lines(results):
    """One line per breached threshold."""
    return [result_line(result) for result in results if not result["passed"]]


# -- load generators ------------------------------------------------------------------------------------

def worker_machines(workers):
    """``[{host, peak_cpu, processes}]`` sorted by host, from the ``workers`` of locustfleet_run.json
    (``{worker id: {host, peak_cpu, samples}}``): the peak CPU of the machine's busiest Locust worker
    process. Records that are not of that shape are left out."""
    if not isinstance(workers, dict):
        return []
    machines = {}
    for worker_id, record in workers.items():
        if not isinstance(record, dict) or not _is_number(record.get("peak_cpu")) or record["peak_cpu"] < 0:
            continue
        host = record.get("host")
        if not isinstance(host, str) or not host.strip():
            host = worker_id if isinstance(worker_id, str) and worker_id.strip() else None
        if host is None:
            continue
        host = _UNPRINTABLE.sub("?", host.strip())[:253]
        machine = machines.setdefault(host, {"host": host, "peak_cpu": 0.0, "processes": 0})
        machine["peak_cpu"] = max(machine["peak_cpu"], round(float(record["peak_cpu"]), 1))
        machine["processes"] += 1
    return [machines[host] for host in sorted(machines)]


def generator_bound(machines, limit=CPU_WARNING):
    """True when a load-generating machine went above ``limit`` percent CPU (Locust's warning level)."""
    return any(machine["peak_cpu"] > limit for machine in machines)


def generator_advice(machines, limit=CPU_WARNING):
    """The line telling what to do when the load generators were the bottleneck (None when they were not)."""
    hot = sorted((m for m in machines if m["peak_cpu"] > limit), key=lambda m: (-m["peak_cpu"], m["host"]))
    if not hot:
        return None
    peaks = ["%s peaked at %s%% CPU" % (hot[0]["host"], _num(hot[0]["peak_cpu"]))]
    peaks += ["%s at %s%%" % (m["host"], _num(m["peak_cpu"])) for m in hot[1:]]
    level = "Locust warns above %s%%" % _num(limit) if limit == CPU_WARNING else "saturation_cpu %s%%" % _num(limit)
    return ("load generators saturated: %s (%s): the results may understate the service; "
            "add workers (spawn_slaves.yml -e count=N) or use FastHttpUser" % (", ".join(peaks), level))


def saturation(machines, fail_on_saturation=False, limit=CPU_WARNING):
    """``{passed, message}`` about the load generators' CPU, or None without figures. ``passed`` is
    false only when they were saturated and that fails the run."""
    if not machines:
        return None
    advice = generator_advice(machines, limit)
    if advice:
        return {"passed": not fail_on_saturation, "message": advice}
    busiest = max(machines, key=lambda m: (m["peak_cpu"], m["host"]))
    processes = sum(m["processes"] for m in machines)
    return {"passed": True, "message": "load generators below %s%% CPU: the busiest, %s, peaked at %s%% "
            "(%d machines, %d worker processes)" % (_num(limit), busiest["host"], _num(busiest["peak_cpu"]),
                                                    len(machines), processes)}


# -- the previous run -----------------------------------------------------------------------------------

def locustfiles_of(value):
    """The ``locustfiles`` of locustfleet_run.json as ``[{name, sha256}]`` sorted by name, or None when
    it is not a list of such records (sha256 may be None when the plugin could not read a file)."""
    if not isinstance(value, list):
        return None
    files = []
    for item in value:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            return None
        digest = item.get("sha256")
        if digest is not None and not (isinstance(digest, str) and _SHA256.match(digest)):
            return None
        files.append({"name": item["name"], "sha256": digest})
    return sorted(files, key=lambda item: (item["name"], item["sha256"] or ""))


def locustfile_id(locustfiles):
    """The run's identity for comparisons: sha256 (hex) over the sorted ``[{name, sha256}]`` list as
    compact JSON. None when the list is missing, empty, malformed or lacks a digest."""
    files = locustfiles_of(locustfiles)
    if not files or any(item["sha256"] is None for item in files):
        return None
    text = json.dumps(files, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def pick_previous(current_stamp, current_locustfile_id, candidates):
    """The candidate ``(stamp, summary)`` of the previous run: the latest stamp earlier than
    ``current_stamp`` whose summary has the same ``locustfile_id`` (None never matches); or None."""
    if current_locustfile_id is None or not is_stamp(current_stamp):
        return None
    best = None
    for candidate in candidates:
        stamp, summary = candidate
        if not is_stamp(stamp) or stamp >= current_stamp or not isinstance(summary, dict):
            continue
        if summary.get("locustfile_id") != current_locustfile_id:
            continue
        if best is None or stamp > best[0]:
            best = candidate
    return best


def _delta(current, previous, digits):
    if current is None or previous is None:
        return {"previous": previous, "current": current, "delta": None, "delta_pct": None}
    delta = round(current - previous, digits)
    if digits == 0:
        delta = int(delta)
    delta_pct = round(100.0 * (current - previous) / previous, 1) if previous else None
    return {"previous": previous, "current": current, "delta": delta, "delta_pct": delta_pct}


def compare(current_figures, previous_figures):
    """``{name: {metric: {previous, current, delta, delta_pct}}}`` for every name in both runs
    ("Aggregated" first), metrics rps, p50_ms, p95_ms, p99_ms and fail_ratio. ``delta`` is current
    minus previous; ``delta_pct`` is it in percent of previous (None when previous is 0 or None)."""
    comparison = {}
    for name, current in current_figures.items():
        previous = previous_figures.get(name)
        if previous is None:
            continue
        comparison[name] = {metric: _delta(current.get(metric), previous.get(metric), digits)
                            for metric, digits in COMPARED.items()}
    return comparison


def _change(entry, unit=""):
    if entry["delta"] is None:
        return "%s%s (n/a)" % (_num(entry["current"]), unit)
    change = _signed(entry["delta"])
    if entry["delta_pct"] is not None:
        change += ", %s%%" % _signed(entry["delta_pct"])
    return "%s%s (%s)" % (_num(entry["current"]), unit, change)


def comparison_lines(comparison, previous_stamp):
    """The whole run against the previous one, in one line (none without a comparison), e.g.
    ``vs 20261203T101500Z: 48.1 req/s (-3.2, -6.2%), p50 120 ms (+5, +4.3%), p95 410 ms (+60, +17.1%), ...``."""
    row = (comparison or {}).get(AGGREGATED)
    if not row:
        return []
    failures = dict(row["fail_ratio"])
    for key in ("previous", "current", "delta"):
        if failures[key] is not None:
            failures[key] = round(failures[key] * 100, 4)
    parts = [_change(row["rps"], " req/s")]
    parts += ["%s %s" % (key[:3], _change(row[key], " ms")) for key in ("p50_ms", "p95_ms", "p99_ms")]
    parts.append("failures %s" % _change(failures, "%"))
    return ["vs %s: %s" % (previous_stamp, ", ".join(parts))]


# -- the history of the run -----------------------------------------------------------------------------

def history_series(csv_text):
    """``[{t, users, rps, p50_ms, p95_ms, p99_ms}]`` from locust_stats_history.csv: the "Aggregated"
    rows only, ``t`` in seconds since the file's first row, N/A percentiles as None. Rows that do not
    parse are left out; a file without Locust's header raises ValueError."""
    try:
        rows = csv.reader(io.StringIO(csv_text))
        header = next(rows, None)
        if not header:
            raise ValueError("empty, no header")
        needed = ("Timestamp", "User Count", "Type", "Name", "Requests/s", "50%", "95%", "99%")
        missing = [column for column in needed if column not in header]
        if missing:
            raise ValueError("not Locust's stats history: no column %s" % ", ".join(_json(c) for c in missing))
        column = {name: header.index(name) for name in needed}
        series, first = [], None
        for row in rows:
            if len(row) != len(header):
                continue
            point = _history_point(row, column)
            if point is None:
                continue
            first = point["t"] if first is None else first
            if row[column["Name"]] == AGGREGATED and row[column["Type"]] == "":
                series.append(dict(point, t=point["t"] - first))
        return series
    except csv.Error as exc:
        raise ValueError("not a CSV file (%s)" % exc) from None


def _history_point(row, column):
    try:
        point = {"t": int(row[column["Timestamp"]]), "users": int(row[column["User Count"]]),
                 "rps": float(row[column["Requests/s"]])}
        for key, heading in (("p50_ms", "50%"), ("p95_ms", "95%"), ("p99_ms", "99%")):
            cell = row[column[heading]]
            point[key] = None if cell == "N/A" else int(cell)
    except ValueError:
        return None
    if not math.isfinite(point["rps"]) or point["users"] < 0 or point["rps"] < 0:
        return None
    if any(point[key] is not None and point[key] < 0 for key in ("p50_ms", "p95_ms", "p99_ms")):
        return None
    point["rps"] = round(point["rps"], 3)
    return point


# -- JUnit XML ------------------------------------------------------------------------------------------

def _xml(text):
    """Text XML 1.0 can hold (ElementTree escapes markup but writes forbidden characters as they are)."""
    return _NOT_XML.sub("\ufffd", str(text))


def junit_xml(suite_name, results, saturation=None, timestamp=None, limit=CPU_WARNING):
    """A JUnit XML document: one test case per threshold result, classname ``<suite_name>.thresholds``
    (``suite_name`` is ``locustfleet.<cluster>``), failing with the breach line; with ``saturation``
    (``{passed, message}``) one more, ``load generators below 90% CPU``. ``timestamp``: ISO 8601, UTC,
    no zone (default now)."""
    cases = []
    for result in results:
        operator = ">=" if THRESHOLD_METRICS[result["metric"]][1] else "<="
        name = "%s %s %s %s" % (_json(result["name"], 200), result["metric"], operator, _num(result["limit"]))
        cases.append((suite_name + ".thresholds", name, None if result["passed"] else result_line(result), None,
                      "threshold"))
    if saturation is not None:
        message = saturation["message"]
        cases.append((suite_name + ".load_generators", "load generators below %s%% CPU" % _num(limit),
                      None if saturation["passed"] else message, message if saturation["passed"] else None,
                      "saturation"))
    failures = sum(1 for case in cases if case[2])
    timestamp = timestamp or datetime.now(timezone.utc).replace(tzinfo=None, microsecond=0).isoformat()
    counts = {"tests": str(len(cases)), "failures": str(failures), "errors": "0", "time": "0"}
    root = ET.Element("testsuites", dict(counts, name=_xml(suite_name)))
    suite = ET.SubElement(root, "testsuite", dict(counts, name=_xml(suite_name), skipped="0", timestamp=timestamp))
    for classname, name, failure, output, kind in cases:
        case = ET.SubElement(suite, "testcase", classname=_xml(classname), name=_xml(name), time="0")
        if failure:
            element = ET.SubElement(case, "failure", message=_xml(failure), type=kind)
            element.text = _xml(failure)
        if output:
            ET.SubElement(case, "system-out").text = _xml(output)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


# -- the comparison page --------------------------------------------------------------------------------

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
h1 { font-size: 1.4em; } h2 { font-size: 1.1em; margin-top: 2em; }
table { border-collapse: collapse; } th, td { border: 1px solid #ccc; padding: .35em .7em; text-align: right; }
th { background: #f2f2f2; } td.name, th.name { text-align: left; font-family: monospace; }
small { color: #666; } .better { color: #1a7f37; } .worse { color: #c62828; }
svg { background: #fff; border: 1px solid #ddd; } svg text { font-size: 12px; fill: #333; }
"""
_COLORS = {"p50_ms": "#1b9e77", "p95_ms": "#d95f02", "p99_ms": "#7570b3"}
# (figure, heading, True when more is better, None when neither)
_COLUMNS = (("requests", "requests", None), ("rps", "req/s", True), ("p50_ms", "p50 ms", False),
            ("p95_ms", "p95 ms", False), ("p99_ms", "p99 ms", False), ("fail_ratio", "fail ratio", False))


def _e(value):
    return html.escape(str(value), quote=True)


def _cell(key, current, previous, more_is_better):
    now = None if current is None else current.get(key)
    text = "<b>%s</b>" % _e(_num(now)) if current is not None else "&ndash;"
    if previous is None:
        return "<td>%s</td>" % text
    before = previous.get(key)
    text += "<br><small>was %s" % _e(_num(before))
    if current is not None and now is not None and before is not None and key in COMPARED:
        change = _delta(now, before, COMPARED[key])
        words = _signed(change["delta"]) + (", %s%%" % _signed(change["delta_pct"]) if change["delta_pct"] is not None else "")
        kind = ""
        if change["delta"] and more_is_better is not None:
            kind = ' class="%s"' % ("better" if (change["delta"] > 0) == more_is_better else "worse")
        text += " <span%s>(%s)</span>" % (kind, _e(words))
    return "<td>%s</small></td>" % text


def _table(current, previous):
    names = [AGGREGATED] + sorted((set(current["figures"]) | set((previous or {}).get("figures") or {})) - {AGGREGATED})
    head = "".join("<th>%s</th>" % _e(heading) for key, heading, better in _COLUMNS)
    rows = ['<tr><th class="name">request</th>%s</tr>' % head]
    for name in names:
        now = current["figures"].get(name)
        before = None if previous is None else previous["figures"].get(name)
        cells = "".join(_cell(key, now, before, better) for key, heading, better in _COLUMNS)
        rows.append('<tr><td class="name">%s</td>%s</tr>' % (_e(name), cells))
    return "<table>\n%s\n</table>" % "\n".join(rows)


def _ticks(top):
    """About five round steps from 0 to at least ``top``."""
    top = max(top, 1)
    raw = top / 5.0
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    count = int(math.ceil(top / step))
    return [round(step * i, 6) for i in range(count + 1)]


def _thin(points, most=800):
    stride = max(1, int(math.ceil(len(points) / float(most))))
    return points[::stride]


def _chart(runs):
    """An SVG line chart of p50/p95/p99 over time; ``runs`` is [(label, series, dashed)]."""
    width, height, left, right, top, bottom = 1000, 400, 70, 240, 20, 50
    runs = [(label, [p for p in series if p["t"] >= 0], dashed) for label, series, dashed in runs]
    points = [p for label, series, dashed in runs for p in series]
    xs = _ticks(max([p["t"] for p in points] + [1]))
    ys = _ticks(max([p[k] for p in points for k in _COLORS if p[k] is not None] + [1]))
    plot_w, plot_h = width - left - right, height - top - bottom

    def x(t):
        return left + plot_w * t / xs[-1]

    def y(ms):
        return top + plot_h * (1 - ms / ys[-1])

    out = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" role="img" '
           'aria-label="response time percentiles over time">' % (width, height, width, height)]
    for tick in xs:
        out.append('<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#eee"/>' % (x(tick), top, x(tick), top + plot_h))
        out.append('<text x="%.1f" y="%d" text-anchor="middle">%s</text>' % (x(tick), top + plot_h + 16, _e(_num(tick))))
    for tick in ys:
        out.append('<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#eee"/>' % (left, y(tick), left + plot_w, y(tick)))
        out.append('<text x="%d" y="%.1f" text-anchor="end">%s</text>' % (left - 6, y(tick) + 4, _e(_num(tick))))
    out.append('<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#333"/>' % (left, top + plot_h, left + plot_w, top + plot_h))
    out.append('<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#333"/>' % (left, top, left, top + plot_h))
    out.append('<text x="%.1f" y="%d" text-anchor="middle">seconds since the start of the run</text>'
               % (left + plot_w / 2.0, height - 10))
    out.append('<text transform="translate(16 %.1f) rotate(-90)" text-anchor="middle">response time (ms)</text>'
               % (top + plot_h / 2.0))
    for label, series, dashed in runs:
        dash = ' stroke-dasharray="6 4"' if dashed else ""
        for key, color in _COLORS.items():
            segment = []
            for point in _thin(series) + [None]:
                if point is not None and point[key] is not None:
                    segment.append("%.1f,%.1f" % (x(point["t"]), y(point[key])))
                    continue
                if segment:
                    out.append('<polyline fill="none" stroke="%s" stroke-width="1.5"%s points="%s"/>'
                               % (color, dash, " ".join(segment)))
                segment = []
    legend_x, legend_y = left + plot_w + 20, top + 10
    for i, (key, color) in enumerate(_COLORS.items()):
        row = legend_y + 18 * i
        out.append('<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="3"/>'
                   % (legend_x, row, legend_x + 24, row, color))
        out.append('<text x="%d" y="%d">%s</text>' % (legend_x + 30, row + 4, _e(key[:3])))
    for i, (label, series, dashed) in enumerate(runs):
        row = legend_y + 18 * (len(_COLORS) + 1 + i)
        dash = ' stroke-dasharray="6 4"' if dashed else ""
        out.append('<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#333" stroke-width="1.5"%s/>'
                   % (legend_x, row, legend_x + 24, row, dash))
        out.append('<text x="%d" y="%d">%s</text>' % (legend_x + 30, row + 4, _e(label)))
    out.append("</svg>")
    return "\n".join(out)


def comparison_html(current, previous):
    """A self-contained HTML page (inline CSS and SVG, no script, nothing loaded) comparing the current
    run with the previous one: the figures of both with deltas, and p50/p95/p99 over time (current
    solid, previous dashed). ``current`` and ``previous`` are ``{stamp, figures, series}`` (``current``
    may carry ``cluster``); ``previous`` None shows the current run alone."""
    cluster = current.get("cluster")
    title = "locustfleet %s: run %s" % (cluster, current["stamp"]) if cluster else "locustfleet run %s" % current["stamp"]
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; style-src \'unsafe-inline\'">',
             "<title>%s</title><style>%s</style></head><body>" % (_e(title), _STYLE), "<h1>%s</h1>" % _e(title)]
    if previous is None:
        parts.append("<p>No earlier run of this cluster and locustfile: the current run alone.</p>")
    else:
        parts.append("<p>Compared with <b>%s</b>, the previous run of this cluster with the same locustfiles "
                     "(&ldquo;was&rdquo;: its figure; then current minus previous, and that in percent of "
                     "previous).</p>" % _e(previous["stamp"]))
    parts += ["<h2>Figures</h2>", _table(current, previous)]
    runs = [("current %s" % current["stamp"], current.get("series") or [], False)]
    if previous is not None:
        runs.append(("previous %s" % previous["stamp"], previous.get("series") or [], True))
    parts.append("<h2>Response time over the run</h2>")
    if any(series for label, series, dashed in runs):
        parts.append(_chart(runs))
    else:
        parts.append("<p>No response time history (locust_stats_history.csv) for these runs.</p>")
    missing = [label for label, series, dashed in runs if not series]
    if missing and len(missing) < len(runs):
        parts.append("<p><small>No history for %s.</small></p>" % _e(", ".join(missing)))
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


# -- summary.json ---------------------------------------------------------------------------------------

def build_summary(cluster, run, locustfiles, run_settings, run_figures, results, machines,
                  fail_on_saturation=False, previous=None, comparison=None, limit=CPU_WARNING):
    """The dict written as summary.json. ``previous`` is None or ``(stamp, figures)``."""
    files = locustfiles_of(locustfiles) or []
    bound = generator_bound(machines, limit)
    return {
        "version": 1,
        "cluster": cluster,
        "run": run,
        "locustfile_id": locustfile_id(files),
        "locustfiles": files,
        "run_settings": dict(run_settings or {}),
        "figures": run_figures,
        "thresholds": results,
        "passed": all(result["passed"] for result in results) and not (fail_on_saturation and bound),
        "workers": machines,
        "generator_bound": bound,
        "generator_advice": generator_advice(machines, limit),
        "fail_on_saturation": bool(fail_on_saturation),
        "saturation_cpu": limit,
        "previous": None if previous is None else {"run": previous[0], "figures": previous[1]},
        "comparison": comparison,
    }

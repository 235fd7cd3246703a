#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: locustfleet.triton contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: locust_report
short_description: Turn the files of a Locust run into results people can act on
version_added: 0.3.0
description:
  - Reads the files a headless Locust run left in its local report directory (as C(run_test.yml) fetches them to
    C(reports/<cluster>/<stamp>/)) and checks the run against O(thresholds), looks at the CPU of the load
    generators, and compares the run with the previous run of the same cluster and locustfiles.
  - Writes three files into O(report_dir) - C(summary.json) (what RV(summary) returns), C(junit.xml) (one JUnit test
    case per threshold, and one for the load generators' CPU, for CI systems) and C(comparison.html) (a
    self-contained page with the figures of both runs, their deltas, and a chart of the p50, p95 and p99 response
    times over both runs). Each is written whole (a temporary file renamed over it) with mode C(0644), and only
    when its content changes.
  - Reads C(report.json) (Locust's C(--json-file report); required), C(locustfleet_run.json) (the worker processes'
    peak CPU and the locustfiles' digests, written by the fleet's Locust plugin; without it there are no CPU
    figures and no previous run is looked for) and C(locust_stats_history.csv) (Locust's C(--csv-full-history);
    without it the chart is left out).
  - The previous run is the latest sibling directory of O(report_dir) whose name is an earlier stamp and whose
    C(summary.json) has the same C(locustfile_id) (a digest over the locustfiles' names and sha256). So the name
    of O(report_dir) must be a stamp like V(20261204T081500Z) for a previous run to be found.
  - Every file of the run directory is treated as untrusted data (the locustfile runs as the user who wrote
    them). Malformed optional files are ignored with a warning; a malformed C(report.json) fails the task.
  - At most 64 MiB of any file is read. C(locust_stats_history.csv) grows by about 160 bytes per request name and
    second, so the chart of a run longer than about 5 hours with 20 request names is left out, with a warning.
  - Breached thresholds do not fail the task; RV(passed) and RV(breaches) say so, for the playbook to act on.
  - Runs on the control node (delegate the task to C(localhost)). It makes no CloudAPI call.
author:
  - locustfleet maintainers (@locustfleet)
options:
  report_dir:
    description:
      - The run's local directory, holding C(report.json).
    type: path
    required: true
  cluster:
    description:
      - The name of the fleet, recorded in the summary and naming the JUnit test suite C(locustfleet.<cluster>).
    type: str
    required: true
  thresholds:
    description:
      - Limits the run must keep, as a dictionary of Locust request names to dictionaries of metric to limit.
        V(Aggregated) stands for the whole run.
      - The metrics are V(fail_ratio) (failures per request, 0 to 1), V(p50_ms), V(p90_ms), V(p95_ms), V(p99_ms)
        (response time percentiles in milliseconds, as Locust computes them) - passed when the measured figure is
        at most the limit - and V(rps_min), passed when the run's requests per second are at least the limit.
      - A limit is a finite number of at least 0. A string holding a decimal number, such as V("0.5"), counts as
        that number; a boolean does not.
      - A threshold on a request name absent from the run is breached.
      - Invalid thresholds fail the task, one line naming each problem (the
        P(locustfleet.triton.locust_threshold_errors#filter) filter gives the same lines before a test).
    type: dict
    default: {}
  fail_on_saturation:
    description:
      - With V(true), a run whose load generators went above O(saturation_cpu) (the level at which Locust warns)
        does not pass (RV(passed) is false, and the JUnit case of the load generators fails), since its figures
        may understate the service.
      - With V(false), that only adds advice to RV(lines).
    type: bool
    default: false
  saturation_cpu:
    description:
      - The CPU percentage of one Locust worker process (100 is a whole core) above which its machine counts as
        saturated - 1 to 100. The default is the level at which Locust itself warns.
    type: float
    default: 90.0
  run_settings:
    description:
      - The settings of the run (for example C(target_host), C(users), C(spawn_rate), C(run_time)), recorded as
        they are in the summary.
    type: dict
    default: {}
attributes:
  check_mode:
    support: full
    description: Computes and returns everything and writes no file; the task reports a change when a file would change.
  diff_mode:
    support: none
    description: No diff is returned; the files hold the results.
notes:
  - Percentiles are computed the way Locust computes the percentile columns of its C(locust_stats.csv) (from the
    same response time buckets), so they equal them. Entries of one request name with several methods are merged.
  - Requests per second are counted over the whole run, from the earliest start to the latest request of all
    entries, the same time span for every request name.
seealso:
  - name: Locust configuration
    description: Locust's options, among them C(--json-file), C(--csv) and C(--csv-full-history).
    link: https://docs.locust.io/en/stable/configuration.html
"""

EXAMPLES = r"""
- name: Results of the run
  locustfleet.triton.locust_report:
    report_dir: "{{ playbook_dir }}/reports/demo/20261204T081500Z"
    cluster: demo
    thresholds:
      Aggregated:
        rps_min: 50
        fail_ratio: 0.01
      /checkout:
        p95_ms: 400
    fail_on_saturation: true
    run_settings:
      target_host: https://staging.example.com
      users: 200
      spawn_rate: 20
      run_time: 5m
  delegate_to: localhost
  register: results

- name: Show what the run says
  ansible.builtin.debug:
    msg: "{{ results.lines }}"

- name: Fail on breached thresholds
  ansible.builtin.fail:
    msg: "{{ results.breaches | join('; ') if results.breaches else results.summary.generator_advice }}"
  when: not results.passed
"""

RETURN = r"""
summary:
  description: What C(summary.json) holds.
  returned: always
  type: dict
  contains:
    version:
      description: The version of this format.
      type: int
      sample: 1
    cluster:
      description: O(cluster).
      type: str
      sample: demo
    run:
      description: The run's stamp, the name of O(report_dir).
      type: str
      sample: 20261204T081500Z
    locustfile_id:
      description:
        - sha256 (hex) over the sorted names and sha256 digests of the run's locustfiles; runs are compared only
          with runs of the same id. None without C(locustfleet_run.json) or a digest of every locustfile.
      type: str
    locustfiles:
      description: The locustfiles of the run, with their sha256 digests.
      type: list
      elements: dict
      sample: [{"name": "fleetcheck.py", "sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"}]
    run_settings:
      description: O(run_settings).
      type: dict
      sample: {"target_host": "https://staging.example.com", "users": 200, "spawn_rate": 20, "run_time": "5m"}
    figures:
      description:
        - Per request name, and V(Aggregated) for the whole run - C(requests), C(failures), C(fail_ratio)
          (rounded to 6 decimals), C(rps) (rounded to 3 decimals), C(p50_ms), C(p90_ms), C(p95_ms), C(p99_ms)
          (None for a name without requests).
      type: dict
      sample: {"Aggregated": {"requests": 3664, "failures": 12, "fail_ratio": 0.003275, "rps": 61.067,
               "p50_ms": 120, "p90_ms": 300, "p95_ms": 380, "p99_ms": 900}}
    thresholds:
      description:
        - One entry per threshold, in the order of O(thresholds) - C(name), C(metric), C(limit), C(value) (the
          measured figure, None for a request name absent from the run) and C(passed).
      type: list
      elements: dict
      sample: [{"name": "/checkout", "metric": "p95_ms", "limit": 400, "value": 523, "passed": false}]
    passed:
      description: RV(passed).
      type: bool
    workers:
      description:
        - The load-generating machines, sorted by host - C(host), C(peak_cpu) (the highest CPU percentage any of its
          Locust worker processes reported during the test) and C(processes). Empty without C(locustfleet_run.json).
      type: list
      elements: dict
      sample: [{"host": "demo-worker-1", "peak_cpu": 97.3, "processes": 4}]
    generator_bound:
      description: Whether a load-generating machine went above O(saturation_cpu) (90% CPU by default).
      type: bool
    generator_advice:
      description: What to do about saturated load generators; None when none was.
      type: str
    fail_on_saturation:
      description: O(fail_on_saturation).
      type: bool
    saturation_cpu:
      description: O(saturation_cpu).
      type: float
      sample: 90.0
    previous:
      description:
        - The previous run of this cluster with the same locustfiles - C(run) (its stamp) and C(figures) (as
          C(figures) above). None when there is none.
      type: dict
      sample: {"run": "20261203T101500Z", "figures": {"Aggregated": {"requests": 3600, "rps": 60.0}}}
    comparison:
      description:
        - For each request name in both runs (and V(Aggregated)), the metrics C(rps), C(p50_ms), C(p95_ms),
          C(p99_ms) and C(fail_ratio), each C(previous), C(current), C(delta) (current minus previous) and
          C(delta_pct) (the delta in percent of previous, None when previous is 0). None without a previous run.
      type: dict
      sample: {"Aggregated": {"rps": {"previous": 60.0, "current": 61.067, "delta": 1.067, "delta_pct": 1.8}}}
lines:
  description:
    - What the run says, one line each - every threshold result, then the load generators' CPU (or the advice when
      they were saturated), then the comparison with the previous run.
  returned: always
  type: list
  elements: str
  sample:
    - 'threshold passed: "Aggregated" rps_min 61.067 >= limit 50'
    - 'threshold breached: "/checkout" p95_ms 523 > limit 400'
    - 'load generators below 90% CPU: the busiest, demo-worker-1, peaked at 45.2% (2 machines, 8 worker processes)'
    - 'vs 20261203T101500Z: 61.067 req/s (+1.067, +1.8%), p50 120 ms (+0, +0.0%), p95 380 ms (-20, -5.0%), ...'
breaches:
  description: One line per breached threshold, naming the request, the metric, the limit and the measured value.
  returned: always
  type: list
  elements: str
  sample: ['threshold breached: "/checkout" p95_ms 523 > limit 400']
passed:
  description:
    - Whether every threshold passed (and, with O(fail_on_saturation=true), no load generator went above
      O(saturation_cpu)).
  returned: always
  type: bool
files:
  description: The files written (or, in check mode, that would be).
  returned: always
  type: dict
  contains:
    summary:
      description: Path of C(summary.json).
      type: str
    junit:
      description: Path of C(junit.xml).
      type: str
    comparison:
      description: Path of C(comparison.html).
      type: str
"""

import json
import os
import stat
import tempfile
from datetime import datetime, timezone

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.locustfleet.triton.plugins.module_utils._results import (
    breach_lines, build_summary, clean_figures, compare, comparison_html, comparison_lines, evaluate, figures,
    history_series, is_stamp, junit_xml, locustfile_id, locustfiles_of, pick_previous, saturation, stamp_time,
    threshold_errors, threshold_lines, worker_machines)

MAX_BYTES = 64 * 1024 * 1024


class Problem(Exception):
    """Ends the task with this one line."""


def _reject_constant(name):
    raise ValueError("%s is not a number JSON allows" % name)


def read_text(path):
    """A regular file's text (UTF-8), at most MAX_BYTES; None when it does not exist."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise Problem("cannot read %s: %s" % (path, exc.strerror)) from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise Problem("%s is not a regular file" % path)
        with os.fdopen(fd, "rb") as handle:
            fd = None
            data = handle.read(MAX_BYTES + 1)
    except OSError as exc:
        raise Problem("cannot read %s: %s" % (path, exc.strerror)) from None
    finally:
        if fd is not None:
            os.close(fd)
    if len(data) > MAX_BYTES:
        raise Problem("%s is larger than %d MiB" % (path, MAX_BYTES // (1024 * 1024)))
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise Problem("%s is not UTF-8 text" % path) from None


def read_json(path):
    """The JSON value in ``path`` (None when the file does not exist); Problem when it is not JSON."""
    text = read_text(path)
    if text is None:
        return None
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except RecursionError:
        raise Problem("%s: not JSON Locust or locustfleet writes (nested too deep)" % path) from None
    except ValueError as exc:
        raise Problem("%s: not valid JSON (%s)" % (path, exc)) from None


class LocustReport:
    def __init__(self, module):
        self.module = module
        self.params = module.params
        self.report_dir = os.path.abspath(self.params["report_dir"])
        self.stamp = os.path.basename(self.report_dir)

    def optional(self, reader, path, what):
        """``reader(path)``, or None with a warning saying why ``what`` is left out."""
        try:
            return reader(path)
        except (Problem, ValueError) as exc:
            self.module.warn("%s left out: %s" % (what, exc))
            return None

    def series(self, run_dir, what):
        text = self.optional(read_text, os.path.join(run_dir, "locust_stats_history.csv"), what)
        if text is None:
            return []
        try:
            return history_series(text)
        except ValueError as exc:
            self.module.warn("%s left out: %s" % (what, exc))
            return []

    def run_record(self):
        record = self.optional(read_json, os.path.join(self.report_dir, "locustfleet_run.json"),
                               "locustfleet_run.json (worker CPU, locustfile digests)")
        if record is None:
            return [], {}
        if not isinstance(record, dict):
            self.module.warn("locustfleet_run.json left out: not an object")
            return [], {}
        files = locustfiles_of(record.get("locustfiles"))
        if files is None:
            self.module.warn("locustfleet_run.json: locustfiles is not a list of {name, sha256}; no previous run is looked for")
        return files or [], record.get("workers")

    def previous(self, run_id):
        """``(stamp, figures)`` of the previous run of the same locustfiles, or None."""
        if run_id is None or not is_stamp(self.stamp):
            return None
        parent = os.path.dirname(self.report_dir)
        try:
            stamps = sorted((name for name in os.listdir(parent) if is_stamp(name) and name < self.stamp), reverse=True)
        except OSError as exc:
            self.module.warn("no previous run looked for: cannot list %s: %s" % (parent, exc.strerror))
            return None
        for stamp in stamps:
            try:
                summary = read_json(os.path.join(parent, stamp, "summary.json"))
            except Problem:
                continue
            if not isinstance(summary, dict) or clean_figures(summary.get("figures")) is None:
                continue
            if pick_previous(self.stamp, run_id, [(stamp, summary)]) is not None:
                return stamp, clean_figures(summary["figures"])
        return None

    def run(self):
        params = self.params
        errors = threshold_errors(params["thresholds"])
        if errors:
            raise Problem("; ".join(errors))
        limit = params["saturation_cpu"]
        if not 1 <= limit <= 100:
            raise Problem("saturation_cpu must be 1 to 100 (percent of one core), got %s" % limit)
        if not os.path.isdir(self.report_dir):
            raise Problem("report_dir %s is not a directory" % self.report_dir)
        if not os.access(self.report_dir, os.R_OK | os.X_OK):
            raise Problem("report_dir %s cannot be read" % self.report_dir)
        report_path = os.path.join(self.report_dir, "report.json")
        entries = read_json(report_path)
        if entries is None:
            raise Problem("%s not found (Locust's --json-file report of the run)" % report_path)
        try:
            run_figures = figures(entries)
        except ValueError as exc:
            raise Problem("%s: %s" % (report_path, exc)) from None

        files, workers = self.run_record()
        machines = worker_machines(workers)
        run_id = locustfile_id(files)
        results = evaluate(params["thresholds"], run_figures)
        previous = self.previous(run_id)
        comparison = compare(run_figures, previous[1]) if previous else None
        summary = build_summary(params["cluster"], self.stamp, files, params["run_settings"], run_figures, results,
                                machines, params["fail_on_saturation"], previous, comparison, limit)
        sat = saturation(machines, params["fail_on_saturation"], limit)

        lines = threshold_lines(results)
        lines.append(sat["message"] if sat else "load generators: no CPU figures for this run (no locustfleet_run.json)")
        if previous:
            lines += comparison_lines(comparison, previous[0])
        elif run_id is None:
            lines.append("no comparison: the run's locustfiles are not known (no locustfleet_run.json)")
        else:
            lines.append("no comparison: no earlier run of cluster %s with these locustfiles" % params["cluster"])

        current = {"stamp": self.stamp, "cluster": params["cluster"], "figures": run_figures,
                   "series": self.series(self.report_dir, "the chart of this run (locust_stats_history.csv)")}
        earlier = None
        if previous:
            earlier = {"stamp": previous[0], "figures": previous[1],
                       "series": self.series(os.path.join(os.path.dirname(self.report_dir), previous[0]),
                                             "the chart of the previous run (its locust_stats_history.csv)")}
        timestamp = stamp_time(self.stamp) or datetime.now(timezone.utc).replace(tzinfo=None, microsecond=0).isoformat()
        texts = {
            "summary": ("summary.json", json.dumps(summary, indent=1, ensure_ascii=False) + "\n"),
            "junit": ("junit.xml", junit_xml("locustfleet.%s" % params["cluster"], results, sat, timestamp, limit)),
            "comparison": ("comparison.html", comparison_html(current, earlier)),
        }
        changed = False
        paths = {}
        for key, (name, text) in texts.items():
            paths[key] = os.path.join(self.report_dir, name)
            changed = self.write(paths[key], text) or changed
        return {"changed": changed, "summary": summary, "lines": lines, "breaches": breach_lines(results),
                "passed": summary["passed"], "files": paths}

    def write(self, path, text):
        """Replace ``path`` with ``text`` (mode 0644) unless it holds it already; True when it does not."""
        try:
            if read_text(path) == text:
                return False
        except Problem:
            pass
        if self.module.check_mode:
            return True
        temporary = None
        try:
            fd, temporary = tempfile.mkstemp(dir=self.report_dir, prefix="." + os.path.basename(path) + ".",
                                             suffix=".tmp")
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(text)
            os.chmod(temporary, 0o644)
            os.replace(temporary, path)
            temporary = None
        except OSError as exc:
            raise Problem("cannot write %s: %s" % (path, exc.strerror or exc)) from None
        finally:
            if temporary is not None:
                try:
                    os.unlink(temporary)
                except OSError:
                    pass
        return True


def main():
    module = AnsibleModule(
        argument_spec=dict(
            report_dir=dict(type="path", required=True),
            cluster=dict(type="str", required=True),
            thresholds=dict(type="dict", default={}),
            fail_on_saturation=dict(type="bool", default=False),
            saturation_cpu=dict(type="float", default=90.0),
            run_settings=dict(type="dict", default={}),
        ),
        supports_check_mode=True,
    )
    try:
        result = LocustReport(module).run()
    except Problem as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(**result)


if __name__ == "__main__":
    main()

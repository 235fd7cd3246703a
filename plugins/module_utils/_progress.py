# -*- coding: utf-8 -*-
# Copyright: locustfleet.triton contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A running test's progress line, from the last record of the results plugin's progress.jsonl.

The record comes from a file the locust user (who runs the customer's locustfile) can write, so
only numbers and Locust's known states get through, whatever the file holds.
"""

from __future__ import annotations

import json
import math

STATES = ("ready", "spawning", "running", "cleanup", "stopping", "stopped", "missing")


def last_record(text):
    """The last complete JSON object of progress.jsonl text, or None."""
    for line in reversed(text.splitlines()):
        try:
            record = json.loads(line)
        except (ValueError, RecursionError):  # not JSON, or nested too deep for the parser
            continue
        if isinstance(record, dict):
            return record
    return None


def _number(record, key):
    value = record.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        value = float(value)
    except OverflowError:  # an int too large for a float
        return None
    if not math.isfinite(value) or value < 0:
        return None
    return value


def progress_line(record, since_start, expected_workers=None):
    """One line for the control node: elapsed, users, requests/s, failure %, workers connected.

    ``since_start`` is the follower's own elapsed time, shown while the plugin has written nothing yet.
    """
    if record is None:
        return "%ds since start, no progress from the master yet" % since_start
    workers = _number(record, "workers")
    expected = " of %d" % expected_workers if expected_workers else ""
    connected = "%s%s workers connected" % ("?" if workers is None else "%d" % workers, expected)
    elapsed = _number(record, "elapsed")
    state = record.get("state") if record.get("state") in STATES else "unknown"
    if elapsed is None:
        return "%ds since start, test not started (%s), %s" % (since_start, state, connected)
    users, rps, ratio = (_number(record, key) for key in ("users", "rps", "fail_ratio"))
    return "%ds elapsed (%s), %s users, %s req/s, %s failures, %s" % (
        elapsed, state,
        "?" if users is None else "%d" % users,
        "?" if rps is None else "%.1f" % rps,
        "?" if ratio is None else "%.2f%%" % (100 * min(ratio, 1)),
        connected)

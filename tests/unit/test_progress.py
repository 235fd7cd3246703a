"""module_utils._progress: the last record of a run's progress.jsonl (read with ``tail -c``, so its first
line may be cut and its last one still being written) and the line locust_follow prints from it.

The file is the locust user's (who runs the customer's locustfile), so whatever it holds, only numbers
and Locust's state names may reach the control node's terminal: anything else shows as "?" or "unknown".
"""

import json
import re

import pytest

from ansible_collections.locustfleet.triton.plugins.module_utils._progress import STATES, last_record, progress_line

RECORD = {"ts": 1796300030.1, "elapsed": 58.0, "state": "running", "users": 50, "rps": 61.3, "fail_ratio": 0.0,
          "requests": 3410, "workers": 6}
NORMAL = "58s elapsed (running), 50 users, 61.3 req/s, 0.00% failures, 6 of 6 workers connected"
# All a line may hold: digits, Locust's state names and the fixed words, on one line, no control characters.
SAFE = re.compile(r"^[0-9a-z ,./%()?]+$")


def short(value):
    return repr(value)[:24]


def lines(*records):
    return "".join(json.dumps(record) + "\n" for record in records)


# last_record

def test_last_complete_record_wins():
    first, second = dict(RECORD, elapsed=56.0), dict(RECORD, elapsed=58.0)
    assert last_record(lines(first, second)) == second


def test_a_truncated_last_line_is_skipped():
    text = lines(dict(RECORD, elapsed=56.0)) + json.dumps(dict(RECORD, elapsed=58.0))[:-9]
    assert last_record(text)["elapsed"] == 56.0


def test_a_first_line_cut_by_tail_and_garbage_are_skipped():
    text = json.dumps(RECORD)[30:] + "\n" + lines(RECORD) + "not json\n\x1b[31m{oops\n\n   \n"
    assert last_record(text) == RECORD


@pytest.mark.parametrize("other", ["[1, 2]", '"running"', "5", "null", "true", "[{\"elapsed\": 1}]"])
def test_json_that_is_no_object_is_skipped(other):
    assert last_record(lines(RECORD) + other + "\n") == RECORD


def test_json_nested_too_deep_for_the_parser_is_skipped():
    assert last_record(lines(RECORD) + "[" * 5000 + "\n" + "{\"a\":" * 5000 + "\n") == RECORD


def test_crlf_line_ends():
    assert last_record(lines(RECORD).replace("\n", "\r\n")) == RECORD


@pytest.mark.parametrize("text", ["", "\n", "garbage\n", "[1]\n{\"cut", json.dumps(RECORD)[:-1]])
def test_nothing_complete_is_none(text):
    assert last_record(text) is None


def test_nan_and_infinity_are_parsed_then_kept_out_of_the_line():
    record = last_record('{"elapsed": 3.0, "state": "running", "users": NaN, "rps": Infinity, "fail_ratio": -Infinity, '
                         '"workers": 2}\n')
    assert record["elapsed"] == 3.0
    assert progress_line(record, 5, 2) == "3s elapsed (running), ? users, ? req/s, ? failures, 2 of 2 workers connected"


# progress_line

def test_normal_line():
    assert progress_line(RECORD, 63.2, 6) == NORMAL


def test_fractions_round_as_documented():
    record = dict(RECORD, elapsed=59.9, users=3, rps=0.04, fail_ratio=0.0123456, workers=5)
    assert progress_line(record, 70, 6) == \
        "59s elapsed (running), 3 users, 0.0 req/s, 1.23% failures, 5 of 6 workers connected"


def test_without_expected_workers():
    assert progress_line(RECORD, 63.2) == \
        "58s elapsed (running), 50 users, 61.3 req/s, 0.00% failures, 6 workers connected"
    assert progress_line(RECORD, 63.2, 0).endswith(", 6 workers connected")


@pytest.mark.parametrize("state", STATES)
def test_every_locust_state_shows(state):
    assert progress_line(dict(RECORD, state=state), 1, 6) == NORMAL.replace("(running)", "(%s)" % state)


def test_before_the_test_starts():
    record = {"ts": 1796300001.0, "elapsed": None, "state": "ready", "users": 0, "rps": 0, "fail_ratio": 0,
              "requests": 0, "workers": 4}
    assert progress_line(record, 12.7, 6) == "12s since start, test not started (ready), 4 of 6 workers connected"
    del record["elapsed"]
    assert progress_line(record, 3, 6) == "3s since start, test not started (ready), 4 of 6 workers connected"


def test_no_record_yet():
    assert progress_line(None, 4.9, 6) == "4s since start, no progress from the master yet"
    assert progress_line(None, 0) == "0s since start, no progress from the master yet"


def test_empty_record():
    assert progress_line({}, 2, 3) == "2s since start, test not started (unknown), ? of 3 workers connected"


@pytest.mark.parametrize("ratio, shown", [(1, "100.00%"), (1.0000001, "100.00%"), (2.5, "100.00%"), (10 ** 6, "100.00%"),
                                          (0.999999, "100.00%"), (0.5, "50.00%")])
def test_fail_ratio_above_one_is_clamped(ratio, shown):
    assert progress_line(dict(RECORD, fail_ratio=ratio), 1, 6) == NORMAL.replace("0.00%", shown)


HOSTILE_NUMBERS = [
    "50\n\x1b[2J\x1b[31mPWNED", "\x1b]0;title\x07", "61.3", "", " 7", True, False, None, float("nan"), float("inf"),
    float("-inf"), -1, -0.5, 10 ** 400, -(10 ** 400), [50], {"users": 50}, b"50".decode(),
]


@pytest.mark.parametrize("value", HOSTILE_NUMBERS, ids=short)
def test_hostile_numbers_show_as_question_marks(value):
    record = dict(RECORD, users=value, rps=value, fail_ratio=value, workers=value, requests=value)
    line = progress_line(record, 1, 6)
    assert line == "58s elapsed (running), ? users, ? req/s, ? failures, ? of 6 workers connected"


@pytest.mark.parametrize("value", HOSTILE_NUMBERS, ids=short)
def test_hostile_elapsed_is_a_test_not_started(value):
    line = progress_line(dict(RECORD, elapsed=value), 9.5, 6)
    assert line == "9s since start, test not started (running), 6 of 6 workers connected"


@pytest.mark.parametrize("state", ["running\n\x1b[31mroot", "\x1b[2Jrunning", "RUNNING", "running ", "Running", "",
                                   "crashed", 5, None, True, ["running"], {"running": 1}, float("nan")], ids=short)
def test_unknown_states_show_as_unknown(state):
    assert progress_line(dict(RECORD, state=state), 1, 6) == NORMAL.replace("(running)", "(unknown)")
    assert progress_line(dict(RECORD, state=state, elapsed=None), 1, 6) == \
        "1s since start, test not started (unknown), 6 of 6 workers connected"


def test_nothing_hostile_reaches_the_line():
    evil = "\n\x1b[31m$(reboot)\r\x00"
    for record in ({key: evil for key in RECORD},
                   dict(RECORD, **{key: evil for key in ("state", "users", "rps", "fail_ratio", "workers")}),
                   dict(RECORD, extra=evil, message=evil),
                   {key: [evil] for key in RECORD}):
        line = progress_line(record, 1, 6)
        assert SAFE.match(line), repr(line)
        assert "reboot" not in line


def test_large_but_finite_numbers_are_numbers():
    line = progress_line(dict(RECORD, users=10 ** 6, rps=1e6, requests=10 ** 12), 1, 6)
    assert line == "58s elapsed (running), 1000000 users, 1000000.0 req/s, 0.00% failures, 6 of 6 workers connected"

"""module_utils/_tags.py: CloudAPI's type-tolerant tag comparison and the writes it leads to."""

import pytest

from ansible_collections.locustfleet.triton.plugins.module_utils._tags import (
    plan_tags, plan_visible, reserved_name_problem, same_value, tag_value_problem)


@pytest.mark.parametrize("stored, wanted", [
    ("web", "web"), (8, 8), (8, "8"), ("8", 8), (8, "8.0"), (8.0, 8), (0.5, "0.50"), (True, True),
    (True, "true"), ("false", False), (-3, "-3"),
])
def test_equal(stored, wanted):
    assert same_value(stored, wanted)
    assert same_value(stored=wanted, wanted=stored)  # symmetric


@pytest.mark.parametrize("stored, wanted", [
    ("web", "Web"), ("8", "8.0"), (8, 9), (8, "eight"), (True, 1), (False, 0), (True, "True"), (True, "yes"),
    (True, False), ("true", "TRUE"), (1, "1e999"), ("", 0),
])
def test_different(stored, wanted):
    assert not same_value(stored, wanted)
    assert not same_value(stored=wanted, wanted=stored)  # symmetric


def test_merge_sends_only_what_differs_with_the_callers_types():
    plan = plan_tags({"role": "web", "slots": "8", "spot": True}, {"role": "web", "slots": 8, "spot": "no", "new": 1})
    assert (plan.op, plan.body) == ("add", {"spot": "no", "new": 1})
    assert plan.after == {"role": "web", "slots": "8", "spot": "no", "new": 1}
    assert plan_visible(plan, plan.after, {"role": "web", "slots": 8, "spot": "no", "new": 1})
    assert not plan_visible(plan, plan.before, {"role": "web", "slots": 8, "spot": "no", "new": 1})
    assert not plan_tags({"a": 1}, {"a": "1"}).changed


def test_purge_and_absent():
    current = {"a": 1, "b": "x"}
    assert not plan_tags(current, {"a": "1", "b": "x"}, purge=True).changed
    replace = plan_tags(current, {"a": 2}, purge=True)
    assert (replace.op, replace.body, replace.after) == ("replace", {"a": 2}, {"a": 2})
    clear = plan_tags(current, {}, purge=True)
    assert (clear.op, clear.after) == ("delete_all", {})
    remove = plan_tags(current, {"b": "other value", "zzz": None}, state="absent")
    assert (remove.op, remove.body, remove.after) == ("delete", ["b"], {"a": 1})
    assert plan_visible(remove, {"a": 1}, {"b": None}, state="absent")
    assert not plan_tags(current, {"zzz": None}, state="absent").changed


def test_value_problems_name_the_tag():
    assert tag_value_problem({"a": 1, "b": True, "c": "x", "d": 0.5}) is None
    assert tag_value_problem({"ok": 1, "bad": [1]}) == ("tag 'bad' has a list value; a tag value must be a "
                                                        "string, number or boolean")
    assert tag_value_problem({"n": None}).startswith("tag 'n' has no value (null)")
    assert tag_value_problem({"n": None}, allow_null=True) is None
    assert tag_value_problem({"f": float("nan")}) == "tag 'f' has the value nan; numbers must be finite"
    assert reserved_name_problem({"role": 1, "uuid": "x"}).startswith("tag 'uuid' cannot be set through CloudAPI")

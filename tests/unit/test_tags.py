"""module_utils/_tags.py: the one tag comparison (JSON type and value) and the writes it leads to."""

import pytest

from ansible_collections.locustfleet.triton.plugins.module_utils._tags import (
    plan_tags, plan_visible, reserved_name_problem, same_value, tag_query_value, tags_match, tag_value_problem)


@pytest.mark.parametrize("stored, wanted", [
    ("web", "web"), (8, 8), (8, 8.0), (8.0, 8), (0.5, 0.50), (True, True), (False, False), (-3, -3.0), ("", ""),
])
def test_equal(stored, wanted):
    assert same_value(stored, wanted)
    assert same_value(stored=wanted, wanted=stored)  # symmetric


@pytest.mark.parametrize("stored, wanted", [
    ("web", "Web"), ("8", "8.0"), (8, 9), (8, "8"), (8, "8.0"), (8, "eight"), (True, 1), (False, 0), (True, "true"),
    ("false", False), (True, "True"), (True, False), ("true", "TRUE"), (1, "1e999"), ("", 0), (-3, "-3"),
])
def test_different(stored, wanted):
    assert not same_value(stored, wanted)
    assert not same_value(stored=wanted, wanted=stored)  # symmetric


def test_tags_match_needs_every_wanted_tag_with_its_type():
    current = {"cluster": True, "role": "worker", "slots": 8}
    assert tags_match(current, {"role": "worker", "slots": 8.0})
    assert tags_match(current, {}) and tags_match(None, None)
    assert not tags_match(current, {"cluster": "true"})
    assert not tags_match(current, {"missing": "x"})
    assert not tags_match(None, {"role": "worker"})


@pytest.mark.parametrize("value, text", [(True, "true"), (False, "false"), (8, "8"), (8.0, "8"), (0.5, "0.5"),
                                         ("8.0", "8.0"), ("web", "web")])
def test_query_values_are_spelt_as_json_spells_them(value, text):
    assert tag_query_value(value) == text


def test_merge_sends_only_what_differs_with_the_callers_types():
    plan = plan_tags({"role": "web", "slots": "8", "spot": True, "cpus": 8},
                     {"role": "web", "slots": 8, "spot": "no", "new": 1, "cpus": 8.0})
    assert (plan.op, plan.body) == ("add", {"slots": 8, "spot": "no", "new": 1})
    assert plan.after == {"role": "web", "slots": 8, "spot": "no", "new": 1, "cpus": 8}
    assert plan_visible(plan, plan.after, {"role": "web", "slots": 8, "spot": "no", "new": 1})
    assert not plan_visible(plan, plan.before, {"role": "web", "slots": 8, "spot": "no", "new": 1})
    assert plan_tags({"a": 1}, {"a": "1"}).changed
    assert not plan_tags({"a": 8}, {"a": 8.0}).changed


def test_purge_and_absent():
    current = {"a": 1, "b": "x"}
    assert not plan_tags(current, {"a": 1.0, "b": "x"}, purge=True).changed
    assert plan_tags(current, {"a": "1", "b": "x"}, purge=True).changed
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

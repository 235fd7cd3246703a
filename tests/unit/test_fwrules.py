"""module_utils/_fwrules.py: a rule's identity is its text, and what a task changes."""

import pytest

from ansible_collections.locustfleet.triton.plugins.module_utils._fwrules import (
    RuleTextProblem, find_rules, plan_rule, rule_key)

CANONICAL = 'FROM tag "locustfleet.cluster" = "demo" TO tag "locustfleet.cluster" = "demo" ALLOW tcp PORT 5557'


@pytest.mark.parametrize("other", [
    CANONICAL,
    'from tag "locustfleet.cluster" = "demo" to tag "locustfleet.cluster" = "demo" allow TCP port 5557',
    'FROM tag "locustfleet.cluster"="demo"   TO   tag "locustfleet.cluster" = demo ALLOW tcp PORT 5557',
    ' FROM tag locustfleet.cluster = "demo" TO tag "locustfleet.cluster" = "demo" ALLOW tcp PORT 5557 ',
])
def test_same_rule_whatever_the_spelling(other):
    assert rule_key(other) == rule_key(CANONICAL)


@pytest.mark.parametrize("other", [
    CANONICAL.replace('"demo"', '"Demo"', 1),                     # values keep their case
    CANONICAL.replace("5557", "5558"),
    CANONICAL.replace("ALLOW", "BLOCK"),
    CANONICAL.replace("FROM tag", "FROM (tag", 1).replace(' TO', ' OR ip 10.0.0.1) TO', 1),
    'FROM any TO tag "locustfleet.cluster" = "demo" ALLOW tcp PORT 5557',
])
def test_different_rules(other):
    assert rule_key(other) != rule_key(CANONICAL)


def test_escaped_quote_inside_a_value():
    assert rule_key(r'FROM any TO tag "a" = "x\"y" ALLOW tcp PORT 1')[1] == {("tag", "a", 'x"y')}


# What tritonsim (like FWAPI) answers for what was sent: tritonsim/docs/firewall.md.
@pytest.mark.parametrize("sent, returned", [
    ("FROM tag role = worker TO tag role=master ALLOW tcp PORT 5557",
     'FROM tag "role" = "worker" TO tag "role" = "master" ALLOW tcp PORT 5557'),
    ("from any to all vms allow tcp port 22", "FROM any TO all vms ALLOW tcp PORT 22"),
    ("FROM any TO (all vms) ALLOW tcp (PORT 80 AND PORT 22)", "FROM any TO all vms ALLOW tcp (PORT 22 AND PORT 80)"),
    ("FROM (tag b OR ip 10.0.0.2 OR subnet 10.0.0.0/24 OR tag a) TO any BLOCK udp PORTS 2000-3000, 53",
     'FROM (ip 10.0.0.2 OR subnet 10.0.0.0/24 OR tag "a" OR tag "b") TO any BLOCK udp PORTS 53, 2000 - 3000'),
    ("FROM any TO all vms ALLOW tcp PORTS 22", "FROM any TO all vms ALLOW tcp PORT 22"),
    ("FROM any TO all vms ALLOW tcp PORTS 80, 22", "FROM any TO all vms ALLOW tcp (PORT 22 AND PORT 80)"),
    ("FROM any TO all vms ALLOW icmp (TYPE 8 CODE 0 AND TYPE 0)", "FROM any TO all vms ALLOW icmp (TYPE 0 AND TYPE 8 CODE 0)"),
    ("FROM (ip 10.0.0.1 OR ip 10.0.0.1) TO vm 5e2f0b1a-0000-4000-8000-000000000001 ALLOW tcp PORT 1",
     "FROM ip 10.0.0.1 TO vm 5e2f0b1a-0000-4000-8000-000000000001 ALLOW tcp PORT 1"),
])
def test_same_rule_as_cloudapi_writes_it_back(sent, returned):
    assert rule_key(sent) == rule_key(returned)


@pytest.mark.parametrize("one, other", [
    ("FROM any TO all vms ALLOW tcp PORTS 22-80", "FROM any TO all vms ALLOW tcp (PORT 22 AND PORT 80)"),
    ("FROM any TO all vms ALLOW icmp TYPE 8", "FROM any TO all vms ALLOW icmp TYPE 8 CODE 0"),
    ("FROM ip 10.0.0.1 TO all vms ALLOW tcp PORT 1", "FROM all vms TO ip 10.0.0.1 ALLOW tcp PORT 1"),
    ("FROM any TO all vms ALLOW udp PORT 53", "FROM any TO all vms ALLOW tcp PORT 53"),
])
def test_different_meanings(one, other):
    assert rule_key(one) != rule_key(other)


def test_text_the_parser_does_not_follow_is_compared_word_for_word():
    assert rule_key("FROM any TO all vms ALLOW tcp PORT 22 PRIORITY 5") == \
        rule_key("from any to all vms allow tcp port 22 priority 5")
    assert rule_key("FROM any TO all vms ALLOW tcp PORT 22 PRIORITY 5") != \
        rule_key("FROM any TO all vms ALLOW tcp PORT 22 PRIORITY 6")


@pytest.mark.parametrize("bad", ["", "   ", None, 'FROM any TO tag "open ALLOW tcp PORT 1'])
def test_bad_text(bad):
    with pytest.raises(RuleTextProblem):
        rule_key(bad)


def _rule(rule_id, text=CANONICAL, enabled=True, description="d"):
    return {"id": rule_id, "rule": text, "enabled": enabled, "description": description, "global": False}


def test_find_rules_skips_other_and_unreadable_rules():
    rules = [_rule("a"), _rule("b", text="FROM any TO all vms ALLOW tcp PORT 22"),
             _rule("c", text='FROM "broken'), {"id": "d"}, _rule("e", text=CANONICAL.lower())]
    assert [r["id"] for r in find_rules(rules, CANONICAL)] == ["a", "e"]


def test_create_when_missing():
    plan = plan_rule([], CANONICAL, "present", enabled=True, description="fleet")
    assert plan.op == "create"
    assert plan.body == {"rule": CANONICAL, "enabled": True, "description": "fleet"}
    assert plan.before is None and plan.after == {"rule": CANONICAL, "enabled": True, "description": "fleet"}


def test_no_change_when_equal_and_description_not_managed():
    plan = plan_rule([_rule("a")], CANONICAL.lower(), "present", enabled=True, description=None)
    assert not plan.changed
    assert plan.before == plan.after


def test_update_sends_the_rule_text_cloudapi_requires():
    plan = plan_rule([_rule("a", enabled=False)], CANONICAL.lower(), "present", enabled=True, description="d")
    assert plan.op == "update"
    assert plan.body == {"enabled": True, "rule": CANONICAL}   # the stored text, not the task's spelling
    assert plan.before["enabled"] is False and plan.after["enabled"] is True


def test_description_change_only():
    plan = plan_rule([_rule("a", description=None)], CANONICAL, "present", enabled=True, description="new")
    assert plan.body == {"description": "new", "rule": CANONICAL}


def test_absent_deletes_every_copy_and_nothing_when_missing():
    plan = plan_rule([_rule("a"), _rule("b")], CANONICAL, "absent")
    assert plan.op == "delete" and [r["id"] for r in plan.targets] == ["a", "b"]
    assert plan.after is None
    assert not plan_rule([], CANONICAL, "absent").changed

"""tritonsim.rbac: the policy parser, action and resource names, and the authorize
decision, as pure functions (no server)."""

import pytest

from tritonsim import rbac
from tritonsim.rbac import ActiveRole, RuleError, authorize, parse_rule


@pytest.mark.parametrize("text, actions", [
    ("CAN getmachine", ("getmachine",)),
    ("CAN getmachine and stopmachine", ("getmachine", "stopmachine")),
    ("CAN getmachine, stopmachine and deletemachine",
     ("getmachine", "stopmachine", "deletemachine")),
    ("can listkeys AND listuserkeys", ("listkeys", "listuserkeys")),
    ("CAN rebootmachine, createmachine AND getmachine",
     ("rebootmachine", "createmachine", "getmachine")),
    ("CAN *", ("*",)),
    ("CAN compute:Get*", ("compute:Get*",)),
])
def test_action_lists(text, actions):
    rule = parse_rule(text)
    assert rule.actions == actions and rule.resources == () and rule.condition is None


def test_resources_and_conditions():
    rule = parse_rule("CAN getmachine /acct/machines/* WHEN tag_role::string = worker")
    assert rule.resources == ("/acct/machines/*",)
    assert rule.condition == ("cmp", "tag_role", "string", "=", "worker")
    rule = parse_rule("CAN rebootmachine if requesttime::time > 07:30:00 and "
                      "requesttime::day in (Mon, Tue)")
    assert rule.condition[0] == "and"


@pytest.mark.parametrize("text", ["", "getmachine", "CAN", "CANT getmachine",
                                  "CAN getmachine WHEN", "CAN x WHEN tag_a::string =",
                                  "CAN x WHEN (tag_a = b", "CAN x y z", "CAN x WHEN a in b"])
def test_what_does_not_parse(text):
    with pytest.raises(RuleError):
        parse_rule(text)


@pytest.mark.parametrize("text", [
    # from CloudAPI's own test/users.test.js: principals and typed conditions
    "Fred can read *.js when foo::string = bar and tag::string = examples and "
    "sourceip::ip = 10.0.0.0/8",
    "Bob can read and write timesheet if requesttime::time > 07:30:00 and "
    "requesttime::time < 18:30:00 and requesttime::day in (Mon, Tue, Wed, THu, Fri)",
    "John, Jack and Jane can ops_* *",
    "CAN getmachine WHEN sourceip = 10.0.0.0/8",
])
def test_aperture_rules_cloudapi_accepts(text):
    parse_rule(text)


def test_untyped_unknown_condition_is_refused_naming_it():
    with pytest.raises(RuleError, match="baz"):
        parse_rule("Pedro can delete * when baz = bar")
    with pytest.raises(RuleError, match="tag_role"):
        parse_rule("CAN stopmachine WHEN tag_role = worker")


def test_rule_errors_name_the_rule():
    assert rbac.rule_errors(["CAN a", "CAN b"]) == []
    (message,) = rbac.rule_errors(["CAN a", "foo"])
    assert message.startswith("foo: expected CAN") and "\n" not in message


@pytest.mark.parametrize("cond, tags, expected", [
    ("tag_role::string = worker", {"tag_role": "worker"}, True),
    ("tag_role::string = worker", {"tag_role": "web"}, False),
    ("tag_role::string = worker", {}, False),
    ("tag_role::string != worker", {"tag_role": "web"}, True),
    ("tag_role::string in (web, worker)", {"tag_role": "worker"}, True),
    ("tag_a::string = x and not tag_b::string = y", {"tag_a": "x", "tag_b": "z"}, True),
    ("tag_a::string = x or tag_b::string = y", {"tag_a": "q", "tag_b": "y"}, True),
    ("tag_spot::string = true", {"tag_spot": True}, True),
    ("sourceip::ip = 10.0.0.0/8", {"sourceip": "10.1.2.3"}, True),
    ("sourceip::ip = 10.0.0.0/8", {"sourceip": "192.168.1.1"}, False),
    ('tag_owner::string = "a b"', {"tag_owner": "a b"}, True),
])
def test_conditions(cond, tags, expected):
    assert rbac.evaluate(parse_rule(f"CAN x WHEN {cond}").condition, tags) is expected


@pytest.mark.parametrize("endpoint, method, params, action", [
    ("GetMachine", "GET", {}, "getmachine"),
    ("GetMachine", "HEAD", {}, "headmachine"),
    ("ListMachines", "HEAD", {}, "headmachines"),
    ("UpdateMachine", "POST", {"action": "stop"}, "stopmachine"),
    ("UpdateMachine", "POST", {"action": "enable_firewall"}, "enablemachinefirewall"),
    ("UpdateMachine", "POST", {"action": "disable_firewall"}, "disablemachinefirewall"),
    ("UpdateMachine", "POST", {"action": "enable_deletion_protection"},
     "enable_deletion_protectionmachine"),
    ("UpdateMachine", "POST", {}, "updatemachine"),
    ("ReplaceMachineRoleTags", "PUT", {}, "setroletags"),
    ("ReplaceResourcesRoleTags", "PUT", {}, "setroletags"),
    ("DeleteMachineTag", "DELETE", {}, "deletemachinetag"),
])
def test_action_names(endpoint, method, params, action):
    assert rbac.action_for(endpoint, method, params) == action


@pytest.mark.parametrize("path, resource", [
    ("/my", "/acct"),
    ("/my/machines", "/acct/machines"),
    ("/acct/machines/M", "/acct/machines/M"),
    ("/my/machines/M/tags", "/acct/machines/M"),
    ("/my/machines/M/tags/role", "/acct/machines/M"),
    ("/my/users/bob/keys", "/acct/users/bob/keys"),
    ("/my/users/bob/keys/k1", "/acct/users/bob/keys/k1"),
    ("/my/fwrules/R/machines", "/acct/fwrules/R"),
])
def test_resource_names(path, resource):
    assert rbac.resource_name(path, "acct") == resource


SELF_STOP = ActiveRole("w1", (parse_rule("CAN getmachine and stopmachine"),))


def _allowed(roles, action, path="/acct/machines/M", tagged=("w1",), conditions=None,
             owner=False):
    return authorize(owner=owner, roles=roles, action=action, path=path,
                     resource_roles=set(tagged), conditions=conditions or {})


def test_owner_always_allowed():
    assert _allowed([], "deletemachine", owner=True)


def test_role_tag_binds_the_rules():
    assert _allowed([SELF_STOP], "getmachine")
    assert _allowed([SELF_STOP], "stopmachine")
    assert not _allowed([SELF_STOP], "deletemachine")
    assert not _allowed([SELF_STOP], "getmachine", tagged=())         # another machine
    assert not _allowed([SELF_STOP], "getmachine", tagged=("other",))
    assert not _allowed([], "getmachine")                             # no active role


def test_wildcards_and_explicit_resources():
    star = ActiveRole("ops", (parse_rule("CAN *"),))
    assert _allowed([star], "deletemachine", tagged=("ops",))
    assert not _allowed([star], "deletemachine", tagged=())
    explicit = ActiveRole("r", (parse_rule("CAN get* /acct/machines/*"),))
    assert _allowed([explicit], "getmachine", tagged=())
    assert not _allowed([explicit], "getmachine", path="/my/machines/M", tagged=())
    assert not _allowed([explicit], "stopmachine", tagged=())


def test_tag_condition():
    role = ActiveRole("w", (parse_rule("CAN stopmachine WHEN tag_owner::string = x"),))
    assert _allowed([role], "stopmachine", tagged=("w",), conditions={"tag_owner": "x"})
    assert not _allowed([role], "stopmachine", tagged=("w",), conditions={"tag_owner": "y"})


def test_principals_limit_a_rule_to_those_logins():
    role = ActiveRole("w1", (parse_rule("bob and w-* CAN getmachine"),))
    assert authorize(owner=False, roles=[role], action="getmachine", path="/acct/machines/M",
                     resource_roles={"w1"}, conditions={}, login="w-7")
    assert not authorize(owner=False, roles=[role], action="getmachine",
                         path="/acct/machines/M", resource_roles={"w1"}, conditions={},
                         login="carol")


def test_administrator_role_allows_everything():
    assert _allowed([ActiveRole(rbac.ADMIN_ROLE)], "deletemachine", tagged=())
    assert rbac.denial_message("/my/keys", "listkeys") == \
        "You do not have permission to access /my/keys (listkeys)"

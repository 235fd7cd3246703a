"""joyent_firewall_rule and joyent_firewall_rule_info through ansible-playbook against tritonsim."""

from sim.signer import client_for

RULE = 'FROM tag "locustfleet.cluster" = "fw" TO tag "locustfleet.cluster" = "fw" ALLOW tcp PORT 5557'
# The same rule as a user might type it: keyword case, quoting and spacing differ.
SPELLED = 'from tag locustfleet.cluster="fw" to tag "locustfleet.cluster" = fw allow TCP port 5557'
WRITES = ("CreateFirewallRule", "UpdateFirewallRule", "DeleteFirewallRule",
          "EnableFirewallRule", "DisableFirewallRule")


def writes(sim):
    by_route = sim.stats()["by_route"]
    return {route: by_route[route] for route in WRITES if route in by_route}


def stored(sim):
    return client_for(sim).get("/my/fwrules").json()


def test_create_rerun_update_and_delete(tritonsim, playbook):
    run = playbook(tritonsim, """
        - name: create
          locustfleet.triton.joyent_firewall_rule:
            rule: '%s'
            description: workers to master
    """ % RULE, diff=True)
    created = run.result("create")
    assert created["changed"] is True
    (rule,) = stored(tritonsim)
    assert created["rule"]["id"] == rule["id"] and rule["enabled"] is True
    assert rule["description"] == "workers to master"
    assert created["diff"]["before"] == {} and created["diff"]["after"]["enabled"] is True
    assert writes(tritonsim) == {"CreateFirewallRule": {"201": 1}}

    tritonsim.reset_stats()
    again = playbook(tritonsim, """
        - name: same rule spelled otherwise
          locustfleet.triton.joyent_firewall_rule:
            rule: '%s'
            description: workers to master
    """ % SPELLED)
    assert again.recap["changed"] == 0
    assert again.result("same rule spelled otherwise")["rule"]["id"] == rule["id"]
    assert writes(tritonsim) == {}

    check = playbook(tritonsim, """
        - name: disable
          locustfleet.triton.joyent_firewall_rule:
            rule: '%s'
            enabled: false
    """ % SPELLED, check=True, diff=True)
    result = check.result("disable")
    assert result["changed"] is True
    assert result["diff"]["before"]["enabled"] is True and result["diff"]["after"]["enabled"] is False
    assert stored(tritonsim)[0]["enabled"] is True and writes(tritonsim) == {}

    playbook(tritonsim, """
        - name: disable
          locustfleet.triton.joyent_firewall_rule:
            rule: '%s'
            enabled: false
    """ % SPELLED)
    (rule_after,) = stored(tritonsim)
    assert rule_after["enabled"] is False and rule_after["description"] == "workers to master"
    assert rule_after["id"] == rule["id"]

    listed = playbook(tritonsim, """
        - name: list
          locustfleet.triton.joyent_firewall_rule_info:
            description_prefix: workers
        - name: list other
          locustfleet.triton.joyent_firewall_rule_info:
            description_prefix: nobody
    """)
    assert [r["id"] for r in listed.result("list")["rules"]] == [rule["id"]]
    assert listed.result("list other")["rules"] == []

    gone = playbook(tritonsim, """
        - name: delete
          locustfleet.triton.joyent_firewall_rule:
            rule: '%s'
            state: absent
        - name: delete again
          locustfleet.triton.joyent_firewall_rule:
            rule: '%s'
            state: absent
    """ % (RULE, RULE))
    assert gone.result("delete")["deleted_ids"] == [rule["id"]]
    assert gone.result("delete again")["changed"] is False
    assert stored(tritonsim) == []


def test_rule_cloudapi_rejects_is_one_line_naming_it(tritonsim, playbook):
    run = playbook(tritonsim, """
        - name: bad
          locustfleet.triton.joyent_firewall_rule:
            rule: FROM any TO any ALLOW tcp PORT 22
    """, expect_rc=2)
    message = run.result("bad")["msg"]
    assert message.startswith("rule 'FROM any TO any ALLOW tcp PORT 22': ")
    assert "\n" not in message and "request" in message.lower()
    assert "Traceback" not in run.output
    assert stored(tritonsim) == []


def test_unterminated_quote_fails_before_any_call(tritonsim, playbook):
    run = playbook(tritonsim, """
        - name: bad
          locustfleet.triton.joyent_firewall_rule:
            rule: 'FROM any TO tag "open ALLOW tcp PORT 1'
    """, expect_rc=2)
    assert "unterminated quote" in run.result("bad")["msg"]
    assert "CreateFirewallRule" not in tritonsim.stats()["by_route"]


def test_cloudapi_rewriting_the_rule_is_not_a_change(tritonsim, playbook):
    """CloudAPI sorts targets and ports and rewrites PORTS lists: the task must still find its rule."""
    playbook(tritonsim, """
        - name: create
          locustfleet.triton.joyent_firewall_rule:
            rule: FROM (tag b OR ip 10.0.0.2 OR tag a) TO (all vms) ALLOW tcp PORTS 80, 22, 2000-3000
    """)
    (rule,) = stored(tritonsim)
    assert rule["rule"] == 'FROM (ip 10.0.0.2 OR tag "a" OR tag "b") TO all vms ALLOW tcp PORTS 22, 80, 2000 - 3000'
    tritonsim.reset_stats()
    again = playbook(tritonsim, """
        - name: again
          locustfleet.triton.joyent_firewall_rule:
            rule: from (tag a or tag b or ip 10.0.0.2) to all vms allow TCP ports 2000 - 3000, 22, 80
    """)
    assert again.recap["changed"] == 0 and writes(tritonsim) == {}
    assert again.result("again")["rule"]["id"] == rule["id"]

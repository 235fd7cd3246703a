"""The fleet's firewall rules (playbooks/tasks/fleet_firewall.yml, as spawn_slaves.yml runs it, and
teardown.yml) through ansible-playbook against tritonsim."""

from sim.signer import client_for
from support.control import REPO

TEARDOWN = REPO / "playbooks" / "teardown.yml"
MEMBERS = 'tag "locustfleet.cluster" = "fw"'


def spawn_firewall(sim, playbook, tmp_path, expect_rc=0, check=False, **extra_vars):
    """spawn_slaves's first play, reduced to the firewall: the master is where it is said to be."""
    book = tmp_path / "firewall.yml"
    book.write_text("""
- hosts: localhost
  gather_facts: false
  vars_files: [%s]
  tasks:
    - name: firewall
      ansible.builtin.include_tasks: %s
""" % (REPO / "playbooks" / "vars" / "fleet.yml", REPO / "playbooks" / "tasks" / "fleet_firewall.yml"))
    extra_vars = dict({"cluster": "fw", "fleet_master_machine": {"primaryIp": "127.0.0.1"}}, **extra_vars)
    return playbook(sim, book, extra_vars=extra_vars, expect_rc=expect_rc, check=check)


def rules(sim):
    return sorted((r["description"], r["rule"], r["enabled"]) for r in client_for(sim).get("/my/fwrules").json())


def writes(sim):
    by_route = sim.stats()["by_route"]
    return {route: counts for route, counts in by_route.items()
            if route in ("CreateFirewallRule", "UpdateFirewallRule", "DeleteFirewallRule")}


def rule_text(sim, text):
    """The rule as tritonsim (like CloudAPI) writes it back."""
    made = client_for(sim).post("/my/fwrules", {"rule": text}).json()
    client_for(sim).delete("/my/fwrules/%s" % made["id"])
    return made["rule"]


def test_rules_made_once_replaced_when_the_control_node_changes_and_removed(tritonsim, playbook, tmp_path):
    other = client_for(tritonsim).post("/my/fwrules", {
        "rule": 'FROM any TO tag "locustfleet.cluster" = "other" ALLOW tcp PORT 22', "enabled": True,
        "description": "locustfleet other: SSH"}).json()
    workers = rule_text(tritonsim, "FROM %s TO %s ALLOW tcp PORT 5557" % (MEMBERS, MEMBERS))
    ssh_here = rule_text(tritonsim, "FROM ip 127.0.0.1 TO %s ALLOW tcp PORT 22" % MEMBERS)

    spawn_firewall(tritonsim, playbook, tmp_path)
    assert rules(tritonsim) == sorted([
        ("locustfleet fw: Locust workers to the master", workers, True),
        ("locustfleet fw: SSH from the control node", ssh_here, True),
        ("locustfleet other: SSH", other["rule"], True)])

    tritonsim.reset_stats()
    again = spawn_firewall(tritonsim, playbook, tmp_path)
    assert again.recap["changed"] == 0 and writes(tritonsim) == {}

    # Another control node (or a CI subnet): the SSH rule is replaced, not added to.
    moved = spawn_firewall(tritonsim, playbook, tmp_path, firewall_ssh_from=["198.51.100.0/24", "203.0.113.7"])
    ssh_there = rule_text(tritonsim, "FROM (subnet 198.51.100.0/24 OR ip 203.0.113.7) TO %s ALLOW tcp PORT 22" % MEMBERS)
    assert rules(tritonsim) == sorted([
        ("locustfleet fw: Locust workers to the master", workers, True),
        ("locustfleet fw: SSH from the control node", ssh_there, True),
        ("locustfleet other: SSH", other["rule"], True)])
    assert moved.recap["changed"] == 2   # one rule made, one removed

    spawn_firewall(tritonsim, playbook, tmp_path, firewall=False)
    assert rules(tritonsim) == [("locustfleet other: SSH", other["rule"], True)]


def test_a_source_that_is_not_an_address_stops_before_any_rule(tritonsim, playbook, tmp_path):
    run = spawn_firewall(tritonsim, playbook, tmp_path, expect_rc=2, firewall_ssh_from="1.2.3.4 TO all vms")
    assert 'firewall_ssh_from takes IPv4 addresses or subnets such as 198.51.100.7 or 198.51.100.0/24 ' \
           '(got "1.2.3.4 TO all vms")' in run.output
    assert rules(tritonsim) == [] and "CreateFirewallRule" not in tritonsim.stats()["by_route"]


def test_teardown_removes_the_rules_with_the_last_machine_only(tritonsim, playbook, tmp_path):
    spawn_firewall(tritonsim, playbook, tmp_path)
    tritonsim.seed_machines(2, tags={"locustfleet.cluster": "fw", "locustfleet.ttl_hours": 8}, name_prefix="fw-")
    client_for(tritonsim).post("/my/fwrules", {
        "rule": 'FROM any TO tag "locustfleet.cluster" = "other" ALLOW tcp PORT 22', "enabled": True,
        "description": "locustfleet other: SSH"})
    playbook(tritonsim, TEARDOWN, extra_vars={"cluster": "fw"})           # nothing idle or expired: all stay
    assert len(rules(tritonsim)) == 3
    run = playbook(tritonsim, TEARDOWN, extra_vars={"cluster": "fw", "teardown_all": True})
    assert [description for description, rule, enabled in rules(tritonsim)] == ["locustfleet other: SSH"]
    assert "firewall rules removed 2" in run.output


def test_check_mode_of_a_new_fleet_plans_the_rules_it_can_and_makes_none(tritonsim, playbook, tmp_path):
    """spawn_slaves --check: a master only planned has no address to find SSH's source with."""
    run = spawn_firewall(tritonsim, playbook, tmp_path, check=True, fleet_master_machine={"primaryIp": None})
    planned = run.result("Firewall rules of the fleet")["results"]
    assert [r["item"]["description"] for r in planned] == ["locustfleet fw: Locust workers to the master"]
    assert planned[0]["changed"] is True
    assert rules(tritonsim) == [] and writes(tritonsim) == {}

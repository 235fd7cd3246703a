"""tritonsim.firewall: the rule parser, FWAPI's canonical text and the policy compiler (pure)."""

import pytest

from tritonsim.firewall import RuleError, canonical_text, compile_policies, parse, rule_machines

VM_A = "0b2a3c4d-1111-2222-3333-444455556666"


@pytest.mark.parametrize("text, canonical", [
    ("FROM tag role = worker TO tag role=master ALLOW tcp PORT 5557",
     'FROM tag "role" = "worker" TO tag "role" = "master" ALLOW tcp PORT 5557'),
    ("from any to all vms allow tcp port 22",
     "FROM any TO all vms ALLOW tcp PORT 22"),
    ("FROM any TO (all vms) ALLOW tcp (PORT 80 AND PORT 22)",
     "FROM any TO all vms ALLOW tcp (PORT 22 AND PORT 80)"),
    ("FROM any TO tag www ALLOW tcp PORT all", 'FROM any TO tag "www" ALLOW tcp PORT all'),
    ("FROM any TO tag www ALLOW udp PORTS 53", 'FROM any TO tag "www" ALLOW udp PORT 53'),
    ("FROM any TO tag www ALLOW udp PORTS 2000-3000, 53",
     'FROM any TO tag "www" ALLOW udp PORTS 53, 2000 - 3000'),
    (f"FROM (tag b OR vm {VM_A} OR ip 10.0.0.2 OR subnet 10.0.0.0/24 OR tag a = \"x y\" "
     "OR tag a OR ip 10.0.0.10) TO any BLOCK tcp PORT 25",
     f'FROM (ip 10.0.0.10 OR ip 10.0.0.2 OR subnet 10.0.0.0/24 OR tag "a" OR tag "b" '
     f"OR vm {VM_A}) TO any BLOCK tcp PORT 25"),
    ('FROM (tag "a" = "2" OR tag a = 1) TO all vms ALLOW tcp PORT 1',
     'FROM (tag "a" = "1" OR tag "a" = "2") TO all vms ALLOW tcp PORT 1'),
    ('FROM any TO tag "triton.cns.services" = "web:80" ALLOW tcp PORT 80',
     'FROM any TO tag "triton.cns.services" = "web:80" ALLOW tcp PORT 80'),
    ('FROM any TO tag "say \\"hi\\" (now)" ALLOW tcp PORT 80',
     'FROM any TO tag "say \\"hi\\" \\(now\\)" ALLOW tcp PORT 80'),
    ("FROM ip 10.1.1.1 TO all vms ALLOW icmp (TYPE 8 CODE 0 AND TYPE 0)",
     "FROM ip 10.1.1.1 TO all vms ALLOW icmp (TYPE 0 AND TYPE 8 CODE 0)"),
    ("FROM any TO all vms ALLOW icmp TYPE all", "FROM any TO all vms ALLOW icmp TYPE all"),
])
def test_canonical_text(text, canonical):
    assert canonical_text(text) == canonical
    assert canonical_text(canonical) == canonical   # a fixed point: safe as an identity


@pytest.mark.parametrize("text, message", [
    ("FROM any TO any ALLOW tcp PORT 22", "rule does not affect VMs"),
    ("FROM ip 10.0.0.1 TO subnet 10.0.0.0/8 ALLOW tcp PORT 22", "rule does not affect VMs"),
    ("FROM foo TO all vms ALLOW tcp PORT 22", "Error at character 5: 'foo'"),
    ("From any TO all vms ALLOW tcp PORT 22", "Error at character 0: 'From', expected: 'FROM'"),
    ("FROM any TO all vms ALLOW tcp", "expected: 'PORT', 'PORTS', '('"),
    ("FROM any TO all vms PERMIT tcp PORT 1", "'PERMIT', expected: 'ALLOW', 'BLOCK'"),
    ("FROM any TO all vms ALLOW tcp PORT 70000", 'Port "70000" is invalid'),
    ("FROM any TO all vms ALLOW tcp PORTS 5-2", "cannot be less than the start"),
    ("FROM subnet 10.0.0.1/8 TO all vms ALLOW tcp PORT 1", "Subnet \"10.0.0.1/8\" is invalid"),
    ("FROM ip 10.0.0.300 TO all vms ALLOW tcp PORT 1", "IP address \"10.0.0.300\" is invalid"),
    ("FROM vm nope TO all vms ALLOW tcp PORT 1", 'UUID "nope" is invalid'),
    ("FROM tag a.b TO all vms ALLOW tcp PORT 1", "Error at character"),
    ("FROM (any OR tag x) TO all vms ALLOW tcp PORT 1", "Error at character 10: 'OR', expected: ')'"),
    ("FROM any TO all vms ALLOW tcp PORT 1 PRIORITY 5", "PRIORITY levels not supported"),
    ("", "non-empty"),
])
def test_invalid_rules(text, message):
    with pytest.raises(RuleError) as err:
        parse(text)
    assert message in str(err.value)


def _m(mid, ips, tags=None, fw=True):
    return {"id": mid, "ips": ips, "tags": tags or {}, "firewall_enabled": fw}


MASTER = _m("a", ["10.0.0.1"], {"role": "master"})
WORKER = _m("b", ["10.0.0.2"], {"role": "worker"}, fw=False)
OTHER = _m("c", ["10.0.0.3"])


def _rules(*texts, enabled=True):
    return [(parse(t), enabled) for t in texts]


def test_default_policy_and_tag_sources():
    rules = _rules('FROM tag role = worker TO tag role = master ALLOW tcp PORT 5557')
    policies = compile_policies(rules, [MASTER, WORKER, OTHER])
    assert set(policies) == {"a", "c"}          # only firewalled machines
    assert policies["a"] == {"inbound_allow": [{"proto": "tcp", "addrs": ["10.0.0.2/32"],
                                                "ports": [[5557, 5557]]}],
                             "outbound_block": []}
    assert policies["c"] == {"inbound_allow": [], "outbound_block": []}
    # the tag follows machines: give c the worker tag and it becomes a source
    tagged = dict(OTHER, tags={"role": "worker"})
    policies = compile_policies(rules, [MASTER, WORKER, tagged])
    assert policies["a"]["inbound_allow"][0]["addrs"] == ["10.0.0.2/32", "10.0.0.3/32"]


def test_disabled_rules_do_nothing():
    rules = _rules("FROM any TO all vms ALLOW tcp PORT 22", enabled=False)
    assert compile_policies(rules, [MASTER])["a"]["inbound_allow"] == []


def test_allow_beats_block_inbound_and_block_beats_allow_outbound():
    rules = _rules("FROM any TO all vms BLOCK tcp PORT 22",
                   "FROM ip 192.168.1.9 TO vm a ALLOW tcp PORT 22".replace(
                       "vm a", "tag role = master"),
                   "FROM all vms TO subnet 10.9.0.0/16 ALLOW udp PORTS 1-100",
                   "FROM tag role = master TO subnet 10.9.0.0/16 BLOCK udp PORT 53")
    policy = compile_policies(rules, [MASTER, WORKER])["a"]
    assert policy["inbound_allow"] == [{"proto": "tcp", "addrs": ["192.168.1.9/32"],
                                        "ports": [[22, 22]]}]
    assert policy["outbound_block"] == [{"proto": "udp", "addrs": ["10.9.0.0/16"],
                                         "ports": [[53, 53]]}]


def test_any_all_ports_icmp_and_vm_targets():
    rules = _rules("FROM any TO vm 0b2a3c4d-1111-2222-3333-444455556666 ALLOW tcp PORT all",
                   "FROM all vms TO all vms ALLOW icmp TYPE 8 CODE 0")
    vm = _m(VM_A, ["10.0.0.9"])
    policy = compile_policies(rules, [vm, WORKER])[VM_A]
    assert {"proto": "tcp", "addrs": ["0.0.0.0/0"], "ports": None} in policy["inbound_allow"]
    assert {"proto": "icmp", "addrs": ["10.0.0.2/32", "10.0.0.9/32"],
            "types": [[8, 0]]} in policy["inbound_allow"]


def test_tag_values_compare_as_text():
    rules = _rules("FROM any TO tag n = 5 ALLOW tcp PORT 1", "FROM any TO tag on = true "
                   "ALLOW tcp PORT 2")
    machine = _m("x", ["10.0.0.7"], {"n": 5, "on": True})
    ports = [e["ports"] for e in compile_policies(rules, [machine])["x"]["inbound_allow"]]
    assert ports == [[[1, 1]], [[2, 2]]]


def test_rule_machines_both_sides():
    rule = parse("FROM tag role = worker TO tag role = master ALLOW tcp PORT 1")
    assert [m["id"] for m in rule_machines(rule, [MASTER, WORKER, OTHER])] == ["a", "b"]


def test_iptables_rendering():
    from tritonsim.nspawn.firewall import render, render6
    policy = {"inbound_allow": [{"proto": "tcp", "addrs": ["10.0.0.2/32"], "ports": [[22, 22],
                                                                                     [80, 90]]},
                                {"proto": "icmp", "addrs": ["0.0.0.0/0"], "types": [[8, 0]]},
                                {"proto": "udp", "addrs": ["10.1.0.0/16"], "ports": None}],
              "outbound_block": [{"proto": "tcp", "addrs": ["10.9.9.9/32"], "ports": [[25, 25]]}]}
    assert render(policy).splitlines() == [
        "*filter", ":TRITONSIM-FW-IN - [0:0]", ":TRITONSIM-FW-OUT - [0:0]",
        "-A TRITONSIM-FW-IN -i lo -j ACCEPT",
        "-A TRITONSIM-FW-IN -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
        "-A TRITONSIM-FW-IN -s 10.0.0.2/32 -p tcp -m tcp --dport 22 -j ACCEPT",
        "-A TRITONSIM-FW-IN -s 10.0.0.2/32 -p tcp -m tcp --dport 80:90 -j ACCEPT",
        "-A TRITONSIM-FW-IN -s 0.0.0.0/0 -p icmp -m icmp --icmp-type 8/0 -j ACCEPT",
        "-A TRITONSIM-FW-IN -s 10.1.0.0/16 -p udp -j ACCEPT",
        "-A TRITONSIM-FW-IN -j DROP",
        "-A TRITONSIM-FW-OUT -o lo -j ACCEPT",
        "-A TRITONSIM-FW-OUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
        "-A TRITONSIM-FW-OUT -d 10.9.9.9/32 -p tcp -m tcp --dport 25 -j DROP",
        "COMMIT"]
    assert render(None).splitlines() == [
        "*filter", ":TRITONSIM-FW-IN - [0:0]", ":TRITONSIM-FW-OUT - [0:0]", "COMMIT"]
    assert "-A TRITONSIM-FW-IN -j DROP" in render6(policy)
    assert "DROP" not in render6(None)

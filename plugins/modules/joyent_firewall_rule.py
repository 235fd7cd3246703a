#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: locustfleet.triton contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: joyent_firewall_rule
short_description: Create, change or remove a Triton Cloud Firewall rule
version_added: 0.3.0
description:
  - Manages one rule of the account's Cloud Firewall. The rule is its own identity - a task finds the
    rule that means what O(rule) means. CloudAPI writes every rule back in a form of its own (keywords'
    case, quoted tag names and values, targets and ports sorted, C(PORTS 22, 80) as
    C((PORT 22 AND PORT 80))), so none of that counts as a difference. Values such as tag values keep
    their case. A rule the module's reader does not follow is compared word for word.
  - A rule applies only to machines whose firewall is enabled (C(firewall_enabled), see
    M(locustfleet.triton.joyent_machine) O(locustfleet.triton.joyent_machine#module:firewall_enabled)).
    Such a machine blocks all inbound traffic, except what an enabled rule allows, and allows all
    outbound traffic. Rules that select machines by tag follow the machines as they are tagged.
  - Running the task again changes nothing and makes no write call.
author:
  - locustfleet maintainers (@locustfleet)
options:
  rule:
    description:
      - The rule, in CloudAPI's rule language, for example
        C(FROM tag "locustfleet.cluster" = "demo" TO tag "locustfleet.cluster" = "demo" ALLOW tcp PORT 5557).
      - Targets are C(any), C(all vms), C(vm UUID), C(tag NAME), C(tag NAME = VALUE), C(ip ADDRESS) and
        C(subnet CIDR), several joined as C((A OR B)); a rule names a C(vm), a C(tag) or C(all vms) on at
        least one side. Protocols are C(tcp) and C(udp) with C(PORT N), C(PORTS A, B-C) or C(all ports), and
        C(icmp) with C(TYPE N).
      - CloudAPI checks the syntax; a rule it rejects fails the task with its message.
    type: str
    required: true
  state:
    description:
      - V(present) makes sure the rule exists with O(enabled) and O(description); V(absent) deletes it
        (every copy, if the same rule was made several times outside this module).
    type: str
    choices: [present, absent]
    default: present
  enabled:
    description:
      - Whether the rule is in force. Unlike CloudAPI, whose new rules are disabled, a rule this module
        creates is enabled unless told otherwise, since a rule is declared to be in force.
      - With O(state=present) on an existing rule, the rule is enabled or disabled to match.
    type: bool
    default: true
  description:
    description:
      - Free text shown with the rule. Left as it is when not given.
    type: str
extends_documentation_fragment:
  - locustfleet.triton.cloudapi
attributes:
  check_mode:
    support: full
    description: Reports what would change and writes nothing.
  diff_mode:
    support: full
    description: The rule's text, O(enabled) and O(description), before and after.
seealso:
  - module: locustfleet.triton.joyent_machine
"""

EXAMPLES = r"""
- name: Workers of the demo fleet may reach the master's Locust port, nobody else
  locustfleet.triton.joyent_firewall_rule:
    rule: FROM tag "locustfleet.cluster" = "demo" TO tag "locustfleet.cluster" = "demo" ALLOW tcp PORT 5557
    description: locustfleet demo - Locust workers to master

- name: SSH only from the office
  locustfleet.triton.joyent_firewall_rule:
    rule: FROM subnet 198.51.100.0/24 TO tag "locustfleet.cluster" = "demo" ALLOW tcp PORT 22
    description: locustfleet demo - SSH from the control node

- name: Switch a rule off without deleting it
  locustfleet.triton.joyent_firewall_rule:
    rule: FROM any TO all vms ALLOW tcp PORT 80
    enabled: false

- name: Remove a rule
  locustfleet.triton.joyent_firewall_rule:
    rule: FROM any TO all vms ALLOW tcp PORT 80
    state: absent
"""

RETURN = r"""
rule:
  description:
    - The rule after the task, as CloudAPI answered (as planned in check mode, without O(rule) id then
      for a new rule). Absent after O(state=absent).
  returned: when O(state=present)
  type: dict
  contains:
    id:
      description: The rule's UUID.
      type: str
      sample: 38de17c4-39e8-48c7-a168-0f58083de860
    rule:
      description: The rule text, as CloudAPI writes it.
      type: str
      sample: FROM tag "locustfleet.cluster" = "demo" TO tag "locustfleet.cluster" = "demo" ALLOW tcp PORT 5557
    enabled:
      description: Whether the rule is in force.
      type: bool
      sample: true
    description:
      description: The rule's description.
      type: str
      sample: locustfleet demo - Locust workers to master
    global:
      description: Whether the rule is one of the data center's global rules (which an account cannot change).
      type: bool
      sample: false
deleted_ids:
  description: UUIDs of the rules deleted (or that would be, in check mode).
  returned: always
  type: list
  elements: str
  sample: ["38de17c4-39e8-48c7-a168-0f58083de860"]
"""

from ansible_collections.locustfleet.triton.plugins.module_utils._base import (
    AnsibleModule, TritonModule, cloudapi_argument_spec)
from ansible_collections.locustfleet.triton.plugins.module_utils._client import CloudAPIError, delete_if_present
from ansible_collections.locustfleet.triton.plugins.module_utils._fwrules import (
    RuleTextProblem, find_rules, plan_rule, rule_key)


class JoyentFirewallRule(TritonModule):

    @classmethod
    def define_module(cls):
        argument_spec = cloudapi_argument_spec()
        argument_spec.update(
            rule=dict(type="str", required=True),
            state=dict(type="str", choices=["present", "absent"], default="present"),
            enabled=dict(type="bool", default=True),
            description=dict(type="str"),
        )
        return AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)

    def run(self):
        params = self.module.params
        self.result["deleted_ids"] = []
        try:
            rule_key(params["rule"])
        except RuleTextProblem as exc:
            self.fail(str(exc))
        existing = find_rules(self.list_rules(), params["rule"])
        plan = plan_rule(existing, params["rule"], params["state"], params["enabled"], params["description"])
        self.report_diff(plan.before or {}, plan.after or {})
        if plan.changed:
            self.mark_changed()
        if plan.op == "delete":
            self.result["deleted_ids"] = [rule["id"] for rule in plan.targets]
        if self.module.check_mode or not plan.changed:
            if params["state"] == "present":
                self.result["rule"] = dict(plan.targets[0], **plan.after) if plan.targets else plan.after
            return
        try:
            if plan.op == "create":
                self.result["rule"] = self.create(plan.body)
            elif plan.op == "update":
                self.result["rule"] = self.client.post(self.rule_path(plan.targets[0]["id"]), plan.body,
                                                       idempotent=True, expect=dict)
            else:
                for rule in plan.targets:
                    delete_if_present(self.client, self.rule_path(rule["id"]))
        except CloudAPIError as exc:
            self.fail_cloudapi(exc, "rule %r" % params["rule"])

    def list_rules(self):
        return self.client.get(self.client.account_path("fwrules"), expect=list)

    def rule_path(self, rule_id):
        return self.client.account_path("fwrules", rule_id)

    def create(self, body):
        try:
            return self.client.post(self.client.account_path("fwrules"), body, expect=dict)
        except CloudAPIError as exc:
            if not exc.maybe_committed:
                raise
            # The answer was lost: the rule may exist now, and a second create would duplicate it.
            made = find_rules(self.list_rules(), body["rule"])
            if not made:
                raise
            return made[0]


def main():
    JoyentFirewallRule.main()


if __name__ == "__main__":
    main()

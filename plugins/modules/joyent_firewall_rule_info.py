#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: locustfleet.triton contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: joyent_firewall_rule_info
short_description: List the Cloud Firewall rules of a Triton account
version_added: 0.3.0
description:
  - Lists the account's Cloud Firewall rules (CloudAPI ListFirewallRules), optionally only those whose
    description starts with a given text, for example the rules a fleet playbook made for one cluster.
author:
  - locustfleet maintainers (@locustfleet)
options:
  description_prefix:
    description:
      - Only the rules whose description starts with this text (case-sensitive). Rules without a
        description never match a non-empty prefix.
    type: str
  include_global:
    description:
      - Also list the data center's global rules, which the account sees but cannot change.
    type: bool
    default: false
extends_documentation_fragment:
  - locustfleet.triton.cloudapi
attributes:
  check_mode:
    support: full
    description: The module only reads.
  diff_mode:
    support: none
    description: Nothing changes, so there is nothing to diff.
seealso:
  - module: locustfleet.triton.joyent_firewall_rule
"""

EXAMPLES = r"""
- name: The rules spawn_slaves.yml made for the demo fleet
  locustfleet.triton.joyent_firewall_rule_info:
    description_prefix: "locustfleet demo:"
  register: demo_rules

- name: Remove them
  locustfleet.triton.joyent_firewall_rule:
    rule: "{{ item.rule }}"
    state: absent
  loop: "{{ demo_rules.rules }}"
"""

RETURN = r"""
rules:
  description: The rules, as CloudAPI lists them, sorted by their text.
  returned: always
  type: list
  elements: dict
  contains:
    id:
      description: The rule's UUID.
      type: str
      sample: 38de17c4-39e8-48c7-a168-0f58083de860
    rule:
      description: The rule text, as CloudAPI writes it.
      type: str
      sample: FROM ip 198.51.100.7 TO tag "locustfleet.cluster" = "demo" ALLOW tcp PORT 22
    enabled:
      description: Whether the rule is in force.
      type: bool
    description:
      description: The rule's description (empty when it has none).
      type: str
    global:
      description: Whether the rule is a global rule of the data center.
      type: bool
"""

from ansible_collections.locustfleet.triton.plugins.module_utils._base import (
    AnsibleModule, TritonModule, cloudapi_argument_spec)


class JoyentFirewallRuleInfo(TritonModule):

    @classmethod
    def define_module(cls):
        argument_spec = cloudapi_argument_spec()
        argument_spec.update(
            description_prefix=dict(type="str"),
            include_global=dict(type="bool", default=False),
        )
        return AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)

    def run(self):
        params = self.module.params
        prefix = params["description_prefix"] or ""
        rules = self.client.get(self.client.account_path("fwrules"), expect=list)
        selected = [dict(rule, description=rule.get("description") or "") for rule in rules
                    if (params["include_global"] or not rule.get("global"))
                    and (rule.get("description") or "").startswith(prefix)]
        self.result["rules"] = sorted(selected, key=lambda rule: str(rule.get("rule")))


def main():
    JoyentFirewallRuleInfo.main()


if __name__ == "__main__":
    main()

#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: locustfleet.triton contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: joyent_policy
short_description: Create, update or delete a Triton RBAC policy
version_added: 0.3.0
description:
  - Manages one RBAC policy of the account, found by O(name) (C(/:account/policies/:name)). A policy is a
    list of rules in CloudAPI's rule language (Aperture), such as V(CAN getmachine and stopmachine). Actions
    are CloudAPI's route names in lower case (C(getmachine), C(stopmachine), C(deletemachine), C(listmachines), ...).
  - A policy grants nothing by itself - a role (M(locustfleet.triton.joyent_role)) gives it to sub-users, and role
    tags on a resource make the role apply to that resource.
  - Running a task again changes nothing and makes no write call.
author:
  - locustfleet maintainers (@locustfleet)
options:
  name:
    description:
      - Name of the policy (letters, digits, C(.), C(_) or C(-)).
    type: str
    required: true
  rules:
    description:
      - The policy's rules, as the complete list. Required to create the policy; when omitted for an existing
        policy its rules are left as they are.
      - The order does not matter, and rules are compared after collapsing runs of white space, so
        V(CAN  getmachine) and V(CAN getmachine) are the same rule.
    type: list
    elements: str
  description:
    description:
      - Description of the policy. When omitted, the current one is left as it is.
    type: str
  state:
    description:
      - V(present) makes sure the policy exists with these O(rules); V(absent) deletes it.
    type: str
    choices: [present, absent]
    default: present
extends_documentation_fragment:
  - locustfleet.triton.cloudapi
attributes:
  check_mode:
    support: full
    description: Reports what would change and writes nothing.
  diff_mode:
    support: full
    description: The name, rules and description before and after.
seealso:
  - module: locustfleet.triton.joyent_role
  - module: locustfleet.triton.joyent_user
"""

EXAMPLES = r"""
- name: Allow only looking at and stopping machines (where a role of the policy applies)
  locustfleet.triton.joyent_policy:
    name: demo-watcher
    description: idle watcher of cluster demo
    rules:
      - CAN getmachine and stopmachine

- name: Delete the policy
  locustfleet.triton.joyent_policy:
    name: demo-watcher
    state: absent
"""

RETURN = r"""
policy:
  description: The policy after the task (as planned in check mode).
  returned: when O(state=present)
  type: dict
  contains:
    id:
      description: UUID of the policy (null in check mode for a policy that does not exist yet).
      type: str
      sample: 8b0e6d2c-3e0f-4a55-9d7f-1c9f0e1f6a21
    name:
      description: Name.
      type: str
      sample: demo-watcher
    rules:
      description: Rules, as CloudAPI stores them.
      type: list
      elements: str
      sample: ["CAN getmachine and stopmachine"]
    description:
      description: Description (null when there is none).
      type: str
      sample: idle watcher of cluster demo
"""

from ansible_collections.locustfleet.triton.plugins.module_utils._base import (
    AnsibleModule, TritonModule, cloudapi_argument_spec)
from ansible_collections.locustfleet.triton.plugins.module_utils._client import delete_if_present, get_or_none
from ansible_collections.locustfleet.triton.plugins.module_utils._rbac import name_problem


def _rule_key(rule):
    return " ".join(str(rule).split())


def same_rules(current, wanted):
    return sorted(_rule_key(r) for r in current or []) == sorted(_rule_key(r) for r in wanted or [])


class JoyentPolicy(TritonModule):

    @classmethod
    def define_module(cls):
        argument_spec = cloudapi_argument_spec()
        argument_spec.update(
            name=dict(type="str", required=True),
            rules=dict(type="list", elements="str"),
            description=dict(type="str"),
            state=dict(type="str", choices=["present", "absent"], default="present"),
        )
        return AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)

    def run(self):
        params = self.module.params
        name = params["name"]
        problem = name_problem("name", name)
        if problem:
            self.fail(problem)
        rules = params["rules"]
        if rules is not None:
            for index, rule in enumerate(rules):
                if not _rule_key(rule):
                    self.fail("rules[%d] is empty: a rule reads like 'CAN getmachine and stopmachine'" % index)
            if params["state"] == "present" and not rules:
                self.fail("rules must hold at least one rule (a policy without rules grants nothing)")
        path = self.client.account_path("policies", name)
        policy = self.call("looking up policy name '%s'" % name, get_or_none, self.client, path)
        before = self.view(policy)
        check = self.module.check_mode
        if params["state"] == "absent":
            self.report_diff(before, {})
            if policy:
                self.mark_changed()
                if not check:
                    self.call("deleting policy name '%s'" % name, delete_if_present, self.client, path)
            return
        if not policy:
            if rules is None:
                self.fail("rules are required to create the policy name '%s'" % name)
            body = {"name": name, "rules": list(rules)}
            if params["description"] is not None:
                body["description"] = params["description"]
            self.mark_changed()
            policy = dict(body, id=None)
            if not check:
                policy = self.call("creating policy name '%s' with rules %s" % (name, list(rules)), self.client.post,
                                   self.client.account_path("policies"), body, expect=dict)
        else:
            body = {}
            if rules is not None and not same_rules(policy.get("rules"), rules):
                body["rules"] = list(rules)
            if params["description"] is not None and (policy.get("description") or "") != params["description"]:
                body["description"] = params["description"]
            if body:
                self.mark_changed()
                if check:
                    policy = dict(policy, **body)
                else:
                    policy = self.call("updating policy name '%s' (%s)" % (name, ", ".join(
                        "%s %s" % (k, body[k]) for k in sorted(body))), self.client.post, path,
                        dict(body, name=name), idempotent=True, expect=dict)
        self.report_diff(before, self.view(policy))
        self.result["policy"] = {"id": policy.get("id"), "name": policy.get("name"),
                                 "rules": list(policy.get("rules") or []), "description": policy.get("description")}

    @staticmethod
    def view(policy):
        if not policy:
            return {}
        return {"name": policy.get("name"), "rules": sorted(policy.get("rules") or []),
                "description": policy.get("description")}


def main():
    JoyentPolicy.main()


if __name__ == "__main__":
    main()

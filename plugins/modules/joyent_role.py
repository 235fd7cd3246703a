#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: locustfleet.triton contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: joyent_role
short_description: Create, update or delete a Triton RBAC role
version_added: 0.3.0
description:
  - Manages one RBAC role of the account, found by O(name) (C(/:account/roles/:name)). A role gives its
    O(policies) to its O(members); it applies to a resource (a machine, say) that carries the role's name as a
    role tag (O(locustfleet.triton.joyent_machine#module:role_tags)).
  - Every member is made a default member, so the role is active for the sub-user without asking for it
    (no C(as-role)).
  - Running a task again changes nothing and makes no write call.
author:
  - locustfleet maintainers (@locustfleet)
options:
  name:
    description:
      - Name of the role (letters, digits, C(.), C(_) or C(-)).
    type: str
    required: true
  policies:
    description:
      - Names of the policies of the role, as the complete set (M(locustfleet.triton.joyent_policy)). When omitted,
        the role's policies are left as they are (a new role then has none).
    type: list
    elements: str
  members:
    description:
      - Logins of the sub-users of the role, as the complete set; each is a default member
        (M(locustfleet.triton.joyent_user)). When omitted, the role's members are left as they are (a new role then
        has none). A member that is not a default member yet is made one.
    type: list
    elements: str
  state:
    description:
      - V(present) makes sure the role exists with these O(policies) and O(members); V(absent) deletes it.
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
    description: The name, policies, members and default members before and after.
seealso:
  - module: locustfleet.triton.joyent_policy
  - module: locustfleet.triton.joyent_user
  - module: locustfleet.triton.joyent_machine
"""

EXAMPLES = r"""
- name: The watcher's role - its user gets the stop-only policy wherever the role is a role tag
  locustfleet.triton.joyent_role:
    name: demo-watcher
    policies: [demo-watcher]
    members: [demo-watcher]

- name: Tag the cluster's machines with the role
  locustfleet.triton.joyent_machine:
    count_tags: {locustfleet.cluster: demo, locustfleet.role: worker}
    count: 4
    role_tags: [demo-watcher]
    image: debian-12
    package: g1-medium

- name: Delete the role
  locustfleet.triton.joyent_role:
    name: demo-watcher
    state: absent
"""

RETURN = r"""
role:
  description: The role after the task (as planned in check mode).
  returned: when O(state=present)
  type: dict
  contains:
    id:
      description: UUID of the role (null in check mode for a role that does not exist yet).
      type: str
      sample: 0c6e7f1a-5d7b-4b8e-9a2f-7f3e2d1c0b9a
    name:
      description: Name.
      type: str
      sample: demo-watcher
    policies:
      description: Names of its policies, sorted.
      type: list
      elements: str
      sample: ["demo-watcher"]
    members:
      description: Logins of its members, sorted.
      type: list
      elements: str
      sample: ["demo-watcher"]
    default_members:
      description: Logins of its default members, sorted.
      type: list
      elements: str
      sample: ["demo-watcher"]
"""

from ansible_collections.locustfleet.triton.plugins.module_utils._base import (
    AnsibleModule, TritonModule, cloudapi_argument_spec)
from ansible_collections.locustfleet.triton.plugins.module_utils._client import delete_if_present, get_or_none
from ansible_collections.locustfleet.triton.plugins.module_utils._rbac import (
    LOGIN_RE, NAME_RE, name_problem, role_body, role_view)


class JoyentRole(TritonModule):

    @classmethod
    def define_module(cls):
        argument_spec = cloudapi_argument_spec()
        argument_spec.update(
            name=dict(type="str", required=True),
            policies=dict(type="list", elements="str"),
            members=dict(type="list", elements="str"),
            state=dict(type="str", choices=["present", "absent"], default="present"),
        )
        return AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)

    def check_params(self):
        params = self.module.params
        problem = name_problem("name", params["name"])
        for option, pattern, what in (("policies", None, "a name"), ("members", LOGIN_RE, "a login")):
            for index, value in enumerate(params[option] or []):
                problem = problem or name_problem("%s[%d]" % (option, index), value, pattern or NAME_RE, what)
            if params[option] and len(set(params[option])) != len(params[option]):
                problem = problem or "%s lists a name twice: %s" % (option, params[option])
        if problem:
            self.fail(problem)

    def run(self):
        params = self.module.params
        self.check_params()
        name = params["name"]
        path = self.client.account_path("roles", name)
        role = self.call("looking up role name '%s'" % name, get_or_none, self.client, path)
        before = role_view(role) if role else {}
        before.pop("id", None)
        check = self.module.check_mode
        if params["state"] == "absent":
            self.report_diff(before, {})
            if role:
                self.mark_changed()
                if not check:
                    self.call("deleting role name '%s'" % name, delete_if_present, self.client, path)
            return
        policies, members = params["policies"], params["members"]
        body = role_body(name, policies, members)
        if not role:
            self.mark_changed()
            view = {"id": None, "name": name, "policies": sorted(policies or []), "members": sorted(members or []),
                    "default_members": sorted(members or [])}
            if not check:
                view = role_view(self.call("creating role name '%s' (policies %s, members %s)" % (
                    name, policies or [], members or []), self.client.post, self.client.account_path("roles"), body,
                    expect=dict))
        else:
            view = role_view(role)
            wanted = dict(view)
            if policies is not None:
                wanted["policies"] = sorted(policies)
            if members is not None:
                wanted["members"] = wanted["default_members"] = sorted(members)
            if wanted != view:
                self.mark_changed()
                # Every field is sent: CloudAPI's UpdateRole replaces what it is given.
                body = role_body(name, wanted["policies"], wanted["members"])
                if members is None:
                    # Keep the default flag of members this task leaves alone.
                    body["members"] = [{"type": "subuser", "login": m, "default": m in view["default_members"]}
                                       for m in wanted["members"]]
                view = wanted
                if not check:
                    view = role_view(self.call("updating role name '%s' (policies %s, members %s)" % (
                        name, wanted["policies"], wanted["members"]), self.client.post, path, body,
                        idempotent=True, expect=dict))
        after = dict(view)
        after.pop("id", None)
        self.report_diff(before, after)
        self.result["role"] = view


def main():
    JoyentRole.main()


if __name__ == "__main__":
    main()

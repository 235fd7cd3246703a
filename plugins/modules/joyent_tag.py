#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: locustfleet.triton contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: joyent_tag
short_description: Set or remove tags of Triton machines
version_added: 0.1.0
description:
  - Adds, changes, replaces or removes the tags of one Triton machine, found by O(id) or O(name),
    or of every machine carrying the tags in O(filters).
  - Only what differs is written, so running a task again changes nothing and makes no write call.
    Several machines are changed in parallel, within the client's O(rate_limit).
  - Tag values keep their type (string, number or boolean). They are compared the way CloudAPI
    matches tags, so V(8) and V("8"), or V(true) and V("true"), count as equal; a change of type alone
    is therefore not a change, and a value that does change is written with the type given in O(tags).
author:
  - locustfleet maintainers (@locustfleet)
options:
  id:
    description:
      - UUID of the machine whose tags to manage.
      - Exactly one of O(id), O(name) and O(filters) is required.
    type: str
  name:
    description:
      - Name (alias) of the machine whose tags to manage. The task fails when no live machine, or
        more than one, has this name.
    type: str
  filters:
    description:
      - Manage the tags of every machine that carries all of these tags with these values, of the same
        JSON type (the string V("true") does not select a machine tagged with the boolean V(true); V(8)
        and V(8.0) are the same number). CloudAPI filters first with C(tag.NAME=VALUE), one ListMachines
        call per 1000 machines.
      - At least one tag is required. No matching machine is not an error.
    type: dict
  tags:
    description:
      - Tags, as a dictionary of names to values. Values must be strings, numbers or booleans.
      - With O(state=present), these tags are set (others are left alone unless O(purge=true)). A tag
        whose value differs in JSON type is changed (V("8") becomes V(8)); V(8) and V(8.0) are equal.
        M(locustfleet.triton.joyent_machine) compares tags the same way.
      - With O(state=absent), the tags with these names are removed whatever their current value; the
        values given here are ignored and may be null (V(~)).
      - Tags named C(account), C(machine), C(uuid), C(owner_uuid), C(context) or C(image) cannot be set,
        because CloudAPI takes them for request parameters.
    type: dict
    required: true
  state:
    description:
      - V(present) makes sure the machines carry O(tags); V(absent) removes the tags named in O(tags).
    type: str
    choices: [present, absent]
    default: present
  purge:
    description:
      - With O(state=present), make O(tags) the complete set of tags, removing all others
        (ReplaceMachineTags; an empty O(tags) removes every tag).
      - Not allowed with O(state=absent).
    type: bool
    default: false
  wait:
    description:
      - CloudAPI applies tag changes asynchronously. With V(true), wait until ListMachineTags shows every
        change before returning.
    type: bool
    default: false
  wait_timeout:
    description:
      - Seconds the whole task may take, counted from its start (at least 1); it also bounds CloudAPI
        retries.
    type: int
    default: 120
  poll_interval:
    description:
      - Seconds between two looks at ListMachineTags while waiting.
    type: float
    default: 1.0
    version_added: 0.2.0
  parallelism:
    description:
      - How many machines are changed at the same time.
    type: int
    default: 10
extends_documentation_fragment:
  - locustfleet.triton.cloudapi
attributes:
  check_mode:
    support: full
    description: Reports what would change and writes nothing.
  diff_mode:
    support: full
    description:
      - The tags before and after. For O(filters), keyed by machine name and limited to the machines
        that change.
seealso:
  - module: locustfleet.triton.joyent_machine_info
"""

EXAMPLES = r"""
- name: Mark a machine as a worker of the demo cluster (other tags stay)
  locustfleet.triton.joyent_tag:
    name: demo-worker-1
    tags:
      locustfleet.cluster: demo
      locustfleet.role: worker
      slots: 8
      spot: true

- name: Drain every worker of the cluster, and wait until CloudAPI shows it
  locustfleet.triton.joyent_tag:
    filters:
      locustfleet.cluster: demo
      locustfleet.role: worker
    tags:
      drain: true
    wait: true
    parallelism: 20

- name: Remove tags, whatever their values
  locustfleet.triton.joyent_tag:
    id: 1f3c1c64-0a6e-4bb1-8e1b-8e0b4a6fd8a5
    tags:
      drain: ~
      slots: ~
    state: absent

- name: Replace the whole tag set of a machine
  locustfleet.triton.joyent_tag:
    name: demo-master
    tags:
      locustfleet.cluster: demo
      locustfleet.role: master
    purge: true
  register: tagged

- name: Show the machines that changed
  ansible.builtin.debug:
    var: tagged.changed_ids
"""

RETURN = r"""
machines:
  description:
    - The targeted machines, sorted by name, with their tags after the change (as planned in check mode,
      as CloudAPI answered the write, or as observed when O(wait=true)).
  returned: always
  type: list
  elements: dict
  contains:
    id:
      description: Machine UUID.
      type: str
      sample: 1f3c1c64-0a6e-4bb1-8e1b-8e0b4a6fd8a5
    name:
      description: Machine name (alias).
      type: str
      sample: demo-worker-1
    state:
      description: CloudAPI state.
      type: str
      sample: running
    primaryIp:
      description: Primary IP address, once provisioned.
      type: str
      sample: 10.88.88.26
    ips:
      description: All IP addresses.
      type: list
      elements: str
    tags:
      description: Tags, with their JSON types.
      type: dict
      sample: {"locustfleet.role": "worker"}
    image:
      description: Image UUID.
      type: str
    package:
      description: Package name.
      type: str
      sample: g1-small
    created:
      description: Creation time (ISO 8601).
      type: str
    memory:
      description: Memory in MiB.
      type: int
    brand:
      description: Machine brand.
      type: str
    networks:
      description: Network UUIDs.
      type: list
      elements: str
    firewall_enabled:
      description: Whether the cloud firewall is on.
      type: bool
changed_ids:
  description: UUIDs of the machines whose tags changed (or would change, in check mode).
  returned: always
  type: list
  elements: str
  sample: ["1f3c1c64-0a6e-4bb1-8e1b-8e0b4a6fd8a5"]
errors:
  description: One entry per machine whose tags could not be changed; the task then fails.
  returned: on failure
  type: list
  elements: dict
  contains:
    id:
      description: Machine UUID.
      type: str
    name:
      description: Machine name.
      type: str
    msg:
      description: What went wrong, in one line.
      type: str
    error:
      description: CloudAPI's status, code, message and request id, when CloudAPI answered.
      type: dict
"""

from ansible_collections.locustfleet.triton.plugins.module_utils._base import (
    AnsibleModule, TritonModule, cloudapi_argument_spec)
from ansible_collections.locustfleet.triton.plugins.module_utils._client import CloudAPIError
from ansible_collections.locustfleet.triton.plugins.module_utils._machines import (
    get_machine, is_uuid, list_machines, summarize)
from ansible_collections.locustfleet.triton.plugins.module_utils._parallel import MAX_LISTED_ERRORS, BatchError, run_parallel
from ansible_collections.locustfleet.triton.plugins.module_utils._tags import (
    plan_tags, plan_visible, reserved_name_problem, tag_value_problem)
from ansible_collections.locustfleet.triton.plugins.module_utils._waiters import WaitTimeout, wait_until


class JoyentTag(TritonModule):

    @classmethod
    def define_module(cls):
        argument_spec = cloudapi_argument_spec()
        argument_spec.update(
            id=dict(type="str"),
            name=dict(type="str"),
            filters=dict(type="dict"),
            tags=dict(type="dict", required=True),
            state=dict(type="str", choices=["present", "absent"], default="present"),
            purge=dict(type="bool", default=False),
            wait=dict(type="bool", default=False),
            wait_timeout=dict(type="int", default=120),
            poll_interval=dict(type="float", default=1.0),
            parallelism=dict(type="int", default=10),
        )
        return AnsibleModule(
            argument_spec=argument_spec,
            mutually_exclusive=[["id", "name", "filters"]],
            required_one_of=[["id", "name", "filters"]],
            supports_check_mode=True,
        )

    def run(self):
        params = self.module.params
        self.result.update(machines=[], changed_ids=[])
        self.check_params()
        machines = self.targets()
        plans = [(machine, plan_tags(machine.get("tags"), params["tags"], params["state"], params["purge"]))
                 for machine in machines]
        todo = [(machine, plan) for machine, plan in plans if plan.changed]
        after, errors = {}, []
        if todo and not self.module.check_mode:
            after, errors = self.apply_all(todo)
        else:
            after = {machine["id"]: plan.after for machine, plan in todo}
        done = [(machine, plan) for machine, plan in todo if machine["id"] in after]
        if done:
            self.mark_changed()
        self.result["changed_ids"] = [machine["id"] for machine, plan in done]
        self.result["machines"] = [self.summary(machine, after.get(machine["id"], plan.before))
                                   for machine, plan in plans]
        if self.module._diff:
            self.result["diff"] = self.diff(plans, done)
        if errors:
            self.fail(self.error_line(errors, len(todo)), errors=errors)

    def check_params(self):
        params = self.module.params
        if params["purge"] and params["state"] == "absent":
            self.fail("purge=true is for state=present (it makes tags the complete set); "
                      "state=absent removes only the listed tags")
        if params["state"] == "present":
            problem = tag_value_problem(params["tags"]) or reserved_name_problem(params["tags"])
            if problem:
                self.fail(problem)
        if params["filters"] is not None:
            if not params["filters"]:
                self.fail("filters must name at least one tag (an empty filter would select every machine)")
            problem = tag_value_problem(params["filters"], what="filter")
            if problem:
                self.fail(problem)
        if params["id"] is not None and not is_uuid(params["id"]):
            self.fail("id '%s' is not a machine UUID (use name to find a machine by name)" % params["id"])

    def targets(self):
        params = self.module.params
        if params["filters"] is not None:
            return list_machines(self.client, tags=params["filters"])
        return [get_machine(self.client, params["id"] or params["name"])]

    # -- writing ----------------------------------------------------------------------------------------

    def apply_all(self, todo):
        """Apply every plan, ``parallelism`` machines at a time: ({id: tags after}, [error entries])."""
        try:
            results = run_parallel(lambda item: self.apply(*item), todo, self.module.params["parallelism"])
            return {machine["id"]: tags for (machine, plan), tags in zip(todo, results)}, []
        except BatchError as exc:
            after = {machine["id"]: tags for (machine, plan), tags in exc.done}
            errors = [dict({"id": machine["id"], "name": machine.get("name"), "msg": _one_line(error)},
                           **({"error": error.to_dict()} if isinstance(error, CloudAPIError) else {}))
                      for (machine, plan), error in exc.failures]
            return after, errors

    def apply(self, machine, plan):
        """Write one machine's tags (and wait when asked); returns its tags after the change."""
        client = self.client
        path = client.account_path("machines", machine["id"], "tags")
        tags = plan.after
        if plan.op == "add":
            # Merging the same values again is harmless, so a lost answer may be retried.
            tags = client.post(path, plan.body, idempotent=True, expect=dict)
        elif plan.op == "replace":
            tags = client.put(path, plan.body, expect=dict)
        elif plan.op == "delete_all":
            client.delete(path)
        else:
            for key in plan.body:
                try:
                    client.delete(client.account_path("machines", machine["id"], "tags", key))
                except CloudAPIError as exc:
                    if exc.status != 404:  # already gone: that is what was asked
                        raise
        if self.module.params["wait"]:
            tags = self.wait_visible(plan, path)
        return tags

    def wait_visible(self, plan, path):
        params = self.module.params
        observed = {}

        def probe():
            observed.clear()
            observed.update(self.client.get(path, expect=dict))
            return observed if plan_visible(plan, observed, params["tags"], params["state"], params["purge"]) else None

        return wait_until(probe, self.deadline, params["poll_interval"], lambda: WaitTimeout(
            "tag change not visible in ListMachineTags after wait_timeout=%d s; last seen tags %s"
            % (params["wait_timeout"], _compact(observed))))
    # -- results ----------------------------------------------------------------------------------------

    @staticmethod
    def summary(machine, tags):
        summary = summarize(machine)
        summary["tags"] = dict(tags)
        return summary

    def diff(self, plans, done):
        if self.module.params["filters"] is None:
            machine, plan = plans[0]
            changed = bool(done)
            return {"before": {"tags": plan.before}, "after": {"tags": plan.after if changed else plan.before}}
        names = [machine.get("name") or machine["id"] for machine, plan in done]
        before, after = {}, {}
        for machine, plan in done:
            key = machine.get("name") or machine["id"]
            if names.count(key) > 1:
                key = "%s (%s)" % (key, machine["id"])
            before[key] = {"tags": plan.before}
            after[key] = {"tags": plan.after}
        return {"before": before, "after": after}

    @staticmethod
    def error_line(errors, attempted):
        def one(entry):
            return "%s (%s): %s" % (entry["name"], entry["id"], entry["msg"])

        listed = "; ".join(one(entry) for entry in errors[:MAX_LISTED_ERRORS])
        if len(errors) > MAX_LISTED_ERRORS:
            listed += "; and %d more (see errors)" % (len(errors) - MAX_LISTED_ERRORS)
        if attempted == 1:
            return "tags of machine %s" % listed
        return "tags of %d of %d machines not changed: %s" % (len(errors), attempted, listed)


def _one_line(exc):
    """The error with the reasons CloudAPI gave for a ValidationFailed (which its message leaves out)."""
    details = [e.get("message") for e in getattr(exc, "errors", None) or [] if isinstance(e, dict) and e.get("message")]
    if not details:
        return str(exc)
    return "%s (%s)" % (exc, "; ".join(" ".join(str(d).split()) for d in details))


def _compact(tags):
    return "{%s}" % ", ".join("%s: %r" % (k, tags[k]) for k in sorted(tags, key=str))


def main():
    JoyentTag.main()


if __name__ == "__main__":
    main()

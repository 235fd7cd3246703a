#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: locustfleet.triton contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: joyent_machine
short_description: Create, start, stop, restart and delete Triton machines, one or a whole fleet
version_added: 0.1.0
description:
  - Manages one machine (by O(name) or O(id)) or a fleet of exactly O(count) machines identified by
    O(count_tags).
  - Fleets are created and deleted in parallel. Every create carries a unique name and a lost
    create response is reconciled by looking that name up before anything is sent again, so
    retries never leave duplicates.
  - Waiting polls ListMachines filtered by the fleet's tags (one call per poll for the whole fleet),
    and every request goes through a rate limiter that matches CloudAPI's throttle.
  - O(wait_timeout) is one deadline for the whole task, creates, retries and waits included.
author:
  - locustfleet maintainers (@locustfleet)
options:
  name:
    description:
      - Name of a single machine. Found by exact name; created with this name when missing.
      - Mutually exclusive with O(id) and O(count).
    type: str
  id:
    description:
      - UUID of an existing single machine.
    type: str
  state:
    description:
      - V(present) makes sure the machine(s) exist; a new machine is started by CloudAPI.
      - V(running) and V(stopped) also start or stop them; V(restarted) reboots them.
      - V(absent) deletes the machine, or every machine of the fleet when O(count_tags) is given.
    type: str
    default: present
    choices: [present, running, stopped, restarted, absent]
  image:
    description:
      - Image for new machines - a UUID, a name (the newest active image of that name) or
        C(name@version).
    type: str
  package:
    description:
      - Package (size) for new machines, by UUID or name.
    type: str
  networks:
    description:
      - Networks for new machines, by UUID or name. CloudAPI's default networks when omitted.
    type: list
    elements: str
  tags:
    description:
      - Tags to set on new machines and to merge into existing ones. Values keep their type
        (string, number or boolean).
    type: dict
  metadata:
    description:
      - Customer metadata for new machines (readable inside with C(mdata-get)).
    type: dict
  user_script:
    description:
      - Script that new machines run at first boot (the C(user-script) metadata key).
    type: str
  firewall_enabled:
    description:
      - Enable or disable the cloud firewall; applied to new and existing machines.
    type: bool
  count:
    description:
      - Exact number of live machines that carry O(count_tags). The shortfall is created and the
        surplus deleted (stopped and provisioning machines first, then the highest-numbered ones).
      - V(0) deletes the whole fleet.
    type: int
  count_tags:
    description:
      - Tags that identify the fleet's machines; every new machine carries them. Required with
        O(count), and with O(state=absent) when neither O(name) nor O(id) is given.
    type: dict
  name_prefix:
    description:
      - Fleet machines are named C(<name_prefix><n>) with the lowest free numbers.
      - Defaults to the values of O(count_tags) joined with C(-), plus C(-).
    type: str
  parallelism:
    description:
      - How many creates, deletes or actions run at once.
    type: int
    default: 10
  replace_failed:
    description:
      - Delete machines that end up C(failed) and create replacements, within O(wait_timeout).
      - When false, failed machines are reported in RV(failed_ids) and the task fails.
    type: bool
    default: false
  wait:
    description:
      - Wait until every machine reached the requested state (or is gone).
    type: bool
    default: true
  wait_timeout:
    description:
      - Seconds the whole task may take.
    type: int
    default: 600
  poll_interval:
    description:
      - Seconds between two polls while waiting.
    type: float
    default: 1.0
extends_documentation_fragment:
  - locustfleet.triton.cloudapi
attributes:
  check_mode:
    support: full
    description: Reports what would change without any write call.
  diff_mode:
    support: full
    description: Shows machine names, states and tags before and after.
"""

EXAMPLES = r"""
- name: Exactly six Locust workers for the demo cluster
  locustfleet.triton.joyent_machine:
    count: 6
    count_tags:
      locustfleet.cluster: demo
      locustfleet.role: worker
    image: debian-12
    package: g1-medium
    networks: [sim-public]
    metadata:
      locust-master: 10.0.0.5
  register: workers

- name: One master, started if it was stopped
  locustfleet.triton.joyent_machine:
    name: demo-master
    state: running
    image: debian-12@20250115
    package: g1-small
    tags:
      locustfleet.cluster: demo
      locustfleet.role: master

- name: Stop every worker of the cluster
  locustfleet.triton.joyent_machine:
    count_tags: {locustfleet.cluster: demo, locustfleet.role: worker}
    count: 6
    state: stopped

- name: Delete the whole cluster
  locustfleet.triton.joyent_machine:
    count_tags: {locustfleet.cluster: demo}
    state: absent
"""

RETURN = r"""
machines:
  description: The machines after the task (for O(state=absent), an empty list), sorted by name.
  returned: always
  type: list
  elements: dict
  contains:
    id:
      description: Machine UUID.
      type: str
    name:
      description: Machine name.
      type: str
      sample: demo-worker-1
    state:
      description: CloudAPI state.
      type: str
      sample: running
    primaryIp:
      description: Primary IP address.
      type: str
    ips:
      description: All IP addresses.
      type: list
      elements: str
    tags:
      description: Tags.
      type: dict
    image:
      description: Image UUID.
      type: str
    package:
      description: Package name.
      type: str
    created:
      description: Creation time (ISO 8601).
      type: str
machine:
  description: The single machine (O(name) or O(id) mode); absent when deleted.
  returned: when O(name) or O(id) is given and the machine exists
  type: dict
created_ids:
  description: Ids of machines this task created.
  returned: always
  type: list
  elements: str
deleted_ids:
  description: Ids of machines this task deleted.
  returned: always
  type: list
  elements: str
failed_ids:
  description:
    - Ids of machines that ended in state C(failed).
    - Named C(failed_ids), not C(failed), because Ansible reserves C(failed) for the task's own status.
  returned: always
  type: list
  elements: str
"""

import time
from datetime import datetime

from ansible_collections.locustfleet.triton.plugins.module_utils._base import (
    AnsibleModule, TritonModule, cloudapi_argument_spec)
from ansible_collections.locustfleet.triton.plugins.module_utils._catalog import (
    CatalogProblem, resolve_networks, resolve_package)
from ansible_collections.locustfleet.triton.plugins.module_utils._client import CloudAPIError
from ansible_collections.locustfleet.triton.plugins.module_utils._fleet import (
    Deadline, Fleet, FleetTimeout, NameAllocator, default_name_prefix, find_by_name, flat_create_body)
from ansible_collections.locustfleet.triton.plugins.module_utils._images import resolve_image
from ansible_collections.locustfleet.triton.plugins.module_utils._machines import summarize, tag_query_value

STATE_TARGET = {"present": "running", "running": "running", "restarted": "running", "stopped": "stopped"}
# Which machines go first when a fleet shrinks.
SURPLUS_ORDER = {"failed": 0, "stopped": 1, "stopping": 1, "provisioning": 2, "offline": 2, "unknown": 2}


def _name_number(machine, prefix):
    name = machine.get("name") or ""
    suffix = name[len(prefix):] if name.startswith(prefix) else ""
    return int(suffix) if suffix.isdigit() else -1


def _missing_tags(machine, tags):
    current = machine.get("tags") or {}
    return {k: v for k, v in (tags or {}).items()
            if k not in current or tag_query_value(current[k]) != tag_query_value(v)}


class JoyentMachine(TritonModule):

    @classmethod
    def define_module(cls):
        argument_spec = cloudapi_argument_spec()
        argument_spec.update(
            name=dict(type="str"),
            id=dict(type="str"),
            state=dict(type="str", default="present",
                       choices=["present", "running", "stopped", "restarted", "absent"]),
            image=dict(type="str"),
            package=dict(type="str"),
            networks=dict(type="list", elements="str"),
            tags=dict(type="dict"),
            metadata=dict(type="dict"),
            user_script=dict(type="str"),
            firewall_enabled=dict(type="bool"),
            count=dict(type="int"),
            count_tags=dict(type="dict"),
            name_prefix=dict(type="str"),
            parallelism=dict(type="int", default=10),
            replace_failed=dict(type="bool", default=False),
            wait=dict(type="bool", default=True),
            wait_timeout=dict(type="int", default=600),
            poll_interval=dict(type="float", default=1.0),
        )
        return AnsibleModule(
            argument_spec=argument_spec,
            mutually_exclusive=[("name", "id", "count"), ("name", "id", "count_tags")],
            required_one_of=[("name", "id", "count", "count_tags")],
            required_by={"count": "count_tags"},
            supports_check_mode=True,
        )

    def __init__(self, module):
        super(JoyentMachine, self).__init__(module)
        self.params = module.params
        self.deadline = Deadline(self.params["wait_timeout"])
        self.result.update(machines=[], created_ids=[], deleted_ids=[], failed_ids=[])
        self._fleet = None

    @property
    def fleet(self):
        if self._fleet is None:
            self._fleet = Fleet(self.client, self.params["count_tags"], self.deadline,
                                parallelism=self.params["parallelism"], poll_interval=self.params["poll_interval"])
        return self._fleet

    def run(self):
        params = self.params
        if params["count"] is not None and params["count"] < 0:
            self.fail("count must be 0 or more, got %d" % params["count"])
        if params["count_tags"] is not None and not params["count_tags"]:
            self.fail("count_tags must name at least one tag that identifies the fleet")
        try:
            if params["count_tags"] is not None:
                self.run_fleet()
            else:
                self.run_single()
        except CatalogProblem as exc:
            self.fail(str(exc))
        except FleetTimeout as exc:
            self.result["machines"] = sorted((summarize(m) for m in exc.machines.values() if m),
                                             key=lambda m: m["name"] or "")
            self.fail(str(exc))

    # -- creation inputs ------------------------------------------------------------------------------

    def _create_spec(self, what):
        """(image id, package name, network ids), resolved once; fails when image or package is missing."""
        params = self.params
        missing = [option for option in ("image", "package") if not params[option]]
        if missing:
            self.fail("%s required to create %s" % (" and ".join(missing) + (" are" if len(missing) > 1 else " is"),
                                                    what))
        image = resolve_image(self.client, params["image"])
        package = resolve_package(self.client, params["package"])
        networks = resolve_networks(self.client, params["networks"])
        return image["id"], package["name"], networks

    def _body(self, name, spec, extra_tags=None):
        params = self.params
        metadata = dict(params["metadata"] or {})
        if params["user_script"]:
            metadata["user-script"] = params["user_script"]
        tags = dict(extra_tags or {})
        tags.update(params["tags"] or {})
        image, package, networks = spec
        return flat_create_body(name, image, package, networks, tags, metadata, params["firewall_enabled"])

    # -- fleets ---------------------------------------------------------------------------------------

    def run_fleet(self):
        params = self.params
        state = params["state"]
        count = 0 if state == "absent" else params["count"]
        if count is None:
            self.fail("count is required with count_tags unless state is absent")
        members = self.fleet.members()
        before = {m["name"]: m["state"] for m in members}
        prefix = params["name_prefix"] if params["name_prefix"] is not None \
            else default_name_prefix(params["count_tags"])

        ranked = sorted(members, key=lambda m: (SURPLUS_ORDER.get(m["state"], 3), -_name_number(m, prefix)))
        surplus = ranked[:max(0, len(members) - count)]
        keep = [m for m in members if m not in surplus]
        shortfall = max(0, count - len(members))
        spec = self._create_spec("%d machine(s) for count_tags %s" % (shortfall, params["count_tags"])) \
            if shortfall else None
        to_start = [m for m in keep if state == "running" and m["state"] in ("stopped", "stopping")]
        to_stop = [m for m in keep if state == "stopped" and m["state"] not in ("stopped",)]
        to_reboot = keep if state == "restarted" else []
        retag = [(m, _missing_tags(m, params["tags"])) for m in keep]
        retag = [(m, tags) for m, tags in retag if tags]
        refirewall = [m for m in keep if params["firewall_enabled"] is not None
                      and bool(m.get("firewall_enabled")) != params["firewall_enabled"]]

        if surplus or shortfall or to_start or to_stop or to_reboot or retag or refirewall:
            self.mark_changed()
        if self.module._diff:
            self.result["diff"] = self._fleet_diff(before, keep, surplus, shortfall, prefix)
        if self.module.check_mode:
            self.result["machines"] = [summarize(m) for m in keep]
            return

        allocator = NameAllocator(prefix, [m["name"] for m in members])
        targets = {}
        self.fleet.parallel(lambda m: self.fleet.delete(m["id"]), surplus)
        self.result["deleted_ids"] = [m["id"] for m in surplus]
        targets.update((m["id"], "deleted") for m in surplus)

        created = self._create_many(shortfall, spec, allocator)
        targets.update((m["id"], "running") for m in created)
        self.fleet.parallel(lambda m: self.fleet.action(m["id"], "start"), to_start)
        targets.update((m["id"], "running") for m in to_start)
        self.fleet.parallel(lambda m: self.fleet.action(m["id"], "reboot"), to_reboot)
        self.fleet.parallel(lambda item: self.client.post(
            self.client.account_path("machines", item[0]["id"], "tags"), item[1]), retag)
        self.fleet.parallel(lambda m: self.fleet.action(
            m["id"], "enable_firewall" if params["firewall_enabled"] else "disable_firewall"), refirewall)

        if params["wait"] or state == "stopped":
            self._settle(targets, spec, allocator)
        if state == "stopped":
            running = [m for m in self.fleet.members() if m["state"] != "stopped"]
            self.fleet.parallel(lambda m: self.fleet.action(m["id"], "stop"), running)
            if params["wait"]:
                self.fleet.wait({m["id"]: "stopped" for m in running})
        elif to_reboot and params["wait"]:
            self._wait_rebooted([m["id"] for m in to_reboot])

        if state == "absent":
            final = []
        elif self.result["changed"]:
            final = self.fleet.members()
        else:
            final = members
        self.result["machines"] = [summarize(m) for m in final]
        if self.result["failed_ids"]:
            self.fail("%d machine(s) ended in state failed: %s (set replace_failed to replace them)"
                      % (len(self.result["failed_ids"]), ", ".join(self.result["failed_ids"])))

    def _create_many(self, how_many, spec, allocator):
        if not how_many:
            return []
        names = [allocator.next() for dummy in range(how_many)]
        identity = self.params["count_tags"]
        machines = self.fleet.parallel(
            lambda name: self.fleet.create(self._body(name, spec, identity), allocator), names)
        adopted = set(m["id"] for m in self.fleet.adopted)
        self.result["created_ids"].extend(m["id"] for m in machines if m["id"] not in adopted)
        return machines

    def _settle(self, targets, spec, allocator):
        """Wait for ``targets``; replace failed machines when asked, until the deadline."""
        while targets:
            last = self.fleet.wait(targets)
            failed = [mid for mid, m in last.items() if m and m.get("state") == "failed"]
            if not failed or not self.params["replace_failed"]:
                self.result["failed_ids"].extend(failed)
                return
            self.fleet.parallel(self.fleet.delete, failed)
            self.result["deleted_ids"].extend(failed)
            replacements = self._create_many(len(failed), spec, allocator)
            targets = dict((m["id"], "running") for m in replacements)
            targets.update((mid, "deleted") for mid in failed)

    def _wait_rebooted(self, ids):
        """A reboot shows in MachineAudit; wait for that record, then for running again."""
        since = time.time() - 1
        for machine_id in ids:
            while True:
                audit = self.client.get(self.client.account_path("machines", machine_id, "audit")) or []
                if any(entry.get("action") == "reboot" and _iso_epoch(entry.get("time")) >= since
                       for entry in audit):
                    break
                if self.deadline.expired():
                    raise FleetTimeout("timed out waiting for machine %s to reboot" % machine_id, {})
                time.sleep(self.params["poll_interval"])
        self.fleet.wait(dict((mid, "running") for mid in ids))

    def _fleet_diff(self, before, keep, surplus, shortfall, prefix):
        after = {m["name"]: STATE_TARGET.get(self.params["state"], m["state"]) for m in keep}
        taken = set(before)
        number = 1
        for dummy in range(shortfall):
            while prefix + str(number) in taken:
                number += 1
            taken.add(prefix + str(number))
            after[prefix + str(number)] = STATE_TARGET.get(self.params["state"], "running")
        return {"before": {"count": len(before), "machines": before},
                "after": {"count": len(after), "machines": after}}

    # -- one machine ----------------------------------------------------------------------------------

    def _find_single(self):
        if self.params["id"]:
            try:
                return self.client.get(self.client.account_path("machines", self.params["id"]))
            except CloudAPIError as exc:
                if exc.status in (404, 410):
                    return None
                raise
        return find_by_name(self.client, self.params["name"])

    def run_single(self):
        params = self.params
        state = params["state"]
        fleet = Fleet(self.client, {}, self.deadline, parallelism=1, poll_interval=params["poll_interval"])
        machine = self._find_single()
        before = {"name": machine["name"], "state": machine["state"], "tags": machine.get("tags") or {}} \
            if machine else {}

        if state == "absent":
            if machine:
                self.mark_changed()
                if not self.module.check_mode:
                    fleet.delete(machine["id"])
                    self.result["deleted_ids"] = [machine["id"]]
                    if params["wait"]:
                        self._wait_single(machine["id"], "deleted")
            self._single_diff(before, {})
            return

        if machine is None:
            if params["id"]:
                self.fail("machine %s not found (a machine can only be created by name)" % params["id"])
            spec = self._create_spec("machine %s" % params["name"])
            self.mark_changed()
            planned = {"name": params["name"], "state": STATE_TARGET[state], "tags": params["tags"] or {}}
            self._single_diff(before, planned)
            if self.module.check_mode:
                return
            machine = fleet.create(self._body(params["name"], spec))
            self.result["created_ids"] = [machine["id"]]
            if params["wait"] or state == "stopped":
                machine = self._wait_single(machine["id"], "running")
                if machine and machine["state"] == "failed":
                    self.result["failed_ids"] = [machine["id"]]
                    self.result["machine"] = summarize(machine)
                    self.fail("machine %s (%s) ended in state failed" % (machine["name"], machine["id"]))

        machine = self._converge_single(fleet, machine, before)
        if machine:
            self.result["machine"] = summarize(machine)
            self.result["machines"] = [self.result["machine"]]

    def _converge_single(self, fleet, machine, before):
        params = self.params
        state = params["state"]
        actions = []
        if state == "running" and machine["state"] in ("stopped", "stopping"):
            actions.append(("start", "running"))
        if state == "stopped" and machine["state"] != "stopped":
            actions.append(("stop", "stopped"))
        if state == "restarted":
            actions.append(("reboot", None))
        if params["firewall_enabled"] is not None and bool(machine.get("firewall_enabled")) != params["firewall_enabled"]:
            actions.append(("enable_firewall" if params["firewall_enabled"] else "disable_firewall", None))
        missing = _missing_tags(machine, params["tags"])
        if actions or missing:
            self.mark_changed()
        after = dict(before or {"name": machine["name"]}, state=STATE_TARGET.get(state, machine["state"]))
        after["tags"] = dict(machine.get("tags") or {}, **missing)
        if not self.result.get("diff"):
            self._single_diff(before, after)
        if self.module.check_mode:
            return machine
        if missing:
            self.client.post(self.client.account_path("machines", machine["id"], "tags"), missing)
        for action, target in actions:
            fleet.action(machine["id"], action)
            if params["wait"] and target:
                machine = self._wait_single(machine["id"], target)
        if state == "restarted" and params["wait"]:
            self._wait_rebooted([machine["id"]])
        return self._find_single() if (actions or missing or self.result["created_ids"]) else machine

    def _wait_single(self, machine_id, target):
        fleet = Fleet(self.client, {}, self.deadline, poll_interval=self.params["poll_interval"])
        pending = {machine_id: target}
        while True:
            machine = fleet._get(machine_id)
            state = machine["state"] if machine else "deleted"
            if state == pending[machine_id] or state in ("failed", "deleted"):
                return machine
            if self.deadline.expired():
                raise FleetTimeout("timed out after %ss waiting for machine %s to be %s; last state: %s"
                                   % (self.params["wait_timeout"], machine_id, target, state),
                                   {machine_id: machine})
            time.sleep(min(self.params["poll_interval"], self.deadline.remaining()))

    def _single_diff(self, before, after):
        if self.module._diff:
            self.result["diff"] = {"before": before, "after": after}


def _iso_epoch(value):
    try:
        return datetime.strptime(value[:19] + "+0000", "%Y-%m-%dT%H:%M:%S%z").timestamp()
    except (TypeError, ValueError):
        return 0


def main():
    JoyentMachine.main()


if __name__ == "__main__":
    main()

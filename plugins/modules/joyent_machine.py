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
  - With O(wait), machines that already existed but are still on their way are waited for as well as the ones
    this task creates or starts - for example those an earlier task created with O(wait=false). So a playbook
    can ask for several fleets or machines with O(wait=false) first, then repeat each task with O(wait=true),
    and they provision in one wave. A machine already in its state costs no call.
  - O(wait_timeout) is one deadline for the whole task, creates, retries and waits included.
  - Tags are compared as JSON values, the way M(locustfleet.triton.joyent_tag) compares them - the same
    type and an equal value (V(8) and V(8.0) are equal, V("8") and V(8) are not, nor V("true") and
    V(true)).
  - When some machines of a fleet cannot be created, deleted or changed, the others still are; the
    task then fails with one line listing every failure, and RV(created_ids) and RV(deleted_ids) list
    what was done. The task reports C(changed) only for what did change.
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
        (string, number or boolean); an existing tag of another type is rewritten.
    type: dict
  metadata:
    description:
      - Customer metadata (readable inside with C(mdata-get)). New machines are created with it.
      - Machines that exist already get the keys whose value differs, merged by one AddMachineMetadata call per
        machine (in parallel) once they are running or stopped; keys not given here are left as they are, none
        is removed. Values are compared as the strings CloudAPI keeps (V(8) equals V("8"), V(true) equals
        V("true")), so a run with the same values makes no call. RV(metadata_updated_ids) lists the machines
        updated.
      - A machine still provisioning (or stopping) is updated only after waiting for it (O(wait=true)); with
        O(wait=false) it is left for a later run, with a warning.
      - Never pushed into existing machines, only given at creation - C(user-script) (also O(user_script)),
        C(user-data) and C(cloud-init:user-data) (boot-time inputs, often with credentials in them), and the keys
        CloudAPI keeps to itself - C(root_authorized_keys) (CloudAPI sets it), C(credentials) and keys ending in
        C(_pw) (internal metadata, never shown back).
      - Values must be strings, numbers or booleans.
      - Values are shown in the task's result (C(invocation)) like any option; put no secret here, or keep it out of
        logs with C(no_log) on the task. The C(locustfleet.triton.joyent) inventory shows only the keys in its
        C(metadata_keys).
    type: dict
  user_script:
    description:
      - Script that new machines run at first boot (the C(user-script) metadata key). Machines that exist
        already keep theirs (see O(metadata)).
      - Never shown in the task's result or logs (C(no_log)), since scripts often carry credentials.
    type: str
  firewall_enabled:
    description:
      - Enable or disable the cloud firewall; applied to new and existing machines.
    type: bool
  role_tags:
    description:
      - RBAC role tags of the machine(s), as the complete set - names of roles
        (M(locustfleet.triton.joyent_role)) that apply to these machines. An empty list removes every role tag;
        when omitted, role tags are left as they are.
      - New machines are created with them (the C(Role-Tag) header of CreateMachine), so they carry them from
        birth. For existing machines the role tags are read from the C(Role-Tag) header of GetMachine (one call per
        machine, in parallel like the other per-machine work) and replaced where they differ
        (C(PUT /:account/machines/:id) with C(role-tag)). The order does not matter.
      - A role tag can only name a role that exists.
      - Not used with O(state=absent).
    type: list
    elements: str
    version_added: 0.3.0
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
      - A machine belongs to the fleet only when its tags equal these in value and JSON type.
        CloudAPI's own tag filter is looser (it matches V("true") to V(true)); a machine it lists whose
        tag differs in type is not counted, and never deleted by a count-down.
    type: dict
  name_prefix:
    description:
      - Fleet machines are named C(<name_prefix><n>) with the lowest free numbers.
      - Defaults to the values of O(count_tags) joined with C(-), plus C(-).
    type: str
  parallelism:
    description:
      - How many creates, deletes or actions run at once (at least 1).
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
      - Wait until every machine reached the requested state (or is gone), the machines that existed before
        the task included (those still provisioning, and with O(state=present) those stopping).
      - A machine that ends C(failed) while waited for is reported in RV(failed_ids) (or replaced, with
        O(replace_failed)).
    type: bool
    default: true
  wait_timeout:
    description:
      - Seconds the whole task may take (at least 1); it also bounds CloudAPI retries.
    type: int
    default: 600
  poll_interval:
    description:
      - Seconds between two polls while waiting (at least 0.01).
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
    description:
      - Shows machine names, states and tags (and role tags, with O(role_tags)) before and after.
      - With O(metadata), the keys that change on existing machines, before (the values they have; a key they
        lack is not shown) and after, by machine name in a fleet.
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

- name: Workers that the role demo-watcher applies to, from the moment they exist
  locustfleet.triton.joyent_machine:
    count: 6
    count_tags: {locustfleet.cluster: demo, locustfleet.role: worker}
    role_tags: [demo-watcher]
    image: debian-12
    package: g1-medium

- name: Master and workers in one provisioning wave - first ask for all of them without waiting
  locustfleet.triton.joyent_machine:
    name: demo-master
    image: debian-12
    package: g1-small
    tags: {locustfleet.cluster: demo, locustfleet.role: master}
    wait: false

- name: The workers, not waited for either
  locustfleet.triton.joyent_machine:
    count: 6
    count_tags: {locustfleet.cluster: demo, locustfleet.role: worker}
    image: debian-12
    package: g1-medium
    wait: false

- name: Now wait for the master (created above, still provisioning) to learn its address
  locustfleet.triton.joyent_machine:
    name: demo-master
    image: debian-12
    package: g1-small
    tags: {locustfleet.cluster: demo, locustfleet.role: master}
  register: master

- name: Wait for the workers too, and tell them the master's address (metadata of existing machines)
  locustfleet.triton.joyent_machine:
    count: 6
    count_tags: {locustfleet.cluster: demo, locustfleet.role: worker}
    image: debian-12
    package: g1-medium
    metadata:
      locust_master_host: "{{ master.machine.primaryIp }}"

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
machine:
  description: The single machine (O(name) or O(id) mode); absent when deleted.
  returned: when O(name) or O(id) is given and the machine exists
  type: dict
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
metadata_updated_ids:
  description:
    - Ids of machines that existed before the task and whose metadata it updated (O(metadata), one
      AddMachineMetadata each). Machines this task created got their metadata at creation and are not listed.
    - Empty in check mode; the diff shows what would change.
  returned: always
  type: list
  elements: str
  version_added: 0.3.0
failed_ids:
  description:
    - Ids of machines that ended in state C(failed).
    - Named C(failed_ids), not C(failed), because Ansible reserves C(failed) for the task's own status.
  returned: always
  type: list
  elements: str
"""

from ansible_collections.locustfleet.triton.plugins.module_utils._base import (
    AnsibleModule, TritonModule, cloudapi_argument_spec)
from ansible_collections.locustfleet.triton.plugins.module_utils._catalog import (
    CatalogProblem, resolve_networks, resolve_package)
from ansible_collections.locustfleet.triton.plugins.module_utils._fleet import (
    STATE_TARGET, Fleet, FleetTimeout, MetadataPlan, NameAllocator, default_name_prefix, flat_create_body,
    metadata_diff, plan_fleet, plan_metadata)
from ansible_collections.locustfleet.triton.plugins.module_utils._images import resolve_image
from ansible_collections.locustfleet.triton.plugins.module_utils._machines import get_machine, is_uuid, summarize
from ansible_collections.locustfleet.triton.plugins.module_utils._parallel import BatchError
from ansible_collections.locustfleet.triton.plugins.module_utils._rbac import (
    NAME_RE, get_role_tags, name_problem, role_tag_header, set_role_tags)
from ansible_collections.locustfleet.triton.plugins.module_utils._tags import plan_tags, tag_value_problem


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
            user_script=dict(type="str", no_log=True),
            firewall_enabled=dict(type="bool"),
            role_tags=dict(type="list", elements="str"),
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
        super().__init__(module)
        self.params = module.params
        self.result.update(machines=[], created_ids=[], deleted_ids=[], failed_ids=[], metadata_updated_ids=[])
        self._fleet = None

    @property
    def fleet(self):
        if self._fleet is None:
            self._fleet = Fleet(self.client, self.params["count_tags"], self.deadline,
                                parallelism=self.params["parallelism"], poll_interval=self.params["poll_interval"])
        return self._fleet

    def run(self):
        self.check_params()
        try:
            if self.params["count_tags"] is not None:
                self.run_fleet()
            else:
                self.run_single()
        except CatalogProblem as exc:
            self.fail(str(exc))
        except FleetTimeout as exc:
            self.result["machines"] = sorted((summarize(m) for m in exc.machines.values() if m),
                                             key=lambda m: m["name"] or "")
            self.fail(str(exc))

    def check_params(self):
        params = self.params
        if params["count"] is not None and params["count"] < 0:
            self.fail("count must be 0 or more, got %d" % params["count"])
        if params["count_tags"] is not None and not params["count_tags"]:
            self.fail("count_tags must name at least one tag that identifies the fleet")
        if params["id"] is not None and not is_uuid(params["id"]):
            self.fail("id '%s' is not a machine UUID (use name to find a machine by name)" % params["id"])
        for option in ("count_tags", "tags"):
            problem = tag_value_problem(params[option], what="%s tag" % option)
            if problem:
                self.fail(problem)
        for key, value in (params["metadata"] or {}).items():
            if value is None or isinstance(value, (dict, list)):
                self.fail("metadata %s must be a string, number or boolean, got %s"
                          % (key, "null" if value is None else type(value).__name__))
        for index, role in enumerate(params["role_tags"] or []):
            problem = name_problem("role_tags[%d]" % index, role, NAME_RE, "a role name")
            if problem:
                self.fail(problem)

    # -- role tags ------------------------------------------------------------------------------------

    def _wants_role_tags(self):
        return self.params["role_tags"] is not None and self.params["state"] != "absent"

    def _create_headers(self):
        role_tags = self.params["role_tags"]
        return role_tag_header(sorted(set(role_tags))) if self._wants_role_tags() and role_tags else None

    def _role_tags_of(self, machines):
        """{id: role tags now} of ``machines``, one GetMachine each, in parallel."""
        if not self._wants_role_tags() or not machines:
            return {}
        client = self.client
        found = self.fleet.parallel(lambda m: get_role_tags(client, client.account_path("machines", m["id"])),
                                    machines)
        return {m["id"]: tags for m, tags in zip(machines, found)}

    def _role_tag_todo(self, current):
        """Ids of the machines whose role tags (``current``: {id: tags}) differ from role_tags."""
        wanted = sorted(set(self.params["role_tags"] or []))
        return sorted(mid for mid, tags in current.items() if sorted(tags) != wanted)

    def _set_role_tags(self, machine_ids):
        if not machine_ids:
            return
        client = self.client
        wanted = sorted(set(self.params["role_tags"]))
        self._each(lambda mid: set_role_tags(client, client.account_path("machines", mid), wanted), machine_ids)

    # -- metadata of existing machines ---------------------------------------------------------------------

    def _metadata_plan(self, machines):
        """plan_metadata for ``machines`` that existed before this task (new ones got metadata at creation)."""
        if self.params["state"] == "absent" or not self.params["metadata"]:
            return MetadataPlan()
        created = set(self.result["created_ids"])
        return plan_metadata([m for m in machines if m and m["id"] not in created], self.params["metadata"])

    def _warn_metadata_waiting(self, waiting):
        if waiting:
            self.module.warn("metadata not applied to %d machine(s) that are neither running nor stopped yet (%s); "
                             "a later run applies it, or wait: true waits for them first"
                             % (len(waiting), ", ".join("%s: %s" % (m.get("name"), m.get("state"))
                                                        for m, keys in waiting)))

    def _apply_metadata(self, machines):
        """One AddMachineMetadata (the keys that differ) per machine of ``machines`` (as last seen, settled)
        whose metadata differs, in parallel; what was updated goes to metadata_updated_ids."""
        plan = self._metadata_plan(machines)
        self._warn_metadata_waiting(plan.waiting)
        self._each(lambda item: self.fleet.add_metadata(item[0]["id"], item[1]), plan.update, "metadata_updated_ids")

    # -- doing things, keeping count of what changed --------------------------------------------------

    def _each(self, function, items, record=None):
        """``function`` on every item in parallel. What succeeded counts as changed (and goes to
        ``record``, a list in the result) even when other items failed, whose BatchError is raised."""
        failure = None
        try:
            done = list(zip(items, self.fleet.parallel(function, items)))
        except BatchError as exc:
            done, failure = exc.done, exc
        if done:
            self.mark_changed()
            if record is not None:
                self.result[record].extend(_item_id(item) for item, result in done)
        if failure is not None:
            raise failure

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
        prefix = params["name_prefix"] if params["name_prefix"] is not None \
            else default_name_prefix(params["count_tags"])
        plan = plan_fleet(members, count, state, prefix, params["tags"], params["firewall_enabled"])
        spec = self._create_spec("%d machine(s) for count_tags %s" % (len(plan.create), params["count_tags"])) \
            if plan.create else None
        role_tags = self._role_tags_of(plan.keep)
        retag_roles = self._role_tag_todo(role_tags)
        remetadata = self._metadata_plan(plan.keep).changes(include_waiting=params["wait"])
        if self.module._diff:
            self.result["diff"] = self._fleet_diff(members, plan, role_tags, remetadata)
        if self.module.check_mode:
            self.result["changed"] = plan.changed or bool(retag_roles) or bool(remetadata)
            if not params["wait"]:
                self._warn_metadata_waiting(self._metadata_plan(plan.keep).waiting)
            self.result["machines"] = [summarize(m) for m in plan.keep]
            return

        allocator = NameAllocator(prefix, [m["name"] for m in members] + plan.create)
        targets, reboots = self._execute(plan, spec, allocator)
        self._set_role_tags(retag_roles)
        waits_for_kept = bool(params["wait"] and plan.unsettled)
        if waits_for_kept:
            targets.update((m["id"], target) for m, target in plan.unsettled if m["id"] not in targets)
        if params["wait"] or state == "stopped":
            self._settle(targets, spec, allocator)
        if state == "stopped":
            running = [m for m in self.fleet.members() if m["state"] != "stopped"]
            self._each(lambda m: self.fleet.action(m["id"], "stop"), running)
            if params["wait"]:
                self.fleet.wait({m["id"]: "stopped" for m in running})
        elif reboots and params["wait"]:
            self.fleet.wait_rebooted(reboots)

        if state == "absent":
            final = []
        elif self.result["changed"] or waits_for_kept:
            final = self.fleet.members()
        else:
            final = members
        kept = {m["id"] for m in plan.keep}
        self._apply_metadata([m for m in final if m["id"] in kept])
        self.result["machines"] = [summarize(m) for m in final]
        if self.result["failed_ids"]:
            self.fail("%d machine(s) ended in state failed: %s (set replace_failed to replace them)"
                      % (len(self.result["failed_ids"]), ", ".join(self.result["failed_ids"])))

    def _execute(self, plan, spec, allocator):
        """Every write of ``plan``; returns ({id: state to wait for}, reboot marks for wait_rebooted)."""
        self._each(lambda m: self.fleet.delete(m["id"]), plan.surplus, "deleted_ids")
        targets = {m["id"]: "deleted" for m in plan.surplus}
        created = self._create(plan.create, spec, allocator)
        targets.update((m["id"], "running") for m in created)
        self._each(lambda m: self.fleet.action(m["id"], "start"), plan.start)
        targets.update((m["id"], "running") for m in plan.start)
        reboots = self.fleet.reboot_marks([m["id"] for m in plan.reboot])
        self._each(lambda m: self.fleet.action(m["id"], "reboot"), plan.reboot)
        self._each(lambda item: self.fleet.add_tags(item[0]["id"], item[1]), plan.retag)
        firewall_action = "enable_firewall" if self.params["firewall_enabled"] else "disable_firewall"
        self._each(lambda m: self.fleet.action(m["id"], firewall_action), plan.refirewall)
        return targets, reboots

    def _create(self, names, spec, allocator):
        """Create a machine under each name (or the next free one); what was made is in created_ids."""
        identity = self.params["count_tags"]
        adopted_before = len(self.fleet.adopted)
        machines = []

        def create(name):
            machine = self.fleet.create(self._body(name, spec, identity), allocator, headers=self._create_headers())
            machines.append(machine)
            return machine

        try:
            self._each(create, names)
        finally:
            adopted = {m["id"] for m in self.fleet.adopted[adopted_before:]}
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
            self._each(self.fleet.delete, failed, "deleted_ids")
            if spec is None:  # only kept machines (created by an earlier task) failed
                spec = self._create_spec("replacements for %d failed machine(s)" % len(failed))
            replacements = self._create([allocator.next() for dummy in failed], spec, allocator)
            targets = {m["id"]: "running" for m in replacements}
            targets.update((mid, "deleted") for mid in failed)

    def _fleet_diff(self, members, plan, role_tags=None, remetadata=()):
        target = STATE_TARGET.get(self.params["state"])
        before = {m["name"]: m["state"] for m in members}
        after = {m["name"]: target or m["state"] for m in plan.keep}
        after.update((name, target or "running") for name in plan.create)
        diff = {"before": {"count": len(before), "machines": before},
                "after": {"count": len(after), "machines": after}}
        if self._wants_role_tags():
            wanted = sorted(set(self.params["role_tags"]))
            diff["before"]["role_tags"] = {m["name"]: role_tags.get(m["id"], []) for m in plan.keep}
            diff["after"]["role_tags"] = dict({m["name"]: wanted for m in plan.keep},
                                              **{name: wanted for name in plan.create})
        if remetadata:
            diff["before"]["metadata"], diff["after"]["metadata"] = metadata_diff(remetadata)
        return diff

    # -- one machine ----------------------------------------------------------------------------------

    def _find_single(self):
        return get_machine(self.client, self.params["id"] or self.params["name"], missing_ok=True)

    def run_single(self):
        params = self.params
        state = params["state"]
        self._fleet = Fleet(self.client, {}, self.deadline, parallelism=1, poll_interval=params["poll_interval"])
        machine = self._find_single()
        before = {"name": machine["name"], "state": machine["state"], "tags": machine.get("tags") or {}} \
            if machine else {}
        role_tags = self._role_tags_of([machine] if machine else [])
        if machine and self._wants_role_tags():
            before["role_tags"] = role_tags[machine["id"]]

        if state == "absent":
            self._single_diff(before, {})
            if machine and self.module.check_mode:
                self.result["changed"] = True
            elif machine:
                self.fleet.delete(machine["id"])
                self.mark_changed()
                self.result["deleted_ids"] = [machine["id"]]
                if params["wait"]:
                    self.fleet.wait({machine["id"]: "deleted"})
            return

        if machine is None:
            if params["id"]:
                self.fail("machine %s not found (a machine can only be created by name)" % params["id"])
            spec = self._create_spec("machine %s" % params["name"])
            after = {"name": params["name"], "state": STATE_TARGET[state], "tags": params["tags"] or {}}
            if self._wants_role_tags():
                after["role_tags"] = sorted(set(params["role_tags"]))
            self._single_diff(before, after)
            if self.module.check_mode:
                self.result["changed"] = True
                return
            machine = self.fleet.create(self._body(params["name"], spec), headers=self._create_headers())
            self.mark_changed()
            self.result["created_ids"] = [machine["id"]]
            if params["wait"] or state == "stopped":
                machine = self.fleet.wait({machine["id"]: "running"})[machine["id"]]
                if machine and machine["state"] == "failed":
                    self.result["failed_ids"] = [machine["id"]]
                    self.result["machine"] = summarize(machine)
                    self.fail("machine %s (%s) ended in state failed" % (machine["name"], machine["id"]))

        machine = self._converge_single(machine, before, self._role_tag_todo(role_tags))
        if machine:
            self.result["machine"] = summarize(machine)
            self.result["machines"] = [self.result["machine"]]

    def _converge_single(self, machine, before, retag_roles=()):
        params = self.params
        state = params["state"]
        plan = plan_fleet([machine], 1, state, "", params["tags"], params["firewall_enabled"])
        actions = [("start", "running") for m in plan.start] + [("stop", "stopped") for m in plan.stop]
        actions += [("enable_firewall" if params["firewall_enabled"] else "disable_firewall", None)
                    for m in plan.refirewall]
        missing = plan.retag[0][1] if plan.retag else {}
        after = dict(before or {"name": machine["name"]}, state=STATE_TARGET.get(state, machine["state"]))
        after["tags"] = plan_tags(machine.get("tags"), params["tags"]).after
        if self._wants_role_tags():
            after["role_tags"] = sorted(set(params["role_tags"]))
        remetadata = self._metadata_plan([machine]).changes(include_waiting=params["wait"])
        if remetadata:
            metadata_before, metadata_after = metadata_diff(remetadata)
            before = dict(before, metadata=metadata_before[machine["name"]])
            after["metadata"] = metadata_after[machine["name"]]
        if not self.result.get("diff"):
            self._single_diff(before, after)
        if self.module.check_mode:
            self.result["changed"] = self.result["changed"] or plan.changed or bool(retag_roles) or bool(remetadata)
            if not params["wait"]:
                self._warn_metadata_waiting(self._metadata_plan([machine]).waiting)
            return machine
        if retag_roles:
            self._set_role_tags(list(retag_roles))
        if missing:
            self.fleet.add_tags(machine["id"], missing)
            self.mark_changed()
        for action, target in actions:
            self.fleet.action(machine["id"], action)
            self.mark_changed()
            if params["wait"] and target:
                machine = self.fleet.wait({machine["id"]: target})[machine["id"]] or machine
        if plan.reboot:
            reboots = self.fleet.reboot_marks([machine["id"]])
            self.fleet.action(machine["id"], "reboot")
            self.mark_changed()
            if params["wait"]:
                self.fleet.wait_rebooted(reboots)
        if params["wait"] and plan.unsettled:
            machine = self._wait_single(machine, plan.unsettled[0][1])
        if self.result["changed"]:
            machine = self._find_single()
        self._apply_metadata([machine])
        return machine

    def _wait_single(self, machine, target):
        """Wait until ``machine`` (one this task found on its way) reaches ``target``; fails when it failed."""
        settled = self.fleet.wait({machine["id"]: target})[machine["id"]]
        if settled is None:
            self.fail("machine %s (%s) disappeared while waiting for it to be %s"
                      % (machine["name"], machine["id"], target))
        if settled["state"] == "failed":
            self.result["failed_ids"] = [settled["id"]]
            self.result["machine"] = summarize(settled)
            self.fail("machine %s (%s) ended in state failed" % (settled["name"], settled["id"]))
        return settled

    def _single_diff(self, before, after):
        if self.module._diff:
            self.result["diff"] = {"before": before, "after": after}


def _item_id(item):
    """The machine id of a parallel run's item: a machine, (machine, ...) or an id."""
    if isinstance(item, tuple):
        item = item[0]
    return item["id"] if isinstance(item, dict) else item


def main():
    JoyentMachine.main()


if __name__ == "__main__":
    main()

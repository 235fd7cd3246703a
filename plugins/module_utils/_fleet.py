# -*- coding: utf-8 -*-
# Copyright: locustfleet.triton contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# PRIVATE to the collection: may change without notice between releases.
"""Fleets: what to do to reach ``count`` machines (``plan_fleet``, a pure function), and doing it
with many machines at once, without duplicates (``Fleet``).

- A fleet's members are the live machines whose tags equal its identity tags in value and JSON type
  (_tags.same_value). CloudAPI's tag filter is looser, so what it lists is checked again: a machine
  tagged ``true`` is never a member of a fleet identified by ``"true"``, and never deleted by its
  count-down.
- Every create carries a unique name. When its response is lost, the name is looked up before
  anything is sent again, so a retry never makes a second machine.
- Waiting for a fleet polls ListMachines filtered by the fleet's tags: one call per poll for the
  whole fleet. Only machines that vanished from that list (failed or deleted ones, which CloudAPI
  hides) are looked up one by one.
- Everything, retries included, ends at the task's one Deadline.
- Metadata given for a fleet is merged into the machines that exist already (``plan_metadata``, a
  pure function): only the keys given, compared as the strings CloudAPI keeps, never a key removed,
  never a boot-time key (CREATE_ONLY_METADATA) pushed again, and only into machines that are running
  or stopped.
"""

from __future__ import annotations

import json
import re
import threading
import time
from dataclasses import dataclass, field

from ._client import CloudAPIError
from ._machines import get_machine, list_machines
from ._parallel import run_parallel
from ._tags import plan_tags, tag_query_value, tags_match
from ._waiters import WaitTimeout, retry_while, wait_until

NAME_UNSAFE = re.compile(r"[^a-zA-Z0-9_.-]+")
# The state each module state leaves a machine in.
STATE_TARGET = {"present": "running", "running": "running", "restarted": "running", "stopped": "stopped"}
# Which machines go first when a fleet shrinks: failed, then stopped, then the ones not yet up.
SURPLUS_ORDER = {"failed": 0, "stopped": 1, "stopping": 1, "provisioning": 2, "offline": 2, "unknown": 2}
# What a kept machine still on its way is waited for (with wait), by module state and its state now. The
# other module states have their own waits: stopped stops and waits, restarted reboots and waits.
UNSETTLED_TARGET = {"present": {"provisioning": "running", "stopping": "stopped"},
                    "running": {"provisioning": "running"}}
# Metadata keys a machine gets only when it is created, never pushed into one that exists: the boot-time
# inputs (scripts and cloud-init data, run once or at boot, often with credentials in them) and the keys
# CloudAPI keeps to itself (it sets root_authorized_keys; credentials and *_pw go to internal metadata,
# so they never show and would always look different).
CREATE_ONLY_METADATA = ("user-script", "user-data", "cloud-init:user-data", "root_authorized_keys", "credentials")
# The states in which a machine takes metadata updates (VMAPI's behaviour while provisioning is unverified).
METADATA_STATES = ("running", "stopped")


class FleetTimeout(WaitTimeout):
    """The deadline passed before every machine settled. The message lists each one's last state;
    ``machines`` maps id -> last machine seen (None when gone)."""

    def __init__(self, message, machines):
        super().__init__(message)
        self.machines = machines


# -- planning (pure) -------------------------------------------------------------------------------------

def default_name_prefix(count_tags):
    """'demo-worker-' for count_tags {cluster: demo, role: worker}."""
    parts = [NAME_UNSAFE.sub("-", tag_query_value(v)).strip("-.") for k, v in sorted(count_tags.items())]
    prefix = "-".join(p for p in parts if p) or "fleet"
    return prefix + "-"


def name_number(name, prefix):
    """N of PREFIX<N>, else -1."""
    name = name or ""
    suffix = name[len(prefix):] if name.startswith(prefix) else ""
    return int(suffix) if suffix.isdigit() else -1


class NameAllocator:
    """Hands out PREFIX1, PREFIX2, ...: the lowest numbers whose names are not taken (thread-safe)."""

    def __init__(self, prefix, taken):
        self.prefix = prefix
        self.taken = set(taken)
        self._next = 1
        self._lock = threading.Lock()

    def next(self):
        with self._lock:
            while self.prefix + str(self._next) in self.taken:
                self._next += 1
            name = self.prefix + str(self._next)
            self.taken.add(name)
            return name


@dataclass
class FleetPlan:
    """What reaching a fleet's count and state takes. Lists hold machines as CloudAPI shows them;
    ``retag`` holds (machine, tags to add); ``create`` the names of the machines to make."""

    keep: list = field(default_factory=list)
    surplus: list = field(default_factory=list)
    create: list = field(default_factory=list)
    start: list = field(default_factory=list)
    stop: list = field(default_factory=list)
    reboot: list = field(default_factory=list)
    retag: list = field(default_factory=list)
    refirewall: list = field(default_factory=list)
    # (machine, state) of kept machines still on their way there (no write: only waited for, with wait)
    unsettled: list = field(default_factory=list)

    @property
    def changed(self):
        return any((self.surplus, self.create, self.start, self.stop, self.reboot, self.retag, self.refirewall))


def plan_fleet(members, count, state, prefix, tags=None, firewall_enabled=None):
    """The FleetPlan taking ``members`` (the fleet's machines now) to ``count`` machines in ``state``.

    The surplus goes in SURPLUS_ORDER, then highest name number first; the shortfall is created under
    the lowest free PREFIX<N> names. Kept machines get the ``tags`` they lack (by the one tag
    comparison) and the firewall setting asked for; ``running`` starts stopped ones, ``stopped`` stops
    all that are not stopped, ``restarted`` reboots every kept machine. Kept machines still provisioning
    (or, for ``present``, stopping) are ``unsettled``: nothing to send, something to wait for.
    """
    ranked = sorted(members, key=lambda m: (SURPLUS_ORDER.get(m.get("state"), 3), -name_number(m.get("name"), prefix)))
    surplus = ranked[:max(0, len(members) - count)]
    surplus_ids = {m["id"] for m in surplus}
    keep = [m for m in members if m["id"] not in surplus_ids]
    allocator = NameAllocator(prefix, [m.get("name") for m in members])
    plan = FleetPlan(keep=keep, surplus=surplus,
                     create=[allocator.next() for dummy in range(max(0, count - len(members)))])
    for machine in keep:
        if state == "running" and machine.get("state") in ("stopped", "stopping"):
            plan.start.append(machine)
        if state == "stopped" and machine.get("state") != "stopped":
            plan.stop.append(machine)
        if state == "restarted":
            plan.reboot.append(machine)
        tag_plan = plan_tags(machine.get("tags"), tags)
        if tag_plan.changed:
            plan.retag.append((machine, tag_plan.body))
        if firewall_enabled is not None and bool(machine.get("firewall_enabled")) != firewall_enabled:
            plan.refirewall.append(machine)
        target = UNSETTLED_TARGET.get(state, {}).get(machine.get("state"))
        if target:
            plan.unsettled.append((machine, target))
    return plan


def is_create_only_metadata(key):
    """True for the metadata keys given only at creation (CREATE_ONLY_METADATA, and *_pw)."""
    return key in CREATE_ONLY_METADATA or key.endswith("_pw")


def metadata_text(value):
    """A metadata value as CloudAPI keeps it, a string: booleans as true/false, numbers as JSON writes them."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value)


@dataclass
class MetadataPlan:
    """Which existing machines need metadata: ``update`` holds (machine, {key: string}) of those
    that take it now (METADATA_STATES), ``waiting`` the same for those in other states (provisioning,
    stopping...), which can only take it once they settled."""

    update: list = field(default_factory=list)
    waiting: list = field(default_factory=list)

    def changes(self, include_waiting=False):
        return self.update + (self.waiting if include_waiting else [])


def plan_metadata(machines, metadata):
    """The MetadataPlan merging ``metadata`` into ``machines`` (as CloudAPI shows them, metadata included).

    Only the keys given count, each compared as a string (metadata_text) with the machine's value; a key the
    machine lacks differs. Keys of the machine not given are left alone. Create-only keys are skipped.
    Machines whose every key equals are in neither list.
    """
    wanted = {key: metadata_text(value) for key, value in (metadata or {}).items() if not is_create_only_metadata(key)}
    plan = MetadataPlan()
    for machine in machines:
        current = machine.get("metadata") or {}
        changes = {key: value for key, value in sorted(wanted.items())
                   if key not in current or metadata_text(current[key]) != value}
        if changes:
            (plan.update if machine.get("state") in METADATA_STATES else plan.waiting).append((machine, changes))
    return plan


def metadata_diff(changes):
    """(before, after) of the keys concerned, by machine name, for ``changes`` [(machine, {key: string})]:
    before shows the machine's values of those keys (a key it lacks is not shown), after the new ones."""
    before, after = {}, {}
    for machine, keys in changes:
        current = machine.get("metadata") or {}
        before[machine.get("name")] = {key: current[key] for key in keys if key in current}
        after[machine.get("name")] = dict(keys)
    return before, after


def flat_create_body(name, image, package, networks=None, tags=None, metadata=None, firewall_enabled=None):
    """CreateMachine's body. CloudAPI reads only the flattened tag.X / metadata.X keys."""
    body = {"name": name, "image": image, "package": package}
    if networks:
        body["networks"] = list(networks)
    for key, value in (tags or {}).items():
        body["tag." + key] = value
    for key, value in (metadata or {}).items():
        body["metadata." + key] = value
    if firewall_enabled is not None:
        body["firewall_enabled"] = bool(firewall_enabled)
    return body


def is_duplicate_name(error):
    """CloudAPI's answer to a name already taken: ValidationFailed with a Duplicate error on alias.

    Nothing else counts: an invalid name also fails validation on alias (code Invalid), and
    retrying that one under the next name would never end.
    """
    return error.status == 409 and error.code == "ValidationFailed" and any(
        isinstance(e, dict) and e.get("field") == "alias" and e.get("code") == "Duplicate"
        for e in error.errors or [])


def _latest_reboot(audit):
    """The time of the newest reboot in a MachineAudit answer, as CloudAPI wrote it ('' when none).

    CloudAPI's own ISO 8601 times are compared with each other, never with this machine's clock.
    """
    return max((str(e.get("time") or "") for e in audit if isinstance(e, dict) and e.get("action") == "reboot"),
               default="")


# -- doing it --------------------------------------------------------------------------------------------

class Fleet:
    """Machines identified by ``identity`` tags (all of them carry every one); an empty identity is
    for machines known by id only (a single machine)."""

    def __init__(self, client, identity, deadline, parallelism=10, poll_interval=1.0, sleep=time.sleep):
        self.client = client
        self.identity = dict(identity or {})
        self.deadline = deadline
        self.parallelism = max(1, parallelism)
        self.poll_interval = poll_interval
        self._sleep = sleep
        self.adopted = []  # machines a concurrent run created under names we tried

    def members(self):
        return list_machines(self.client, self.identity)

    def parallel(self, function, items):
        """``function`` on every item, ``parallelism`` at a time (see _parallel.run_parallel)."""
        return run_parallel(function, items, self.parallelism, describe=_describe)

    def _retry(self, call, retryable):
        return retry_while(call, lambda exc: isinstance(exc, CloudAPIError) and retryable(exc),
                           self.deadline, self.poll_interval, sleep=self._sleep)

    # -- writes ---------------------------------------------------------------------------------------

    def create(self, body, allocator=None, headers=None):
        """Create one machine; returns it as CloudAPI showed it. ``headers``: extra request headers
        (Role-Tag).

        On a lost response the name is looked up (until a lookup succeeds) and a found machine is
        returned; only a name provably unused is sent again. With an ``allocator``, a name taken by
        another machine moves on to the next free name, and one taken by a member of this fleet
        (a concurrent run) is adopted.
        """
        path = self.client.account_path("machines")
        while True:
            try:
                return self.client.post(path, body, expect=dict, headers=headers)
            except CloudAPIError as exc:
                if exc.maybe_committed:
                    existing = self._retry(lambda: get_machine(self.client, body["name"], missing_ok=True),
                                           lambda error: True)
                    if existing is not None:
                        return existing
                elif is_duplicate_name(exc) and allocator is not None:
                    existing = get_machine(self.client, body["name"], missing_ok=True)
                    if existing is not None and self.identity and tags_match(existing.get("tags"), self.identity):
                        self.adopted.append(existing)
                        return existing
                    body = dict(body, name=allocator.next())
                else:
                    raise
                if self.deadline.expired():
                    raise

    def delete(self, machine_id):
        """Delete one machine; one still provisioning (409) is deleted once CloudAPI allows it."""
        path = self.client.account_path("machines", machine_id)

        def delete():
            try:
                self.client.delete(path)
            except CloudAPIError as exc:
                if exc.status not in (404, 410):
                    raise
            return machine_id

        self._retry(delete, lambda exc: exc.status == 409)

    def action(self, machine_id, action):
        """start, stop, reboot, enable_firewall or disable_firewall; CloudAPI refuses actions while a
        machine is provisioning (409 UnallocatedVM), so that is waited out."""
        path = self.client.account_path("machines", machine_id)
        self._retry(lambda: self.client.post(path, {"action": action}, idempotent=True) or True,
                    lambda exc: exc.status == 409 and exc.code == "UnallocatedVM")

    def add_metadata(self, machine_id, metadata):
        """AddMachineMetadata (create or overwrite the given keys, leave the others); sending the same values
        again is harmless, so a lost answer may be retried."""
        self.client.post(self.client.account_path("machines", machine_id, "metadata"), metadata, idempotent=True,
                         expect=dict)

    def add_tags(self, machine_id, tags):
        """AddMachineTags; merging the same values again is harmless, so a lost answer may be retried."""
        self.client.post(self.client.account_path("machines", machine_id, "tags"), tags, idempotent=True,
                         expect=dict)

    def reboot_marks(self, machine_ids):
        """{id: time of its newest reboot}, read before rebooting, for ``wait_rebooted``."""
        return dict(zip(machine_ids, self.parallel(self._latest_reboot, machine_ids)))

    def _latest_reboot(self, machine_id):
        return _latest_reboot(self.client.get(self.client.account_path("machines", machine_id, "audit"),
                                              expect=list))

    # -- waiting --------------------------------------------------------------------------------------

    def wait(self, targets):
        """Wait until every machine id in ``targets`` reaches its target state.

        ``targets`` maps id -> "running" | "stopped" | "deleted". A machine that ends ``failed`` or
        disappears stops being waited for. Returns {id: machine or None (gone)}.
        Raises FleetTimeout with every unsettled machine's last state.
        """
        pending = dict(targets)
        last = {}

        def probe():
            last.update(self._observe(pending))
            for machine_id, machine in last.items():
                state = machine.get("state") if machine else "deleted"
                if machine_id in pending and state in (pending[machine_id], "failed", "deleted"):
                    del pending[machine_id]
            return last if not pending else None

        def timeout():
            states = ", ".join("%s (%s): %s" % (mid, (last.get(mid) or {}).get("name", "?"),
                                                (last.get(mid) or {}).get("state", "unknown"))
                               for mid in sorted(pending))
            return FleetTimeout("timed out after %ss waiting for %d machine(s) to settle; last states: %s"
                                % (int(self.deadline.seconds), len(pending), states), last)

        return wait_until(probe, self.deadline, self.poll_interval, timeout, sleep=self._sleep)

    def _observe(self, targets):
        """{id: machine or None} for ``targets``: one ListMachines by the fleet's tags, then GetMachine for
        what it did not list (except deletions: gone from the list is gone)."""
        listed = {m["id"]: m for m in self.members()} if self.identity and targets else {}
        seen = {}
        for machine_id, target in targets.items():
            if machine_id in listed:
                seen[machine_id] = listed[machine_id]
            elif self.identity and target == "deleted":
                seen[machine_id] = None
            else:
                seen[machine_id] = get_machine(self.client, machine_id, missing_ok=True)
        return seen

    def wait_rebooted(self, before):
        """Wait until each machine of ``before`` (from ``reboot_marks``) shows a newer reboot in MachineAudit,
        then until it is running again."""
        pending = dict(before)

        def probe():
            for machine_id, previous in list(pending.items()):
                if self._latest_reboot(machine_id) > previous:
                    del pending[machine_id]
            return True if not pending else None

        def timeout():
            return FleetTimeout("timed out after %ss waiting for machine(s) %s to reboot"
                                % (int(self.deadline.seconds), ", ".join(sorted(pending))), {})

        wait_until(probe, self.deadline, self.poll_interval, timeout, sleep=self._sleep)
        return self.wait({machine_id: "running" for machine_id in before})


def _describe(item):
    """How a parallel run names an item in its error line: a machine by name and id, else as it is."""
    if isinstance(item, tuple):
        item = item[0]
    if isinstance(item, dict):
        return "machine %s (%s)" % (item.get("name"), item.get("id"))
    return str(item)

# -*- coding: utf-8 -*-
# Copyright: locustfleet.triton contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# PRIVATE to the collection: may change without notice between releases.
"""Creating, waiting for and deleting many machines at once, without duplicates.

- Every create carries a unique name. When its response is lost, the name is looked up
  before anything is sent again, so a retry never makes a second machine.
- Waiting for a fleet polls ListMachines filtered by the fleet's tags: one call per poll
  for the whole fleet. Only machines that vanished from that list (failed or deleted ones,
  which CloudAPI hides) are looked up one by one, once.
- All waits share one deadline.
"""

from __future__ import annotations

import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from ._client import CloudAPIError
from ._machines import list_machines, tag_query_value

NAME_UNSAFE = re.compile(r"[^a-zA-Z0-9_.-]+")
LIST_STATES_SETTLED = ("running", "stopped", "failed", "deleted")


class Deadline(object):
    """One time budget for everything a task does."""

    def __init__(self, seconds, clock=time.monotonic):
        self._clock = clock
        self.seconds = seconds
        self.ends = clock() + seconds

    def remaining(self):
        return max(0.0, self.ends - self._clock())

    def expired(self):
        return self.remaining() <= 0


class FleetTimeout(Exception):
    """The deadline passed before every machine settled. The message lists each one's last state."""

    def __init__(self, message, machines):
        super(FleetTimeout, self).__init__(message)
        self.machines = machines


def default_name_prefix(count_tags):
    """'demo-worker-' for count_tags {cluster: demo, role: worker}."""
    parts = [NAME_UNSAFE.sub("-", tag_query_value(v)).strip("-.") for k, v in sorted(count_tags.items())]
    prefix = "-".join(p for p in parts if p) or "fleet"
    return prefix + "-"


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


def _is_duplicate_name(error):
    """CloudAPI's answer to a name already taken: ValidationFailed with a Duplicate error on alias.

    Nothing else counts: an invalid name also fails validation on alias (code Invalid), and
    retrying that one under the next name would never end.
    """
    return error.status == 409 and error.code == "ValidationFailed" and any(
        isinstance(e, dict) and e.get("field") == "alias" and e.get("code") == "Duplicate"
        for e in error.errors or [])


def find_by_name(client, name):
    """The live machine with exactly this name, or None."""
    found = client.get(client.account_path("machines"), {"name": name}) or []
    return found[0] if found else None


def _has_tags(machine, tags):
    current = machine.get("tags") or {}
    return all(key in current and tag_query_value(current[key]) == tag_query_value(value)
               for key, value in tags.items())


class NameAllocator(object):
    """Hands out PREFIX1, PREFIX2, ... skipping names already taken."""

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


class Fleet(object):
    """Machines identified by ``identity`` tags (all of them carry every one)."""

    def __init__(self, client, identity, deadline, parallelism=10, poll_interval=1.0, sleep=time.sleep):
        self.client = client
        self.identity = dict(identity or {})
        self.deadline = deadline
        self.parallelism = max(1, parallelism)
        self.poll_interval = poll_interval
        self._sleep = sleep
        self.adopted = []  # machines a concurrent run created under names we tried

    # -- listing --------------------------------------------------------------------------------------

    def members(self):
        return list_machines(self.client, self.identity)

    # -- writes ---------------------------------------------------------------------------------------

    def parallel(self, function, items):
        """Apply ``function`` to every item with bounded concurrency; returns results in order.

        Every item is attempted even when some fail; the first error is raised afterwards.
        """
        items = list(items)
        if not items:
            return []
        with ThreadPoolExecutor(max_workers=min(self.parallelism, len(items))) as pool:
            futures = [pool.submit(function, item) for item in items]
        errors = [f.exception() for f in futures if f.exception() is not None]
        if errors:
            raise errors[0]
        return [f.result() for f in futures]

    def create(self, body, allocator=None):
        """Create one machine; on a lost response find it by name instead of creating it twice.

        Returns the machine as CloudAPI showed it.
        """
        path = self.client.account_path("machines")
        while True:
            try:
                return self.client.post(path, body)
            except CloudAPIError as exc:
                if exc.maybe_committed:
                    existing = self._lookup_until_known(body["name"])
                    if existing is not None:
                        return existing
                    if self.deadline.expired():
                        raise
                    continue  # provably not created: the same name is safe to send again
                if _is_duplicate_name(exc) and allocator is not None:
                    existing = find_by_name(self.client, body["name"])
                    if existing is not None and self.identity and _has_tags(existing, self.identity):
                        # Another run made this member concurrently: count it, don't duplicate it.
                        self.adopted.append(existing)
                        return existing
                    if self.deadline.expired():
                        raise
                    body = dict(body, name=allocator.next())
                    continue
                raise

    def _lookup_until_known(self, name):
        """After a lost create response: the machine named ``name``, or None once the lookup succeeds."""
        while True:
            try:
                return find_by_name(self.client, name)
            except CloudAPIError:
                if self.deadline.expired():
                    raise
                self._sleep(self.poll_interval)

    def delete(self, machine_id):
        """Delete one machine; a machine still provisioning is deleted once CloudAPI allows it."""
        path = self.client.account_path("machines", machine_id)
        while True:
            try:
                self.client.delete(path)
                return
            except CloudAPIError as exc:
                if exc.status in (404, 410):
                    return
                if exc.status == 409 and not self.deadline.expired():
                    self._sleep(self.poll_interval)
                    continue
                raise

    def action(self, machine_id, action):
        """start, stop or reboot; CloudAPI refuses actions while provisioning (409), so wait that out."""
        path = self.client.account_path("machines", machine_id)
        while True:
            try:
                self.client.post(path, {"action": action}, idempotent=True)
                return
            except CloudAPIError as exc:
                if exc.status == 409 and exc.code == "UnallocatedVM" and not self.deadline.expired():
                    self._sleep(self.poll_interval)
                    continue
                raise

    # -- waiting --------------------------------------------------------------------------------------

    def wait(self, targets):
        """Wait until every machine id in ``targets`` reaches its target state.

        ``targets`` maps id -> "running" | "stopped" | "deleted". A machine that ends
        ``failed`` stops being waited for. Returns {id: machine or None (deleted)}.
        Raises FleetTimeout with every unsettled machine's last state.
        """
        pending = dict(targets)
        last = {}
        while True:
            listed = {m["id"]: m for m in self.members()} if pending else {}
            vanished = []
            for machine_id in list(pending):
                machine = listed.get(machine_id)
                if machine is None and pending[machine_id] == "deleted":
                    # Gone from the list means destroyed (or failed): either way no longer there.
                    last[machine_id] = None
                    del pending[machine_id]
                    continue
                if machine is None:
                    vanished.append(machine_id)
                    continue
                last[machine_id] = machine
                if machine.get("state") == pending[machine_id]:
                    del pending[machine_id]
            for machine_id in vanished:
                machine = self._get(machine_id)
                last[machine_id] = machine
                state = machine.get("state") if machine else "deleted"
                if state in ("deleted", "failed") or state == pending[machine_id]:
                    del pending[machine_id]
            if not pending:
                return last
            if self.deadline.expired():
                states = ", ".join("%s (%s): %s" % (mid, (last.get(mid) or {}).get("name", "?"),
                                                    (last.get(mid) or {}).get("state", "unknown"))
                                   for mid in sorted(pending))
                raise FleetTimeout("timed out after %ss waiting for %d machine(s) to settle; last states: %s"
                                   % (int(self.deadline.seconds), len(pending), states), last)
            self._sleep(min(self.poll_interval, self.deadline.remaining()))

    def _get(self, machine_id):
        try:
            return self.client.get(self.client.account_path("machines", machine_id))
        except CloudAPIError as exc:
            if exc.status in (404, 410):
                return None
            raise

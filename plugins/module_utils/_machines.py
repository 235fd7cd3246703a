# -*- coding: utf-8 -*-
# Copyright: locustfleet.triton contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# PRIVATE to the collection: may change without notice between releases.
"""Machines: finding one, listing many, and the shape every module returns."""

from __future__ import annotations

import re

from ._client import CloudAPIError
from ._tags import tag_query_value, tags_match

UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.IGNORECASE)
# States CloudAPI's ListMachines accepts as a server-side filter; others are filtered here.
SERVER_STATES = ("running", "stopped")
# A machine in one of these states is no longer there: it answers to no name and holds none.
GONE_STATES = ("deleted", "failed")
RETURNED_FIELDS = ("id", "name", "state", "primaryIp", "ips", "tags", "image", "package", "created",
                   "memory", "brand", "networks", "firewall_enabled")


class MachineNotFound(CloudAPIError):
    """No machine answers to the id or name a task gave."""


def is_uuid(text):
    return bool(UUID_RE.match(text or ""))


def summarize(machine):
    """The machine shape every module returns (no metadata: it can carry keys and secrets)."""
    summary = {field: machine.get(field) for field in RETURNED_FIELDS}
    summary["ips"] = list(machine.get("ips") or [])
    summary["tags"] = dict(machine.get("tags") or {})
    return summary


def list_filters(tags=None, name=None, state=None):
    """ListMachines query parameters for the given tags, exact name and (one) state."""
    query = {"tag.%s" % key: tag_query_value(value) for key, value in (tags or {}).items()}
    if name:
        query["name"] = name
    if state in SERVER_STATES:
        query["state"] = state
    return query


def select_machines(machines, tags=None, name=None, states=None):
    """The machines that carry ``tags`` (the one tag comparison, type and value), have exactly ``name``
    and are in one of ``states`` (any state when empty). CloudAPI's filters are looser than this."""
    return [m for m in machines
            if isinstance(m, dict) and tags_match(m.get("tags"), tags)
            and (not name or m.get("name") == name) and (not states or m.get("state") in states)]


def list_machines(client, tags=None, name=None, states=None):
    """Every live machine matching the filters (paged), sorted by name."""
    states = list(states or [])
    query = list_filters(tags, name, states[0] if len(states) == 1 else None)
    machines = select_machines(client.list_all(client.account_path("machines"), query), tags, name, states)
    return sorted(machines, key=lambda m: (m.get("name") or "", m.get("id")))


def get_machine(client, ref, missing_ok=False, what="machine"):
    """The one machine lookup: the machine with id or name ``ref``.

    An id is looked up with GetMachine and may be in any state but deleted (a failed machine is
    returned, so that callers can tell failed from gone). A name is looked up with ListMachines and
    only a machine that is not failed or deleted answers to it; two such machines make the name
    ambiguous. A missing machine is None with ``missing_ok``, else MachineNotFound (a CloudAPIError
    that keeps CloudAPI's code and request id when it answered).
    """
    if is_uuid(ref):
        try:
            machine = client.get(client.account_path("machines", ref), expect=dict)
        except CloudAPIError as exc:
            if exc.status not in (404, 410):
                raise
            if missing_ok:
                return None
            raise MachineNotFound("%s '%s' not found: %s" % (what, ref, exc), status=exc.status, code=exc.code,
                                  request_id=exc.request_id, errors=exc.errors)
        if machine.get("state") != "deleted":
            return machine
        found = []
    else:
        found = [m for m in list_machines(client, name=ref) if m.get("state") not in GONE_STATES]
    if len(found) > 1:
        raise CloudAPIError("%s name '%s' is ambiguous: machines %s have it; give the id instead"
                            % (what, ref, ", ".join(sorted(m["id"] for m in found))))
    if found:
        return found[0]
    if missing_ok:
        return None
    raise MachineNotFound("%s '%s' not found: no live machine has that name or id" % (what, ref))

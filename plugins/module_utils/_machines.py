# -*- coding: utf-8 -*-
# Copyright: locustfleet.triton contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# PRIVATE to the collection: may change without notice between releases.
"""Machines as every module returns them, and the ListMachines filters they are found with."""

from __future__ import annotations

# States CloudAPI's ListMachines accepts as a server-side filter; others are filtered here.
SERVER_STATES = ("running", "stopped")
RETURNED_FIELDS = ("id", "name", "state", "primaryIp", "ips", "tags", "image", "package", "created",
                   "memory", "brand", "networks", "firewall_enabled")


def summarize(machine):
    """The machine shape every module returns (no metadata: it can carry keys and secrets)."""
    summary = {field: machine.get(field) for field in RETURNED_FIELDS}
    summary["ips"] = list(machine.get("ips") or [])
    summary["tags"] = dict(machine.get("tags") or {})
    return summary


def tag_query_value(value):
    """CloudAPI matches tag.NAME=VALUE type-tolerantly; booleans travel as true/false."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def list_filters(tags=None, name=None, state=None):
    """ListMachines query parameters for the given tags, exact name and (one) state."""
    query = {"tag.%s" % key: tag_query_value(value) for key, value in (tags or {}).items()}
    if name:
        query["name"] = name
    if state in SERVER_STATES:
        query["state"] = state
    return query


def list_machines(client, tags=None, name=None, states=None):
    """Every live machine matching the filters (paged), optionally limited to ``states``."""
    states = list(states or [])
    query = list_filters(tags, name, states[0] if len(states) == 1 else None)
    machines = client.list_all(client.account_path("machines"), query)
    if states:
        machines = [m for m in machines if m.get("state") in states]
    return sorted(machines, key=lambda m: (m.get("name") or "", m.get("id")))

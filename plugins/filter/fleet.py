# -*- coding: utf-8 -*-
# Copyright: locustfleet.triton contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import time
from datetime import datetime, timezone

TTL_TAG = "locustfleet.ttl_hours"
CLUSTER_TAG = "locustfleet.cluster"


def _created_epoch(machine):
    text = (machine.get("created") or "").replace("Z", "+00:00")
    try:
        created = datetime.fromisoformat(text)
    except ValueError:
        return None
    if created.tzinfo is None:
        created = created.replace(tzinfo=timezone.utc)
    return created.timestamp()


def expired(machine, now):
    """True when the machine is older than its locustfleet.ttl_hours tag (no tag: never)."""
    try:
        ttl_hours = float((machine.get("tags") or {})[TTL_TAG])
    except (KeyError, TypeError, ValueError):
        return False
    created = _created_epoch(machine)
    return created is not None and created + ttl_hours * 3600 <= now


def teardown_candidates(machines, cluster, all=False, now=None):  # pylint: disable=redefined-builtin
    """The machines of ``cluster`` that teardown.yml deletes: all, or the stopped and the expired ones.

    A machine whose locustfleet.cluster tag is not exactly ``cluster`` is never returned.
    """
    if not cluster:
        raise ValueError("teardown_candidates needs the cluster name")
    now = time.time() if now is None else float(now)
    members = [m for m in machines if (m.get("tags") or {}).get(CLUSTER_TAG) == cluster]
    if all:
        return members
    return [m for m in members if m.get("state") == "stopped" or expired(m, now)]


def locust_summary(lines):
    """The final summary a headless Locust master prints: the last statistics table and what follows it
    (response time percentiles, error report), without the periodic tables and log lines before."""
    table = [line for line in lines if line.strip() and not line.startswith(("[", "locust-headless:"))]
    percentiles = [i for i, line in enumerate(table) if line.startswith("Response time percentiles")]
    end = percentiles[-1] if percentiles else len(table)
    headers = [i for i, line in enumerate(table[:end]) if line.startswith("Type ")]
    return table[headers[-1]:] if headers else []


class FilterModule:
    def filters(self):
        return {"teardown_candidates": teardown_candidates, "locust_summary": locust_summary}

# -*- coding: utf-8 -*-
# Copyright: locustfleet.triton contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# PRIVATE to the collection: may change without notice between releases.
"""Machine tags: value checks, CloudAPI's type-tolerant comparison, what to write; finding one machine."""

from __future__ import annotations

import math
import re

from ._client import CloudAPIError

UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.IGNORECASE)

# Request parameters CloudAPI never turns into tags (lib/tags.js): such a tag would be dropped silently.
RESERVED_TAG_NAMES = ("account", "machine", "uuid", "owner_uuid", "context", "image")


class MachineNotFound(CloudAPIError):
    """No live machine answers to the id or name a task gave."""


def is_uuid(text):
    return bool(UUID_RE.match(text or ""))


def _kind(value):
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if value is None:
        return "null"
    return "list" if isinstance(value, (list, tuple)) else "dict" if isinstance(value, dict) else type(value).__name__


def tag_value_problem(tags, allow_null=False, what="tag"):
    """One line saying what is wrong with ``tags`` (None when nothing is).

    CloudAPI (VMAPI) stores strings, numbers and booleans; objects and arrays are refused.
    """
    for key in sorted(tags or {}, key=str):
        value = tags[key]
        kind = _kind(value)
        if kind in ("string", "boolean"):
            continue
        if kind == "number":
            if isinstance(value, float) and not math.isfinite(value):
                return "%s '%s' has the value %s; numbers must be finite" % (what, key, value)
            continue
        if kind == "null" and allow_null:
            continue
        if kind == "null":
            return ("%s '%s' has no value (null); a tag value must be a string, number or boolean "
                    "(use state=absent to remove a tag)" % (what, key))
        return "%s '%s' has a %s value; a tag value must be a string, number or boolean" % (what, key, kind)
    return None


def reserved_name_problem(tags):
    for key in sorted(tags or {}, key=str):
        if key in RESERVED_TAG_NAMES:
            return ("tag '%s' cannot be set through CloudAPI: it takes '%s' for a request parameter "
                    "(reserved names: %s)" % (key, key, ", ".join(RESERVED_TAG_NAMES)))
    return None


def _as_number(text):
    try:
        number = float(text)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def same_value(stored, wanted):
    """True when two tag values are equal the way CloudAPI's ``tag.NAME=VALUE`` matching sees them.

    Values of the same type compare strictly (``"8"`` is not ``"8.0"``). Across types a boolean
    equals the string ``"true"``/``"false"``, and a number equals a string that parses to the same
    number (``8`` equals ``"8"`` and ``"8.0"``); a boolean never equals a number.
    """
    if isinstance(stored, bool) or isinstance(wanted, bool):
        if isinstance(stored, bool) and isinstance(wanted, bool):
            return stored is wanted
        flag, other = (stored, wanted) if isinstance(stored, bool) else (wanted, stored)
        return isinstance(other, str) and other == ("true" if flag else "false")
    numeric = (int, float)
    if isinstance(stored, numeric) and isinstance(wanted, numeric):
        return stored == wanted
    if isinstance(stored, numeric) or isinstance(wanted, numeric):
        number, other = (stored, wanted) if isinstance(stored, numeric) else (wanted, stored)
        return isinstance(other, str) and _as_number(other) == number
    return stored == wanted


def same_tags(current, wanted):
    """The two sets have the same keys and ``same_value`` values."""
    return set(current) == set(wanted) and all(same_value(current[k], wanted[k]) for k in wanted)


class TagPlan(object):
    """What one machine's tags need. ``op`` is None (nothing), "add", "replace", "delete_all" or "delete";
    ``body`` the AddMachineTags/ReplaceMachineTags body or the keys to delete; ``after`` the expected tags."""

    def __init__(self, before, after, op=None, body=None):
        self.before = before
        self.after = after
        self.op = op
        self.body = body

    @property
    def changed(self):
        return self.op is not None


def plan_tags(current, tags, state="present", purge=False):
    """The TagPlan taking ``current`` tags to what ``tags``/``state``/``purge`` ask for.

    present: keys whose value differs (by same_value) or is missing are written with the caller's value,
    other keys are untouched; with ``purge`` the whole set becomes ``tags``. absent: the listed keys that
    exist are removed, whatever their value.
    """
    current = dict(current or {})
    tags = dict(tags or {})
    if state == "absent":
        keys = sorted((k for k in tags if k in current), key=str)
        after = {k: v for k, v in current.items() if k not in tags}
        return TagPlan(current, after, "delete" if keys else None, keys)
    if purge:
        if same_tags(current, tags):
            return TagPlan(current, current)
        if not tags:
            return TagPlan(current, {}, "delete_all")
        return TagPlan(current, tags, "replace", tags)
    changes = {k: v for k, v in tags.items() if k not in current or not same_value(current[k], v)}
    if not changes:
        return TagPlan(current, current)
    after = dict(current)
    after.update(changes)
    return TagPlan(current, after, "add", changes)


def plan_visible(plan, observed, tags, state="present", purge=False):
    """Whether ListMachineTags' ``observed`` answer shows the change ``plan`` made."""
    observed = observed or {}
    if state == "absent":
        return not any(k in observed for k in plan.body or [])
    if purge:
        return same_tags(observed, plan.after)
    return all(k in observed and same_value(observed[k], v) for k, v in (tags or {}).items())


def find_machine(client, ref, what="machine"):
    """The live machine with id or name ``ref`` (GetMachine for a UUID, else ListMachines?name=).

    Raises MachineNotFound (a CloudAPIError, with CloudAPI's code and request id when it answered).
    """
    if is_uuid(ref):
        try:
            return client.get(client.account_path("machines", ref))
        except CloudAPIError as exc:
            if exc.status in (404, 410):
                raise MachineNotFound("%s '%s' not found: %s" % (what, ref, exc), status=exc.status, code=exc.code,
                                      request_id=exc.request_id, errors=exc.errors)
            raise
    found = [m for m in client.list_all(client.account_path("machines"), {"name": ref})
             if m.get("name") == ref and m.get("state") not in ("deleted", "failed")]
    if not found:
        raise MachineNotFound("%s '%s' not found: no live machine has that name or id" % (what, ref))
    if len(found) > 1:
        raise CloudAPIError("%s name '%s' is ambiguous: machines %s have it; give the id instead"
                            % (what, ref, ", ".join(sorted(m["id"] for m in found))))
    return found[0]

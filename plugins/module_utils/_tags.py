# -*- coding: utf-8 -*-
# Copyright: locustfleet.triton contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# PRIVATE to the collection: may change without notice between releases.
"""Machine tags: value checks, the one tag comparison, what to write."""

from __future__ import annotations

import math

# Request parameters CloudAPI never turns into tags (lib/tags.js): such a tag would be dropped silently.
RESERVED_TAG_NAMES = ("account", "machine", "uuid", "owner_uuid", "context", "image")


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


def same_value(stored, wanted):
    """True when two tag values are the same JSON value: the same JSON type and an equal value.

    This is the one tag comparison of the collection: joyent_machine and joyent_tag decide "changed"
    with it, a fleet's members and ``tags`` filters (modules and inventory) are the machines whose tags
    pass it. Numbers compare as numbers (``8`` is ``8.0``, as in JSON); a string is never a number or a
    boolean (``"8"`` is not ``8``, ``"true"`` is not ``true``), and a boolean is never a number. CloudAPI's
    own ``tag.NAME=VALUE`` filter is looser (it matches ``"true"`` to ``true``), so what it lists is
    checked again with this.
    """
    return _kind(stored) == _kind(wanted) and stored == wanted


def tags_match(current, wanted):
    """Every tag of ``wanted`` is in ``current`` with the same value (``same_value``)."""
    current = current or {}
    return all(key in current and same_value(current[key], value) for key, value in (wanted or {}).items())


def same_tags(current, wanted):
    """The two sets have the same keys and ``same_value`` values."""
    return set(current) == set(wanted) and tags_match(current, wanted)


def tag_query_value(value):
    """A tag value as text in a ``tag.NAME=VALUE`` query or a group name: JSON's spelling
    (``true``, ``8`` for ``8.0``), which CloudAPI's type-tolerant filter matches to the stored value."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


class TagPlan:
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
    return tags_match(observed, tags)

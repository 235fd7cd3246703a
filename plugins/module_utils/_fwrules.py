# -*- coding: utf-8 -*-
# Copyright: locustfleet.triton contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# PRIVATE to the collection: may change without notice between releases.
"""Cloud Firewall rules: the rule text as identity, and what to change (pure functions)."""

from __future__ import annotations

import re

# Words of the rule language; their case does not matter to CloudAPI, which writes them back in its own.
_KEYWORDS = frozenset((
    "from", "to", "allow", "block", "any", "all", "vms", "vm", "tag", "ip", "subnet", "or", "and",
    "port", "ports", "tcp", "udp", "icmp", "icmp6", "type", "code", "priority",
))
_TOKEN = re.compile(r'"((?:[^"\\]|\\.)*)"|([(),=])|([^\s(),="]+)')
_MANAGED = ("enabled", "description")


class RuleTextProblem(ValueError):
    pass


def rule_key(text):
    """The identity of a rule: its words, with keyword case, quoting and spacing ignored.

    ``FROM any TO tag "role" = "master" ALLOW tcp PORT 22`` and
    ``from any to tag role=master allow TCP port 22`` are the same rule; values keep their case.
    """
    if not isinstance(text, str) or not text.strip():
        raise RuleTextProblem("rule must be a non-empty string")
    tokens, pos = [], 0
    text = text.strip()
    while pos < len(text):
        if text[pos].isspace():
            pos += 1
            continue
        match = _TOKEN.match(text, pos)
        if match is None:
            raise RuleTextProblem("rule %r has an unterminated quote at character %d" % (text, pos + 1))
        quoted, punct, word = match.groups()
        if quoted is not None:
            tokens.append(re.sub(r"\\(.)", r"\1", quoted))
        elif punct is not None:
            tokens.append(punct)
        else:
            tokens.append(word.lower() if word.lower() in _KEYWORDS else word)
        pos = match.end()
    return tuple(tokens)


def find_rules(rules, text):
    """The rules of ``rules`` (CloudAPI's ListFirewallRules answer) that are ``text``."""
    key = rule_key(text)
    return [rule for rule in rules if isinstance(rule.get("rule"), str) and _same(rule["rule"], key)]


def _same(text, key):
    try:
        return rule_key(text) == key
    except RuleTextProblem:
        return False


class RulePlan:
    """What one task does: ``op`` is create, update, delete or None; ``body`` is what to send."""

    def __init__(self, op, before, after, body=None, targets=()):
        self.op = op
        self.before = before
        self.after = after
        self.body = body
        self.targets = list(targets)

    @property
    def changed(self):
        return self.op is not None


def plan_rule(existing, text, state, enabled=None, description=None):
    """Plan one rule. ``existing``: the rules already there with this text (find_rules).

    ``enabled`` and ``description`` of None are left as they are. Duplicates (the same text twice,
    made outside this module) are all deleted by state=absent; state=present keeps the first.
    """
    current = existing[0] if existing else None
    before = _view(current)
    if state == "absent":
        if not existing:
            return RulePlan(None, before, None)
        return RulePlan("delete", before, None, targets=existing)
    wanted = {"enabled": enabled, "description": description}
    if current is None:
        body = {"rule": text, "enabled": bool(enabled)}
        if description is not None:
            body["description"] = description
        return RulePlan("create", None, _view(dict(body)), body=body)
    body = {name: value for name, value in wanted.items()
            if value is not None and _current(current, name) != value}
    if not body:
        return RulePlan(None, before, before, targets=[current])
    after = dict(before, **body)
    # CloudAPI's UpdateFirewallRule requires the rule text even when only a flag changes.
    body["rule"] = current["rule"]
    return RulePlan("update", before, after, body=body, targets=[current])


def _current(rule, name):
    value = rule.get(name)
    if name == "enabled":
        return bool(value)
    return value if value is not None else ""


def _view(rule):
    """The part of a rule that a task manages and a diff shows."""
    if rule is None:
        return None
    view = {"rule": rule.get("rule")}
    view.update((name, _current(rule, name)) for name in _MANAGED)
    return view

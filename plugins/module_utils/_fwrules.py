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
    """The identity of a rule: what it means, not how it is written.

    CloudAPI writes a rule back in a form of its own (keywords' case, quoted tag names and values,
    targets and ports sorted, ``PORTS 22, 80`` as ``(PORT 22 AND PORT 80)``, ``1-9`` as ``1 - 9``),
    so ``from any to tag role=master allow TCP ports 80, 22`` and
    ``FROM any TO tag "role" = "master" ALLOW tcp (PORT 22 AND PORT 80)`` are the same rule; values
    keep their case. A text this parser does not follow is compared word for word.
    """
    tokens = _tokens(text)
    try:
        return _meaning(tokens)
    except _NotFollowed:
        return tuple(tokens)


class _NotFollowed(Exception):
    pass


def _tokens(text):
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
            tokens.append(_Quoted(re.sub(r"\\(.)", r"\1", quoted)))
        elif punct is not None:
            tokens.append(punct)
        else:
            tokens.append(word.lower() if word.lower() in _KEYWORDS else word)
        pos = match.end()
    return tokens


class _Quoted(str):
    """A quoted word: never a keyword."""


def _meaning(tokens):
    """(from targets, to targets, action, protocol, ports) of FROM .. TO .. ALLOW|BLOCK proto ports."""
    words = [t if isinstance(t, _Quoted) else str(t) for t in tokens]
    plain = [None if isinstance(t, _Quoted) else t for t in tokens]
    try:
        to_at = plain.index("to")
        action_at = next(i for i, w in enumerate(plain) if w in ("allow", "block"))
    except (ValueError, StopIteration):
        raise _NotFollowed() from None
    if plain[:1] != ["from"] or not 1 < to_at < action_at or action_at + 1 >= len(words):
        raise _NotFollowed()
    return (_targets(words[1:to_at], plain[1:to_at]), _targets(words[to_at + 1:action_at], plain[to_at + 1:action_at]),
            plain[action_at], plain[action_at + 1], _ports(words[action_at + 2:], plain[action_at + 2:]))


def _targets(words, plain):
    if plain[:1] == ["("] and plain[-1:] == [")"]:
        words, plain = words[1:-1], plain[1:-1]
    found, current = set(), []
    for word, keyword in zip(words + ["or"], plain + ["or"]):
        if keyword == "or":
            found.add(_target(current))
            current = []
        else:
            current.append((word, keyword))
    return frozenset(found)


def _target(parts):
    kinds = [keyword for word, keyword in parts]
    values = [str(word) for word, keyword in parts]
    if kinds == ["any"] or kinds == ["all", "vms"]:
        return tuple(kinds)
    if len(parts) == 2 and kinds[0] in ("vm", "ip", "subnet", "tag"):
        return (kinds[0], values[1])
    if len(parts) == 4 and kinds[0] == "tag" and kinds[2] == "=":
        return ("tag", values[1], values[3])
    raise _NotFollowed()


def _ports(words, plain):
    """A frozenset of (low, high) port ranges, of (type, code) for icmp, or "all"."""
    rest = [str(w) for w, k in zip(words, plain) if k not in ("(", ")", ",", "and", "port", "ports")]
    if rest in (["all"], ["all", "ports"]) or plain[-2:] == ["all", "ports"]:
        return "all"
    if "type" in plain:
        return _icmp_types(plain)
    text = " ".join(rest).replace(" - ", "-").replace("- ", "-").replace(" -", "-")
    ranges = set()
    for item in text.split():
        low, dummy, high = item.partition("-")
        if not (low.isdigit() and (high.isdigit() or not high)):
            raise _NotFollowed()
        ranges.add((int(low), int(high or low)))
    if not ranges:
        raise _NotFollowed()
    return frozenset(ranges)


def _icmp_types(plain):
    words = [w for w in plain if w not in ("(", ")", "and")]
    found = set()
    while words:
        if words[0] != "type" or len(words) < 2:
            raise _NotFollowed()
        if words[2:3] == ["code"]:
            if len(words) < 4:
                raise _NotFollowed()
            found.add((words[1], words[3]))
            words = words[4:]
        else:
            found.add((words[1], None))
            words = words[2:]
    return frozenset(found)


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

"""Cloud Firewall rules: parse, re-serialise canonically, match machines, compile policies.

Pure functions only (no store, no I/O); firewall_service.py wires them to the API.

The rule language is SmartOS fwrule(7) as FWAPI accepts it::

    FROM <targets> TO <targets> ALLOW|BLOCK <protocol> <ports|types>

and the text CloudAPI returns is FWAPI's canonical form (see canonical_text and
tritonsim/docs/firewall.md): keywords as FWAPI writes them, targets sorted by kind
(any/all vms, ip, subnet, tag, vm) then by value, tag names and values always
double-quoted, ports sorted.  IPv6, ah/esp and PRIORITY are refused with a clear
message (tritonsim does not enforce them).
"""

import ipaddress
import re
from dataclasses import dataclass, field

KEYWORDS = ("FROM", "TO", "IP", "SUBNET", "ANY", "ALL", "TAG", "VM", "VMS", "OR", "AND",
            "BLOCK", "ALLOW", "PORT", "PORTS", "TCP", "UDP", "ICMP", "ICMP6", "AH", "ESP",
            "TYPE", "CODE", "PRIORITY")
UNSUPPORTED = {"ICMP6": "icmp6 (IPv6)", "AH": "the ah protocol", "ESP": "the esp protocol",
               "PRIORITY": "PRIORITY levels"}
TARGET_ORDER = ("wildcard", "ip", "subnet", "tag", "vm")
UUID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-"
                     r"[0-9a-fA-F]{12}$")
ALL_NETS = "0.0.0.0/0"

# fwrule's escapes inside "...": what follows a backslash, and what it means
_ESCAPES = {'"': '"', "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "/": "/",
            "(": "(", ")": ")", "\\": "\\"}
# characters FWAPI escapes when it writes a quoted string
_WRITE_ESCAPES = {'"': '"', "(": "(", ")": ")", "\\": "\\", "\b": "b", "\t": "t", "\n": "n",
                  "\f": "f", "\r": "r"}
_UNICODE_SPACES = "\u0085\u00a0\u1680\u180e\u2028\u2029\u202f\u205f\u2060\u3000\ufeff"

_TOKEN_RE = re.compile(r"""
    (?P<space>\s+)
  | (?P<string>"(?:\\["bfnrt/()\\]|\\u[0-9a-fA-F]{4}|[^"\\])*")
  | (?P<ipv4>\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3})
  | (?P<ipv6>[0-9a-f]*:[0-9a-f]*:[:0-9a-f]*)
  | (?P<cidr>/\d{1,3})
  | (?P<punct>[-,=()])
  | (?P<word>[-a-zA-Z0-9_]+)
""", re.VERBOSE)


class RuleError(ValueError):
    """The rule text does not parse or makes no sense; str() is the message."""


@dataclass(frozen=True)
class Token:
    kind: str       # a keyword, STRING, IPV4ADDR, CIDRSUFFIX, WORD, a punctuation char, EOF
    text: str
    pos: int
    value: str = ""


@dataclass
class Rule:
    """A parsed rule: targets are tuples ("wildcard", "any"|"vmall"), ("ip", A),
    ("subnet", CIDR), ("tag", NAME, VALUE|None), ("vm", UUID); ports are ints,
    (start, end) pairs or "all"; types are (type, code|None) pairs or "all"."""
    action: str
    protocol: str
    from_targets: list
    to_targets: list
    ports: list = field(default_factory=list)
    types: list = field(default_factory=list)


# ---------------------------------------------------------------- lexer

def _unescape(body):
    out, i = [], 0
    while i < len(body):
        ch = body[i]
        if ch != "\\":
            out.append(ch)
            i += 1
        elif body[i + 1] == "u":
            out.append(chr(int(body[i + 2:i + 6], 16)))
            i += 6
        else:
            out.append(_ESCAPES[body[i + 1]])
            i += 2
    return "".join(out)


def tokenize(text):
    tokens, pos = [], 0
    while pos < len(text):
        m = _TOKEN_RE.match(text, pos)
        if m is None:
            raise RuleError(f"Error at character {pos}: '{text[pos:pos + 20]}', "
                            "found: unexpected text")
        kind = m.lastgroup
        raw = m.group()
        if kind == "string":
            tokens.append(Token("STRING", raw, pos, _unescape(raw[1:-1])))
        elif kind == "ipv4":
            tokens.append(Token("IPV4ADDR", raw, pos, raw))
        elif kind == "ipv6":
            raise RuleError(f"Error at character {pos}: '{raw}': IPv6 addresses are not "
                            "supported by tritonsim")
        elif kind == "cidr":
            tokens.append(Token("CIDRSUFFIX", raw, pos, raw))
        elif kind == "punct":
            tokens.append(Token(raw, raw, pos, raw))
        elif kind == "word":
            upper = raw.upper()
            is_keyword = upper in KEYWORDS and raw in (upper, raw.lower())
            tokens.append(Token(upper if is_keyword else "WORD", raw, pos, raw))
        pos = m.end()
    tokens.append(Token("EOF", "", len(text)))
    return tokens


# ---------------------------------------------------------------- parser

class _Parser:
    def __init__(self, text):
        self.tokens = tokenize(text)
        self.i = 0

    @property
    def tok(self):
        return self.tokens[self.i]

    def peek(self, offset=1):
        return self.tokens[min(self.i + offset, len(self.tokens) - 1)]

    def fail(self, *expected):
        tok = self.tok
        if tok.kind in UNSUPPORTED:
            raise RuleError(f"Error at character {tok.pos}: {UNSUPPORTED[tok.kind]} "
                            "not supported by tritonsim")
        wanted = ", ".join(f"'{e}'" for e in expected)
        found = "end of rule" if tok.kind == "EOF" else tok.kind
        raise RuleError(f"Error at character {tok.pos}: '{tok.text}', expected: {wanted}, "
                        f"found: {found}")

    def take(self, *kinds):
        if self.tok.kind not in kinds:
            self.fail(*kinds)
        tok = self.tok
        self.i += 1
        return tok

    def accept(self, kind):
        if self.tok.kind == kind:
            return self.take(kind)
        return None

    def rule(self):
        self.take("FROM")
        from_targets = self.targets()
        self.take("TO")
        to_targets = self.targets()
        action = self.take("ALLOW", "BLOCK").kind.lower()
        proto = self.take("TCP", "UDP", "ICMP").kind.lower()
        rule = Rule(action, proto, from_targets, to_targets)
        if proto == "icmp":
            rule.types = self.types()
        else:
            rule.ports = self.ports()
        self.take("EOF")
        return rule

    # targets -----------------------------------------------------------

    def targets(self):
        if self.tok.kind == "(" and self.peek().kind in ("ANY", "ALL"):
            self.take("(")
            wildcard = self.wildcard()
            self.take(")")
            return wildcard
        if self.tok.kind in ("ANY", "ALL"):
            return self.wildcard()
        if self.accept("("):
            found = [self.target()]
            while self.accept("OR"):
                found.append(self.target())
            self.take(")")
            return found
        return [self.target()]

    def wildcard(self):
        if self.accept("ANY"):
            return [("wildcard", "any")]
        self.take("ALL")
        self.take("VMS")
        return [("wildcard", "vmall")]

    def target(self):
        kind = self.take("IP", "SUBNET", "TAG", "VM").kind
        if kind == "IP":
            addr = self.take("IPV4ADDR")
            try:
                ipaddress.IPv4Address(addr.value)
            except ValueError:
                raise RuleError(f"IP address \"{addr.value}\" is invalid") from None
            return ("ip", addr.value)
        if kind == "SUBNET":
            addr = self.take("IPV4ADDR").value + self.take("CIDRSUFFIX").value
            try:
                ipaddress.IPv4Network(addr, strict=True)
            except ValueError:
                raise RuleError(f"Subnet \"{addr}\" is invalid (must be in CIDR format "
                                "with no host bits set)") from None
            return ("subnet", addr)
        if kind == "VM":
            ident = self.take("WORD")
            if not UUID_RE.match(ident.value):
                raise RuleError(f"UUID \"{ident.value}\" is invalid")
            return ("vm", ident.value)
        name = self.take("STRING", "WORD").value
        value = None
        if self.accept("="):
            value = self.take("STRING", "WORD").value
        return ("tag", name, value)

    # protocol targets ----------------------------------------------------

    def ports(self):
        if self.tok.kind not in ("PORT", "PORTS", "("):
            self.fail("PORT", "PORTS", "(")
        if self.accept("PORTS"):
            found = [self.port_range()]
            while self.accept(","):
                found.append(self.port_range())
            return found
        if self.accept("("):
            found = self.port_list()
            self.take(")")
            return found
        return self.port_list()

    def port_list(self):
        self.take("PORT")
        if self.accept("ALL"):
            return ["all"]
        found = [_number(self.take("WORD"), "Port", 1, 65535)]
        while self.accept("AND"):
            self.take("PORT")
            found.append(_number(self.take("WORD"), "Port", 1, 65535))
        return found

    def port_range(self):
        first = self.take("WORD")
        if "-" in first.value.strip("-") or self.tok.kind == "-":
            if self.accept("-"):
                start, end = first, self.take("WORD")
                start_n = _number(start, "Port", 1, 65535)
                end_n = _number(end, "Port", 1, 65535)
            else:
                low, dummy, high = first.value.partition("-")
                start_n = _number(Token("WORD", low, first.pos, low), "Port", 1, 65535)
                end_n = _number(Token("WORD", high, first.pos, high), "Port", 1, 65535)
            if start_n > end_n:
                raise RuleError(f"The end of the range ({end_n}) cannot be less than "
                                f"the start ({start_n})")
            return (start_n, end_n)
        return _number(first, "Port", 1, 65535)

    def types(self):
        if self.tok.kind not in ("TYPE", "("):
            self.fail("TYPE", "(")
        if self.accept("("):
            found = self.type_list()
            self.take(")")
            return found
        return self.type_list()

    def type_list(self):
        self.take("TYPE")
        if self.accept("ALL"):
            return ["all"]
        found = [self.icmp_type()]
        while self.accept("AND"):
            self.take("TYPE")
            found.append(self.icmp_type())
        return found

    def icmp_type(self):
        icmp_type = _number(self.take("WORD"), "ICMP type", 0, 254)
        code = None
        if self.accept("CODE"):
            code = _number(self.take("WORD"), "ICMP code", 0, 255)
        return (icmp_type, code)


def _number(tok, what, low, high):
    if not tok.value.isdigit() or not low <= int(tok.value) <= high:
        raise RuleError(f"{what} \"{tok.value}\" is invalid (must be a number from "
                        f"{low} to {high})")
    return int(tok.value)


def parse(text):
    """Parse rule text into a Rule; RuleError (a ValueError) says what is wrong."""
    if not isinstance(text, str) or not text.strip():
        raise RuleError("rule must be a non-empty string")
    rule = _Parser(text).rule()
    if not any(t[0] in ("tag", "vm") or t == ("wildcard", "vmall")
               for t in rule.from_targets + rule.to_targets):
        raise RuleError("rule does not affect VMs (name a vm, tag or all vms on one side)")
    return rule


# ---------------------------------------------------------------- canonical text

def quote(text):
    """A tag name or value as FWAPI writes it: always double-quoted, escaped."""
    out = []
    for ch in text:
        if ch in _WRITE_ESCAPES:
            out.append("\\" + _WRITE_ESCAPES[ch])
        elif ord(ch) < 0x20 or ch == "\x7f" or ch in _UNICODE_SPACES \
                or "\u2000" <= ch <= "\u200d":
            out.append("\\u%04X" % ord(ch))
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _sorted_side(targets):
    """FWAPI's order: by kind (wildcard, ip, subnet, tag, vm), then value; duplicates
    dropped; a bare `tag X` swallows `tag X = V`."""
    out = []
    for kind in TARGET_ORDER:
        same = [t for t in targets if t[0] == kind]
        if kind != "tag":
            out += [(kind, v) for v in sorted({t[1] for t in same})]
            continue
        for name in sorted({t[1] for t in same}):
            values = {t[2] for t in same if t[1] == name}
            if None in values:
                out.append(("tag", name, None))
            else:
                out += [("tag", name, v) for v in sorted(values)]
    return out


def _target_text(target):
    kind = target[0]
    if kind == "wildcard":
        return "all vms" if target[1] == "vmall" else "any"
    if kind == "tag":
        name, value = target[1], target[2]
        return f"tag {quote(name)}" + ("" if value is None else f" = {quote(value)}")
    return f"{kind} {target[1]}"


def _side_text(targets):
    texts = [_target_text(t) for t in _sorted_side(targets)]
    return texts[0] if len(texts) == 1 else "(" + " OR ".join(texts) + ")"


def _port_start(port):
    if port == "all":
        return 0
    return port[0] if isinstance(port, tuple) else port


def _ports_text(ports):
    ordered = sorted(ports, key=_port_start)
    if any(isinstance(p, tuple) for p in ordered):
        return "PORTS " + ", ".join(f"{p[0]} - {p[1]}" if isinstance(p, tuple) else str(p)
                                    for p in ordered)
    texts = [str(p) for p in ordered]
    if len(texts) == 1:
        return "PORT " + texts[0]
    return "(PORT " + " AND PORT ".join(texts) + ")"


def _types_text(types):
    if types == ["all"]:
        return "TYPE all"
    ordered = sorted(types, key=lambda t: (t[0], t[1] or 0))
    texts = [str(t) if code is None else f"{t} CODE {code}" for t, code in ordered]
    if len(texts) == 1:
        return "TYPE " + texts[0]
    return "(TYPE " + " AND TYPE ".join(texts) + ")"


def canonical_text(rule):
    """The rule as FWAPI (and so CloudAPI) returns it."""
    if isinstance(rule, str):
        rule = parse(rule)
    proto = _types_text(rule.types) if rule.protocol == "icmp" else _ports_text(rule.ports)
    return (f"FROM {_side_text(rule.from_targets)} TO {_side_text(rule.to_targets)} "
            f"{rule.action.upper()} {rule.protocol} {proto}")


# ---------------------------------------------------------------- matching

def tag_text(value):
    """A machine's tag value as fwadm compares it (JavaScript's String())."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def target_matches(target, machine):
    """Does this vm/tag/all-vms target name the machine ({id, tags, ...})?"""
    kind = target[0]
    if kind == "wildcard":
        return target[1] == "vmall"
    if kind == "vm":
        return target[1].lower() == machine["id"].lower()
    if kind == "tag":
        tags = machine.get("tags") or {}
        if target[1] not in tags:
            return False
        return target[2] is None or tag_text(tags[target[1]]) == target[2]
    return False


def side_matches(targets, machine):
    return any(target_matches(t, machine) for t in targets)


def rule_machines(rule, machines):
    """Machines a rule names on either side (ListFirewallRuleMachines)."""
    return [m for m in machines
            if side_matches(rule.from_targets, m) or side_matches(rule.to_targets, m)]


# ---------------------------------------------------------------- policies

def _addresses(targets, machines):
    out = set()
    for t in targets:
        if t == ("wildcard", "any"):
            out.add(ALL_NETS)
        elif t[0] == "ip":
            out.add(t[1] + "/32")
        elif t[0] == "subnet":
            out.add(t[1])
        else:
            out.update(ip + "/32" for m in machines if target_matches(t, m)
                       for ip in m.get("ips") or ())
    return out


def _entry(rule, addrs):
    entry = {"proto": rule.protocol, "addrs": sorted(addrs)}
    if rule.protocol == "icmp":
        entry["types"] = None if rule.types == ["all"] else sorted(
            [t, c] for t, c in rule.types)
    else:
        entry["ports"] = None if rule.ports == ["all"] else sorted(
            [p[0], p[1]] if isinstance(p, tuple) else [p, p] for p in rule.ports)
    return entry


def compile_policies(rules, machines):
    """Each firewalled machine's effective policy.

    rules: [(Rule, enabled)]; machines: [{id, ips, tags, firewall_enabled}] (the
    account's live machines).  Returns {machine id: policy} for machines whose
    firewall is enabled, policy = {"inbound_allow": [entry], "outbound_block": [entry]},
    entry = {"proto", "addrs": [CIDR], "ports": [[lo, hi]] | None (all)} or, for icmp,
    {"proto", "addrs", "types": [[type, code|None]] | None (all)}.

    Inbound is blocked and outbound allowed by default; a rule only changes something
    when it goes against that default, which is also why it wins over an opposite rule
    (inbound ALLOW beats BLOCK, outbound BLOCK beats ALLOW).  Loopback and replies to
    the machine's own connections are always allowed (left to the enforcer).
    """
    policies = {m["id"]: {"inbound_allow": [], "outbound_block": []}
                for m in machines if m.get("firewall_enabled")}
    for rule, enabled in rules:
        if not enabled:
            continue
        if rule.action == "allow":
            owners, remote, key = rule.to_targets, rule.from_targets, "inbound_allow"
        else:
            owners, remote, key = rule.from_targets, rule.to_targets, "outbound_block"
        addrs = None
        for m in machines:
            if m["id"] not in policies or not side_matches(owners, m):
                continue
            if addrs is None:
                addrs = _addresses(remote, machines)
            if addrs:
                policies[m["id"]][key].append(_entry(rule, addrs))
    for policy in policies.values():
        for key in policy:
            policy[key] = _dedup_sorted(policy[key])
    return policies


def _dedup_sorted(entries):
    seen = {}
    for e in entries:
        seen[repr(sorted(e.items()))] = e
    return [seen[k] for k in sorted(seen)]

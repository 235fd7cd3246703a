"""RBAC decisions, as CloudAPI (lib/auth.js authzRbac) and mahi's authorize make them.

Pure functions only: the policy language parser (Aperture's syntax, the subset
CloudAPI rules use), the action name of a request, the resource name role tags
hang on, and the allow/deny decision.  Stores and requests live in access.py
and iam.py.

Rule syntax: ``[principal, ... and principal] CAN action[, action ... and action]
[resource ...] [WHEN|IF condition]``; principals, actions and resources may contain
``*`` wildcards; conditions are comparisons ``name[::type] op value`` (op ``=``, ``!=``,
``<``, ``>``, ``<=``, ``>=``, or ``in (a, b)``) joined with ``and``, ``or``, ``not`` and
parentheses.  A name without ``::type`` must be one CloudAPI types itself (TYPE_TABLE).
"""

import fnmatch
import ipaddress
import re
from dataclasses import dataclass, field

ADMIN_ROLE = "administrator"

# POST /:login/machines/:id?action=X -> action name (lib/app.js reqRoutename).
MACHINE_ACTIONS = {
    "enable_firewall": "enablemachinefirewall",
    "disable_firewall": "disablemachinefirewall",
}
ROLE_TAG_ACTION = "setroletags"
# Resource collections that take role tags (lib/resources.js validResources).
TAGGABLE = ("machines", "users", "roles", "packages", "images", "policies", "keys",
            "datacenters", "fwrules", "networks", "services")


# Condition names usable without ::type (CloudAPI's aperture typeTable), and their types.
TYPE_TABLE = {"ip": "ip", "sourceip": "ip", "date": "date", "day": "day", "time": "time",
              "requesttime": "time", "user-agent": "string", "method": "string",
              "datacenter": "string"}
TYPES = ("string", "ip", "date", "day", "time", "number")


class RuleError(ValueError):
    """A rule that does not parse; the message is one line."""


# ---------------------------------------------------------------- parsing

@dataclass(frozen=True)
class Rule:
    text: str
    actions: tuple
    resources: tuple = ()
    condition: object = None          # None or a condition tree (tuples)
    principals: tuple = ()            # sub-user logins the rule is limited to (usually none)


_TOKEN = re.compile(r"""\s*(?:
    (?P<str>"(?:[^"\\]|\\.)*")
  | (?P<op><=|>=|!=|=|<|>)
  | (?P<punct>[(),])
  | (?P<word>[^\s,()=<>!"]+)
)""", re.X)
_KEYWORDS = {"can", "when", "if", "and", "or", "not", "in"}


def _tokens(text):
    out, pos = [], 0
    text = text.rstrip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise RuleError(f"unexpected character {text[pos:].strip()[:1]!r} at offset {pos}")
        pos = m.end()
        kind = m.lastgroup
        value = m.group(kind)
        if kind == "str":
            value = re.sub(r"\\(.)", r"\1", value[1:-1])
        out.append((kind, value))
    return out


class _Parser:
    def __init__(self, text):
        self.text = text
        self.toks = _tokens(text)
        self.i = 0

    def peek(self):
        return self.toks[self.i] if self.i < len(self.toks) else (None, None)

    def take(self):
        tok = self.peek()
        self.i += 1
        return tok

    def keyword(self, *words):
        kind, value = self.peek()
        if kind == "word" and value.lower() in words:
            self.i += 1
            return value.lower()
        return None

    def fail(self, expected):
        kind, value = self.peek()
        got = "end of rule" if kind is None else repr(value)
        raise RuleError(f"expected {expected}, got {got}")

    def rule(self):
        # CloudAPI implies the principal; a rule may still name some (Aperture allows it).
        principals = ()
        if not self.keyword("can"):
            principals = tuple(self.name_list("a principal or CAN"))
            if not self.keyword("can"):
                self.fail("CAN")
        actions = self.name_list("an action")
        resources = ()
        kind, value = self.peek()
        if kind == "word" and value.lower() not in ("when", "if"):
            resources = self.name_list("a resource")
        condition = None
        if self.keyword("when", "if"):
            condition = self.expr()
        if self.peek()[0] is not None:
            self.fail("WHEN, IF or the end of the rule")
        return Rule(self.text, tuple(actions), tuple(resources), condition, principals)

    def name_list(self, what):
        names = [self.name(what)]
        while True:
            kind, value = self.peek()
            if kind == "punct" and value == ",":
                self.take()
                self.keyword("and")
            elif not self.keyword("and"):
                return names
            names.append(self.name(what))

    def name(self, what):
        kind, value = self.peek()
        if kind == "str" or (kind == "word" and value.lower() not in _KEYWORDS):
            self.take()
            return value
        self.fail(what)

    def expr(self):
        node = self.term()
        while self.keyword("or"):
            node = ("or", node, self.term())
        return node

    def term(self):
        node = self.factor()
        while self.keyword("and"):
            node = ("and", node, self.factor())
        return node

    def factor(self):
        if self.keyword("not"):
            return ("not", self.factor())
        kind, value = self.peek()
        if kind == "punct" and value == "(":
            self.take()
            node = self.expr()
            if self.take() != ("punct", ")"):
                raise RuleError("expected ')'")
            return node
        return self.comparison()

    def comparison(self):
        kind, lhs = self.peek()
        if kind != "word" or lhs.lower() in _KEYWORDS:
            self.fail("a condition name")
        self.take()
        name, dummy, typ = lhs.partition("::")
        typ = typ.lower() or TYPE_TABLE.get(name.lower())
        if typ is None:
            raise RuleError(f'condition "{name}" needs a type (e.g. {name}::string)')
        if typ not in TYPES:
            raise RuleError(f'unknown type "{typ}" for condition "{name}"')
        if self.keyword("in"):
            if self.take() != ("punct", "("):
                raise RuleError("expected '(' after IN")
            values = [self.value()]
            while self.peek() == ("punct", ","):
                self.take()
                values.append(self.value())
            if self.take() != ("punct", ")"):
                raise RuleError("expected ')' after IN list")
            return ("in", name, typ, tuple(values))
        kind, op = self.peek()
        if kind != "op":
            self.fail("an operator")
        self.take()
        return ("cmp", name, typ, op, self.value())

    def value(self):
        kind, value = self.peek()
        if kind in ("str", "word"):
            self.take()
            return value
        self.fail("a value")


def parse_rule(text):
    """A Rule, or RuleError."""
    if not isinstance(text, str) or not text.strip():
        raise RuleError("empty rule")
    return _Parser(text.strip()).rule()


def rule_errors(rules):
    """CloudAPI's validation of a policy's rules: [] when all parse, else messages."""
    errors = []
    for text in rules:
        try:
            parse_rule(text)
        except RuleError as e:
            errors.append(f"{text}: {e}" if isinstance(text, str) else str(e))
    return errors


# ---------------------------------------------------------------- conditions

_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _coerce(typ, value):
    """(comparable value) for a condition type; raises ValueError on a mismatch."""
    if typ == "ip":
        return ipaddress.ip_address(str(value))
    if typ == "day":
        text = str(value).strip().lower()[:3]
        return _DAYS.index(text)
    if typ == "time":
        parts = [int(p) for p in str(value).split(":")]
        return tuple(parts + [0] * (3 - len(parts)))
    if typ == "number":
        return float(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _compare(typ, have, op, want):
    if typ == "ip" and "/" in str(want):
        inside = ipaddress.ip_address(str(have)) in ipaddress.ip_network(str(want), strict=False)
        return inside if op == "=" else (not inside if op == "!=" else False)
    a, b = _coerce(typ, have), _coerce(typ, want)
    return {"=": a == b, "!=": a != b, "<": a < b, ">": a > b,
            "<=": a <= b, ">=": a >= b}[op]


def evaluate(node, conditions):
    """A parsed condition against the request's conditions (name -> value or [values])."""
    if node is None:
        return True
    kind = node[0]
    if kind == "and":
        return evaluate(node[1], conditions) and evaluate(node[2], conditions)
    if kind == "or":
        return evaluate(node[1], conditions) or evaluate(node[2], conditions)
    if kind == "not":
        return not evaluate(node[1], conditions)
    name, typ = node[1], node[2]
    if name not in conditions:
        return False
    have = conditions[name]
    haves = have if isinstance(have, (list, tuple)) else [have]
    try:
        if kind == "in":
            return any(_compare(typ, h, "=", w) for h in haves for w in node[3])
        return any(_compare(typ, h, node[3], node[4]) for h in haves)
    except (ValueError, TypeError):
        return False


# ---------------------------------------------------------------- requests

def action_for(endpoint, method, params):
    """The action a policy names for a request: the lowercased route name;
    <action>machine for POST /:login/machines/:id (firewall ones renamed),
    setroletags for role-tag PUTs, Head* for HEAD on Get*/List* routes.
    endpoint: the matched route (UpdateMachine for every machine action)."""
    if endpoint == "UpdateMachine":
        action = params.get("action")
        if isinstance(action, str) and action:
            return MACHINE_ACTIONS.get(action, f"{action}machine")
        return "updatemachine"
    if endpoint.startswith("Replace") and endpoint.endswith("RoleTags"):
        return ROLE_TAG_ACTION
    if method == "HEAD":
        for prefix in ("Get", "List"):
            if endpoint.startswith(prefix):
                return ("Head" + endpoint[len(prefix):]).lower()
    return endpoint.lower()


def resource_name(path, login):
    """The name role tags are stored under (lib/resources.js resourceName): the
    path with `my` replaced by the login, nested machine paths cut to the machine,
    other deep paths cut to four segments (sub-user keys kept whole)."""
    parts = [p for p in path.split("/") if p != ""]
    if not parts:
        return "/"
    parts[0] = login
    if len(parts) <= 3:
        return "/" + "/".join(parts)
    if parts[1] == "users" and parts[3] == "keys":
        return "/" + "/".join(parts)
    if len(parts) == 4 or parts[1] == "machines":
        return "/" + "/".join(parts[:3])
    return "/" + "/".join(parts[:4])


def machine_of(resource):
    """The machine id of /LOGIN/machines/ID, else None."""
    parts = resource.split("/")
    if len(parts) == 4 and parts[2] == "machines":
        return parts[3]
    return None


def split_role_header(value):
    """A Role-Tag header value: comma-separated role names."""
    return [r.strip() for r in (value or "").split(",") if r.strip()]


# ---------------------------------------------------------------- decision

@dataclass(frozen=True)
class ActiveRole:
    name: str
    rules: tuple = field(default_factory=tuple)   # Rules of all its policies


def _matches(pattern, value):
    return fnmatch.fnmatchcase(value.lower(), pattern.lower())


def authorize(*, owner, roles, action, path, resource_roles, conditions, login=None):
    """True when the request may proceed.

    owner: the account itself signed (always allowed).  roles: the sub-user's
    active ActiveRoles.  resource_roles: names of the roles the resource (or its
    machine) is tagged with.  A rule naming resources applies when one matches
    the literal request path; a rule without resources applies when its role
    tags the resource.  A rule naming principals applies only to those logins.
    A role named administrator allows everything.
    """
    if owner:
        return True
    for role in roles:
        if role.name == ADMIN_ROLE:
            return True
        tagged = role.name in resource_roles
        for rule in role.rules:
            if rule.principals and not any(_matches(p, login or "") for p in rule.principals):
                continue
            if rule.resources:
                if not any(_matches(r, path) for r in rule.resources):
                    continue
            elif not tagged:
                continue
            if any(_matches(a, action) for a in rule.actions) \
                    and evaluate(rule.condition, conditions):
                return True
    return False


def denial_message(path, action):
    return f"You do not have permission to access {path} ({action})"

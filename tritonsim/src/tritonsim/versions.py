"""A small matcher for the semver ranges clients send in Accept-Version.

Covers the node-semver forms CloudAPI clients use: ``*``/``x``, exact and
partial versions (``9``, ``9.0``, ``9.0.0``, ``9.x``), ``~``, ``^``,
comparators (``>=7.2.0 <9``), hyphen ranges (``7.0.0 - 8``) and ``||``
alternatives.  Pre-release tags are not supported (CloudAPI has none).
"""

import functools
import re

_PARTIAL = re.compile(r"^v?(\d+|[xX*])(?:\.(\d+|[xX*]))?(?:\.(\d+|[xX*]))?$")
_COMPARATOR = re.compile(r"^(<=|>=|<|>|=|~>|~|\^)?(.*)$")
_HUGE = 1 << 31


class InvalidRange(ValueError):
    pass


def parse_version(text):
    """'9.0.0' -> (9, 0, 0)."""
    parts = _partial(text)
    if None in parts:
        raise InvalidRange(f"not a full version: {text}")
    return parts


def _partial(text):
    m = _PARTIAL.match(text.strip())
    if not m:
        raise InvalidRange(f"invalid version: {text!r}")
    out = []
    for group in m.groups():
        if group is None or group in ("x", "X", "*"):
            out.append(None)
        else:
            out.append(int(group))
    # "1.x.3" is treated like "1.x"
    for i in range(3):
        if out[i] is None:
            out[i + 1:] = [None] * (2 - i)
            break
    return tuple(out)


def _bump(parts, index):
    """Lowest version above everything matching parts[:index+1]."""
    fixed = list(parts[: index + 1])
    fixed[index] += 1
    return tuple(fixed + [0] * (2 - index))


def _floor(parts):
    return tuple(p if p is not None else 0 for p in parts)


def _known(parts):
    return sum(1 for p in parts if p is not None)


def _desugar(op, parts):
    """One comparator token -> list of (op, (maj, min, patch)) with op in < <= > >= =."""
    known = _known(parts)
    if op in ("", "="):
        if known == 0:
            return []
        if known == 3:
            return [("=", parts)]
        return [(">=", _floor(parts)), ("<", _bump(parts, known - 1))]
    if op in ("~", "~>"):
        if known == 0:
            return []
        upper = _bump(parts, 0 if known == 1 else 1)
        return [(">=", _floor(parts)), ("<", upper)]
    if op == "^":
        if known == 0:
            return []
        major, minor, patch = parts
        if major != 0 or known == 1:
            upper = _bump(parts, 0)
        elif minor != 0 or known == 2:
            upper = _bump(parts, 1)
        else:
            upper = _bump(parts, 2)
        return [(">=", _floor(parts)), ("<", upper)]
    if known == 0:
        # ">*" and "<*" match nothing, ">=*" and "<=*" anything
        return [] if op in (">=", "<=") else [("<", (0, 0, 0))]
    if known == 3:
        return [(op, parts)]
    if op == ">":
        return [(">=", _bump(parts, known - 1))]
    if op == ">=":
        return [(">=", _floor(parts))]
    if op == "<":
        return [("<", _floor(parts))]
    return [("<", _bump(parts, known - 1))]  # "<="


def _hyphen(low, high):
    out = [(">=", _floor(_partial(low)))]
    hp = _partial(high)
    known = _known(hp)
    if known == 3:
        out.append(("<=", hp))
    elif known:
        out.append(("<", _bump(hp, known - 1)))
    return out


def _parse_set(text):
    text = re.sub(r"(<=|>=|<|>|=|~>|~|\^)\s+", r"\1", text.strip())
    m = re.match(r"^(\S+)\s+-\s+(\S+)$", text)
    if m:
        return _hyphen(m.group(1), m.group(2))
    comparators = []
    for token in text.split():
        op, rest = _COMPARATOR.match(token).groups()
        comparators.extend(_desugar(op or "", _partial(rest)))
    return comparators


_TESTS = {
    "=": lambda a, b: a == b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}


class Range:
    """A parsed range; raises InvalidRange on syntax it does not understand."""

    def __init__(self, text):
        self.text = text
        self.sets = [_parse_set(alt) for alt in text.split("||")]

    def test(self, version):
        v = parse_version(version) if isinstance(version, str) else version
        return any(all(_TESTS[op](v, ref) for op, ref in comparators)
                   for comparators in self.sets)


@functools.lru_cache(maxsize=256)
def negotiate(range_text, versions):
    """Highest of `versions` (a tuple) that `range_text` admits, or None (also for bad syntax)."""
    try:
        rng = Range(range_text)
    except InvalidRange:
        return None
    matching = [v for v in versions if rng.test(v)]
    return max(matching, key=parse_version) if matching else None

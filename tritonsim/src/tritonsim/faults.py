"""Fault injection settings and the (optionally seeded) dice that decide them.

Kinds: ``503`` (fraction answered 503 ServiceUnavailable), ``drop`` (fraction
of connections closed without a response), ``latency`` (seconds added to every
CloudAPI request), ``provision_fail`` (fraction of new machines that end
``failed``) and ``lost_create`` (fraction of CreateMachine calls that commit the
machine but close the connection instead of answering).
"""

import random
import threading

FRACTIONS = ("503", "drop", "lost_create", "provision_fail")
KINDS = FRACTIONS + ("latency",)


def validate(spec):
    """Check a {kind: number} mapping; returns a clean copy or raises ValueError."""
    if not isinstance(spec, dict):
        raise ValueError("faults must be a JSON object")
    clean = {}
    for kind, value in spec.items():
        kind = str(kind)
        if kind not in KINDS:
            raise ValueError(f"unknown fault {kind!r} (known: {', '.join(KINDS)})")
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"fault {kind} needs a number")
        value = float(value)
        if kind == "latency":
            if not 0 <= value <= 600:
                raise ValueError("latency must be between 0 and 600 seconds")
        elif not 0 <= value <= 1:
            raise ValueError(f"fault {kind} must be a fraction between 0 and 1")
        if value:
            clean[kind] = value
    return clean


def parse_spec(text):
    """'503=0.1,drop=0.05' -> {'503': 0.1, 'drop': 0.05}."""
    spec = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        kind, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"expected KIND=NUMBER, got {item!r}")
        try:
            spec[kind.strip()] = float(value)
        except ValueError:
            raise ValueError(f"not a number in {item!r}") from None
    return validate(spec)


class Faults:
    def __init__(self, spec=None, seed=None):
        self._lock = threading.Lock()
        self._rng = random.Random(seed)
        self._spec = validate(spec or {})

    def get(self):
        with self._lock:
            return dict(self._spec)

    def set(self, spec):
        clean = validate(spec)
        with self._lock:
            self._spec = clean
        return dict(clean)

    def latency(self):
        with self._lock:
            return self._spec.get("latency", 0.0)

    def roll(self, kind):
        """True with the configured probability of `kind` (never rolls when unset)."""
        with self._lock:
            chance = self._spec.get(kind, 0.0)
            if chance <= 0:
                return False
            return chance >= 1 or self._rng.random() < chance

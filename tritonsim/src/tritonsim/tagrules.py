"""Tag and metadata value rules (VMAPI types, node-triton-tags' triton.* keys)."""

import json
import re

from .errors import validation_failed

_DNS_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}(?:\.[a-z0-9][a-z0-9-]{0,62})*$", re.I)
_CNS_SERVICE = re.compile(
    r"^(?P<name>[a-zA-Z0-9-][a-zA-Z0-9.-]*|_[a-zA-Z0-9-]*\._(?:tcp|udp))"
    r"(?::(?P<port>[0-9]+))?(?P<props>(?::[a-z][a-z0-9-]*=[^,:]+)*)$")
_CMON_GROUP = re.compile(r"^[A-Za-z0-9_-]+$")


def _cns_services(value):
    services = value.split(",")
    for svc in services:
        m = _CNS_SERVICE.match(svc)
        if not m:
            return f'invalid "triton.cns.services" tag: cannot parse service "{svc}"'
        name = m.group("name").lower()
        if len(name) > 63:
            return (f'invalid "triton.cns.services" tag: service DNS name "{name}" '
                    "must be 63 or fewer characters")
        if m.group("port") is not None and not 1 <= int(m.group("port")) <= 65535:
            return (f'invalid "triton.cns.services" tag: service port number for {name} '
                    "must be within the range 1 - 65535")
        for prop in filter(None, m.group("props").split(":")):
            key, dummy, val = prop.partition("=")
            if key not in ("priority", "weight"):
                return (f'invalid "triton.cns.services" tag: service property "{key}" '
                        "is not a valid property name")
            if not val.isdigit() or int(val) > 65535:
                return (f'invalid "triton.cns.services" tag: service {key} for {name} '
                        "must be within the range 0 - 65535")
    return None


def _cmon_groups(value):
    groups = value.split(",")
    if not all(_CMON_GROUP.match(g) for g in groups):
        return ('invalid "triton.cmon.groups" tag: groups must be strings comprised of '
                "letters, numbers, _, and -")
    if len(groups) > 100:
        return ('invalid "triton.cmon.groups" tag: must contain less than or equal to '
                "100 group strings")
    if len(set(groups)) != len(groups):
        dup = next(g for g in groups if groups.count(g) > 1)
        return f'invalid "triton.cmon.groups" tag: contains duplicate group {dup}'
    if any(len(g) > 100 for g in groups):
        return ('invalid "triton.cmon.groups" tag: group name must be no less than 1 '
                "character and no greater than 100 characters")
    return None


def _reverse_ptr(value):
    if len(value) > 255 or not _DNS_NAME.match(value):
        return f'invalid "triton.cns.reverse_ptr" tag: "{value}" is not DNS safe'
    return None


_TRITON_TAGS = {
    "triton.cmon.groups": (str, _cmon_groups),
    "triton.cns.services": (str, _cns_services),
    "triton.cns.disable": (bool, None),
    "triton.cns.reverse_ptr": (str, _reverse_ptr),
    "triton.network.public": (str, None),
    "triton.network.public_ipv4": (str, None),
    "triton.placement.exclude_virtual_servers": (bool, None),
}
_JS_TYPES = {str: "string", bool: "boolean", int: "number", float: "number"}


def _js_type(value):
    return _JS_TYPES.get(type(value), "object")


def triton_tag_error(key, value):
    rule = _TRITON_TAGS.get(key)
    if rule is None:
        return f'Unrecognized special triton tag "{key}"'
    expected, check = rule
    # expected is str or bool, so isinstance is an exact type test for JSON values; a number
    # rule would have to reject bools itself (bool is a subclass of int)
    if not isinstance(value, expected):
        return (f'Triton tag "{key}" value must be a {_JS_TYPES[expected]}: '
                f"{json.dumps(value)} ({_js_type(value)})")
    return check(value) if check else None


def is_scalar(value):
    return isinstance(value, (str, bool, int, float)) and value is not None


def validate_tags(tags, message="Invalid VM parameters"):
    errors = []
    for key, value in tags.items():
        if not is_scalar(value):
            errors.append({"field": f"tags.{key}", "code": "Invalid",
                           "message": "Forbidden Data Type"})
        elif key.startswith("triton."):
            problem = triton_tag_error(key, value)
            if problem:
                errors.append({"field": "tags", "code": "Invalid", "message": problem})
    if errors:
        raise validation_failed(message, errors)


def validate_metadata(metadata, message="Invalid VM parameters"):
    errors = [{"field": f"customer_metadata.{key}", "code": "Invalid",
               "message": "Forbidden Data Type"}
              for key, value in metadata.items() if not is_scalar(value)]
    if errors:
        raise validation_failed(message, errors)


def tag_matches(stored, wanted):
    """ListMachines tag.NAME=VALUE: "true"/"false" and numeric strings also
    match booleans and numbers, as VMAPI does."""
    if isinstance(stored, bool):
        return wanted == ("true" if stored else "false")
    if isinstance(stored, (int, float)):
        if str(stored) == wanted:
            return True
        try:
            return float(wanted) == stored
        except ValueError:
            return False
    return stored == wanted

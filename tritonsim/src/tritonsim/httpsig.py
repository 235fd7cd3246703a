"""Parsing and verifying HTTP Signature Authorization headers the way CloudAPI does.

CloudAPI first runs the modern http-signature parser (draft-cavage syntax,
``keyId="..",algorithm="..",headers="..",signature=".."``) and, if that
throws, the bundled 0.9 parser (``keyId="..",algorithm=".." SIGNATURE``,
signing string = bare header values).  When both fail the *modern* parser's
message is reported.  Both parsers are reimplemented here character by
character because their quirks decide which headers are accepted.
"""

import base64
import binascii
import datetime as dt
import email.utils
import re
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding

CLOCK_SKEW = 300

# CloudAPI's allow list (lib/authorization.js); *-sha384 never gets this far
# because the modern parser only knows sha1/sha256/sha512.
CLOUDAPI_ALGORITHMS = frozenset({
    "rsa-sha1", "rsa-sha256", "rsa-sha384", "rsa-sha512", "dsa-sha1",
    "dsa-sha256", "ecdsa-sha256", "ecdsa-sha384", "ecdsa-sha512",
    "ed25519-sha256", "ed25519-sha512",
})
_MODERN_KEY_TYPES = {"rsa", "dsa", "ecdsa", "ed25519"}
_MODERN_HASHES = {"sha1", "sha256", "sha512"}
_LEGACY_ALGORITHMS = {"rsa-sha1", "rsa-sha256", "rsa-sha512", "dsa-sha1",
                      "hmac-sha1", "hmac-sha256", "hmac-sha512"}
_HASH_CLASSES = {"sha1": hashes.SHA1, "sha256": hashes.SHA256, "sha512": hashes.SHA512}


class SignatureHeaderError(ValueError):
    """The header cannot be parsed; CloudAPI answers 400 InvalidHeader."""


@dataclass
class RequestView:
    method: str
    url: str                      # raw request target, path + query as sent
    http_version: str             # "1.1"
    headers: dict                 # lower-case names
    now: float = None             # epoch seconds, for tests


@dataclass
class ParsedSignature:
    key_id: str
    algorithm: str                # lower case, e.g. "rsa-sha256"
    signature: str                # base64 as sent
    signing_string: str
    headers: list = field(default_factory=list)
    legacy: bool = False


def parse(req: RequestView) -> ParsedSignature:
    try:
        return _parse_modern(req)
    except SignatureHeaderError as modern_error:
        try:
            return _parse_legacy(req)
        except SignatureHeaderError:
            raise modern_error from None


def _date_header_name(headers):
    return "x-date" if headers.get("x-date") else "date"


def _js_date(text):
    """Epoch seconds like JavaScript's Date parser, or None (NaN) if unparseable."""
    try:
        return email.utils.parsedate_to_datetime(text).timestamp()
    except (TypeError, ValueError, IndexError):
        pass
    try:
        parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.timezone.utc)
    return parsed.timestamp()


def _js_number(x):
    return str(int(x)) if float(x).is_integer() else repr(x)


def _check_skew(req):
    text = req.headers.get("x-date") or req.headers.get("date")
    if not text:
        return
    when = _js_date(text)
    if when is None:
        return  # JavaScript compares NaN, which never exceeds the limit
    now = req.now if req.now is not None else dt.datetime.now(dt.timezone.utc).timestamp()
    skew_ms = abs(round((now - when) * 1000))
    if skew_ms > CLOCK_SKEW * 1000:
        raise SignatureHeaderError(
            f"clock skew of {_js_number(skew_ms / 1000)}s was greater than {CLOCK_SKEW}s")


def _split_scheme(authz):
    scheme, dummy, rest = authz.partition(" ")
    return scheme, rest


# The common case (only quoted values) parses the same as the state machine below.
_QUOTED_PARAMS = re.compile(r'[A-Za-z]+="[^"]*"(?:,[A-Za-z]+="[^"]*")*')
_QUOTED_PARAM = re.compile(r'([A-Za-z]+)="([^"]*)"')


def _modern_params(rest):
    if _QUOTED_PARAMS.fullmatch(rest):
        return dict(_QUOTED_PARAM.findall(rest))
    params = {}
    name, value, state = "", "", "name"
    for c in rest:
        if state == "name":
            if c.isascii() and c.isalpha():
                name += c
            elif c == "=" and name:
                state = "quote"
            else:
                raise SignatureHeaderError("bad param format")
        elif state == "quote":
            if c == '"':
                value, state = "", "value"
            elif c.isdigit() and c.isascii():
                value, state = c, "number"
            else:
                raise SignatureHeaderError("bad param format")
        elif state == "value":
            if c == '"':
                params[name] = value
                state = "comma"
            else:
                value += c
        elif state == "number":
            if c == ",":
                params[name] = int(value)
                name, state = "", "name"
            elif c.isdigit() and c.isascii():
                value += c
            else:
                raise SignatureHeaderError("bad param format")
        elif state == "comma":
            if c == ",":
                name, state = "", "name"
            else:
                raise SignatureHeaderError("bad param format")
    return params


def _parse_modern(req):
    authz = req.headers["authorization"]
    scheme, rest = _split_scheme(authz)
    params = _modern_params(rest)
    signed = params.get("headers")
    signed = signed.split(" ") if signed else [_date_header_name(req.headers)]
    if scheme != "Signature":
        raise SignatureHeaderError('scheme was not "Signature"')
    for required in ("keyId", "algorithm", "signature"):
        if not params.get(required):
            raise SignatureHeaderError(f"{required} was not specified")
    algorithm = str(params["algorithm"])
    kind, dummy, hash_name = algorithm.lower().partition("-")
    if "-" in hash_name or not hash_name or kind not in _MODERN_KEY_TYPES | {"hmac"} \
            or hash_name not in _MODERN_HASHES:
        raise SignatureHeaderError(f"{algorithm} is not supported")

    lines = []
    for i, h in enumerate(signed):
        h = signed[i] = h.lower()
        if h == "request-line":
            lines.append(f"{req.method} {req.url} HTTP/{req.http_version}")
        elif h == "(request-target)":
            lines.append(f"(request-target): {req.method.lower()} {req.url}")
        elif h in ("(keyid)", "(algorithm)", "(created)", "(expires)", "(opaque)"):
            pname = {"(keyid)": "keyId"}.get(h, h[1:-1])
            if pname not in params and h == "(opaque)":
                raise SignatureHeaderError("opaque param was not in the authorization header")
            lines.append(f"{h}: {params.get(pname)}")
        else:
            if h not in req.headers:
                raise SignatureHeaderError(f"{h} was not in the request")
            lines.append(f"{h}: {req.headers[h]}")

    _check_skew(req)
    for required in [_date_header_name(req.headers)]:
        if required not in signed:
            raise SignatureHeaderError(f"{required} was not a signed header")
    algorithm = algorithm.lower()
    if algorithm not in CLOUDAPI_ALGORITHMS:
        raise SignatureHeaderError(f"{algorithm} is not a supported algorithm")
    return ParsedSignature(str(params["keyId"]), algorithm, str(params["signature"]),
                           "\n".join(lines), signed)


def _parse_legacy(req):
    authz = req.headers["authorization"]
    scheme, rest = _split_scheme(authz)
    params, signature = {}, ""
    name, value, state = "", "", "name"
    for c in rest:
        if state == "signature":
            signature += c
        elif state == "name":
            if c == '"':
                params[name] = ""
                value, state = "", "value"
            elif c == " ":
                state = "signature"
            elif c not in "=,":
                name += c
        else:  # value
            if c == '"':
                params[name] = value
                name, state = "", "name"
            else:
                value += c

    signed = params.get("headers")
    signed = signed.split(" ") if signed else [_date_header_name(req.headers)]
    if scheme != "Signature":
        raise SignatureHeaderError('scheme was not "Signature"')
    if not params.get("keyId"):
        raise SignatureHeaderError("keyId was not specified")
    if not params.get("algorithm"):
        raise SignatureHeaderError("algorithm was not specified")
    if not signature:
        raise SignatureHeaderError("signature was empty")
    algorithm = params["algorithm"].lower()
    if algorithm not in _LEGACY_ALGORITHMS:
        raise SignatureHeaderError(f"{algorithm} is not supported")

    values = []
    for i, h in enumerate(signed):
        h = signed[i] = h.lower()
        if h == "request-line":
            values.append(f"{req.method} {req.url} HTTP/{req.http_version}")
        else:
            if not req.headers.get(h):
                raise SignatureHeaderError(f"{h} was not in the request")
            values.append(req.headers[h])

    _check_skew(req)
    required = _date_header_name(req.headers)
    if required not in signed:
        raise SignatureHeaderError(f"{required} was not a signed header")
    if algorithm not in CLOUDAPI_ALGORITHMS:
        raise SignatureHeaderError(f"{algorithm} is not a supported algorithm")
    return ParsedSignature(params["keyId"], algorithm, signature, "\n".join(values),
                           signed, legacy=True)


def verify(parsed: ParsedSignature, public_key) -> bool:
    """True if the signature matches; algorithm/key type mismatches are just False."""
    kind, dummy, hash_name = parsed.algorithm.partition("-")
    if kind != public_key.type or hash_name not in _HASH_CLASSES:
        return False
    if parsed.legacy and kind != "rsa":
        return False
    try:
        sig = base64.b64decode(parsed.signature)
    except (binascii.Error, ValueError):
        return False
    data = parsed.signing_string.encode("utf-8")
    hash_cls = _HASH_CLASSES[hash_name]
    try:
        if kind == "rsa":
            public_key.key.verify(sig, data, padding.PKCS1v15(), hash_cls())
        elif kind == "ecdsa":
            public_key.key.verify(sig, data, ec.ECDSA(hash_cls()))
        elif kind == "ed25519":
            if hash_name != "sha512":
                return False
            public_key.key.verify(sig, data)
        else:
            return False
    except (InvalidSignature, ValueError):
        return False
    return True

"""OpenSSH public keys: parsing, key type and the MD5 fingerprint CloudAPI uses."""

import base64
import binascii
import hashlib
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.serialization import load_ssh_public_key


@dataclass(frozen=True)
class PublicKey:
    type: str          # "rsa", "ecdsa" or "ed25519" (the http-signature names)
    line: str          # "ssh-rsa AAAA... comment", as given
    fingerprint: str   # MD5 colon-hex of the key blob
    key: object        # the cryptography public key object


def md5_fingerprint(blob: bytes) -> str:
    digest = hashlib.md5(blob).hexdigest()
    return ":".join(digest[i:i + 2] for i in range(0, len(digest), 2))


def parse_public_key(text: str) -> PublicKey:
    line = text.strip().splitlines()[0].strip()
    fields = line.split()
    if len(fields) < 2:
        raise ValueError("not an OpenSSH public key line")
    blob = base64.b64decode(fields[1])
    key = load_ssh_public_key(" ".join(fields[:2]).encode())
    if isinstance(key, rsa.RSAPublicKey):
        kind = "rsa"
    elif isinstance(key, ec.EllipticCurvePublicKey):
        kind = "ecdsa"
    elif isinstance(key, ed25519.Ed25519PublicKey):
        kind = "ed25519"
    else:
        raise ValueError(f"unsupported key type {fields[0]}")
    return PublicKey(kind, line, md5_fingerprint(blob), key)


def load_public_key_file(path) -> PublicKey:
    with open(path, encoding="ascii", errors="replace") as fh:
        text = fh.read()
    try:
        return parse_public_key(text)
    except (ValueError, IndexError, binascii.Error) as e:
        raise ValueError(f"{path}: not an OpenSSH public key ({e})") from None

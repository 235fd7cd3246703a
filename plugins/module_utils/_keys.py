# -*- coding: utf-8 -*-
# Copyright: locustfleet.triton contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# PRIVATE to the collection: may change without notice between releases.
"""SSH keys for CloudAPI request signing: fingerprints, key ids and private keys on disk."""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
import traceback

CRYPTOGRAPHY_IMPORT_ERROR = None
try:
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
except ImportError:  # pragma: no cover - reported by the caller with missing_required_lib
    CRYPTOGRAPHY_IMPORT_ERROR = traceback.format_exc()


class KeyProblem(Exception):
    """A key could not be found, read or used. The message is one line and names the key, never its content."""


_MD5_RE = re.compile(r"^(?:md5:)?((?:[0-9a-f]{2}:){15}[0-9a-f]{2})$", re.IGNORECASE)
_SHA256_RE = re.compile(r"^sha256:([A-Za-z0-9+/]{43})=?$", re.IGNORECASE)


def md5_fingerprint(blob):
    """CloudAPI's key fingerprint: MD5 of the public key blob, lowercase colon-hex."""
    digest = hashlib.md5(blob).hexdigest()  # noqa: S324 - the protocol's identifier, not a security use
    return ":".join(digest[i:i + 2] for i in range(0, len(digest), 2))


def sha256_fingerprint(blob):
    """OpenSSH's default fingerprint form: SHA256:<unpadded base64>."""
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode("ascii").rstrip("=")


def blob_from_public_line(line):
    """The key blob (second field) of an OpenSSH public key line such as the content of id_rsa.pub."""
    fields = line.strip().split()
    if len(fields) < 2:
        raise KeyProblem("not an OpenSSH public key line (expected '<type> <base64> [comment]')")
    try:
        return base64.b64decode(fields[1], validate=True)
    except (binascii.Error, ValueError):
        raise KeyProblem("not an OpenSSH public key line: the key is not valid base64")


class KeyId:
    """A user-supplied key id: MD5 colon-hex (optionally prefixed MD5:) or SHA256:base64."""

    def __init__(self, text):
        self.text = text
        value = (text or "").strip()
        md5 = _MD5_RE.match(value)
        sha = _SHA256_RE.match(value)
        if md5:
            self.kind, self.value = "md5", md5.group(1).lower()
        elif sha:
            self.kind, self.value = "sha256", "SHA256:" + sha.group(1)
        else:
            raise KeyProblem(
                "key_id %r is not a key fingerprint: use the MD5 form aa:bb:...:ff (as `ssh-keygen -l -E md5` "
                "prints it, with or without MD5:) or the SHA256:... form" % (text,))

    def matches(self, blob):
        if self.kind == "md5":
            return md5_fingerprint(blob) == self.value
        return sha256_fingerprint(blob) == self.value

    def __str__(self):
        return self.value


def _require_cryptography():
    if CRYPTOGRAPHY_IMPORT_ERROR:
        raise KeyProblem("the Python library 'cryptography' is required to sign CloudAPI requests")


def _public_blob(public_key):
    line = public_key.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    return blob_from_public_line(line.decode("ascii"))


class PrivateKey:
    """A private key loaded from disk that signs CloudAPI requests.

    ``algorithm`` is the http-signature algorithm name CloudAPI expects for the key type.
    """

    def __init__(self, key, source):
        _require_cryptography()
        self._key = key
        self.source = source
        if isinstance(key, rsa.RSAPrivateKey):
            self.algorithm = "rsa-sha256"
        elif isinstance(key, ec.EllipticCurvePrivateKey):
            if key.curve.name != "secp256r1":
                # CloudAPI's http-signature parser accepts sha1/sha256/sha512 only, so a P-384
                # key (ecdsa-sha384) or P-521 key would always be rejected there.
                raise KeyProblem("%s: ECDSA curve %s is not usable with CloudAPI; use a P-256, RSA or Ed25519 key"
                                 % (source, key.curve.name))
            self.algorithm = "ecdsa-sha256"
        elif isinstance(key, ed25519.Ed25519PrivateKey):
            self.algorithm = "ed25519-sha512"
        else:
            raise KeyProblem("%s: unsupported key type %s; use an RSA, ECDSA P-256 or Ed25519 key"
                             % (source, type(key).__name__))
        self.blob = _public_blob(key.public_key())
        self.fingerprint = md5_fingerprint(self.blob)

    def sign(self, data):
        """Return (algorithm, signature bytes) for ``data``."""
        if self.algorithm == "rsa-sha256":
            return self.algorithm, self._key.sign(data, padding.PKCS1v15(), hashes.SHA256())
        if self.algorithm == "ecdsa-sha256":
            return self.algorithm, self._key.sign(data, ec.ECDSA(hashes.SHA256()))  # DER (r, s), as sshpk
        return self.algorithm, self._key.sign(data)


def load_private_key(path, passphrase=None):
    """Load an OpenSSH- or PEM-format private key file. Errors name the file, never its content."""
    path = os.path.expanduser(path)
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError as exc:
        raise KeyProblem("cannot read private key %s: %s" % (path, exc.strerror or exc))
    return parse_private_key(data, path, passphrase)


def parse_private_key(data, path, passphrase=None):
    """An OpenSSH- or PEM-format private key from its bytes; ``path`` says where they came from in errors."""
    _require_cryptography()
    secret = passphrase.encode("utf-8") if passphrase else None
    if b"-----BEGIN OPENSSH PRIVATE KEY-----" in data:
        loader = serialization.load_ssh_private_key
    elif b"-----BEGIN" in data:
        loader = serialization.load_pem_private_key
    else:
        raise KeyProblem("%s is not a private key in OpenSSH or PEM format" % path)
    try:
        key = loader(data, password=secret)
    except TypeError:
        # cryptography says TypeError both for "encrypted but no password" and "password but not encrypted".
        if secret is None:
            raise KeyProblem("private key %s is encrypted: set private_key_passphrase (or load it into ssh-agent)"
                             % path)
        key = loader(data, password=None)
    except ValueError:
        if secret is not None:
            raise KeyProblem("cannot decrypt private key %s: wrong private_key_passphrase" % path)
        raise KeyProblem("%s is not a valid private key" % path)
    except UnsupportedAlgorithm as exc:
        if "bcrypt" in str(exc):
            raise KeyProblem("private key %s is an encrypted OpenSSH key: install the Python library 'bcrypt' "
                             "to decrypt it, or load it into ssh-agent" % path)
        raise KeyProblem("%s uses a key type or cipher that the installed cryptography does not support" % path)
    return PrivateKey(key, path)


def find_private_key(key_id, directory="~/.ssh", passphrase=None):
    """Find the private key in ``directory`` whose public half (``NAME.pub``) matches ``key_id``.

    Like node-triton, pairs are found through their ``.pub`` files so that no private key
    has to be decrypted just to learn its fingerprint.
    """
    directory = os.path.expanduser(directory)
    try:
        names = sorted(os.listdir(directory))
    except OSError:
        return None
    for name in names:
        if not name.endswith(".pub"):
            continue
        private_path = os.path.join(directory, name[:-4])
        if not os.path.isfile(private_path):
            continue
        try:
            with open(os.path.join(directory, name)) as handle:
                blob = blob_from_public_line(handle.read())
        except (OSError, UnicodeDecodeError, KeyProblem):
            continue
        if key_id.matches(blob):
            return load_private_key(private_path, passphrase)
    return None

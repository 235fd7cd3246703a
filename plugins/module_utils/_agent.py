# -*- coding: utf-8 -*-
# Copyright: locustfleet.triton contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# PRIVATE to the collection: may change without notice between releases.
"""A minimal ssh-agent client (draft-miller-ssh-agent): list identities and sign with one.

Only the two requests CloudAPI signing needs are implemented; the private key never
leaves the agent.
"""

from __future__ import annotations

import os
import socket
import struct
import threading
import traceback

from ._keys import KeyProblem, md5_fingerprint

CRYPTOGRAPHY_IMPORT_ERROR = None
try:
    from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
except ImportError:  # pragma: no cover
    CRYPTOGRAPHY_IMPORT_ERROR = traceback.format_exc()

SSH_AGENT_FAILURE = 5
SSH_AGENTC_REQUEST_IDENTITIES = 11
SSH_AGENT_IDENTITIES_ANSWER = 12
SSH_AGENTC_SIGN_REQUEST = 13
SSH_AGENT_SIGN_RESPONSE = 14
SSH_AGENT_RSA_SHA2_256 = 2

# Signature format returned by the agent -> http-signature algorithm name.
_ALGORITHMS = {
    "rsa-sha2-256": "rsa-sha256",
    "ssh-rsa": "rsa-sha1",  # an old agent ignoring the SHA-2 flag; CloudAPI accepts rsa-sha1
    "ecdsa-sha2-nistp256": "ecdsa-sha256",
    "ssh-ed25519": "ed25519-sha512",
}


class AgentError(KeyProblem):
    pass


def _pack_string(data):
    return struct.pack(">I", len(data)) + data


class _Reader:
    def __init__(self, data):
        self.data = data
        self.pos = 0

    def take(self, size):
        if self.pos + size > len(self.data):
            raise AgentError("ssh-agent sent a truncated message")
        chunk = self.data[self.pos:self.pos + size]
        self.pos += size
        return chunk

    def uint32(self):
        return struct.unpack(">I", self.take(4))[0]

    def string(self):
        return self.take(self.uint32())

    def mpint(self):
        return int.from_bytes(self.string(), "big", signed=True)


def _key_type(blob):
    return _Reader(blob).string().decode("ascii", "replace")


class AgentClient:
    """Talks to the agent listening on ``socket_path`` (default: $SSH_AUTH_SOCK)."""

    def __init__(self, socket_path=None, timeout=10.0):
        self.socket_path = socket_path or os.environ.get("SSH_AUTH_SOCK")
        self.timeout = timeout
        self._lock = threading.Lock()

    @property
    def available(self):
        return bool(self.socket_path) and os.path.exists(self.socket_path)

    def _call(self, message_type, payload):
        request = struct.pack(">IB", len(payload) + 1, message_type) + payload
        with self._lock:
            conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            conn.settimeout(self.timeout)
            try:
                conn.connect(self.socket_path)
                conn.sendall(request)
                length = struct.unpack(">I", self._recv(conn, 4))[0]
                reply = self._recv(conn, length)
            except (OSError, socket.timeout) as exc:
                raise AgentError("cannot talk to ssh-agent at %s: %s" % (self.socket_path, exc))
            finally:
                conn.close()
        return reply[0], _Reader(reply[1:])

    @staticmethod
    def _recv(conn, size):
        chunks = b""
        while len(chunks) < size:
            chunk = conn.recv(size - len(chunks))
            if not chunk:
                raise AgentError("ssh-agent closed the connection")
            chunks += chunk
        return chunks

    def identities(self):
        """Return [(key blob, comment)] for every key the agent holds."""
        kind, reader = self._call(SSH_AGENTC_REQUEST_IDENTITIES, b"")
        if kind != SSH_AGENT_IDENTITIES_ANSWER:
            raise AgentError("ssh-agent refused to list its keys")
        return [(reader.string(), reader.string().decode("utf-8", "replace")) for dummy in range(reader.uint32())]

    def sign(self, blob, data):
        """Return (algorithm, signature bytes) in the encoding http-signature expects."""
        flags = SSH_AGENT_RSA_SHA2_256 if _key_type(blob) == "ssh-rsa" else 0
        kind, reader = self._call(SSH_AGENTC_SIGN_REQUEST, _pack_string(blob) + _pack_string(data)
                                  + struct.pack(">I", flags))
        if kind != SSH_AGENT_SIGN_RESPONSE:
            raise AgentError("ssh-agent refused to sign with key %s (is it confirm-only or locked?)"
                             % md5_fingerprint(blob))
        signature = _Reader(reader.string())
        sig_format = signature.string().decode("ascii", "replace")
        raw = signature.string()
        algorithm = _ALGORITHMS.get(sig_format)
        if algorithm is None:
            raise AgentError("ssh-agent signed with %s, which CloudAPI does not accept" % sig_format)
        if sig_format.startswith("ecdsa-"):
            if CRYPTOGRAPHY_IMPORT_ERROR:
                raise AgentError("the Python library 'cryptography' is required for ECDSA keys")
            parts = _Reader(raw)
            raw = encode_dss_signature(parts.mpint(), parts.mpint())
        return algorithm, raw


class AgentKey:
    """One agent-held key, with the same interface as _keys.PrivateKey."""

    def __init__(self, agent, blob, comment):
        self._agent = agent
        self.blob = blob
        self.source = "ssh-agent (%s)" % (comment or "no comment")
        self.fingerprint = md5_fingerprint(blob)

    def sign(self, data):
        return self._agent.sign(self.blob, data)


def find_agent_key(key_id, socket_path=None):
    """The agent key matching ``key_id``, or None when there is no agent or no such key."""
    agent = AgentClient(socket_path)
    if not agent.available:
        return None
    try:
        identities = agent.identities()
    except AgentError:
        return None
    for blob, comment in identities:
        if key_id.matches(blob):
            return AgentKey(agent, blob, comment)
    return None

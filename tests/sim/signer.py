"""A small HTTP-signature client for testing tritonsim (independent of plugins/)."""

import base64
import email.utils
import hashlib
import json
import time
from pathlib import Path

import requests
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

_HASHES = {"sha1": hashes.SHA1, "sha256": hashes.SHA256, "sha512": hashes.SHA512}


def md5_fingerprint_of_pub(pub_path):
    blob = base64.b64decode(Path(pub_path).read_text().split()[1])
    digest = hashlib.md5(blob).hexdigest()
    return ":".join(digest[i:i + 2] for i in range(0, 32, 2))


class Signer:
    def __init__(self, key_path, key_id, algorithm=None):
        data = Path(key_path).read_bytes()
        self.key = serialization.load_ssh_private_key(data, password=None)
        self.key_id = key_id
        if isinstance(self.key, rsa.RSAPrivateKey):
            self.kind, default = "rsa", "rsa-sha256"
        elif isinstance(self.key, ec.EllipticCurvePrivateKey):
            self.kind, default = "ecdsa", "ecdsa-sha256"
        elif isinstance(self.key, ed25519.Ed25519PrivateKey):
            self.kind, default = "ed25519", "ed25519-sha512"
        else:
            raise ValueError("unsupported key")
        self.algorithm = algorithm or default

    def sign(self, text, algorithm=None):
        algorithm = algorithm or self.algorithm
        hash_name = algorithm.split("-")[1]
        data = text.encode()
        if self.kind == "rsa":
            sig = self.key.sign(data, padding.PKCS1v15(), _HASHES[hash_name]())
        elif self.kind == "ecdsa":
            sig = self.key.sign(data, ec.ECDSA(_HASHES[hash_name]()))
        else:
            sig = self.key.sign(data)
        return base64.b64encode(sig).decode()

    def headers(self, method, target, *, style="modern", date=None, key_id=None,
                algorithm=None, header_algorithm=None, signed=None):
        """Authorization + Date headers for `method target`.

        style: "modern" ((request-target) date), "date-only" (modern syntax,
        default header list), "request-line" (modern syntax, old draft header),
        "legacy" (0.9 syntax, bare Date value), "legacy-request-line".
        header_algorithm: what to claim in the header (default: the signing one).
        """
        date = date or email.utils.formatdate(usegmt=True)
        key_id = key_id or self.key_id
        algorithm = algorithm or self.algorithm
        claimed = header_algorithm or algorithm
        if style == "modern":
            names = signed or ["(request-target)", "date"]
            lines = []
            for name in names:
                if name == "(request-target)":
                    lines.append(f"(request-target): {method.lower()} {target}")
                elif name == "date":
                    lines.append(f"date: {date}")
                elif name == "request-line":
                    lines.append(f"{method} {target} HTTP/1.1")
            sig = self.sign("\n".join(lines), algorithm)
            authz = (f'Signature keyId="{key_id}",algorithm="{claimed}",'
                     f'headers="{" ".join(names)}",signature="{sig}"')
        elif style == "date-only":
            sig = self.sign(f"date: {date}", algorithm)
            authz = f'Signature keyId="{key_id}",algorithm="{claimed}",signature="{sig}"'
        elif style == "request-line":
            sig = self.sign(f"{method} {target} HTTP/1.1\ndate: {date}", algorithm)
            authz = (f'Signature keyId="{key_id}",algorithm="{claimed}",'
                     f'headers="request-line date",signature="{sig}"')
        elif style == "legacy":
            sig = self.sign(date, algorithm)
            authz = f'Signature keyId="{key_id}",algorithm="{claimed}" {sig}'
        elif style == "legacy-request-line":
            sig = self.sign(f"{method} {target} HTTP/1.1\n{date}", algorithm)
            authz = (f'Signature keyId="{key_id}",algorithm="{claimed}",'
                     f'headers="request-line date" {sig}')
        else:
            raise ValueError(style)
        return {"Authorization": authz, "Date": date}


class Client:
    """requests wrapper that signs every call; returns requests.Response."""

    def __init__(self, url, account, signer, accept_version="~9||~8"):
        self.url = url
        self.account = account
        self.signer = signer
        self.accept_version = accept_version
        self.session = requests.Session()

    def request(self, method, path, body=None, *, headers=None, sign=True, style="modern",
                timeout=30, **sign_opts):
        path = path.replace("{account}", self.account)
        hdrs = {"Accept": "application/json"}
        if self.accept_version:
            hdrs["Accept-Version"] = self.accept_version
        if sign:
            hdrs.update(self.signer.headers(method, path, style=style, **sign_opts))
        data = None
        if body is not None:
            data = json.dumps(body)
            hdrs["Content-Type"] = "application/json"
        hdrs.update(headers or {})
        return self.session.request(method, self.url + path, data=data, headers=hdrs,
                                    timeout=timeout)

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, body=None, **kw):
        return self.request("POST", path, body, **kw)

    def put(self, path, body=None, **kw):
        return self.request("PUT", path, body, **kw)

    def delete(self, path, **kw):
        return self.request("DELETE", path, **kw)

    def wait_state(self, machine_id, states, timeout=20):
        deadline = time.monotonic() + timeout
        while True:
            resp = self.get(f"/my/machines/{machine_id}")
            body = resp.json()
            if body.get("state") in states:
                return body
            if time.monotonic() > deadline:
                raise AssertionError(f"machine {machine_id} stuck in {body.get('state')}")
            time.sleep(0.05)


def client_for(sim, key=None, user=None, **kw):
    """A Client for a conftest TritonSimProcess: the account key, another KeyPair,
    or a sub-user's key (keyId /ACCOUNT/users/USER/keys/FP)."""
    if user is not None:
        kp = sim.users[user]
        key_id = f"/{sim.account}/users/{user}/keys/{kp.fingerprint}"
    else:
        kp = key or sim.keys[0]
        key_id = f"/{sim.account}/keys/{kp.fingerprint}"
    return Client(sim.url, sim.account, Signer(kp.key_path, key_id), **kw)

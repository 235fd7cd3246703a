"""A CloudAPI stand-in on 127.0.0.1 that answers from a script: for the odd answers tritonsim never
gives (redirects, HTML pages, JSON of the wrong shape, cut-off bodies, unreadable Retry-After).

It verifies every request's RSA-SHA256 signature against the account key, so what reaches it is
what the collection really sends.

    server.script = [(302, None, {"Location": "https://portal/"})]   # one answer per request, in order
    server.default = raw(200, b"<html>...</html>", "text/html")       # then this one for every request
    server.seen                                                       # [(method, path, body, headers)]

A step is (status, JSON-able body or None, headers) or a callable(handler) that writes the answer.
"""

import base64
import json
import re
import socket
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding

from support.sshkeys import make_key

AUTH_RE = re.compile(r'^Signature keyId="([^"]+)",algorithm="([^"]+)",headers="\(request-target\) date",'
                     r'signature="([^"]+)"$')


class ScriptedServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, public_key):
        super().__init__(("127.0.0.1", 0), Handler)
        self.public_key = public_key
        self.script = []
        self.seen = []
        self.default = None

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.server_address[1]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def _handle(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        match = AUTH_RE.match(self.headers.get("Authorization", ""))
        signed = "(request-target): %s %s\ndate: %s" % (self.command.lower(), self.path, self.headers["Date"])
        self.server.public_key.verify(base64.b64decode(match.group(3)), signed.encode(),
                                      padding.PKCS1v15(), hashes.SHA256())
        self.server.seen.append((self.command, self.path, body, dict(self.headers)))
        step = self.server.script.pop(0) if self.server.script else self.server.default
        if callable(step):
            return step(self)
        status, data, headers = step
        payload = json.dumps(data).encode() if data is not None else b""
        return send(self, status, payload, dict({"Content-Type": "application/json"}, **(headers or {})))

    do_GET = do_POST = do_PUT = do_DELETE = _handle


def send(handler, status, payload, headers, length=None):
    handler.send_response_only(status)
    for name, value in dict({"Date": handler.date_time_string()}, **headers).items():
        handler.send_header(name, value)
    handler.send_header("Content-Length", str(len(payload) if length is None else length))
    handler.end_headers()
    handler.wfile.write(payload)


def raw(status, payload, content_type, headers=None):
    """A step answering ``payload`` (bytes) as it is."""
    return lambda handler: send(handler, status, payload, dict({"Content-Type": content_type}, **(headers or {})))


def cut_off(status, payload, headers=None):
    """A step announcing all of ``payload`` (JSON bytes) but sending only half of it, then closing."""
    def answer(handler):
        send(handler, status, payload[:len(payload) // 2], dict({"Content-Type": "application/json"}, **(headers or {})),
             length=len(payload))
        handler.close_connection = True
        handler.wfile.flush()
        handler.connection.shutdown(socket.SHUT_RDWR)
    return answer


def drop(handler):
    handler.close_connection = True
    handler.connection.shutdown(socket.SHUT_RDWR)


def pages(total):
    def answer(handler):
        query = dict(part.split("=") for part in handler.path.split("?", 1)[1].split("&"))
        limit, offset = int(query["limit"]), int(query["offset"])
        items = [{"id": i} for i in range(offset, min(total, offset + limit))]
        headers = {"x-resource-count": str(len(items)), "x-query-limit": str(limit)}
        send(handler, 200, json.dumps(items).encode(), headers)
    return answer


@dataclass
class ScriptedCloudAPI:
    """A running ScriptedServer seen as a cloud: what support.control.control_env needs (url, account,
    key files, fingerprint) plus the server itself."""

    server: ScriptedServer
    account: str
    key_path: str
    pub_path: str
    fingerprint: str

    @property
    def url(self):
        return self.server.url


def start(key_dir, account="jdoe"):
    """A ScriptedCloudAPI with a fresh RSA key in ``key_dir``; stop it with ``stop``."""
    pair = make_key(str(key_dir), "rsa")
    with open(pair.public_path, "rb") as handle:
        public = serialization.load_ssh_public_key(handle.read())
    server = ScriptedServer(public)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return ScriptedCloudAPI(server, account, pair.private_path, pair.public_path, pair.md5)


def stop(cloud):
    cloud.server.shutdown()
    cloud.server.server_close()

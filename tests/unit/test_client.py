"""CloudAPIClient against a real HTTP server on 127.0.0.1 that verifies every signature."""

import base64
import email.utils
import json
import re
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding

from ansible_collections.locustfleet.triton.plugins.module_utils._client import CloudAPIClient, CloudAPIError
from ansible_collections.locustfleet.triton.plugins.module_utils._config import CloudAPIConfig
from ansible_collections.locustfleet.triton.plugins.module_utils._keys import load_private_key
from support.sshkeys import make_key

AUTH_RE = re.compile(r'^Signature keyId="([^"]+)",algorithm="([^"]+)",headers="\(request-target\) date",'
                     r'signature="([^"]+)"$')


class ScriptedServer(ThreadingHTTPServer):
    """Answers requests from a script of steps; each step is a callable(handler) or a (status, body, headers)."""

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
        self.send_response_only(status)
        headers = dict({"Date": self.date_time_string()}, **(headers or {}))
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_DELETE = _handle


def drop(handler):
    handler.close_connection = True
    handler.connection.shutdown(socket.SHUT_RDWR)


def pages(total):
    def answer(handler):
        query = dict(part.split("=") for part in handler.path.split("?", 1)[1].split("&"))
        limit, offset = int(query["limit"]), int(query["offset"])
        items = [{"id": i} for i in range(offset, min(total, offset + limit))]
        payload = json.dumps(items).encode()
        handler.send_response(200)
        handler.send_header("x-resource-count", str(len(items)))
        handler.send_header("x-query-limit", str(limit))
        handler.send_header("Content-Length", str(len(payload)))
        handler.end_headers()
        handler.wfile.write(payload)
    return answer


@pytest.fixture
def key(tmp_path):
    return load_private_key(make_key(str(tmp_path), "rsa").private_path)


@pytest.fixture
def server(key):
    public = serialization.load_ssh_public_key(
        key._key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH))
    srv = ScriptedServer(public)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def make_client(server_or_url, key, retries=5, **kwargs):
    """A client whose backoff sleeps are recorded in ``client.sleeps`` instead of slept."""
    client_sleeps = []
    url = server_or_url if isinstance(server_or_url, str) else server_or_url.url
    config = CloudAPIConfig(url=url, account="jdoe", key_id=key.fingerprint, retries=retries, timeout=5)
    client = CloudAPIClient(config, key=key, sleep=client_sleeps.append, **kwargs)
    client.sleeps = client_sleeps
    return client


def test_signed_target_includes_the_query_string_exactly_as_sent(server, key):
    server.default = (200, [], None)
    client = make_client(server, key)
    client.get("/jdoe/machines", {"tag.role": "web worker", "name": "a/b&c", "tombstone": True})
    method, path, body, headers = server.seen[0]
    assert method == "GET" and body == b""
    assert path == "/jdoe/machines?name=a%2Fb%26c&tag.role=web%20worker&tombstone=true"
    assert headers["Accept-Version"] == "~9||~8"
    assert headers["Accept"] == "application/json"


def test_429_is_retried_after_retry_after(server, key):
    server.script = [(429, {"code": "TooManyRequests", "message": "slow down"}, {"Retry-After": "2"})]
    server.default = (200, {"ok": 1}, None)
    client = make_client(server, key)
    sleeps = client.sleeps
    assert client.get("/jdoe") == {"ok": 1}
    assert len(server.seen) == 2 and sleeps and sleeps[0] >= 2


def test_backoff_grows_exponentially_with_jitter_and_gives_up_with_the_last_error(server, key):
    server.default = (503, {"code": "ServiceUnavailable", "message": "maintenance"}, {"Request-Id": "rid-503"})
    client = make_client(server, key, retries=4, backoff_base=0.5, backoff_cap=100)
    sleeps = client.sleeps
    with pytest.raises(CloudAPIError) as error:
        client.get("/jdoe/machines")
    assert len(server.seen) == 5
    assert [0.25 <= sleeps[0] <= 0.5, 0.5 <= sleeps[1] <= 1, 1 <= sleeps[2] <= 2, 2 <= sleeps[3] <= 4] == [True] * 4
    assert error.value.status == 503 and error.value.code == "ServiceUnavailable"
    assert str(error.value) == ("GET /jdoe/machines: CloudAPI said 503 ServiceUnavailable: maintenance "
                                "[request id rid-503]")


def test_total_retry_budget_bounds_the_retries(server, key):
    server.default = (503, {"code": "ServiceUnavailable", "message": "x"}, None)
    config = CloudAPIConfig(url=server.url, account="jdoe", key_id=key.fingerprint, retries=1000, timeout=5)
    client = CloudAPIClient(config, key=key, retry_budget=1.0, backoff_base=0.2, backoff_cap=0.4)
    started = time.monotonic()
    with pytest.raises(CloudAPIError):
        client.get("/jdoe")
    assert time.monotonic() - started < 1.5
    assert 3 <= len(server.seen) < 12


def test_other_errors_are_not_retried_and_read_as_one_line(server, key):
    server.default = (409, {"code": "ValidationFailed", "message": "Invalid machine name",
                            "errors": [{"field": "alias", "code": "Duplicate"}]}, {"Request-Id": "r-1"})
    client = make_client(server, key)
    with pytest.raises(CloudAPIError) as error:
        client.post("/jdoe/machines", {"name": "dup"})
    assert len(server.seen) == 1
    assert error.value.code == "ValidationFailed" and error.value.request_id == "r-1"
    assert error.value.errors == [{"field": "alias", "code": "Duplicate"}]
    assert str(error.value) == ("POST /jdoe/machines: CloudAPI said 409 ValidationFailed: Invalid machine name "
                                "[request id r-1]")


def test_dropped_get_is_retried(server, key):
    server.script = [drop]
    server.default = (200, {"id": "x"}, None)
    client = make_client(server, key)
    assert client.get("/jdoe/machines/x") == {"id": "x"}
    assert len(server.seen) == 2


def test_dropped_post_is_not_repeated(server, key):
    server.script = [drop]
    server.default = (201, {"id": "x"}, None)
    client = make_client(server, key)
    with pytest.raises(CloudAPIError) as error:
        client.post("/jdoe/machines", {"name": "web-1"})
    assert error.value.maybe_committed is True
    assert "may or may not have taken effect" in str(error.value)
    assert len(server.seen) == 1


def test_dropped_idempotent_post_is_retried(server, key):
    server.script = [drop]
    server.default = (202, None, None)
    client = make_client(server, key)
    client.post("/jdoe/machines/x", {"action": "stop"}, idempotent=True)
    assert len(server.seen) == 2


def test_refused_connection_is_retried_even_for_post(key):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = make_client("http://127.0.0.1:%d" % port, key, retries=2)
    sleeps = client.sleeps
    with pytest.raises(CloudAPIError) as error:
        client.post("/jdoe/machines", {"name": "web-1"})
    assert len(sleeps) == 2 and not error.value.maybe_committed
    assert "cannot reach CloudAPI at http://127.0.0.1:%d" % port in str(error.value)


def test_paging_fetches_2500_items_in_three_calls(server, key):
    server.default = pages(2500)
    client = make_client(server, key)
    items = client.list_all("/jdoe/machines", {"tag.role": "worker"})
    assert [item["id"] for item in items] == list(range(2500))
    paths = [seen[1] for seen in server.seen]
    assert [re.search(r"offset=(\d+)", path).group(1) for path in paths] == ["0", "1000", "2000"]
    assert all("tag.role=worker" in path and "limit=1000" in path for path in paths)


def test_exact_page_multiple_needs_one_more_empty_page(server, key):
    server.default = pages(2000)
    client = make_client(server, key)
    assert len(client.list_all("/jdoe/machines")) == 2000
    assert len(server.seen) == 3


def test_clock_skew_is_named(server, key):
    far_future = email.utils.formatdate(time.time() + 3600, usegmt=True)
    server.default = (401, {"code": "InvalidCredentials", "message": "Invalid authorization credentials supplied"},
                      {"Date": far_future, "Request-Id": "r-skew"})
    client = make_client(server, key)
    with pytest.raises(CloudAPIError) as error:
        client.get("/jdoe")
    assert "this machine's clock is behind CloudAPI's by 3" in str(error.value)
    assert "[request id r-skew]" in str(error.value)


def test_bad_credentials_say_which_key_signed(server, key):
    server.default = (401, {"code": "InvalidCredentials", "message": "Invalid authorization credentials supplied"},
                      None)
    client = make_client(server, key)
    with pytest.raises(CloudAPIError, match=r"signed as /jdoe/keys/%s with .*id_rsa" % key.fingerprint):
        client.get("/jdoe")


def test_rate_limiter_allows_a_burst_then_the_rate():
    from ansible_collections.locustfleet.triton.plugins.module_utils._client import RateLimiter

    now = [0.0]
    slept = []

    def sleep(seconds):
        slept.append(seconds)
        now[0] += seconds

    limiter = RateLimiter(10, 30, clock=lambda: now[0], sleep=sleep)
    for dummy in range(50):
        limiter.acquire()
    assert abs(now[0] - 2.0) < 1e-6  # 30 at once, then 20 more at 10/s
    assert len(slept) == 20

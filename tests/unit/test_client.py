"""CloudAPIClient against a real HTTP server on 127.0.0.1 that verifies every signature (support.scripted)."""

import email.utils
import json
import re
import socket
import time

import pytest

from ansible_collections.locustfleet.triton.plugins.module_utils._client import CloudAPIClient, CloudAPIError
from ansible_collections.locustfleet.triton.plugins.module_utils._config import CloudAPIConfig, resolve
from ansible_collections.locustfleet.triton.plugins.module_utils._keys import load_private_key
from ansible_collections.locustfleet.triton.plugins.module_utils._waiters import Deadline
from support import scripted
from support.scripted import cut_off, drop, pages, raw


@pytest.fixture
def cloud(tmp_path):
    cloud = scripted.start(tmp_path / "keys")
    yield cloud
    scripted.stop(cloud)


@pytest.fixture
def key(cloud):
    return load_private_key(cloud.key_path)


@pytest.fixture
def server(cloud):
    return cloud.server


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
    client.get("/jdoe/machines", {"tag.role": "web worker", "name": "a/b&c", "tombstone": True}, expect=list)
    method, path, body, headers = server.seen[0]
    assert method == "GET" and body == b""
    assert path == "/jdoe/machines?name=a%2Fb%26c&tag.role=web%20worker&tombstone=true"
    assert headers["Accept-Version"] == "~9||~8"
    assert headers["Accept"] == "application/json"


def test_extra_headers_are_sent_but_never_replace_the_signed_ones(server, key):
    server.default = (200, [], None)
    client = make_client(server, key)
    client.post("/jdoe/machines", {"name": "a"},
                headers={"Role-Tag": "w-role,x", "Authorization": "forged", "Date": "forged"})
    method, path, body, headers = server.seen[0]
    assert headers["Role-Tag"] == "w-role,x"
    assert headers["Authorization"].startswith("Signature ") and headers["Date"] != "forged"


def test_429_is_retried_after_retry_after(server, key):
    server.script = [(429, {"code": "TooManyRequests", "message": "slow down"}, {"Retry-After": "2"})]
    server.default = (200, {"ok": 1}, None)
    client = make_client(server, key)
    sleeps = client.sleeps
    assert client.get("/jdoe", expect=dict) == {"ok": 1}
    assert len(server.seen) == 2 and sleeps and sleeps[0] >= 2


def test_backoff_grows_exponentially_with_jitter_and_gives_up_with_the_last_error(server, key):
    server.default = (503, {"code": "ServiceUnavailable", "message": "maintenance"}, {"Request-Id": "rid-503"})
    client = make_client(server, key, retries=4, backoff_base=0.5, backoff_cap=100)
    sleeps = client.sleeps
    with pytest.raises(CloudAPIError) as error:
        client.get("/jdoe/machines", expect=list)
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
        client.get("/jdoe", expect=dict)
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
    assert client.get("/jdoe/machines/x", expect=dict) == {"id": "x"}
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
        client.get("/jdoe", expect=dict)
    assert "this machine's clock is behind CloudAPI's by 3" in str(error.value)
    assert "[request id r-skew]" in str(error.value)


def test_bad_credentials_say_which_key_signed(server, key):
    server.default = (401, {"code": "InvalidCredentials", "message": "Invalid authorization credentials supplied"},
                      None)
    client = make_client(server, key)
    with pytest.raises(CloudAPIError, match=r"signed as /jdoe/keys/%s with .*id_rsa" % key.fingerprint):
        client.get("/jdoe", expect=dict)


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


# -- answers that are not CloudAPI's (a wrong url, a captive portal, a proxy) ---------------------------

HTML = b"<!DOCTYPE html><html><body>Please log in to the hotel wifi</body></html>"


def test_a_redirect_is_an_error_naming_where_it_points_and_is_not_followed(server, key):
    server.default = (302, None, {"Location": "https://portal.example/login", "Request-Id": "r-302"})
    client = make_client(server, key)
    with pytest.raises(CloudAPIError) as error:
        client.list_all("/jdoe/machines")
    assert str(error.value) == ("GET /jdoe/machines: CloudAPI answered 302 Found, a redirect to "
                                "https://portal.example/login: is url %s right? [request id r-302]" % server.url)
    assert error.value.status == 302 and len(server.seen) == 1


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_an_html_page_with_200_is_an_error_not_an_empty_answer(server, key, method):
    server.default = raw(200, HTML, "text/html; charset=utf-8", {"Request-Id": "r-html"})
    client = make_client(server, key)
    with pytest.raises(CloudAPIError) as error:
        if method == "GET":
            client.get("/jdoe/machines", expect=list)
        else:
            client.post("/jdoe/machines/x", {"action": "stop"}, idempotent=True)
    assert str(error.value) == ("%s /jdoe/machines%s: CloudAPI answered 200 OK with a text/html page, not JSON: "
                                "is url %s right? [request id r-html]"
                                % (method, "" if method == "GET" else "/x", server.url))
    assert "\n" not in str(error.value)


@pytest.mark.parametrize("answer, expect, said", [
    ("machines", list, "a JSON string where a list of objects belongs"),
    ({"id": "x"}, list, "a JSON object where a list of objects belongs"),
    (["a", "b"], list, "a JSON list with a string in it where a list of objects belongs"),
    ([{"id": 1}, 7], list, "a JSON list with a number in it where a list of objects belongs"),
    ([], dict, "a JSON list where an object belongs"),
    (None, dict, "an empty body where an object belongs"),
    (True, dict, "a JSON boolean where an object belongs"),
])
def test_json_of_the_wrong_shape_is_a_one_line_error(server, key, answer, expect, said):
    server.default = (200, answer, {"Request-Id": "r-shape"})
    client = make_client(server, key)
    with pytest.raises(CloudAPIError) as error:
        client.get("/jdoe/things", expect=expect)
    assert str(error.value) == ("GET /jdoe/things: CloudAPI answered 200 OK with %s: is url %s right? "
                                "[request id r-shape]" % (said, server.url))


def test_an_unreadable_retry_after_is_ignored_for_the_usual_backoff(server, key):
    server.script = [(429, {"code": "TooManyRequests", "message": "slow"}, {"Retry-After": "soon-ish"}),
                     (503, {"code": "ServiceUnavailable", "message": "x"}, {"Retry-After": "Mon, 99 Foo"})]
    server.default = (200, {"ok": 1}, None)
    client = make_client(server, key, backoff_base=0.5, backoff_cap=8)
    assert client.get("/jdoe", expect=dict) == {"ok": 1}
    assert len(server.seen) == 3 and all(0.25 <= slept <= 1 for slept in client.sleeps)


def test_a_cut_off_get_is_retried_and_then_named(server, key):
    payload = json.dumps([{"id": i, "name": "m%d" % i} for i in range(50)]).encode()
    server.default = cut_off(200, payload, {"Request-Id": "r-cut"})
    client = make_client(server, key, retries=2)
    with pytest.raises(CloudAPIError) as error:
        client.get("/jdoe/machines", expect=list)
    assert len(server.seen) == 3
    assert str(error.value).startswith("GET /jdoe/machines: CloudAPI's 200 answer was cut off (")
    assert str(error.value).endswith("[request id r-cut]") and not error.value.maybe_committed


def test_a_cut_off_create_is_not_sent_again(server, key):
    server.default = cut_off(201, json.dumps({"id": "x", "name": "web-1"}).encode(), {"Request-Id": "r-cut"})
    client = make_client(server, key)
    with pytest.raises(CloudAPIError) as error:
        client.post("/jdoe/machines", {"name": "web-1"}, expect=dict)
    assert error.value.maybe_committed and len(server.seen) == 1


def test_an_error_page_in_html_is_named_as_such(server, key):
    server.default = raw(502, HTML, "text/html", {"Request-Id": "r-502"})
    client = make_client(server, key, retries=0)
    with pytest.raises(CloudAPIError) as error:
        client.get("/jdoe", expect=dict)
    assert str(error.value) == ("GET /jdoe: CloudAPI said 502 Bad Gateway: a text/html page, not CloudAPI's JSON "
                                "[request id r-502]")


def test_the_tasks_deadline_bounds_the_retries(server, key):
    server.default = (503, {"code": "ServiceUnavailable", "message": "x"}, {"Retry-After": "30"})
    client = make_client(server, key, retries=100, deadline=Deadline(5))
    with pytest.raises(CloudAPIError):
        client.get("/jdoe", expect=dict)
    assert len(server.seen) == 1 and client.sleeps == []


@pytest.mark.parametrize("url, validate, warned", [
    ("https://cloudapi.example.com", None, None),
    ("http://cloudapi.example.com", None, "is plain http://"),
    ("https://cloudapi.example.com", False, "certificate is not checked (option validate_certs)"),
    ("http://127.0.0.1:8080", None, None),
    ("http://localhost:8080", False, None),
    ("http://[::1]:8080", None, None),
])
def test_settings_that_expose_requests_are_warned_about(url, validate, warned):
    config = resolve({"url": url, "account": "jdoe", "key_id": "aa:bb", "validate_certs": validate}, environ={})
    warnings = config.warnings()
    if warned is None:
        assert warnings == []
    else:
        assert len(warnings) == 1 and warned in warnings[0] and url in warnings[0]

# -*- coding: utf-8 -*-
# Copyright: locustfleet.triton contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# PRIVATE to the collection: may change without notice between releases.
"""The CloudAPI client shared by every module, the inventory plugin and the idle watcher."""

from __future__ import annotations

import email.utils
import json
import random
import threading
import time
import traceback

try:
    from urllib.parse import quote, urlencode
except ImportError:  # pragma: no cover - Python 2 is not supported, keeps the import sanity test quiet
    quote = urlencode = None

from ._agent import find_agent_key
from ._keys import CRYPTOGRAPHY_IMPORT_ERROR, KeyId, KeyProblem, find_private_key, load_private_key
from ._signer import RequestSigner
from ._version import COLLECTION_VERSION
from ._waiters import Deadline

REQUESTS_IMPORT_ERROR = None
try:
    import requests
except ImportError:  # pragma: no cover - reported by the caller with missing_required_lib
    REQUESTS_IMPORT_ERROR = traceback.format_exc()


def missing_library():
    """(name, traceback) of a Python library the client needs and cannot import, else None."""
    for name, error in (("requests", REQUESTS_IMPORT_ERROR), ("cryptography", CRYPTOGRAPHY_IMPORT_ERROR)):
        if error:
            return name, error
    return None


ACCEPT_VERSION = "~9||~8"
USER_AGENT = "locustfleet.triton/%s" % COLLECTION_VERSION
PAGE_LIMIT = 1000  # CloudAPI's maximum page size for ListMachines
MAX_SKEW = 300  # seconds CloudAPI tolerates between our Date header and its clock
RETRY_STATUSES = (429, 503)


class CloudAPIError(Exception):
    """A failed CloudAPI call. ``str()`` is one line: what failed, what CloudAPI said, its request id.

    ``maybe_committed`` is true when a non-idempotent request may have reached the server before
    the connection broke: the caller must find out what happened instead of repeating it.
    """

    def __init__(self, message, status=None, code=None, request_id=None, errors=None, maybe_committed=False):
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.request_id = request_id
        self.errors = errors or []
        self.maybe_committed = maybe_committed

    def to_dict(self):
        return {"status": self.status, "code": self.code, "message": self.message,
                "request_id": self.request_id, "errors": self.errors}


class RateLimiter:
    """A token bucket shared by every thread of one client, so parallel work stays inside
    CloudAPI's per-account limit (default 10 requests/s, bursts of 30) instead of collecting 429s."""

    def __init__(self, rate, burst, clock=time.monotonic, sleep=time.sleep):
        self.rate = float(rate)
        self.burst = float(max(1, burst))
        self._tokens = self.burst
        self._clock = clock
        self._sleep = sleep
        self._updated = clock()
        self._lock = threading.Lock()

    def acquire(self):
        if self.rate <= 0:
            return
        while True:
            with self._lock:
                now = self._clock()
                self._tokens = min(self.burst, self._tokens + (now - self._updated) * self.rate)
                self._updated = now
                if self._tokens >= 1 - 1e-9:  # float dust must not strand a waiter
                    self._tokens = max(0.0, self._tokens - 1)
                    return
                wait = (1 - self._tokens) / self.rate
            self._sleep(wait)


class Response:
    def __init__(self, status, data, headers):
        self.status = status
        self.data = data
        self.headers = headers


_SHAPES = {list: "a list of objects", dict: "an object"}


def encode_query(params):
    """Encode a query string once, in the form requests leaves untouched, so the signed target is what is sent."""
    if not params:
        return ""
    pairs = [(k, _query_value(v)) for k, v in sorted(params.items()) if v is not None]
    return urlencode(pairs, quote_via=quote, safe="")


def _query_value(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def find_key(config):
    """The signing key for ``config``: private_key_path, else ssh-agent, else ~/.ssh."""
    if config.private_key_path:
        key = load_private_key(config.private_key_path, config.private_key_passphrase)
        if config.key_id and not KeyId(config.key_id).matches(key.blob):
            raise KeyProblem("private_key_path %s has fingerprint %s, which is not key_id %s"
                             % (key.source, key.fingerprint, config.key_id))
        return key
    key_id = KeyId(config.key_id)
    key = find_agent_key(key_id) or find_private_key(key_id, passphrase=config.private_key_passphrase)
    if key is None:
        raise KeyProblem("no SSH key with fingerprint %s in ssh-agent or ~/.ssh: load it with ssh-add or set "
                         "private_key_path" % key_id)
    return key


class CloudAPIClient:
    """Signed JSON requests to CloudAPI with bounded, jittered retries.

    Retries 429 and 503 (honouring a readable Retry-After), connection failures and cut-off answers,
    until ``retries`` extra attempts or ``retry_budget`` seconds are used up, and never past
    ``deadline`` (a _waiters.Deadline: the task's). A POST whose connection broke after it was sent is
    not repeated (see CloudAPIError.maybe_committed).

    Only a 2xx answer whose body is empty or JSON of the shape the caller expects (``expect``: list
    of objects, object, or None for anything) is a success; anything else (a redirect, an HTML page,
    a JSON string where a list belongs) is a one-line CloudAPIError with the status and request id.
    """

    def __init__(self, config, key=None, session=None, retry_budget=60.0, backoff_base=0.5, backoff_cap=8.0,
                 sleep=time.sleep, clock=time.time, rate_limiter=None, deadline=None):
        if REQUESTS_IMPORT_ERROR:
            raise KeyProblem("the Python library 'requests' is required to talk to CloudAPI")
        self.config = config
        self.signer = RequestSigner(config.account, key or find_key(config), config.user)
        self.session = session or requests.Session()
        self.retry_budget = retry_budget
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self._sleep = sleep
        self._clock = clock
        self._random = random.Random()
        self._lock = threading.Lock()
        self.calls = 0
        self.rate_limiter = rate_limiter or RateLimiter(config.rate_limit, config.rate_burst)
        self.deadline = deadline

    # -- public API -------------------------------------------------------------------------------------

    def get(self, path, query=None, *, expect):
        return self.request("GET", path, query=query, expect=expect).data

    def post(self, path, body=None, query=None, idempotent=False, expect=None, headers=None):
        return self.request("POST", path, query=query, body=body, idempotent=idempotent, expect=expect,
                            headers=headers).data

    def put(self, path, body=None, expect=None):
        return self.request("PUT", path, body=body, expect=expect).data

    def delete(self, path, query=None):
        return self.request("DELETE", path, query=query).data

    def account_path(self, *parts):
        """'/ACCOUNT/machines/ID' style paths, each part URL-quoted."""
        return "/" + "/".join(quote(str(p), safe="") for p in (self.config.account,) + parts)

    def list_all(self, path, query=None, limit=PAGE_LIMIT):
        """Every item of a limit/offset paged list (ListMachines), one request per ``limit`` items."""
        query = dict(query or {})
        items, offset = [], 0
        while True:
            query.update(limit=limit, offset=offset)
            response = self.request("GET", path, query=query, expect=list)
            page = response.data
            items.extend(page)
            count = _int_header(response.headers, "x-resource-count", len(page))
            if count < limit or not page:
                return items
            offset += limit

    def request(self, method, path, query=None, body=None, idempotent=None, expect=None, headers=None):
        """Send one logical request; returns a Response or raises CloudAPIError.

        ``headers``: extra request headers (such as CreateMachine's Role-Tag); the signed ones win."""
        if idempotent is None:
            idempotent = method != "POST"
        target = path + ("?" + encode_query(query) if query else "")
        budget = Deadline(self.retry_budget)  # monotonic: a clock step neither ends nor extends it
        attempt = 0
        while True:
            attempt += 1
            error, retry_after = self._attempt(method, target, body, idempotent, expect, headers)
            if isinstance(error, Response):
                return error
            delay = self._backoff(attempt, retry_after)
            if attempt > self.config.retries or delay > budget.remaining() \
                    or (self.deadline is not None and delay >= self.deadline.remaining()):
                raise error
            self._sleep(delay)

    # -- internals --------------------------------------------------------------------------------------

    def _attempt(self, method, target, body, idempotent, expect, extra_headers=None):
        """One HTTP exchange: (Response, None) on success, else (CloudAPIError, retry_after or None).

        A non-retryable failure raises at once.
        """
        headers = dict(extra_headers or {})
        headers.update({
            "Accept": "application/json",
            "Accept-Version": ACCEPT_VERSION,
            "User-Agent": USER_AGENT,
        })
        self.rate_limiter.acquire()
        headers.update(self.signer.headers(method, target))
        data = None
        if body is not None:
            headers["Content-Type"] = "application/json"
            data = json.dumps(body).encode("ascii")
        with self._lock:
            self.calls += 1
        timeout = self.config.timeout
        if self.deadline is not None:
            timeout = max(1.0, min(timeout, self.deadline.remaining()))
        try:
            reply = self.session.request(method, self.config.url + target, data=data, headers=headers,
                                         timeout=(min(10, timeout), timeout), stream=True,
                                         verify=not self.config.insecure, allow_redirects=False)
        except requests.exceptions.RequestException as exc:
            sent = not _never_sent(exc)
            reason = _connection_reason(exc)
            if sent and not idempotent:
                raise CloudAPIError("%s %s: connection lost after the request was sent (%s); it may or may not "
                                    "have taken effect" % (method, _path_only(target), reason),
                                    maybe_committed=True)
            return CloudAPIError("%s %s: cannot reach CloudAPI at %s (%s)"
                                 % (method, _path_only(target), self.config.url, reason)), None
        try:
            body = reply.content  # the whole body, now: a cut-off answer fails here
        except requests.exceptions.RequestException as exc:
            error = CloudAPIError("%s %s: CloudAPI's %s answer was cut off (%s)%s"
                                  % (method, _path_only(target), reply.status_code, _connection_reason(exc),
                                     _request_id_suffix(reply)),
                                  status=reply.status_code, request_id=_request_id(reply),
                                  maybe_committed=not idempotent)
            if not idempotent:
                raise error
            return error, None
        if 200 <= reply.status_code < 300:
            return Response(reply.status_code, self._json_body(method, target, reply, body, expect),
                            reply.headers), None
        if reply.status_code < 400:
            raise self._odd_answer(method, target, reply, "%s, %s" % (
                _status_line(reply), "a redirect to %s" % reply.headers["Location"]
                if reply.headers.get("Location") else "a redirect"))
        error = self._error_from(method, target, reply)
        if reply.status_code in RETRY_STATUSES:
            return error, _retry_after(reply.headers.get("Retry-After"), self._clock())
        raise error

    def _json_body(self, method, target, reply, body, expect):
        """The JSON of a 2xx answer, checked against ``expect``; raises CloudAPIError when it is not that."""
        if not body:
            if expect is None:
                return None
            raise self._odd_answer(method, target, reply, "%s with an empty body where %s belongs"
                                   % (_status_line(reply), _SHAPES[expect]))
        try:
            data = json.loads(body)
        except ValueError:
            raise self._odd_answer(method, target, reply, "%s with %s, not JSON"
                                   % (_status_line(reply), _content_kind(reply)))
        if expect is not None and not (isinstance(data, expect)
                                       and (expect is not list or all(isinstance(i, dict) for i in data))):
            raise self._odd_answer(method, target, reply, "%s with %s where %s belongs"
                                   % (_status_line(reply), _json_kind(data), _SHAPES[expect]))
        return data

    def _odd_answer(self, method, target, reply, what):
        """A CloudAPIError for an answer that is not CloudAPI's: usually a wrong url or a proxy in between."""
        text = "%s %s: CloudAPI answered %s: is url %s right?%s" % (
            method, _path_only(target), what, self.config.url, _request_id_suffix(reply))
        return CloudAPIError(text, status=reply.status_code, code="UnexpectedAnswer", request_id=_request_id(reply))

    def _backoff(self, attempt, retry_after):
        ceiling = min(self.backoff_cap, self.backoff_base * (2 ** (attempt - 1)))
        delay = ceiling / 2 + self._random.uniform(0, ceiling / 2)
        return max(delay, retry_after or 0)

    def _error_from(self, method, target, reply):
        data = _json_or_none(reply)
        data = data if isinstance(data, dict) else {}
        code = str(data.get("code") or reply.reason)
        if data:
            message = " ".join(str(data.get("message") or reply.reason).split())
        elif reply.content:
            message = "%s, not CloudAPI's JSON" % _content_kind(reply)
        else:
            message = reply.reason
        text = "%s %s: CloudAPI said %s %s: %s" % (method, _path_only(target), reply.status_code, code, message)
        if reply.status_code in (400, 401):
            hint = self._auth_hint(reply, message)
            if hint:
                text += " (%s)" % hint
        errors = data.get("errors")
        return CloudAPIError(text + _request_id_suffix(reply), status=reply.status_code, code=code,
                             request_id=_request_id(reply), errors=errors if isinstance(errors, list) else [])

    def _auth_hint(self, reply, message):
        skew = _skew(reply.headers.get("Date"), self._clock())
        if "clock skew" in message or (skew is not None and abs(skew) > MAX_SKEW):
            return ("this machine's clock is %s CloudAPI's by %s s, more than the %d s it allows: sync the clock"
                    % ("behind" if (skew or 0) > 0 else "ahead of", abs(int(skew or 0)), MAX_SKEW))
        if reply.status_code == 401:
            return "signed as %s with %s" % (self.signer.key_id, self.signer.key.source)
        return None


def get_or_none(client, path):
    """The object at ``path``, or None when CloudAPI answers 404 (missing)."""
    try:
        return client.get(path, expect=dict)
    except CloudAPIError as exc:
        if exc.status == 404:
            return None
        raise


def delete_if_present(client, path):
    """DELETE ``path``; True when something was deleted, False when it was already gone (404)."""
    try:
        client.delete(path)
    except CloudAPIError as exc:
        if exc.status == 404:
            return False
        raise
    return True


def _int_header(headers, name, default):
    try:
        return int(headers.get(name))
    except (TypeError, ValueError):
        return default


def _json_or_none(reply):
    if not reply.content:
        return None
    try:
        return reply.json()
    except ValueError:
        return None


def _request_id(reply):
    return reply.headers.get("Request-Id") or reply.headers.get("x-request-id")


def _request_id_suffix(reply):
    request_id = _request_id(reply)
    return " [request id %s]" % request_id if request_id else ""


def _status_line(reply):
    return ("%s %s" % (reply.status_code, reply.reason or "")).strip()


def _content_kind(reply):
    """'text/html' or 'a body of type X' for messages about a body that is not JSON."""
    kind = (reply.headers.get("Content-Type") or "").split(";", 1)[0].strip()
    return "a %s page" % kind if kind.startswith("text/") else "a body of type %s" % (kind or "unknown")


_JSON_KINDS = ((bool, "boolean"), (str, "string"), ((int, float), "number"), (dict, "object"), (list, "list"))


def _json_kind(data):
    """'a JSON string', 'a JSON list with a number in it', ... for messages about a wrong shape."""
    name = next((name for kind, name in _JSON_KINDS if isinstance(data, kind)), "null")
    if isinstance(data, list) and data:
        odd = next(item for item in data if not isinstance(item, dict))
        return "a JSON list with %s in it" % _json_kind(odd).replace("a JSON ", "a ")
    return "a JSON %s" % name


def _retry_after(value, now):
    """Seconds a Retry-After header asks for (a number of seconds or an HTTP date); None when unreadable."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, email.utils.parsedate_to_datetime(value).timestamp() - now)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def _skew(date_header, now):
    """Seconds the server's Date is ahead of our clock (None when unknown)."""
    if not date_header:
        return None
    try:
        return email.utils.parsedate_to_datetime(date_header).timestamp() - now
    except (TypeError, ValueError):
        return None


def _path_only(target):
    return target.split("?", 1)[0]


def _never_sent(exc):
    """True when the request provably never reached the server (connect failed or timed out)."""
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return True
    if isinstance(exc, requests.exceptions.ConnectionError):
        reason = getattr(exc.args[0], "reason", None) if exc.args else None
        name = type(reason).__name__
        return name in ("NewConnectionError", "ConnectTimeoutError", "NameResolutionError")
    return False


def _connection_reason(exc):
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    text = str(reason or exc)
    return text.split(": ", 1)[-1] if len(text) > 160 else text

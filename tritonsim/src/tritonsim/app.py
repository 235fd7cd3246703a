"""The Flask application: CloudAPI's request pipeline around the route modules.

Order per request, as in CloudAPI: route match (404/405) -> body parsing ->
[faults] -> Accept-Version (400 InvalidVersion) -> authentication (400/401)
-> account in the path (403) -> throttle (429) -> RBAC for sub-users (403,
see access.py) -> handler.  /__sim/* skips
everything after route matching, and instead needs a loopback peer (403) and this
run's admin token (401), see admin.py.
"""

import base64
import email.utils
import hashlib
import json
import socket
import time
import traceback
import uuid

from flask import Flask, g, request
from werkzeug.exceptions import HTTPException

from . import API_VERSIONS, CLOUDAPI_CODE_VERSION, access, admin, auth, httpsig, routes
from .context import drop_connection, json_response, sim as _sim
from .errors import CloudApiError, not_authorized
from .machines import ACTION_ROUTES
from .store import StoreClosed
from .versions import negotiate

# restify's version-dependent quirk: networks are left out for ~7.0 only.
_PRE_NETWORKS_RANGES = ("7.0", "~7.0")


def create_app(sim):
    app = Flask("tritonsim")
    app.config["TRITONSIM"] = sim
    app.config["MAX_CONTENT_LENGTH"] = 100000
    routes.register(app)
    app.before_request(_pipeline)
    app.after_request(_finish)
    app.register_error_handler(CloudApiError, _cloudapi_error)
    app.register_error_handler(StoreClosed, _shutting_down)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _internal_error)
    return DropConnections(app)


class DropConnections:
    """WSGI wrapper: a request marked for dropping gets its socket shut down and
    nothing written (werkzeug treats the ConnectionError as a client hang-up)."""

    def __init__(self, app):
        self.app = app

    def __call__(self, environ, start_response):
        body = self.app(environ, start_response)
        if environ.get("tritonsim.drop"):
            if hasattr(body, "close"):
                body.close()
            sock = environ.get("werkzeug.socket")
            if sock is not None:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            raise ConnectionAbortedError("tritonsim: drop fault")
        return body


def _pipeline():
    g.start = time.perf_counter()
    g.drop = False
    g.caller = None
    g.active_roles = []
    g.route = None
    if request.routing_exception is not None:
        return None        # Flask raises it next; answered by _http_error
    g.route = request.url_rule.endpoint
    if g.route.startswith("sim."):
        current = _sim()
        admin.check(request.remote_addr, request.headers.get("Authorization"),
                    current.admin_token, current.admin_token_file)
        return None
    sim = _sim()
    g.params = _params()
    if g.route == "UpdateMachine":
        g.route = ACTION_ROUTES.get(g.params.get("action"), "UpdateMachine")

    latency = sim.faults.latency()
    if latency:
        time.sleep(latency)
    if sim.faults.roll("drop"):
        drop_connection()
        return ""
    if sim.faults.roll("503"):
        raise CloudApiError(503, "ServiceUnavailable", "Service Unavailable (tritonsim fault)")

    wanted = request.headers.get("Accept-Version") or request.headers.get("X-Api-Version") or "*"
    version = negotiate(wanted, API_VERSIONS)
    if version is None:
        raise CloudApiError(400, "InvalidVersion",
                            f"{wanted} is not supported by {request.method} {request.path}")
    g.version = version
    g.omit_networks = wanted.strip() in _PRE_NETWORKS_RANGES

    view = httpsig.RequestView(
        method=request.method,
        url=request.environ.get("RAW_URI") or request.full_path.rstrip("?"),
        http_version=request.environ.get("SERVER_PROTOCOL", "HTTP/1.1").partition("/")[2],
        headers={k.lower(): v for k, v in request.headers.items()},
    )
    g.caller = auth.authenticate(view, sim.accounts, version)
    if g.route == "Ping":
        return None
    caller = auth.require(g.caller)
    login = request.view_args.get("login")
    if login not in ("my", caller.account.login):
        raise not_authorized(f"You do not have permission to access {request.path} "
                             f"({g.route.lower()})")
    if sim.throttle is not None and not sim.throttle.allow(caller.account.login):
        raise CloudApiError(429, "TooManyRequests", sim.throttle.message())
    g.active_roles = access.check(sim, caller, request.url_rule.endpoint, request.method,
                                  request.path, g.params, request.headers, request.remote_addr)
    return None


def _params():
    merged = request.args.to_dict()
    data = request.get_data(cache=True)
    if not data:
        return merged
    if request.mimetype == "application/x-www-form-urlencoded":
        merged.update(request.form.to_dict())
        return merged
    if request.mimetype not in ("", "application/json") and not request.mimetype.endswith("+json"):
        return merged
    try:
        body = json.loads(data)
    except (ValueError, UnicodeDecodeError) as e:
        raise CloudApiError(400, "InvalidContent", f"Invalid JSON: {e}") from None
    if isinstance(body, dict):
        merged.update(body)
    return merged


def _finish(resp):
    if g.get("route") and g.route.startswith("sim."):
        return resp
    resp.headers["Server"] = f"cloudapi/{CLOUDAPI_CODE_VERSION}"
    resp.headers["Api-Version"] = API_VERSIONS[0]
    resp.headers["Request-Id"] = (request.headers.get("Request-Id")
                                  or request.headers.get("X-Request-Id") or str(uuid.uuid4()))
    resp.headers["Date"] = email.utils.formatdate(usegmt=True)
    resp.headers["Access-Control-Allow-Origin"] = "*"
    started = g.get("start")
    if started is not None:
        resp.headers["Response-Time"] = str(int((time.perf_counter() - started) * 1000))
    if g.get("caller") is not None and request.method in ("GET", "HEAD") \
            and resp.status_code == 200:
        resp.headers.update(access.role_tag_header(_sim(), g.caller.account.login, request.path))
    body = resp.get_data()
    if body:
        resp.headers["Content-MD5"] = base64.b64encode(hashlib.md5(body).digest()).decode()
    _sim().stats.record(g.get("route") or "(unrouted)", "drop" if g.get("drop") else resp.status_code)
    return resp


def _cloudapi_error(e):
    return json_response(e.to_body(), e.status, e.headers)


def _shutting_down(e):
    return json_response({"code": "ServiceUnavailable", "message": str(e)}, 503)


def _http_error(e):
    if e.code == 404:
        return json_response({"code": "ResourceNotFound",
                              "message": f"{request.path} does not exist"}, 404)
    if e.code == 405:
        resp = json_response({"code": "MethodNotAllowed",
                              "message": f"{request.method} is not allowed"}, 405)
        resp.headers["Allow"] = ", ".join(sorted(e.valid_methods or ()))
        return resp
    return json_response({"code": type(e).__name__, "message": e.description}, e.code)


def _internal_error(e):
    traceback.print_exc()
    return json_response({"code": "InternalError", "message": "Internal error"}, 500)

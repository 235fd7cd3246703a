"""Per-request helpers shared by the route modules."""

import json

from flask import Response, current_app, g, request


def sim():
    return current_app.config["TRITONSIM"]


def params():
    """Query string and body merged into one bag, the body winning (restify mapParams)."""
    return g.params


def caller():
    return g.caller


def audit_caller():
    return g.caller.audit(request.remote_addr)


def omit_networks():
    return g.omit_networks


def to_json(obj):
    # ASCII only: node-triton checks Content-MD5 over a latin-1 view of the body.
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=True)


def json_response(obj, status=200, headers=None):
    resp = Response(to_json(obj), status=status, mimetype="application/json")
    for key, value in (headers or {}).items():
        resp.headers[key] = value
    return resp


def empty_response(status, headers=None):
    resp = Response(status=status)
    del resp.headers["Content-Type"]
    for key, value in (headers or {}).items():
        resp.headers[key] = value
    return resp


def drop_connection():
    """Have the WSGI wrapper close the connection instead of answering."""
    g.drop = True
    request.environ["tritonsim.drop"] = True

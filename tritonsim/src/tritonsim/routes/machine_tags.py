"""Machine tags: list, get, add (merge), replace, delete one, delete all."""

import uuid

from flask import Response, request

from ..context import audit_caller, empty_response, json_response, params, sim, to_json


def _job():
    return {"x-job-uuid": str(uuid.uuid4())}


def list_tags(login, mid):
    return json_response(sim().props.list_tags(mid))


def get_tag(login, mid, tag):
    value = sim().props.get_tag(mid, tag)
    # CloudAPI quirk: a non-string value is answered as "".
    text = value if isinstance(value, str) else ""
    if request.accept_mimetypes.best == "text/plain":
        return Response(text, mimetype="text/plain")
    return Response(to_json(text), mimetype="application/json")


def add_tags(login, mid):
    tags = sim().props.tags_from_params(params())
    return json_response(sim().props.set_tags(audit_caller(), mid, tags), headers=_job())


def replace_tags(login, mid):
    tags = sim().props.tags_from_params(params())
    return json_response(sim().props.set_tags(audit_caller(), mid, tags, replace=True),
                         headers=_job())


def delete_tag(login, mid, tag):
    sim().props.delete_tag(audit_caller(), mid, tag)
    return empty_response(204, _job())


def delete_tags(login, mid):
    sim().props.delete_tag(audit_caller(), mid)
    return empty_response(204, _job())


ROUTES = [
    ("/<login>/machines/<mid>/tags", "ListMachineTags", ["GET"], list_tags),
    ("/<login>/machines/<mid>/tags", "AddMachineTags", ["POST"], add_tags),
    ("/<login>/machines/<mid>/tags", "ReplaceMachineTags", ["PUT"], replace_tags),
    ("/<login>/machines/<mid>/tags", "DeleteMachineTags", ["DELETE"], delete_tags),
    ("/<login>/machines/<mid>/tags/<tag>", "GetMachineTag", ["GET"], get_tag),
    ("/<login>/machines/<mid>/tags/<tag>", "DeleteMachineTag", ["DELETE"], delete_tag),
]

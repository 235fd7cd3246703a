"""Machine metadata: list, get, add (merge), delete one, delete all."""

import uuid

from flask import Response, request

from ..context import audit_caller, empty_response, json_response, params, sim, to_json


def _job():
    return {"x-job-uuid": str(uuid.uuid4())}


def list_metadata(login, mid):
    return json_response(sim().props.list_metadata(mid))


def get_metadata(login, mid, key):
    value = sim().props.get_metadata(mid, key)
    if request.accept_mimetypes.best == "text/plain":
        return Response(value, mimetype="text/plain")
    return Response(to_json(value), mimetype="application/json")


def add_metadata(login, mid):
    values = dict(params())
    return json_response(sim().props.add_metadata(audit_caller(), mid, values),
                         headers=_job())


def delete_metadata(login, mid, key):
    sim().props.delete_metadata(audit_caller(), mid, key)
    return empty_response(204, _job())


def delete_all_metadata(login, mid):
    sim().props.delete_metadata(audit_caller(), mid)
    return empty_response(204, _job())


ROUTES = [
    ("/<login>/machines/<mid>/metadata", "ListMachineMetadata", ["GET"], list_metadata),
    ("/<login>/machines/<mid>/metadata", "AddMachineMetadata", ["POST"], add_metadata),
    ("/<login>/machines/<mid>/metadata", "DeleteAllMachineMetadata", ["DELETE"],
     delete_all_metadata),
    ("/<login>/machines/<mid>/metadata/<key>", "GetMachineMetadata", ["GET"], get_metadata),
    ("/<login>/machines/<mid>/metadata/<key>", "DeleteMachineMetadata", ["DELETE"],
     delete_metadata),
]

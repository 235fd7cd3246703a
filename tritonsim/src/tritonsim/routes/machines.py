"""ListMachines, GetMachine, CreateMachine, the POST actions, DeleteMachine, MachineAudit."""

from flask import g, request

from .. import access
from ..context import (audit_caller, caller, drop_connection, empty_response, json_response,
                       omit_networks, params, sim)


def list_machines(login):
    page, limit = sim().machines.list(params(), omit_networks())
    return json_response(page, headers={"x-query-limit": str(limit),
                                        "x-resource-count": str(len(page))})


def get_machine(login, mid):
    return json_response(sim().machines.get(mid, omit_networks()))


def create_machine(login):
    roles = access.roles_for_new(sim(), g.active_roles, request.headers.get("Role-Tag"))
    machine = sim().machines.create(audit_caller(), params())
    if roles:
        sim().roles.set_role_tags(f"/{caller().account.login}/machines/{machine['id']}", roles)
    if sim().faults.roll("lost_create"):
        drop_connection()
    if omit_networks():
        machine.pop("networks", None)
    return json_response(machine, 201,
                         {"Location": f"/{caller().account.login}/machines/{machine['id']}"})


def update_machine(login, mid):
    sim().machines.action(audit_caller(), mid, params())
    return empty_response(202)


def delete_machine(login, mid):
    sim().machines.delete(audit_caller(), mid)
    return empty_response(204)


def machine_audit(login, mid):
    return json_response(sim().machines.audit(mid))


ROUTES = [
    ("/<login>/machines", "ListMachines", ["GET"], list_machines),
    ("/<login>/machines", "CreateMachine", ["POST"], create_machine),
    ("/<login>/machines/<mid>", "GetMachine", ["GET"], get_machine),
    ("/<login>/machines/<mid>", "UpdateMachine", ["POST"], update_machine),
    ("/<login>/machines/<mid>", "DeleteMachine", ["DELETE"], delete_machine),
    ("/<login>/machines/<mid>/audit", "MachineAudit", ["GET"], machine_audit),
]

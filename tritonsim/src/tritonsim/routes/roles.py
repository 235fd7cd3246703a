"""Roles and policies: List/Get/Create/Update/Delete for each.

Roles answer in the API >= 9 object form (members [{type, id, login, default}],
policies [{id, name}]); a request negotiated to an older version gets the pre-9
login/name lists with default_members."""

from urllib.parse import quote

from flask import g

from ..context import caller, empty_response, json_response, params, sim
from ..versions import parse_version


def _role(role):
    return sim().roles.role_to_api(role, object_form=parse_version(g.version) >= (9, 0, 0))


def list_roles(login):
    return json_response([_role(r) for r in sim().roles.list_roles()])


def get_role(login, role):
    return json_response(_role(sim().roles.find_role(role)))


def create_role(login):
    role = sim().roles.create_role(params())
    return json_response(_role(role), 201,
                         {"Location": f"/{caller().account.login}/roles/{quote(role['id'])}"})


def update_role(login, role):
    return json_response(_role(sim().roles.update_role(role, params())))


def delete_role(login, role):
    sim().roles.delete_role(role)
    return empty_response(204)


def list_policies(login):
    return json_response(sim().roles.list_policies())


def get_policy(login, policy):
    return json_response(sim().roles.find_policy(policy))


def create_policy(login):
    policy = sim().roles.create_policy(params())
    return json_response(policy, 201, {
        "Location": f"/{caller().account.login}/policies/{quote(policy['id'])}"})


def update_policy(login, policy):
    return json_response(sim().roles.update_policy(policy, params()))


def delete_policy(login, policy):
    sim().roles.delete_policy(policy)
    return empty_response(204)


ROUTES = [
    ("/<login>/roles", "ListRoles", ["GET"], list_roles),
    ("/<login>/roles", "CreateRole", ["POST"], create_role),
    ("/<login>/roles/<role>", "GetRole", ["GET"], get_role),
    ("/<login>/roles/<role>", "UpdateRole", ["POST"], update_role),
    ("/<login>/roles/<role>", "DeleteRole", ["DELETE"], delete_role),
    ("/<login>/policies", "ListPolicies", ["GET"], list_policies),
    ("/<login>/policies", "CreatePolicy", ["POST"], create_policy),
    ("/<login>/policies/<policy>", "GetPolicy", ["GET"], get_policy),
    ("/<login>/policies/<policy>", "UpdatePolicy", ["POST"], update_policy),
    ("/<login>/policies/<policy>", "DeletePolicy", ["DELETE"], delete_policy),
]

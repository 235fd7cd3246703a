"""Sub-users and their SSH keys: ListUsers ... DeleteUser, ListUserKeys ... DeleteUserKey."""

from urllib.parse import quote

from flask import g, request

from .. import access
from ..context import caller, empty_response, json_response, params, sim


def _truthy(value):
    return value is True or str(value).lower() == "true"


def list_users(login):
    iam = sim().iam
    return json_response([iam.user_to_api(u) for u in iam.list_users()])


def get_user(login, user):
    iam = sim().iam
    return json_response(iam.user_to_api(iam.find_user(user),
                                         membership=_truthy(params().get("membership"))))


def create_user(login):
    iam = sim().iam
    user = iam.create_user(params())
    location = f"/{caller().account.login}/users/{quote(user.login, safe='')}"
    return json_response(iam.user_to_api(user), 201, {"Location": location})


def update_user(login, user):
    iam = sim().iam
    return json_response(iam.user_to_api(iam.update_user(user, params())))


def delete_user(login, user):
    sim().iam.delete_user(user)
    return empty_response(204)


def list_user_keys(login, user):
    found = sim().iam.find_user(user)
    return json_response([k.to_api() for k in found.keys])


def get_user_key(login, user, key):
    iam = sim().iam
    return json_response(iam.find_key(iam.find_user(user), key).to_api())


def create_user_key(login, user):
    iam = sim().iam
    found = iam.find_user(user)
    roles = access.roles_for_new(sim(), g.active_roles, request.headers.get("Role-Tag"))
    key = iam.create_key(found, params())
    if roles:
        sim().roles.set_role_tags(
            f"/{caller().account.login}/users/{found.login}/keys/{key.fingerprint}", roles)
    location = (f"/{caller().account.login}/users/{quote(found.login, safe='')}"
                f"/keys/{quote(key.fingerprint, safe='')}")
    return json_response(key.to_api(), 201, {"Location": location})


def delete_user_key(login, user, key):
    iam = sim().iam
    iam.delete_key(iam.find_user(user), key)
    return empty_response(204)


ROUTES = [
    ("/<login>/users", "ListUsers", ["GET"], list_users),
    ("/<login>/users", "CreateUser", ["POST"], create_user),
    ("/<login>/users/<user>", "GetUser", ["GET"], get_user),
    ("/<login>/users/<user>", "UpdateUser", ["POST"], update_user),
    ("/<login>/users/<user>", "DeleteUser", ["DELETE"], delete_user),
    ("/<login>/users/<user>/keys", "ListUserKeys", ["GET"], list_user_keys),
    ("/<login>/users/<user>/keys", "CreateUserKey", ["POST"], create_user_key),
    ("/<login>/users/<user>/keys/<key>", "GetUserKey", ["GET"], get_user_key),
    ("/<login>/users/<user>/keys/<key>", "DeleteUserKey", ["DELETE"], delete_user_key),
]

"""Ping, GetAccount, UpdateAccount, GetProvisioningLimits, ListKeys, GetKey, CreateKey,
DeleteKey."""

from urllib.parse import quote

from flask import g, request

from .. import API_VERSIONS, access
from ..context import caller, empty_response, json_response, params, sim


def ping():
    versions = sorted(API_VERSIONS, key=lambda v: tuple(map(int, v.split("."))))
    return json_response({"ping": "pong", "cloudapi": {"versions": versions}},
                         headers={"Triton-Datacenter-Name": sim().datacenter})


def get_account(login):
    return json_response(caller().account.to_api())


def update_account(login):
    return json_response(sim().iam.update_account(params()))


def get_limits(login):
    # tritonsim configures no provisioning limits (CloudAPI's provision_limits plugin off).
    return json_response([])


def list_keys(login):
    return json_response([k.to_api() for k in caller().account.keys])


def get_key(login, key):
    return json_response(sim().iam.find_key(caller().account, key).to_api())


def create_key(login):
    account = caller().account
    roles = access.roles_for_new(sim(), g.active_roles, request.headers.get("Role-Tag"))
    key = sim().iam.create_key(account, params())
    if roles:
        sim().roles.set_role_tags(f"/{account.login}/keys/{key.fingerprint}", roles)
    return json_response(key.to_api(), 201,
                         {"Location": f"/{account.login}/keys/{quote(key.fingerprint, safe='')}"})


def delete_key(login, key):
    sim().iam.delete_key(caller().account, key)
    return empty_response(204)


ROUTES = [
    ("/--ping", "Ping", ["GET"], ping),
    ("/<login>", "GetAccount", ["GET"], get_account),
    ("/<login>", "UpdateAccount", ["POST"], update_account),
    ("/<login>/limits", "GetProvisioningLimits", ["GET"], get_limits),
    ("/<login>/keys", "ListKeys", ["GET"], list_keys),
    ("/<login>/keys", "CreateKey", ["POST"], create_key),
    ("/<login>/keys/<key>", "GetKey", ["GET"], get_key),
    ("/<login>/keys/<key>", "DeleteKey", ["DELETE"], delete_key),
]

"""Ping, GetAccount, ListKeys, GetKey."""

from .. import API_VERSIONS
from ..context import caller, json_response, sim
from ..errors import not_found


def ping():
    versions = sorted(API_VERSIONS, key=lambda v: tuple(map(int, v.split("."))))
    return json_response({"ping": "pong", "cloudapi": {"versions": versions}},
                         headers={"Triton-Datacenter-Name": sim().datacenter})


def get_account(login):
    return json_response(caller().account.to_api())


def list_keys(login):
    return json_response([k.to_api() for k in caller().account.keys])


def get_key(login, key):
    found = caller().account.find_key(key)
    if found is None:
        raise not_found(f"{key} does not exist")
    return json_response(found.to_api())


ROUTES = [
    ("/--ping", "Ping", ["GET"], ping),
    ("/<login>", "GetAccount", ["GET"], get_account),
    ("/<login>/keys", "ListKeys", ["GET"], list_keys),
    ("/<login>/keys/<key>", "GetKey", ["GET"], get_key),
]

"""Role tags (lib/resources.js): PUT {"role-tag": [role names]} on the account,
a collection, a resource, a machine or a sub-user's keys; answered
{"name": RESOURCE, "role-tag": [...]}.  Reading them is the Role-Tag header of
a GET (see access.role_tag_header)."""

from flask import request

from .. import rbac
from ..context import caller, json_response, params, sim

_COLLECTIONS = "any(" + ",".join(rbac.TAGGABLE) + ")"


def _put(**args):
    login = caller().account.login
    if args.get("mid") is not None:
        sim().machines.find(args["mid"])          # 404 VM not found
    if args.get("user") is not None:
        sim().iam.find_user(args["user"])         # no tags on users that do not exist
    resource = rbac.resource_name(request.path, login)
    names = params().get("role-tag")
    if names is None:
        names = rbac.split_role_header(request.headers.get("Role-Tag"))
    elif isinstance(names, str):
        names = [names]
    return json_response({"name": resource, "role-tag": sim().roles.set_role_tags(resource, names)})


ROUTES = [
    ("/<login>", "ReplaceAccountRoleTags", ["PUT"], _put),
    (f"/<login>/<{_COLLECTIONS}:resource_name>", "ReplaceResourcesRoleTags", ["PUT"], _put),
    (f"/<login>/<{_COLLECTIONS}:resource_name>/<resource_id>", "ReplaceResourceRoleTags",
     ["PUT"], _put),
    ("/<login>/machines/<mid>", "ReplaceMachineRoleTags", ["PUT"], _put),
    ("/<login>/users/<user>/<any(keys):resource_name>", "ReplaceUserKeysResourcesRoleTags",
     ["PUT"], _put),
    ("/<login>/users/<user>/keys/<resource_id>", "ReplaceUserKeysResourceRoleTags", ["PUT"],
     _put),
]

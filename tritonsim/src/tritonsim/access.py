"""RBAC at the edge of a request: gathers what rbac.authorize needs (active
roles, action, resource role tags, conditions) and answers 403 NotAuthorized.
Also the Role-Tag header of GET responses and the role tags of new machines and keys."""

import time

from . import rbac
from .errors import not_authorized


def check(sim, caller, endpoint, method, path, params, headers, remote_addr):
    """Raises 403 NotAuthorized (or 409 for a bad as-role) unless allowed.
    Returns the sub-user's active roles ([] for the account owner)."""
    if caller.user is None:
        return []
    roles = sim.roles.active_roles(caller.user, params.get("as-role"))
    action = rbac.action_for(endpoint, method, params)
    resource = rbac.resource_name(path, caller.account.login)
    allowed = rbac.authorize(owner=False, roles=roles, action=action, path=path,
                             login=caller.user.login,
                             resource_roles=set(sim.roles.role_tags(resource)),
                             conditions=_conditions(sim, resource, method, headers, remote_addr))
    if not allowed:
        raise not_authorized(rbac.denial_message(path, action))
    return roles


def _conditions(sim, resource, method, headers, remote_addr):
    now = time.gmtime()
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", now)
    clock = time.strftime("%H:%M:%S", now)
    day = time.strftime("%a", now)
    out = {"date": stamp, "day": day, "time": clock, "requesttime": clock,
           "sourceip": remote_addr, "user-agent": headers.get("User-Agent", ""),
           "method": method.lower(), "datacenter": sim.datacenter}
    machine = sim.store.machines.get(rbac.machine_of(resource) or "")
    if machine is not None:
        out["ip"] = [nic["ip"] for nic in machine["nics"]]
        for name, value in machine["tags"].items():
            out[f"tag_{name}"] = value
    return out


def role_tag_header(sim, login, path):
    """{"Role-Tag": "a,b"} for a GET of a role-tagged resource itself, else {}."""
    parts = [p for p in path.split("/") if p]
    if not parts:
        return {}
    own = "/" + "/".join([login] + parts[1:])
    if own != rbac.resource_name(path, login):
        return {}
    names = sim.roles.role_tags(own)
    return {"Role-Tag": ",".join(names)} if names else {}


def roles_for_new(sim, active_roles, header):
    """Role names a new machine or key is tagged with: the Role-Tag header (checked
    before anything is made, 409 for unknown roles), else the sub-user's active roles
    (none for the account owner)."""
    names = rbac.split_role_header(header)
    if names:
        sim.roles.role_ids(names)
        return names
    return [r.name for r in active_roles]

"""Policies, roles and role tags, kept in the store (table `iam`).

Roles refer to users and policies by id, so renaming either keeps them bound; the
answers translate ids back to logins and names.  Role tags are stored per resource
name (rbac.resource_name), machines included.  `active_roles` turns a sub-user's
roles into what rbac.authorize evaluates.
"""

import json
import uuid

from . import rbac
from .errors import CloudApiError, invalid_argument, missing_parameter, not_found


def _string_list(value):
    """A list given as a JSON array or as one string (CloudAPI accepts both)."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            parsed = json.loads(value)
        except ValueError:
            return [value]
        return parsed if isinstance(parsed, list) else [value]
    if isinstance(value, list):
        return value
    return [value]


class RoleStore:
    def __init__(self, store):
        self.store = store
        self.users = None        # iam.Iam: find_user(ref), list_users(); see bind_users

    def bind_users(self, users):
        self.users = users

    # ---------------------------------------------------------- membership

    def seed_admin(self, user_ids):
        """Make users default members of the administrator role (created if missing)."""
        with self.store.lock:
            role = self._role_named(rbac.ADMIN_ROLE)
            if role is None:
                role = {"id": str(uuid.uuid4()), "name": rbac.ADMIN_ROLE, "members": [],
                        "policies": []}
            members = {m["id"]: m for m in role["members"]}
            for uid in user_ids:
                members.setdefault(uid, {"id": uid, "default": True})
            self.store.save_iam("roles", role["id"], {**role, "members": list(members.values())})

    def memberships(self, user_id):
        """(names of the user's roles, names of those it is a default member of)."""
        roles, defaults = [], []
        for role in self.list_roles():
            for member in role["members"]:
                if member["id"] == user_id:
                    roles.append(role["name"])
                    if member["default"]:
                        defaults.append(role["name"])
        return roles, defaults

    def drop_member(self, user_id):
        with self.store.lock:
            for role in self.list_roles():
                kept = [m for m in role["members"] if m["id"] != user_id]
                if len(kept) != len(role["members"]):
                    self.store.save_iam("roles", role["id"], {**role, "members": kept})

    # ---------------------------------------------------------- policies

    def list_policies(self):
        return list(self.store.iam_docs("policies").values())

    def find_policy(self, ident):
        docs = self.store.iam_docs("policies")
        found = docs.get(ident) or next((p for p in docs.values() if p["name"] == ident), None)
        if found is None:
            raise not_found(f"{ident} does not exist")
        return found

    @staticmethod
    def _rules(value):
        rules = _string_list(value)
        if not all(isinstance(r, str) for r in rules):
            raise invalid_argument("rules must be an array of strings")
        errors = rbac.rule_errors(rules)
        if errors:
            raise invalid_argument(", ".join(errors))
        return rules

    def create_policy(self, params):
        missing = [f"{n} is required" for n in ("name", "rules") if not params.get(n)]
        if missing:
            raise missing_parameter("Request is missing required parameters: "
                                    + ", ".join(missing))
        rules = self._rules(params["rules"])
        with self.store.lock:
            if any(p["name"] == params["name"] for p in self.list_policies()):
                raise invalid_argument(f"policy {params['name']} already exists")
            policy = {"name": str(params["name"]), "id": str(uuid.uuid4()), "rules": rules}
            if params.get("description"):
                policy["description"] = str(params["description"])
            self.store.save_iam("policies", policy["id"], policy)
        return policy

    def update_policy(self, ident, params):
        with self.store.lock:
            policy = dict(self.find_policy(ident))
            if params.get("rules"):
                policy["rules"] = self._rules(params["rules"])
            name = params.get("name")
            if name and name != policy["name"]:
                if any(p["name"] == name for p in self.list_policies()):
                    raise invalid_argument(f"policy {name} already exists")
                policy["name"] = str(name)
            if params.get("description"):
                policy["description"] = str(params["description"])
            self.store.save_iam("policies", policy["id"], policy)
        return policy

    def delete_policy(self, ident):
        with self.store.lock:
            policy = self.find_policy(ident)
            self.store.delete_iam("policies", policy["id"])
            for role in list(self.store.iam_docs("roles").values()):
                if policy["id"] in role["policies"]:
                    kept = [p for p in role["policies"] if p != policy["id"]]
                    self.store.save_iam("roles", role["id"], {**role, "policies": kept})

    # ---------------------------------------------------------- roles

    def role_to_api(self, role, object_form=True):
        users = {u.uuid: u for u in self.users.list_users()}
        policies = self.store.iam_docs("policies")
        members = [(users[m["id"]], m["default"]) for m in role["members"] if m["id"] in users]
        pols = [policies[p] for p in role["policies"] if p in policies]
        if object_form:
            return {"id": role["id"], "name": role["name"],
                    "members": [{"type": "subuser", "id": u.uuid, "login": u.login,
                                 "default": default} for u, default in members],
                    "policies": [{"id": p["id"], "name": p["name"]} for p in pols]}
        return {"name": role["name"], "id": role["id"],
                "members": [u.login for u, dummy in members],
                "default_members": [u.login for u, default in members if default],
                "policies": [p["name"] for p in pols]}

    def list_roles(self):
        return list(self.store.iam_docs("roles").values())

    def _role_named(self, name):
        return next((r for r in self.store.iam_docs("roles").values() if r["name"] == name), None)

    def find_role(self, ident):
        role = self.store.iam_docs("roles").get(ident) or self._role_named(ident)
        if role is None:
            raise not_found(f"{ident} does not exist")
        return role

    def _members(self, params, old):
        """Role members from the >= 9 object form or the older login lists."""
        members = _string_list(params.get("members"))
        defaults = _string_list(params.get("default_members"))
        if members is None and defaults is None:
            return old
        out, errors = {}, []

        def user_for(ref):
            try:
                return self.users.find_user(ref)
            except CloudApiError:
                errors.append(f"Invalid user {ref}")
                return None

        for item in members or []:
            if isinstance(item, dict):
                if item.get("type", "subuser") != "subuser":
                    errors.append(f"Invalid member type {item.get('type')}")
                    continue
                user = user_for(item.get("id") or item.get("login"))
                default = item.get("default") is True or str(item.get("default")).lower() == "true"
                if user:
                    out[user.uuid] = {"id": user.uuid, "default": default}
            else:
                user = user_for(item)
                if user:
                    out[user.uuid] = {"id": user.uuid, "default": False}
        for item in defaults or []:
            user = user_for(item)
            if user:
                out[user.uuid] = {"id": user.uuid, "default": True}
        if errors:
            raise invalid_argument(",".join(errors))
        return list(out.values())

    def _policies(self, params, old):
        value = _string_list(params.get("policies"))
        if value is None:
            return old
        out, errors = [], []
        for item in value:
            ref = item.get("id") or item.get("name") if isinstance(item, dict) else item
            try:
                pid = self.find_policy(ref)["id"]
            except CloudApiError:
                errors.append(f"Invalid policy {ref}")
                continue
            if pid not in out:
                out.append(pid)
        if errors:
            raise invalid_argument(",".join(errors))
        return out

    def create_role(self, params):
        name = params.get("name")
        if not name:
            raise missing_parameter("Request is missing required parameter: name")
        with self.store.lock:
            if self._role_named(name):
                raise invalid_argument(f"role {name} already exists")
            role = {"id": str(uuid.uuid4()), "name": str(name),
                    "members": self._members(params, []),
                    "policies": self._policies(params, [])}
            self.store.save_iam("roles", role["id"], role)
        return role

    def update_role(self, ident, params):
        with self.store.lock:
            role = dict(self.find_role(ident))
            name = params.get("name")
            if name and name != role["name"]:
                if self._role_named(name):
                    raise invalid_argument(f"role {name} already exists")
                role["name"] = str(name)
            role["members"] = self._members(params, role["members"])
            role["policies"] = self._policies(params, role["policies"])
            self.store.save_iam("roles", role["id"], role)
        return role

    def delete_role(self, ident):
        with self.store.lock:
            role = self.find_role(ident)
            self.store.delete_iam("roles", role["id"])
            for tagged in list(self.store.iam_docs("roletags").values()):
                if role["id"] in tagged["roles"]:
                    kept = [r for r in tagged["roles"] if r != role["id"]]
                    self.store.save_iam("roletags", tagged["name"], {**tagged, "roles": kept})

    # ---------------------------------------------------------- role tags

    def role_ids(self, names):
        """Role names -> ids; 409 InvalidArgument "Role(s) X not found" for unknown ones."""
        roles = {r["name"]: r["id"] for r in self.list_roles()}
        unknown = [n for n in names if n not in roles]
        if unknown:
            raise invalid_argument(f"Role(s) {', '.join(unknown)} not found")
        return [roles[n] for n in dict.fromkeys(names)]

    def role_tags(self, resource):
        """Names of the roles tagging a resource name (see rbac.resource_name)."""
        tagged = self.store.iam_docs("roletags").get(resource)
        if not tagged:
            return []
        roles = self.store.iam_docs("roles")
        return [roles[r]["name"] for r in tagged["roles"] if r in roles]

    def set_role_tags(self, resource, names):
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise invalid_argument("role-tag must be an array of role names")
        ids = self.role_ids(names)
        with self.store.lock:
            if ids:
                self.store.save_iam("roletags", resource, {"name": resource, "roles": ids})
            else:
                self.store.delete_iam("roletags", resource)
        return self.role_tags(resource)

    # ---------------------------------------------------------- active roles

    def active_roles(self, user, as_role=None):
        """The user's active roles as rbac.ActiveRoles: its default roles, or the
        as-role names (each must list the user as a member, else 409)."""
        roles = self.list_roles()
        mine = {r["name"]: r for r in roles if any(m["id"] == user.uuid for m in r["members"])}
        wanted = [n.strip() for n in (as_role or "").split(",") if n.strip()]
        if wanted:
            missing = [n for n in wanted if n not in mine]
            if missing:
                raise invalid_argument(f'invalid "as-role" param: user {user.login} does not '
                                       f"have the following roles: {', '.join(missing)}")
            chosen = [mine[n] for n in dict.fromkeys(wanted)]
        else:
            chosen = [r for r in mine.values()
                      if any(m["id"] == user.uuid and m["default"] for m in r["members"])]
        policies = self.store.iam_docs("policies")
        out = []
        for role in chosen:
            rules = []
            for pid in role["policies"]:
                for text in policies.get(pid, {}).get("rules", []):
                    try:
                        rules.append(rbac.parse_rule(text))
                    except rbac.RuleError:
                        continue
            out.append(rbac.ActiveRole(role["name"], tuple(rules)))
        return out

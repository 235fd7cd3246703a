"""Sub-users, SSH keys, policies, roles and role tags, kept in the store.

The account and its users stay the accounts.Account / accounts.User objects that
authentication reads; this service changes them and writes every change through
to the store (table `iam`), so they survive a restart.  Passwords are kept only
as a salted scrypt hash and never leave this module.

Command-line keys and sub-users (--key, --user) are merged in at every start; a
key deleted through the API stays deleted.  Unless `admin_cli_users` is false,
command-line sub-users are default members of a seeded `administrator` role.
"""

import hashlib
import json
import re
import secrets
import uuid

from . import rbac
from .accounts import Key, User
from .clock import iso_now
from .errors import CloudApiError, invalid_argument, missing_parameter, not_found
from .sshkeys import parse_public_key

EMAIL_RE = re.compile(r"^[a-zA-Z0-9.!#$%&'*+\-/=?^_`{|}~]+@[a-zA-Z0-9\-]+(?:\.[a-zA-Z0-9\-]+)*$")
LOGIN_RE = re.compile(r"^[a-zA-Z][a-zA-Z0-9_.@-]{1,63}$")
USER_FIELDS = ("email", "companyName", "firstName", "lastName", "address", "postalCode",
               "city", "state", "country", "phone")
ACCOUNT_FIELDS = USER_FIELDS + ("triton_cns_enabled",)
_SCRYPT = {"n": 2 ** 14, "r": 8, "p": 1}


def hash_password(password):
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, **_SCRYPT)
    return f"scrypt${salt.hex()}${digest.hex()}"


def _key_docs(keys):
    return [{"name": k.name, "key": k.public.line} for k in keys]


def _keys_from_docs(docs):
    return [Key(d["name"], parse_public_key(d["key"])) for d in docs]


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


class Iam:
    def __init__(self, store, account, admin_cli_users=True):
        self.store = store
        self.account = account
        self.lock = store.lock
        self._passwords = {}          # user uuid -> salted hash
        self._load(admin_cli_users)

    # ---------------------------------------------------------- start-up

    def _load(self, admin_cli_users):
        cli_users = dict(self.account.users)
        saved = self.store.iam_docs("account").get(self.account.uuid)
        if saved:
            self.account.profile = dict(saved.get("profile", {}))
            self.account.keys = self._merged_keys(saved, self.account.keys)
        self.account.users = {}
        for doc in sorted(self.store.iam_docs("users").values(), key=lambda d: d["created"]):
            user = User(doc["login"], doc["id"], _keys_from_docs(doc["keys"]),
                        {k: doc[k] for k in USER_FIELDS + ("created", "updated") if k in doc})
            self._passwords[user.uuid] = doc.get("password")
            self.account.users[user.login] = user
        for login, cli_user in cli_users.items():
            user = self.account.users.get(login)
            if user is None:
                now = iso_now()
                user = User(login, cli_user.uuid, list(cli_user.keys),
                            {"email": f"{login}@tritonsim.invalid", "created": now,
                             "updated": now})
                self.account.users[login] = user
            else:
                doc = self.store.iam_docs("users")[user.uuid]
                user.keys = self._merged_keys(doc, cli_user.keys)
            self._save_user(user)
        self._save_account()
        if admin_cli_users and cli_users:
            self._seed_admin_role([self.account.users[login].uuid for login in cli_users])

    @staticmethod
    def _merged_keys(doc, cli_keys):
        keys = _keys_from_docs(doc.get("keys", []))
        removed = set(doc.get("removed_keys", []))
        have = {k.fingerprint for k in keys}
        for key in cli_keys:
            if key.fingerprint not in have and key.fingerprint not in removed:
                keys.append(key)
        return keys

    def _seed_admin_role(self, user_ids):
        role = self._role_named(rbac.ADMIN_ROLE)
        if role is None:
            role = {"id": str(uuid.uuid4()), "name": rbac.ADMIN_ROLE, "members": [],
                    "policies": []}
        members = {m["id"]: m for m in role["members"]}
        for uid in user_ids:
            members.setdefault(uid, {"id": uid, "default": True})
        role["members"] = list(members.values())
        self.store.save_iam("roles", role["id"], role)

    # ---------------------------------------------------------- persistence

    def _save_account(self, removed_key=None):
        old = self.store.iam_docs("account").get(self.account.uuid, {})
        removed = list(old.get("removed_keys", [])) + ([removed_key] if removed_key else [])
        self.store.save_iam("account", self.account.uuid, {
            "profile": self.account.profile, "keys": _key_docs(self.account.keys),
            "removed_keys": removed})

    def _save_user(self, user, removed_key=None):
        old = self.store.iam_docs("users").get(user.uuid, {})
        removed = list(old.get("removed_keys", []))
        if removed_key:
            removed.append(removed_key)
        doc = {"id": user.uuid, "login": user.login, **user.profile,
               "keys": _key_docs(user.keys), "removed_keys": removed,
               "password": self._passwords.get(user.uuid)}
        self.store.save_iam("users", user.uuid, doc)

    def _forget_key(self, principal, fingerprint):
        if principal is self.account:
            self._save_account(removed_key=fingerprint)
        else:
            self._save_user(principal, removed_key=fingerprint)

    # ---------------------------------------------------------- account

    def update_account(self, params):
        changes = {}
        for name in ACCOUNT_FIELDS:
            if name in params and params[name] is not None:
                changes[name] = params[name]
        if "email" in changes and not EMAIL_RE.match(str(changes["email"])):
            raise invalid_argument(f"email: {changes['email']} is invalid")
        if "triton_cns_enabled" in changes:
            value = changes["triton_cns_enabled"]
            changes["triton_cns_enabled"] = value is True or str(value).lower() == "true"
        with self.lock:
            self.account.profile.update(changes)
            self.account.profile["updated"] = iso_now()
            self._save_account()
        return self.account.to_api()

    # ---------------------------------------------------------- users

    def user_to_api(self, user, membership=False):
        out = {"id": user.uuid, "login": user.login}
        out.update({k: user.profile[k] for k in USER_FIELDS if user.profile.get(k)})
        out["created"] = user.profile.get("created")
        out["updated"] = user.profile.get("updated")
        if membership:
            roles = [r for r in self.store.iam_docs("roles").values()
                     if any(m["id"] == user.uuid for m in r["members"])]
            out["roles"] = [r["name"] for r in roles]
            out["default_roles"] = [r["name"] for r in roles
                                    if any(m["id"] == user.uuid and m["default"]
                                           for m in r["members"])]
        return out

    def list_users(self):
        return list(self.account.users.values())

    def find_user(self, ident):
        user = self.account.users.get(ident)
        if user is None:
            user = next((u for u in self.account.users.values() if u.uuid == ident), None)
        if user is None:
            raise not_found(f"{ident} does not exist")
        return user

    def create_user(self, params):
        missing = [f"{name} is required" for name in ("email", "login", "password")
                   if not params.get(name)]
        if missing:
            raise missing_parameter("Request is missing required parameters: "
                                    + ", ".join(missing))
        login, email = params["login"], params["email"]
        if not isinstance(login, str) or not LOGIN_RE.match(login):
            raise invalid_argument(f"login: {login} is invalid")
        if not EMAIL_RE.match(str(email)):
            raise invalid_argument(f"email: {email} is invalid")
        if not isinstance(params["password"], str):
            raise invalid_argument("password is invalid")
        with self.lock:
            if login in self.account.users or login == self.account.login:
                raise invalid_argument(f"login {login} is already taken")
            now = iso_now()
            profile = {k: params[k] for k in USER_FIELDS if params.get(k)}
            profile.update(created=now, updated=now)
            user = User(login, str(uuid.uuid4()), [], profile)
            self._passwords[user.uuid] = hash_password(params["password"])
            self.account.users[login] = user
            self._save_user(user)
        return user

    def update_user(self, ident, params):
        with self.lock:
            user = self.find_user(ident)
            changes = {k: params[k] for k in USER_FIELDS if params.get(k)}
            if "email" in changes and not EMAIL_RE.match(str(changes["email"])):
                raise invalid_argument(f"email: {changes['email']} is invalid")
            new_login = params.get("login")
            if new_login and new_login != user.login:
                if not isinstance(new_login, str) or not LOGIN_RE.match(new_login):
                    raise invalid_argument(f"login: {new_login} is invalid")
                if new_login in self.account.users or new_login == self.account.login:
                    raise invalid_argument(f"login {new_login} is already taken")
                del self.account.users[user.login]
                user.login = new_login
                self.account.users[new_login] = user
            user.profile.update(changes)
            user.profile["updated"] = iso_now()
            self._save_user(user)
        return user

    def delete_user(self, ident):
        with self.lock:
            user = self.find_user(ident)
            del self.account.users[user.login]
            self._passwords.pop(user.uuid, None)
            self.store.delete_iam("users", user.uuid)
            for role in list(self.store.iam_docs("roles").values()):
                kept = [m for m in role["members"] if m["id"] != user.uuid]
                if len(kept) != len(role["members"]):
                    self.store.save_iam("roles", role["id"], {**role, "members": kept})

    # ---------------------------------------------------------- keys

    @staticmethod
    def find_key(principal, ident):
        key = principal.find_key(ident)
        if key is None:
            raise not_found(f"{ident} does not exist")
        return key

    def create_key(self, principal, params):
        text = params.get("key")
        if not text or not isinstance(text, str):
            raise missing_parameter("key is a required argument")
        try:
            public = parse_public_key(text)
        except Exception:        # noqa: BLE001 - any parse failure is the same 409
            raise invalid_argument("key already exists or is invalid") from None
        name = params.get("name") or public.fingerprint
        with self.lock:
            if any(k.name == name or k.fingerprint == public.fingerprint
                   for k in principal.keys):
                raise invalid_argument("key already exists or is invalid")
            key = Key(str(name), public)
            principal.keys = principal.keys + [key]
            self._save_principal(principal)
        return key

    def delete_key(self, principal, ident):
        with self.lock:
            key = self.find_key(principal, ident)
            principal.keys = [k for k in principal.keys if k is not key]
            self._save_principal(principal)
            self._forget_key(principal, key.fingerprint)

    def _save_principal(self, principal):
        if principal is self.account:
            self._save_account()
        else:
            self._save_user(principal)

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
        with self.lock:
            if any(p["name"] == params["name"] for p in self.list_policies()):
                raise invalid_argument(f"policy {params['name']} already exists")
            policy = {"name": str(params["name"]), "id": str(uuid.uuid4()), "rules": rules}
            if params.get("description"):
                policy["description"] = str(params["description"])
            self.store.save_iam("policies", policy["id"], policy)
        return policy

    def update_policy(self, ident, params):
        with self.lock:
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
        with self.lock:
            policy = self.find_policy(ident)
            self.store.delete_iam("policies", policy["id"])
            for role in list(self.store.iam_docs("roles").values()):
                if policy["id"] in role["policies"]:
                    kept = [p for p in role["policies"] if p != policy["id"]]
                    self.store.save_iam("roles", role["id"], {**role, "policies": kept})

    # ---------------------------------------------------------- roles

    def role_to_api(self, role, object_form=True):
        users = {u.uuid: u for u in self.account.users.values()}
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
                return self.find_user(ref)
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
        with self.lock:
            if self._role_named(name):
                raise invalid_argument(f"role {name} already exists")
            role = {"id": str(uuid.uuid4()), "name": str(name),
                    "members": self._members(params, []),
                    "policies": self._policies(params, [])}
            self.store.save_iam("roles", role["id"], role)
        return role

    def update_role(self, ident, params):
        with self.lock:
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
        with self.lock:
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
        with self.lock:
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

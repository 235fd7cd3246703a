"""Sub-users, SSH keys, policies, roles and role tags, kept in the store.

The account and its users stay the accounts.Account / accounts.User objects that
authentication reads; this service changes them and writes every change through
to the store (table `iam`), so they survive a restart.  Passwords are kept only
as a salted scrypt hash and never leave this module.

Command-line keys and sub-users (--key, --user) are merged in at every start; a
key deleted through the API stays deleted.  Unless `admin_cli_users` is false,
command-line sub-users are default members of a seeded `administrator` role.
Roles and policies are rolestore.RoleStore's.
"""

import hashlib
import re
import secrets
import uuid

from .accounts import Key, User
from .clock import iso_now
from .errors import invalid_argument, missing_parameter, not_found
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


class Iam:
    def __init__(self, store, account, roles, admin_cli_users=True):
        self.store = store
        self.account = account
        self.roles = roles
        roles.bind_users(self)
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
            self.roles.seed_admin([self.account.users[login].uuid for login in cli_users])

    @staticmethod
    def _merged_keys(doc, cli_keys):
        keys = _keys_from_docs(doc.get("keys", []))
        removed = set(doc.get("removed_keys", []))
        have = {k.fingerprint for k in keys}
        for key in cli_keys:
            if key.fingerprint not in have and key.fingerprint not in removed:
                keys.append(key)
        return keys

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
            out["roles"], out["default_roles"] = self.roles.memberships(user.uuid)
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
            self.roles.drop_member(user.uuid)

    # ---------------------------------------------------------- keys

    @staticmethod
    def find_key(principal, ident):
        key = principal.find_key(ident)
        if key is None:
            raise not_found(f"{ident} does not exist")
        return key

    def create_key(self, principal, params):
        text = params.get("key")
        if not text:
            raise missing_parameter("key is a required argument")
        if not isinstance(text, str):
            raise invalid_argument("key must be a String")
        if len(text.split(" ")) < 2:
            raise invalid_argument("key is invalid")
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

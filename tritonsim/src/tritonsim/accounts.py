"""The account, its SSH keys and its sub-users, as given on the command line."""

import uuid
from dataclasses import dataclass, field
from pathlib import Path

from .sshkeys import PublicKey, load_public_key_file

# Namespace for deterministic ids derived from names (accounts, seeds...).
NAMESPACE = uuid.UUID("6f1e3c52-8d1b-4d55-9a57-3e0c2d7b9a10")
CREATED = "2024-01-01T00:00:00.000Z"


def stable_uuid(*parts):
    return str(uuid.uuid5(NAMESPACE, "/".join(parts)))


@dataclass
class Key:
    name: str
    public: PublicKey

    @property
    def fingerprint(self):
        return self.public.fingerprint

    def to_api(self):
        return {"name": self.name, "fingerprint": self.fingerprint, "key": self.public.line}


@dataclass
class User:
    login: str
    uuid: str
    keys: list = field(default_factory=list)
    profile: dict = field(default_factory=dict)     # email, firstName, ... (iam.py keeps it)

    def find_key(self, ident):
        """A key by name or MD5 fingerprint (CloudAPI's UFDS filter does both)."""
        for key in self.keys:
            if ident in (key.name, key.fingerprint):
                return key
        return None

    def add_key_file(self, path):
        public = load_public_key_file(path)
        name = Path(path).name.removesuffix(".pub")
        if any(k.name == name for k in self.keys):
            name = public.fingerprint
        if not any(k.fingerprint == public.fingerprint for k in self.keys):
            self.keys.append(Key(name, public))


@dataclass
class Account(User):
    users: dict = field(default_factory=dict)

    def to_api(self):
        out = {
            "id": self.uuid,
            "login": self.login,
            "email": f"{self.login}@tritonsim.invalid",
            "companyName": "tritonsim",
            "firstName": self.login,
            "lastName": "Sim",
            "triton_cns_enabled": False,
            "created": CREATED,
            "updated": CREATED,
        }
        out.update(self.profile)      # UpdateAccount's changes
        return out


def build_account(login, key_files, user_specs):
    """user_specs: [(sub-user login, public key file)], a login may repeat."""
    account = Account(login, stable_uuid("account", login))
    for path in key_files:
        account.add_key_file(path)
    for sub_login, path in user_specs:
        user = account.users.get(sub_login)
        if user is None:
            user = account.users[sub_login] = User(sub_login, stable_uuid("user", login, sub_login))
        user.add_key_file(path)
    return account

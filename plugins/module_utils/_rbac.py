# -*- coding: utf-8 -*-
# Copyright: locustfleet.triton contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# PRIVATE to the collection: may change without notice between releases.
"""RBAC: sub-users and their keys, policies, roles and role tags (CloudAPI's /:login/users,
/policies, /roles and the role-tag of a resource). Shared by joyent_user, joyent_policy, joyent_role
and joyent_machine's role_tags."""

from __future__ import annotations

import re
import secrets
import string

from ._keys import KeyProblem, blob_from_public_line, md5_fingerprint

# CloudAPI (UFDS) logins: a letter first, then letters, digits and . _ - (CloudAPI judges the length).
LOGIN_RE = re.compile(r"^[a-zA-Z][a-zA-Z0-9._-]*$")
# Role, policy and key names: what UFDS stores as a plain name.
NAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9._-]{0,63}$")
ROLE_TAG_HEADER = "Role-Tag"


def name_problem(option, value, pattern=NAME_RE, what="a name"):
    """One line when ``value`` is not acceptable for ``option`` (None when it is)."""
    if not isinstance(value, str) or not pattern.match(value):
        return ("%s '%s' is not %s CloudAPI accepts (letters, digits, '.', '_' and '-', starting with %s)"
                % (option, value, what, "a letter" if pattern is LOGIN_RE else "a letter or digit"))
    return None


def random_password(length=32):
    """A password nobody needs to know: letters and digits, at least one of each kind CloudAPI's
    password policy asks for. Never returned nor logged by a module."""
    alphabet = string.ascii_letters + string.digits
    while True:
        password = "".join(secrets.choice(alphabet) for dummy in range(length))
        if (any(c.islower() for c in password) and any(c.isupper() for c in password)
                and any(c.isdigit() for c in password)):
            return password


# -- keys -------------------------------------------------------------------------------------------------

class WantedKey:
    """One entry of joyent_user's ``keys``: its name, public key line, blob and MD5 fingerprint."""

    def __init__(self, name, key):
        self.name = name
        self.key = " ".join(key.split()[:2])  # type and base64: the comment is not part of the key
        self.fingerprint = md5_fingerprint(blob_from_public_line(key))


def wanted_keys(entries, option="keys"):
    """[WantedKey] from the option's list of {name, key}; raises KeyProblem (one line) on bad input."""
    keys, names, prints = [], set(), set()
    for index, entry in enumerate(entries or []):
        name, line = entry.get("name"), entry.get("key")
        where = "%s[%d]" % (option, index)
        if not line or not line.strip():
            raise KeyProblem("%s (name '%s') has no key: give the public key line ('<type> <base64> [comment]')"
                             % (where, name))
        problem = name_problem("%s.name" % where, name)
        if problem:
            raise KeyProblem(problem)
        try:
            key = WantedKey(name, line)
        except KeyProblem as exc:
            raise KeyProblem("%s (name '%s'): %s" % (where, name, exc))
        if name in names:
            raise KeyProblem("%s: the name '%s' is given twice" % (where, name))
        if key.fingerprint in prints:
            raise KeyProblem("%s (name '%s'): the same key (fingerprint %s) is given twice"
                             % (where, name, key.fingerprint))
        names.add(name)
        prints.add(key.fingerprint)
        keys.append(key)
    return keys


def plan_keys(current, wanted):
    """(keys to delete, WantedKeys to add) to make ``current`` (CloudAPI's [{name, fingerprint, key}])
    exactly ``wanted``. A key is kept when both its name and its fingerprint match: CloudAPI cannot
    rename a key, so a renamed key is deleted and added again."""
    wanted_pairs = {(k.name, k.fingerprint) for k in wanted}
    current_pairs = {(k.get("name"), k.get("fingerprint")) for k in current}
    delete = [k for k in current if (k.get("name"), k.get("fingerprint")) not in wanted_pairs]
    add = [k for k in wanted if (k.name, k.fingerprint) not in current_pairs]
    return delete, add


def key_summary(key):
    return {"name": key.get("name"), "fingerprint": key.get("fingerprint")}


# -- roles ------------------------------------------------------------------------------------------------

def _names(items, field="name"):
    """Names from CloudAPI's either form: ["a"] (before API 9) or [{"name": "a"}] (API 9)."""
    names = []
    for item in items or []:
        if isinstance(item, dict):
            item = item.get(field) or item.get("name") or item.get("login") or item.get("id")
        if item is not None:
            names.append(str(item))
    return names


def role_view(role):
    """A role as {name, policies, members, default_members}, sorted, from either API form."""
    members = role.get("members") or []
    if members and isinstance(members[0], dict):
        logins = _names(members, "login")
        defaults = [_names([m], "login")[0] for m in members if m.get("default")]
    else:
        logins = _names(members)
        defaults = _names(role.get("default_members"))
    return {"name": role.get("name"), "id": role.get("id"), "policies": sorted(_names(role.get("policies"))),
            "members": sorted(logins), "default_members": sorted(defaults)}


def role_body(name, policies, members):
    """CreateRole/UpdateRole body in the API 9 object form; every member is a default member."""
    body = {"name": name}
    if policies is not None:
        body["policies"] = [{"name": p} for p in policies]
    if members is not None:
        body["members"] = [{"type": "subuser", "login": m, "default": True} for m in members]
    return body


# -- role tags --------------------------------------------------------------------------------------------

def parse_role_tags(value):
    """The role names of a Role-Tag header ('a,b' or 'a, b'); [] when absent."""
    return sorted({part.strip() for part in (value or "").split(",") if part.strip()})


def role_tag_header(role_tags):
    return {ROLE_TAG_HEADER: ",".join(role_tags)}


def get_role_tags(client, path):
    """The role tags of the resource at ``path`` (GET, the Role-Tag response header)."""
    response = client.request("GET", path, expect=dict)
    return parse_role_tags(response.headers.get(ROLE_TAG_HEADER))


def set_role_tags(client, path, role_tags):
    """Replace the role tags of the resource at ``path`` (CloudAPI's SetRoleTags: PUT {"role-tag": [...]})."""
    client.put(path, {"role-tag": list(role_tags)})

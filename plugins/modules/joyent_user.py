#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: locustfleet.triton contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: joyent_user
short_description: Create, update or delete a Triton sub-user and its SSH keys
version_added: 0.3.0
description:
  - Manages one sub-user (RBAC user) of the account, found by O(login), and the SSH public keys it signs
    CloudAPI requests with (C(/:account/users/:login) and C(/:account/users/:login/keys)).
  - Sub-users made by this module are meant to authenticate with keys. Their password is only set when
    the user is created and is never returned, logged or compared.
  - Running a task again changes nothing and makes no write call.
author:
  - locustfleet maintainers (@locustfleet)
options:
  login:
    description:
      - Login of the sub-user. A letter first, then letters, digits, C(.), C(_) or C(-).
    type: str
    required: true
  email:
    description:
      - Email address of the sub-user. Required to create the user.
      - For an existing user it is changed when it differs; when omitted, it is left as it is.
    type: str
  password:
    description:
      - Password for a new sub-user. Only used when the user is created; an existing user's password is never
        changed nor compared.
      - When omitted, a random password is generated, used for the creation and then forgotten, since the user
        signs its requests with its O(keys).
      - Never shown in the task's result or logs (C(no_log)).
    type: str
  keys:
    description:
      - The sub-user's SSH public keys, as the complete set - keys of the user not listed here are deleted,
        listed keys it lacks are added. An empty list removes every key.
      - When omitted, the user's keys are left as they are.
      - A key is the same when its name and its fingerprint (MD5 of the key, the comment ignored) are the same.
        CloudAPI cannot rename a key, so a key listed under another name is deleted and added again.
    type: list
    elements: dict
    suboptions:
      name:
        description:
          - Name of the key (letters, digits, C(.), C(_) or C(-)); unique among this user's keys.
        type: str
        required: true
      key:
        description:
          - The public key line, as in an C(id_ed25519.pub) file (C(<type> <base64> [comment])).
        type: str
        required: true
  state:
    description:
      - V(present) makes sure the user exists (with O(email) and O(keys) when given); V(absent) deletes it, with its
        keys.
    type: str
    choices: [present, absent]
    default: present
extends_documentation_fragment:
  - locustfleet.triton.cloudapi
attributes:
  check_mode:
    support: full
    description: Reports what would change and writes nothing.
  diff_mode:
    support: full
    description: The login, email and keys (name to fingerprint) before and after; never the password.
seealso:
  - module: locustfleet.triton.joyent_policy
  - module: locustfleet.triton.joyent_role
"""

EXAMPLES = r"""
- name: A sub-user that signs with one key (its password is random and forgotten)
  locustfleet.triton.joyent_user:
    login: demo-watcher
    email: demo-watcher@example.com
    keys:
      - name: watcher
        key: "{{ lookup('ansible.builtin.file', '~/.locustfleet/keys/demo-watcher.pub') }}"

- name: Remove every key of the user, keep the user
  locustfleet.triton.joyent_user:
    login: demo-watcher
    keys: []

- name: Delete the user
  locustfleet.triton.joyent_user:
    login: demo-watcher
    state: absent
"""

RETURN = r"""
user:
  description:
    - The sub-user after the task (as planned in check mode). Never contains the password.
  returned: when O(state=present)
  type: dict
  contains:
    id:
      description: UUID of the user (null in check mode for a user that does not exist yet).
      type: str
      sample: 5b1b5c7e-9a43-4c64-a3e3-2c4f0c6a5f2d
    login:
      description: Login.
      type: str
      sample: demo-watcher
    email:
      description: Email address.
      type: str
      sample: demo-watcher@example.com
    keys:
      description: The user's SSH keys, sorted by name.
      type: list
      elements: dict
      contains:
        name:
          description: Key name.
          type: str
          sample: watcher
        fingerprint:
          description: MD5 fingerprint, as in the key id C(/ACCOUNT/users/LOGIN/keys/FINGERPRINT).
          type: str
          sample: "a3:4f:1c:9b:0e:22:7d:51:c6:08:ff:13:9a:2e:44:bd"
"""

from ansible_collections.locustfleet.triton.plugins.module_utils._base import (
    AnsibleModule, TritonModule, cloudapi_argument_spec)
from ansible_collections.locustfleet.triton.plugins.module_utils._client import delete_if_present, get_or_none
from ansible_collections.locustfleet.triton.plugins.module_utils._keys import KeyProblem
from ansible_collections.locustfleet.triton.plugins.module_utils._rbac import (
    LOGIN_RE, key_summary, name_problem, plan_keys, random_password, wanted_keys)


class JoyentUser(TritonModule):

    @classmethod
    def define_module(cls):
        argument_spec = cloudapi_argument_spec()
        argument_spec.update(
            login=dict(type="str", required=True),
            email=dict(type="str"),
            password=dict(type="str", no_log=True),
            keys=dict(type="list", elements="dict", no_log=False, options=dict(
                name=dict(type="str", required=True),
                key=dict(type="str", required=True, no_log=False),
            )),
            state=dict(type="str", choices=["present", "absent"], default="present"),
        )
        return AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)

    def run(self):
        params = self.module.params
        login = params["login"]
        problem = name_problem("login", login, LOGIN_RE, "a login")
        if problem:
            self.fail(problem)
        try:
            wanted = wanted_keys(params["keys"]) if params["keys"] is not None else None
        except KeyProblem as exc:
            self.fail(str(exc))
        if params["email"] is not None and "@" not in params["email"]:
            self.fail("email '%s' is not an email address" % params["email"])
        self.user_path = self.client.account_path("users", login)
        user = self.call("looking up login '%s'" % login, get_or_none, self.client, self.user_path)
        keys = self.call("listing the keys of login '%s'" % login, self.client.get, self.user_path + "/keys",
                         expect=list) if user else []
        before = self.view(user, keys)
        if params["state"] == "absent":
            self.absent(user, before)
        else:
            self.present(user, keys, wanted, before)

    @staticmethod
    def view(user, keys):
        if not user:
            return {}
        return {"login": user.get("login"), "email": user.get("email"),
                "keys": {k.get("name"): k.get("fingerprint") for k in keys}}

    def absent(self, user, before):
        self.report_diff(before, {})
        if not user:
            return
        self.mark_changed()
        if not self.module.check_mode:
            self.call("deleting login '%s'" % self.module.params["login"], delete_if_present, self.client,
                      self.user_path)

    def present(self, user, keys, wanted, before):
        params = self.module.params
        login = params["login"]
        check = self.module.check_mode
        if not user:
            if not params["email"]:
                self.fail("email is required to create the sub-user login '%s'" % login)
            self.mark_changed()
            user = {"id": None, "login": login, "email": params["email"]}
            if not check:
                body = {"login": login, "email": params["email"], "password": params["password"] or random_password()}
                user = self.call("creating login '%s' (email '%s')" % (login, params["email"]), self.client.post,
                                 self.client.account_path("users"), body, expect=dict)
        elif params["email"] is not None and user.get("email") != params["email"]:
            self.mark_changed()
            if not check:
                user = self.call("changing the email of login '%s' to '%s'" % (login, params["email"]),
                                 self.client.post, self.user_path, {"email": params["email"]}, idempotent=True,
                                 expect=dict)
            else:
                user = dict(user, email=params["email"])
        if wanted is not None:
            keys = self.converge_keys(keys, wanted)
        after = self.view(user, keys)
        self.report_diff(before, after)
        self.result["user"] = {"id": user.get("id"), "login": user.get("login"), "email": user.get("email"),
                               "keys": sorted((key_summary(k) for k in keys), key=lambda k: k["name"] or "")}

    def converge_keys(self, keys, wanted):
        """Make the user's keys exactly ``wanted``; returns them as they are after that."""
        login = self.module.params["login"]
        delete, add = plan_keys(keys, wanted)
        if not delete and not add:
            return keys
        self.mark_changed()
        gone = {id(k) for k in delete}
        after = [k for k in keys if id(k) not in gone]
        for key in delete:
            if not self.module.check_mode:
                self.call("deleting key '%s' (%s) of login '%s'" % (key.get("name"), key.get("fingerprint"), login),
                          delete_if_present, self.client,
                          self.client.account_path("users", login, "keys", key.get("name") or key.get("fingerprint")))
        for key in add:
            made = {"name": key.name, "fingerprint": key.fingerprint}
            if not self.module.check_mode:
                index = next(i for i, k in enumerate(wanted) if k is key)
                made = self.call("keys[%d] (name '%s', fingerprint %s) of login '%s'" % (
                    index, key.name, key.fingerprint, login), self.client.post, self.user_path + "/keys",
                    {"name": key.name, "key": key.key}, expect=dict)
            after.append(made)
        return after


def main():
    JoyentUser.main()


if __name__ == "__main__":
    main()

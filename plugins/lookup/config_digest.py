# -*- coding: utf-8 -*-
# Copyright: locustfleet.triton contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: config_digest
short_description: A digest of everything that configures a fleet machine
version_added: 0.3.0
description:
  - The sha256 (hex) of what the collection's roles deploy (every file under C(roles/) and
    C(plugins/module_utils/), names and contents), the files
    given as terms (contents; a directory's files recursively, names and contents) and the O(settings).
  - C(spawn_slaves.yml) keeps it on each machine it configured and skips the roles on a machine that holds the
    same digest, so a re-run that changes nothing costs one short command per machine.
  - A term that does not exist fails the lookup, naming it.
author:
  - locustfleet maintainers (@locustfleet)
options:
  _terms:
    description: Paths on the control node of files or directories the machines get (locustfiles, extra files).
    type: list
    elements: path
    required: false
  settings:
    description:
      - Settings of the machine (variables, its role, its master's address), compared as canonical JSON; values
        JSON cannot hold are compared as their text.
    type: raw
    default: {}
"""

EXAMPLES = r"""
- name: What configures this worker
  ansible.builtin.set_fact:
    worker_digest: >-
      {{ lookup('locustfleet.triton.config_digest', *locust_files,
                settings={'role': 'worker', 'master': master_ip, 'locust_version': locust_version}) }}
"""

RETURN = r"""
_raw:
  description: One sha256 digest (hex, 64 characters).
  type: list
  elements: str
"""

import hashlib
import json
import os

from ansible.errors import AnsibleLookupError
from ansible.plugins.lookup import LookupBase

COLLECTION = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# What the roles deploy from the collection: themselves, and the CloudAPI client the idle watcher gets.
DEPLOYED = (os.path.join(COLLECTION, "roles"), os.path.join(COLLECTION, "plugins", "module_utils"))
SKIPPED = ("__pycache__",)


def tree_files(path):
    """``path`` if it is a file, else every file below it, sorted; caches left out."""
    if not os.path.isdir(path):
        return [path]
    found = []
    for top, dirs, files in os.walk(path):
        dirs[:] = sorted(d for d in dirs if d not in SKIPPED)
        found += [os.path.join(top, name) for name in sorted(files) if not name.endswith(".pyc")]
    return found


def digest(paths, settings):
    """sha256 over each path's files (relative name and content) and the settings' canonical JSON."""
    sha = hashlib.sha256()
    for path in paths:
        if not os.path.exists(path):
            raise AnsibleLookupError("config_digest: %s does not exist" % path)
        path = os.path.normpath(path)
        for name in tree_files(path):
            # the name as the roles deploy it: a file by its base name, a directory with its own name
            sha.update(b"\0file\0" + os.path.relpath(name, os.path.dirname(path)).encode() + b"\0")
            try:
                with open(name, "rb") as handle:
                    sha.update(hashlib.sha256(handle.read()).digest())
            except OSError as exc:
                raise AnsibleLookupError("config_digest: cannot read %s: %s" % (name, exc.strerror)) from None
    sha.update(b"\0settings\0" + json.dumps(settings, sort_keys=True, default=str).encode())
    return sha.hexdigest()


class LookupModule(LookupBase):
    def run(self, terms, variables=None, **kwargs):
        self.set_options(var_options=variables, direct=kwargs)
        return [digest([*DEPLOYED, *(str(term) for term in terms or [])], self.get_option("settings"))]

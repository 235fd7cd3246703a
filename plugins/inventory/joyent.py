# -*- coding: utf-8 -*-
# Copyright: locustfleet.triton contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: joyent
short_description: Triton (Joyent CloudAPI) machines as inventory, found by tag
version_added: 0.1.0
description:
  - Reads machines from Triton CloudAPI with one paged ListMachines call per 1000 machines (tag filters
    are applied by CloudAPI), one ListImages and one ListNetworks call, and no per-machine calls.
  - Every host gets C(joyent_*) variables (see O(hostvars_prefix)), and is put into the groups
    C(joyent), C(state_<state>) and C(tag_<name>_<value>) for each of its tags, plus whatever
    O(groups) and O(keyed_groups) add.
  - The configuration file must end in C(joyent.yml) or C(joyent.yaml).
  - Connection settings follow the same order as the modules - the option, then C(TRITON_*), then
    C(SDC_*) environment variables, then the node-triton profile. Options can be templates, so
    vaulted values and lookups work.
author:
  - locustfleet maintainers (@locustfleet)
extends_documentation_fragment:
  - locustfleet.triton.cloudapi
  - constructed
  - inventory_cache
options:
  plugin:
    description: Marks the file as a configuration of this plugin.
    type: str
    required: true
    choices: [locustfleet.triton.joyent]
  tags:
    description:
      - Only machines with all of these tags and values (sent to CloudAPI as C(tag.NAME=VALUE)).
    type: dict
    default: {}
  states:
    description:
      - Only machines in one of these states. An empty list means every live state.
    type: list
    elements: str
    default: [running]
  name_pattern:
    description:
      - Only machines whose name matches this regular expression (searched, not anchored).
    type: str
  hostnames:
    description:
      - How hosts are named, in order of preference; the first that gives a value wins.
      - V(name), V(id), V(primaryIp), V(public_ip), V(private_ip), or V(tag:NAME) for the value of tag NAME.
      - A name that is already taken is not merged with the other host; a warning is shown and the next
        preference is used.
    type: list
    elements: str
    default: [name, id]
  connect_with:
    description:
      - Which address becomes C(ansible_host).
    type: str
    default: primaryIp
    choices: [primaryIp, public_ip, private_ip, name, none]
  hostvars_prefix:
    description: Prefix of the variables this plugin sets on every host.
    type: str
    default: joyent_
  group_by_tags:
    description: Add the C(tag_<name>_<value>) and C(state_<state>) groups.
    type: bool
    default: true
  fail_on_errors:
    description:
      - When CloudAPI cannot be reached or refuses the credentials, fail the inventory source.
      - When false, show a warning and contribute no hosts, so other inventory sources still load.
    type: bool
    default: true
"""

EXAMPLES = r"""
# workers.joyent.yml: the Locust fleet of one cluster, credentials from TRITON_* or the triton profile
plugin: locustfleet.triton.joyent
tags:
  locustfleet.cluster: demo
groups:
  locust_master: joyent_tags['locustfleet.role'] == 'master'
  locust_workers: joyent_tags['locustfleet.role'] == 'worker'
keyed_groups:
  - key: joyent_tags['locustfleet.role']
    prefix: role
compose:
  ansible_user: "'root'"

# everything.joyent.yml: every live machine, named by tag "Name" when set, cached for an hour
plugin: locustfleet.triton.joyent
states: []
hostnames: ["tag:Name", name, id]
url: "{{ lookup('ansible.builtin.env', 'MY_CLOUDAPI_URL') }}"
cache: true
cache_plugin: ansible.builtin.jsonfile
cache_connection: ~/.cache/locustfleet-inventory
cache_timeout: 3600
"""

import re

import ansible.template
from ansible.errors import AnsibleError, AnsibleParserError
from ansible.plugins.inventory import BaseInventoryPlugin, Cacheable, Constructable

from ansible_collections.locustfleet.triton.plugins.module_utils import _client as client_lib
from ansible_collections.locustfleet.triton.plugins.module_utils import _keys as keys_lib
from ansible_collections.locustfleet.triton.plugins.module_utils._client import CloudAPIClient, CloudAPIError
from ansible_collections.locustfleet.triton.plugins.module_utils._config import ConfigProblem, resolve
from ansible_collections.locustfleet.triton.plugins.module_utils._keys import KeyProblem
from ansible_collections.locustfleet.triton.plugins.module_utils._machines import list_filters, tag_query_value

if hasattr(ansible.template, "trust_as_template"):
    def as_data(variables):
        """Host variables as data, never templates: ansible-core 2.19+ templates a string only when it
        is tagged as trusted (ansible.template.trust_as_template), so CloudAPI's values are data as
        they are."""
        return variables
else:
    from ansible.utils.unsafe_proxy import wrap_var

    def as_data(variables):
        """Host variables as data, never templates: ansible-core 2.17 and 2.18 template every plain
        string, so each value is wrapped as unsafe."""
        return {key: wrap_var(value) for key, value in variables.items()}

CACHE_FORMAT = 1
AUTH_OPTIONS = ("url", "account", "user", "key_id", "private_key_path", "private_key_passphrase", "validate_certs",
                "timeout", "retries", "rate_limit")
HOSTVARS = ("id", "name", "state", "brand", "image", "package", "memory", "ips", "primaryIp", "networks", "tags",
            "created")
UNSAFE_GROUP_CHARS = re.compile(r"[^A-Za-z0-9_]")


def safe_metadata(metadata):
    """Customer metadata without credentials: no keys, passwords, credentials or scripts."""
    hidden = ("root_authorized_keys", "credentials", "user-script", "user-data", "cloud-init:user-data")
    return {key: value for key, value in (metadata or {}).items()
            if key not in hidden and not key.endswith("_pw")}


def group_name(*parts):
    return UNSAFE_GROUP_CHARS.sub("_", "_".join(str(p) for p in parts))


class InventoryModule(BaseInventoryPlugin, Constructable, Cacheable):

    NAME = "locustfleet.triton.joyent"

    def verify_file(self, path):
        if not super(InventoryModule, self).verify_file(path):
            return False
        if path.endswith(("joyent.yml", "joyent.yaml")):
            return True
        self.display.vvv("Skipping %s: locustfleet.triton.joyent only reads files ending in joyent.yml or "
                         "joyent.yaml" % path)
        return False

    def parse(self, inventory, loader, path, cache=True):
        super(InventoryModule, self).parse(inventory, loader, path, cache)
        self._read_config_data(path)
        self.source = path
        try:
            data = self._load(cache)
        except (CloudAPIError, ConfigProblem, KeyProblem) as exc:
            message = "locustfleet.triton.joyent inventory %s: %s" % (path, exc)
            if self.get_option("fail_on_errors"):
                raise AnsibleParserError(message)
            self.display.warning(message + " (fail_on_errors is false: this source adds no hosts)")
            return
        self._populate(data)

    # -- fetching ---------------------------------------------------------------------------------------

    def _option(self, name):
        return self._template(self.get_option(name))

    def _template(self, value):
        if isinstance(value, dict):
            return {key: self._template(item) for key, item in value.items()}
        if isinstance(value, str) and self.templar.is_template(value):
            return self.templar.template(value)
        return value

    def _load(self, cache):
        cache_key = self.get_cache_key(self.source)
        use_cache = self.get_option("cache") and cache
        if use_cache:
            try:
                cached = self._cache[cache_key]
            except KeyError:
                cached = None
            if isinstance(cached, dict) and cached.get("format") == CACHE_FORMAT \
                    and isinstance(cached.get("machines"), list):
                return cached
            if cached is not None:
                self.display.vvv("%s: ignoring a cache entry in an unknown format" % self.source)
        data = self._fetch()
        if self.get_option("cache"):
            self._cache[cache_key] = data
        return data

    def _fetch(self):
        for library, error in (("requests", client_lib.REQUESTS_IMPORT_ERROR),
                               ("cryptography", keys_lib.CRYPTOGRAPHY_IMPORT_ERROR)):
            if error:
                raise AnsibleError("locustfleet.triton.joyent needs the Python library '%s'" % library)
        self.templar.available_variables = self._vars
        config = resolve({name: self._option(name) for name in AUTH_OPTIONS})
        client = CloudAPIClient(config)
        states = self.get_option("states") or []
        query = list_filters(self._option("tags"), None, states[0] if len(states) == 1 else None)
        machines = client.list_all(client.account_path("machines"), query)
        images = client.get(client.account_path("images"), {"state": "all"}) or []
        networks = client.get(client.account_path("networks")) or []
        return {
            "format": CACHE_FORMAT,
            "machines": machines,
            "images": {image["id"]: "%s@%s" % (image.get("name"), image.get("version")) for image in images},
            "public_networks": [network["id"] for network in networks if network.get("public")],
        }

    # -- building the inventory -------------------------------------------------------------------------

    def _wanted(self, machine, states, pattern):
        if states and machine.get("state") not in states:
            return False
        return not pattern or bool(pattern.search(machine.get("name") or ""))

    def _populate(self, data):
        for preference in self.get_option("hostnames"):
            if preference not in ("name", "id", "primaryIp", "public_ip", "private_ip") \
                    and not preference.startswith("tag:"):
                raise AnsibleParserError("locustfleet.triton.joyent inventory %s: hostnames entry %r is not one of "
                                         "name, id, primaryIp, public_ip, private_ip or tag:NAME"
                                         % (self.source, preference))
        states = self.get_option("states") or []
        pattern = re.compile(self.get_option("name_pattern")) if self.get_option("name_pattern") else None
        public = set(data.get("public_networks") or [])
        prefix = self.get_option("hostvars_prefix")
        if not (prefix + "id").isidentifier():
            raise AnsibleParserError("locustfleet.triton.joyent inventory %s: hostvars_prefix %r does not make valid "
                                     "variable names" % (self.source, prefix))
        strict = self.get_option("strict")
        by_tags = self.get_option("group_by_tags")
        self.inventory.add_group("joyent")
        for machine in sorted(data["machines"], key=lambda m: (m.get("created") or "", m.get("id"))):
            if not self._wanted(machine, states, pattern):
                continue
            addresses = self._addresses(machine, public)
            host = self._hostname(machine, addresses)
            if host is None:
                continue
            self.inventory.add_host(host, group="joyent")
            variables = {prefix + key: machine.get(key) for key in HOSTVARS}
            variables[prefix + "image_name"] = data["images"].get(machine.get("image"))
            variables[prefix + "metadata"] = safe_metadata(machine.get("metadata"))
            variables[prefix + "public_ip"] = addresses["public_ip"]
            variables[prefix + "private_ip"] = addresses["private_ip"]
            connect = self.get_option("connect_with")
            if connect != "none" and addresses.get(connect):
                variables["ansible_host"] = addresses[connect]
            variables = as_data(variables)  # compose, groups and keyed_groups below template with them too
            self._set_variables(host, variables)
            if by_tags:
                self.inventory.add_child(self.inventory.add_group(group_name("state", machine.get("state"))), host)
                for key, value in (machine.get("tags") or {}).items():
                    self.inventory.add_child(self.inventory.add_group(group_name("tag", key, tag_query_value(value))), host)
            self._set_composite_vars(self.get_option("compose"), variables, host, strict=strict)
            self._add_host_to_composed_groups(self.get_option("groups"), variables, host, strict=strict)
            self._add_host_to_keyed_groups(self.get_option("keyed_groups"), variables, host, strict=strict)

    def _set_variables(self, host, variables):
        """Set the variables of a host this plugin just added; they hold no template trust.

        On ansible-core 2.19+ the inventory a plugin is handed wraps set_variable so that it copies
        every value and tags each string with its origin: at 10,000 hosts that alone took more than
        twice as long as everything else the plugin does (bench/README.md). These values are fresh
        from CloudAPI's JSON and hold no trust (as_data), which is all the wrapper would leave them
        with, so on every core they go straight into the new Host's vars through public names
        (InventoryData.get_host, Host.vars); their names were checked once in _populate.
        """
        self.inventory.get_host(host).vars.update(variables)

    @staticmethod
    def _addresses(machine, public_networks):
        public_ip = private_ip = None
        for nic in machine.get("nics") or []:
            if nic.get("network") in public_networks:
                public_ip = public_ip or nic.get("ip")
            else:
                private_ip = private_ip or nic.get("ip")
        return {"primaryIp": machine.get("primaryIp"), "public_ip": public_ip, "private_ip": private_ip,
                "name": machine.get("name"), "id": machine.get("id")}

    def _hostname(self, machine, addresses):
        for preference in self.get_option("hostnames"):
            if preference.startswith("tag:"):
                value = (machine.get("tags") or {}).get(preference[4:])
                value = None if value is None else tag_query_value(value)
            else:
                value = addresses.get(preference)
            if not value:
                continue
            if value in self.inventory.hosts:
                self.display.warning("locustfleet.triton.joyent: machine %s would be named %s, which machine %s "
                                     "already is; trying the next hostnames preference"
                                     % (machine.get("id"), value,
                                        self.inventory.get_host(value).vars.get(self.get_option("hostvars_prefix")
                                                                                + "id")))
                continue
            return value
        self.display.warning("locustfleet.triton.joyent: machine %s (%s) has no usable name under hostnames %s; "
                             "it is left out" % (machine.get("id"), machine.get("name"), self.get_option("hostnames")))
        return None

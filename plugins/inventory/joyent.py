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
  - Only machines that carry every tag of O(tags) with the same value and JSON type are kept. CloudAPI's
    own C(tag.NAME=VALUE) filter is looser (it lists a machine tagged with the boolean V(true) for the
    string V("true")), so what it lists is checked again here.
  - Every host gets C(joyent_*) variables (see O(hostvars_prefix)) and the variables of O(host_vars), and
    is put into the groups C(joyent), C(state_<state>) and C(tag_<name>_<value>) for each of its tags, plus
    whatever O(tag_groups), O(groups) and O(keyed_groups) add.
  - O(tag_groups) and O(host_vars) do what the usual O(groups) and O(compose) entries of a fleet's inventory
    do without evaluating Jinja for every host; at thousands of machines, that per-host Jinja is most of
    the time such an inventory takes.
  - The configuration file must end in C(joyent.yml) or C(joyent.yaml).
  - Connection settings follow the same order as the modules - the option, then C(TRITON_*), then
    C(SDC_*) environment variables, then the node-triton profile. Options can be templates, so
    vaulted values and lookups work.
  - Customer metadata is shown only for the keys of O(metadata_keys) (an allow-list); C(user-script),
    C(root_authorized_keys) and every other key stay in CloudAPI - they are neither host variables nor cached.
  - With O(cache), the cache holds only the machines this source keeps (those with the O(tags) in one of the
    O(states)), and of each only what the inventory is built from - the values of the C(joyent_*) variables
    (id, name, state, brand, image and its name, package, memory, ips, primaryIp, public and private
    address, networks, tags, created) and of the O(metadata_keys) it has - plus the O(tags), O(states) and
    O(metadata_keys) it was read with; an entry read with other values of those is not used. Nothing else of
    CloudAPI's answer is stored - no user-script, root_authorized_keys or other metadata.
  - What the cache does hold is no secret only as long as tags and the O(metadata_keys) hold none - it is
    stored in plain text, and C(ansible.builtin.jsonfile) writes each file with mode 0644 (readable by every
    local user) whatever the umask, in a C(cache_connection) directory it creates with the usual mode. To keep
    even that to yourself, create the C(cache_connection) directory beforehand with mode 0700.
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
      - A value matches a tag of the same JSON type and value only - the string V("true") is not the boolean
        V(true) and V("8") is not the number V(8), while V(8) and V(8.0) are the same number. Quote a value in
        YAML to mean the string.
      - Values must be strings, numbers or booleans.
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
  tag_groups:
    description:
      - Groups made from tags, without Jinja. Each key is a group name, each value a dict of tag names and
        values; a host joins the group when it has every one of those tags with the same value and JSON type
        (the comparison O(tags) uses, so V("true") is not V(true)).
      - A group is created when its first host joins it, as with O(groups).
      - Group names must be letters, digits and underscores, not start with a digit, and not be V(all) or
        V(ungrouped). Each value must be a non-empty dict whose values are strings, numbers or booleans.
      - Names and values may be templates; they are templated once, when the file is read.
      - Costs no Jinja per host, unlike the same test written in O(groups); O(groups), O(keyed_groups) and
        O(compose) can be used alongside it.
    type: dict
    default: {}
    version_added: 0.2.0
  host_vars:
    description:
      - Variables set on every host, as they are. Each key is a variable name (a Python identifier),
        each value the variable's value.
      - Values may be templates; they are templated once, when the file is read, not per host. What that
        gives is the value, on every ansible-core version - it is not templated again where the variable
        is used, so it cannot refer to the host's own variables; use O(compose) for that.
      - They are set after the C(joyent_*) variables and C(ansible_host), so they replace those of the
        same name, and before O(compose), which can use them and replace them.
    type: dict
    default: {}
    version_added: 0.2.0
  metadata_keys:
    description:
      - The customer metadata keys whose values are shown, as the host variable C(joyent_metadata) (a dict of
        key and value; a key the machine does not have is left out). An allow-list - every other key is neither
        a host variable nor cached, so C(user-script), C(root_authorized_keys), C(user-data) and a password,
        token or private key that a machine's metadata carries stay in CloudAPI.
      - The default names the metadata keys this collection uses itself - C(locust_master_host), which
        C(spawn_slaves.yml) gives the workers, and C(locust_master_port); the locust_worker role reads both
        with C(mdata-get).
      - A listed key's value is shown by C(ansible-inventory), visible to every play and stored in the cache
        (see O(cache)) in plain text - list no key that holds a secret. An empty list shows no metadata.
      - Keys are matched exactly (case-sensitive).
    type: list
    elements: str
    default: [locust_master_host, locust_master_port]
    version_added: 0.2.0
  fail_on_errors:
    description:
      - When CloudAPI cannot be reached or refuses the credentials, fail the inventory source.
      - When false, show a warning and contribute no hosts, so other inventory sources still load.
    type: bool
    default: true
"""

EXAMPLES = r"""
# workers.joyent.yml: the Locust fleet of one cluster, credentials from TRITON_* or the triton profile.
# tag_groups and host_vars need no Jinja per host, so thousands of machines load quickly.
plugin: locustfleet.triton.joyent
tags:
  locustfleet.cluster: demo
tag_groups:
  locust_master:
    locustfleet.role: master
  locust_workers:
    locustfleet.role: worker
host_vars:
  ansible_user: root

# The same groups and variable with Jinja, evaluated for every host (several times slower at
# thousands of machines), plus a role_<value> group for each value of the tag
plugin: locustfleet.triton.joyent
tags:
  locustfleet.cluster: demo
groups:
  locust_master: joyent_tags['locustfleet.role'] | default('') == 'master'
  locust_workers: joyent_tags['locustfleet.role'] | default('') == 'worker'
keyed_groups:
  - key: joyent_tags['locustfleet.role']
    prefix: role
compose:
  ansible_user: "'root'"

# flags.joyent.yml: a tag written with the boolean true (not the string "true")
plugin: locustfleet.triton.joyent
tags:
  locustfleet.cluster: demo
tag_groups:
  canaries:
    canary: true

# everything.joyent.yml: every live machine, named by tag "Name" when set, cached for an hour;
# joyent_metadata shows the metadata keys "role" and "owner" only (the cache holds no other key).
# jsonfile writes files every local user can read: make the directory first (mkdir -m 700).
plugin: locustfleet.triton.joyent
states: []
hostnames: ["tag:Name", name, id]
metadata_keys: [role, owner]
url: "{{ lookup('ansible.builtin.env', 'MY_CLOUDAPI_URL') }}"
cache: true
cache_plugin: ansible.builtin.jsonfile
cache_connection: ~/.cache/locustfleet-inventory
cache_timeout: 3600
"""

import copy
import json
import keyword
import re
from types import SimpleNamespace

import ansible.template
from ansible.errors import AnsibleError, AnsibleParserError
from ansible.plugins.inventory import BaseInventoryPlugin, Cacheable, Constructable

from ansible_collections.locustfleet.triton.plugins.module_utils import _client as client_lib
from ansible_collections.locustfleet.triton.plugins.module_utils._client import CloudAPIClient, CloudAPIError
from ansible_collections.locustfleet.triton.plugins.module_utils._config import ConfigProblem, resolve
from ansible_collections.locustfleet.triton.plugins.module_utils._keys import KeyProblem
from ansible_collections.locustfleet.triton.plugins.module_utils._machines import list_filters, select_machines
from ansible_collections.locustfleet.triton.plugins.module_utils._tags import (
    tag_query_value, tag_value_problem, tags_match)

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

# 2: reduced machine records (machine_record) and the selection they were read with. Format 1 held
# CloudAPI's whole ListMachines answer, metadata included; such an entry is never used, and is replaced.
CACHE_FORMAT = 2
AUTH_OPTIONS = ("url", "account", "user", "key_id", "private_key_path", "private_key_passphrase", "validate_certs",
                "timeout", "retries", "rate_limit")
HOSTVARS = ("id", "name", "state", "brand", "image", "package", "memory", "ips", "primaryIp", "networks", "tags",
            "created")
# A machine record (machine_record), all the inventory is built from and all the cache holds of a machine:
# these joyent_* variables, and "metadata" (only the keys of metadata_keys).
RECORD_VARS = HOSTVARS + ("image_name", "public_ip", "private_ip")
HOSTNAME_PREFERENCES = ("name", "id", "primaryIp", "public_ip", "private_ip")
UNSAFE_GROUP_CHARS = re.compile(r"[^A-Za-z0-9_]")
GROUP_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
BUILTIN_GROUPS = ("all", "ungrouped")


def allowed_metadata(metadata, keys):
    """The customer metadata of ``keys`` (an allow-list) only; every other key is dropped, whatever its name."""
    metadata = metadata if isinstance(metadata, dict) else {}
    return {key: metadata[key] for key in keys if key in metadata}


def addresses(machine, public_networks):
    """The first public and the first private address of a machine's NICs."""
    public_ip = private_ip = None
    for nic in machine.get("nics") or []:
        if not isinstance(nic, dict):
            continue
        if nic.get("network") in public_networks:
            public_ip = public_ip or nic.get("ip")
        else:
            private_ip = private_ip or nic.get("ip")
    return public_ip, private_ip


def machine_record(machine, images, public_networks, metadata_keys):
    """What the inventory keeps of one ListMachines entry, and all the cache holds of it: the fields of
    RECORD_VARS and "metadata". No other field of CloudAPI's answer, and no metadata key outside
    ``metadata_keys``, is kept (user-script, root_authorized_keys, customer secrets)."""
    record = {key: machine.get(key) for key in HOSTVARS}  # then the rest of RECORD_VARS
    record["image_name"] = images.get(machine.get("image"))
    record["public_ip"], record["private_ip"] = addresses(machine, public_networks)
    record["metadata"] = allowed_metadata(machine.get("metadata"), metadata_keys)
    return record


def group_name(*parts):
    return UNSAFE_GROUP_CHARS.sub("_", "_".join(str(p) for p in parts))


def is_variable_name(name):
    return isinstance(name, str) and name.isascii() and name.isidentifier() and not keyword.iskeyword(name)


def shown(value):
    """A configuration value in a one-line error message."""
    return repr(value) if isinstance(value, str) else str(value).replace("\n", " ")


def tags_problem(tags):
    """What is wrong with a dict of tag names and wanted values (None when nothing is)."""
    for key, value in tags.items():
        if not isinstance(key, str) or not key:
            return "the tag name %s is not a non-empty string" % shown(key)
        if value is None:
            return "tag '%s' has no value (null); a tag value must be a string, number or boolean" % key
    return tag_value_problem(tags)


class InventoryModule(BaseInventoryPlugin, Constructable, Cacheable):

    NAME = "locustfleet.triton.joyent"

    def verify_file(self, path):
        if not super().verify_file(path):
            return False
        if path.endswith(("joyent.yml", "joyent.yaml")):
            return True
        self.display.vvv("Skipping %s: locustfleet.triton.joyent only reads files ending in joyent.yml or "
                         "joyent.yaml" % path)
        return False

    def parse(self, inventory, loader, path, cache=True):
        super().parse(inventory, loader, path, cache)
        self._read_config_data(path)
        self.source = path
        self.templar.available_variables = self._vars
        settings = self._settings()
        try:
            data = self._load(cache, settings)
        except (CloudAPIError, ConfigProblem, KeyProblem) as exc:
            message = "locustfleet.triton.joyent inventory %s: %s" % (path, exc)
            if self.get_option("fail_on_errors"):
                raise AnsibleParserError(message)
            self.display.warning(message + " (fail_on_errors is false: this source adds no hosts)")
            return
        self._populate(data, settings)

    # -- options ----------------------------------------------------------------------------------------

    def _option(self, name):
        return self._template(self.get_option(name))

    def _template(self, value):
        if isinstance(value, dict):
            return {self._template(key): self._template(item) for key, item in value.items()}
        if isinstance(value, list):
            return [self._template(item) for item in value]
        if isinstance(value, str) and self.templar.is_template(value):
            return self.templar.template(value)
        return value

    def _config_error(self, text):
        return AnsibleParserError("locustfleet.triton.joyent inventory %s: %s" % (self.source, text))

    def _settings(self):
        """Every option _populate uses, templated once and checked before CloudAPI is asked anything."""
        hostnames = self.get_option("hostnames")
        for preference in hostnames:
            if preference not in HOSTNAME_PREFERENCES and not preference.startswith("tag:"):
                raise self._config_error("hostnames entry %r is not one of name, id, primaryIp, public_ip, "
                                         "private_ip or tag:NAME" % preference)
        prefix = self.get_option("hostvars_prefix")
        if not (prefix + "id").isidentifier():
            raise self._config_error("hostvars_prefix %r does not make valid variable names" % prefix)
        tags = self._option("tags") or {}
        problem = tags_problem(tags)
        if problem:
            raise self._config_error("tags is %s: %s" % (shown(tags), problem))
        tag_groups = self._option("tag_groups") or {}
        for name, wanted in tag_groups.items():
            if not isinstance(name, str) or not GROUP_NAME.match(name) or name in BUILTIN_GROUPS:
                raise self._config_error("tag_groups has the group name %s; a group name is letters, digits and "
                                         "underscores, does not start with a digit and is not all or ungrouped"
                                         % shown(name))
            if not isinstance(wanted, dict) or not wanted:
                raise self._config_error("tag_groups entry %s is %s; it must be a non-empty dict of tag names and "
                                         "values" % (name, shown(wanted)))
            problem = tags_problem(wanted)
            if problem:
                raise self._config_error("tag_groups entry %s is %s: %s" % (name, shown(wanted), problem))
        host_vars = self._option("host_vars") or {}
        for name in host_vars:
            if not is_variable_name(name):
                raise self._config_error("host_vars has the variable name %s, which is not a valid variable name "
                                         "(letters, digits and underscores, not starting with a digit, not a "
                                         "Python keyword)" % shown(name))
        metadata_keys = self._option("metadata_keys") or []
        for key in metadata_keys:
            if not isinstance(key, str) or not key:
                raise self._config_error("metadata_keys has the entry %s; each entry must be a non-empty metadata "
                                         "key name" % shown(key))
        name_pattern = self.get_option("name_pattern")
        try:
            pattern = re.compile(name_pattern) if name_pattern else None
        except re.error as exc:
            raise self._config_error("name_pattern %r is not a regular expression: %s" % (name_pattern, exc))
        return SimpleNamespace(
            hostnames=hostnames, prefix=prefix, tags=tags, states=self.get_option("states") or [], pattern=pattern,
            connect_with=self.get_option("connect_with"), group_by_tags=self.get_option("group_by_tags"),
            tag_groups=tag_groups, host_vars=as_data(host_vars), metadata_keys=list(metadata_keys),
            strict=self.get_option("strict"),
            compose=self.get_option("compose"), groups=self.get_option("groups"),
            keyed_groups=self.get_option("keyed_groups"))

    # -- fetching ---------------------------------------------------------------------------------------

    @staticmethod
    def _selection(settings):
        """What a cache entry was read with (as plain JSON data); an entry read with anything else is not used."""
        return json.loads(json.dumps({"tags": settings.tags, "states": list(settings.states),
                                      "metadata_keys": settings.metadata_keys}))

    def _load(self, cache, settings):
        cache_key = self.get_cache_key(self.source)
        use_cache = self.get_option("cache") and cache
        if use_cache:
            try:
                cached = self._cache[cache_key]
            except KeyError:
                cached = None
            if isinstance(cached, dict) and cached.get("format") == CACHE_FORMAT \
                    and isinstance(cached.get("machines"), list):
                # Compared as JSON text: in Python, the tag value true equals 1.
                if json.dumps(cached.get("selection"), sort_keys=True) \
                        == json.dumps(self._selection(settings), sort_keys=True):
                    return cached
                self.display.vvv("%s: ignoring a cache entry read with other tags, states or metadata_keys"
                                 % self.source)
            elif cached is not None:
                # Also an entry of format 1, which held CloudAPI's whole answer: it is replaced below.
                self.display.vvv("%s: ignoring a cache entry in an unknown format" % self.source)
        data = self._fetch(settings)
        if self.get_option("cache"):
            self._cache[cache_key] = data
        return data

    def _fetch(self, settings):
        missing = client_lib.missing_library()
        if missing:
            raise AnsibleError("locustfleet.triton.joyent needs the Python library '%s' in the Python that runs "
                               "Ansible: %s" % (missing[0], missing[1].strip().splitlines()[-1]))
        config = resolve({name: self._option(name) for name in AUTH_OPTIONS})
        for warning in config.warnings():
            self.display.warning("locustfleet.triton.joyent inventory %s: %s" % (self.source, warning))
        client = CloudAPIClient(config)
        states = settings.states
        query = list_filters(settings.tags, None, states[0] if len(states) == 1 else None)
        machines = client.list_all(client.account_path("machines"), query)
        images = client.get(client.account_path("images"), {"state": "all"}, expect=list)
        networks = client.get(client.account_path("networks"), expect=list)
        images = {image.get("id"): "%s@%s" % (image.get("name"), image.get("version")) for image in images}
        public_networks = {network.get("id") for network in networks if network.get("public")}
        # Only the machines this source keeps, reduced to what the inventory is built from: this is what
        # the cache stores (never CloudAPI's whole answer, which carries metadata such as user-script).
        kept = select_machines(machines, settings.tags, None, settings.states)
        return {
            "format": CACHE_FORMAT,
            "selection": self._selection(settings),
            "machines": [machine_record(m, images, public_networks, settings.metadata_keys) for m in kept],
        }

    # -- building the inventory -------------------------------------------------------------------------

    def _populate(self, data, settings):
        # CloudAPI's tag filter is type-tolerant; keep only machines whose tags match by type and value,
        # in the wanted states (a cache entry is filtered the same way).
        machines = select_machines(data["machines"], settings.tags, None, settings.states)
        if settings.pattern:
            machines = [m for m in machines if settings.pattern.search(m.get("name") or "")]
        prefix = settings.prefix
        constructed = settings.compose or settings.groups or settings.keyed_groups
        self.inventory.add_group("joyent")
        for machine in sorted(machines, key=lambda m: (m.get("created") or "", m.get("id"))):
            names = {key: machine.get(key) for key in HOSTNAME_PREFERENCES}
            host = self._hostname(machine, names, settings)
            if host is None:
                continue
            self.inventory.add_host(host, group="joyent")
            variables = {prefix + key: machine.get(key) for key in RECORD_VARS}
            variables[prefix + "metadata"] = allowed_metadata(machine.get("metadata"), settings.metadata_keys)
            if settings.connect_with != "none" and names.get(settings.connect_with):
                variables["ansible_host"] = names[settings.connect_with]
            variables = as_data(variables)  # compose, groups and keyed_groups below template with them too
            for name, value in settings.host_vars.items():  # already data (as_data), templated once at load
                variables[name] = value if isinstance(value, (str, int, float, bool, type(None))) \
                    else copy.deepcopy(value)
            self._set_variables(host, variables)
            tags = machine.get("tags") or {}
            if settings.group_by_tags:
                self.inventory.add_child(self.inventory.add_group(group_name("state", machine.get("state"))), host)
                for key, value in tags.items():
                    self.inventory.add_child(self.inventory.add_group(group_name("tag", key, tag_query_value(value))),
                                             host)
            for group, wanted in settings.tag_groups.items():
                if tags_match(tags, wanted):
                    self.inventory.add_child(self.inventory.add_group(group), host)
            if constructed:
                self._set_composite_vars(settings.compose, variables, host, strict=settings.strict)
                self._add_host_to_composed_groups(settings.groups, variables, host, strict=settings.strict)
                self._add_host_to_keyed_groups(settings.keyed_groups, variables, host, strict=settings.strict)

    def _set_variables(self, host, variables):
        """Set the variables of a host this plugin just added; they hold no template trust.

        On ansible-core 2.19+ the inventory a plugin is handed wraps set_variable so that it copies
        every value and tags each string with its origin: at 10,000 hosts that alone took more than
        twice as long as everything else the plugin does (bench/README.md). These values are fresh
        from CloudAPI's JSON and hold no trust (as_data), or are host_vars values templated once at
        load, which is all the wrapper would leave them with, so on every core they go straight into
        the new Host's vars through public names (InventoryData.get_host, Host.vars); their names were
        checked once in _settings.
        """
        self.inventory.get_host(host).vars.update(variables)

    def _hostname(self, machine, names, settings):
        for preference in settings.hostnames:
            if preference.startswith("tag:"):
                value = (machine.get("tags") or {}).get(preference[4:])
                value = None if value is None else tag_query_value(value)
            else:
                value = names.get(preference)
            if not value:
                continue
            if value in self.inventory.hosts:
                self.display.warning("locustfleet.triton.joyent: machine %s would be named %s, which machine %s "
                                     "already is; trying the next hostnames preference"
                                     % (machine.get("id"), value,
                                        self.inventory.get_host(value).vars.get(settings.prefix + "id")))
                continue
            return value
        self.display.warning("locustfleet.triton.joyent: machine %s (%s) has no usable name under hostnames %s; "
                             "it is left out" % (machine.get("id"), machine.get("name"), settings.hostnames))
        return None

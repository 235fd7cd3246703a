"""The locustfleet.triton.joyent inventory plugin shows and caches no customer metadata it is not asked for.

Machines in tritonsim carry metadata a real fleet's machines carry: a user-script, root_authorized_keys
(tritonsim sets it from the account's keys), customer secrets (a database password, an API token, a
private key), a harmless key and the keys this collection itself sets (locust_master_host and
locust_master_port). Only the keys of the metadata_keys option may appear in what ansible-inventory
shows, and only they may be in the inventory cache, whose files ansible.builtin.jsonfile writes readable
by every local user.
"""

import json
import stat
import subprocess

import pytest

from support.control import REPO, control_env, live_machines, sim_client, unwrap_unsafe, venv_bin

# Each secret carries a marker found nowhere else, so its presence is a plain byte search.
SECRETS = {
    "user-script": "#!/bin/sh\necho user-script-secret-41f7 >/root/boot.log\n",
    "db_password": "db-password-secret-9c2e",
    "api_token": "api-token-secret-5d81",
    "private_key": "-----BEGIN OPENSSH PRIVATE KEY-----\nprivate-key-secret-b3a0\n-----END OPENSSH PRIVATE KEY-----\n",
}
MARKERS = ("user-script-secret-41f7", "db-password-secret-9c2e", "api-token-secret-5d81", "private-key-secret-b3a0")
HARMLESS = {"motd": "hello-harmless-77e1"}
COLLECTION_KEYS = {"locust_master_host": "10.9.8.7", "locust_master_port": "5558"}
METADATA = {**SECRETS, **HARMLESS, **COLLECTION_KEYS}
HIDDEN_KEYS = ("user-script", "db_password", "api_token", "private_key", "root_authorized_keys", "motd")

BASIC = """
plugin: locustfleet.triton.joyent
tags: {cluster: demo}
"""


@pytest.fixture
def inventory(tmp_path):
    """run(sim, config_text, *args) -> CompletedProcess of ansible-inventory -i CONFIG args."""

    def run(sim, config, *args, name="fleet.joyent.yml", expect_rc=0):
        path = tmp_path / name
        path.write_text(config)
        proc = subprocess.run([venv_bin("ansible-inventory"), "-i", str(path), *args], cwd=REPO,
                              env=control_env(sim, tmp_path / "home"), capture_output=True, text=True, timeout=300,
                              check=False)
        assert proc.returncode == expect_rc, proc.stdout + proc.stderr
        return proc
    return run


def seed_with_metadata(sim, count, name_prefix, metadata=None):
    """``count`` running machines tagged cluster=demo, each given ``metadata`` with AddMachineMetadata."""
    sim.seed_machines(count, tags={"cluster": "demo"}, name_prefix=name_prefix)
    client = sim_client(sim)
    machines = [m for m in live_machines(sim) if m["name"].startswith(name_prefix)]
    assert len(machines) == count
    for machine in machines:
        client.post(client.account_path("machines", machine["id"], "metadata"), metadata or METADATA, expect=dict)
    listed = live_machines(sim)
    # CloudAPI itself hands every one of these to whoever lists the machines: the plugin has them all.
    assert all(m["metadata"].get(key) == value for m in listed for key, value in (metadata or METADATA).items())
    assert all(m["metadata"].get("root_authorized_keys") for m in listed)
    return listed


def public_key_blob(sim):
    return sim.pub_path.read_text().split()[1]


def leaks(text, sim):
    """The secret values, and the names of the keys that must stay hidden, found in ``text``."""
    found = [marker for marker in MARKERS + (public_key_blob(sim), HARMLESS["motd"]) if marker in text]
    return found + [key for key in HIDDEN_KEYS if '"%s"' % key in text]


def cache_files(cache_dir):
    files = [path for path in sorted(cache_dir.rglob("*")) if path.is_file()]
    assert files, "the inventory wrote no cache file in %s" % cache_dir
    return files


def cache_bytes(cache_dir):
    return b"".join(path.read_bytes() for path in cache_files(cache_dir))


def cached_config(cache_dir, extra=""):
    return BASIC + extra + "cache: true\ncache_plugin: ansible.builtin.jsonfile\ncache_connection: %s\n" % cache_dir


def test_list_and_host_show_only_the_collections_metadata_keys_by_default(tritonsim, inventory):
    seed_with_metadata(tritonsim, 2, "w-")
    verbose = inventory(tritonsim, BASIC, "--list", "-vvv")
    assert leaks(verbose.stdout, tritonsim) == [] and leaks(verbose.stderr, tritonsim) == []
    proc = inventory(tritonsim, BASIC, "--list")
    assert leaks(proc.stdout, tritonsim) == []
    hostvars = unwrap_unsafe(json.loads(proc.stdout))["_meta"]["hostvars"]
    assert sorted(hostvars) == ["w-1", "w-2"]
    assert [v["joyent_metadata"] for v in hostvars.values()] == [COLLECTION_KEYS, COLLECTION_KEYS]
    host = inventory(tritonsim, BASIC, "--host", "w-1").stdout
    assert leaks(host, tritonsim) == []
    assert unwrap_unsafe(json.loads(host))["joyent_metadata"] == COLLECTION_KEYS


def test_metadata_keys_names_what_is_shown_and_nothing_else(tritonsim, inventory):
    seed_with_metadata(tritonsim, 1, "w-")
    config = BASIC + "metadata_keys: [motd, locust_master_port, not_set_on_the_machine]\n"
    proc = inventory(tritonsim, config, "--list")
    assert all(marker not in proc.stdout for marker in MARKERS + (public_key_blob(tritonsim), "10.9.8.7"))
    hostvars = unwrap_unsafe(json.loads(proc.stdout))["_meta"]["hostvars"]["w-1"]
    assert hostvars["joyent_metadata"] == {"motd": HARMLESS["motd"], "locust_master_port": "5558"}
    hostvars = unwrap_unsafe(json.loads(inventory(tritonsim, BASIC + "metadata_keys: []\n", "--list").stdout))
    assert hostvars["_meta"]["hostvars"]["w-1"]["joyent_metadata"] == {}
    # The groups and variables made from the rest of the machine are those of the default.
    default = unwrap_unsafe(json.loads(inventory(tritonsim, BASIC, "--list").stdout))
    for listing in (hostvars, default):
        for variables in listing["_meta"]["hostvars"].values():
            variables.pop("joyent_metadata")
    assert hostvars == default


@pytest.mark.parametrize("option, problem", [
    ('metadata_keys: [""]', "metadata_keys has the entry ''"),
    ("metadata_keys: [locust_master_host, null]", "metadata_keys has the entry None"),
])
def test_bad_metadata_keys_are_one_line_errors(tritonsim, inventory, option, problem):
    tritonsim.reset_stats()
    proc = inventory(tritonsim, BASIC + option + "\n", "--list", expect_rc=1)
    assert problem in " ".join(proc.stderr.split()) and "Traceback" not in proc.stderr
    assert tritonsim.stats()["by_route"] == {}  # refused before CloudAPI is asked anything


def test_the_cache_holds_no_metadata_secret_and_gives_the_same_inventory(tritonsim, inventory, tmp_path):
    machines = seed_with_metadata(tritonsim, 3, "w-")
    cache_dir = tmp_path / "cache"
    config = cached_config(cache_dir)
    fresh = unwrap_unsafe(json.loads(inventory(tritonsim, config, "--list").stdout))
    stored = cache_bytes(cache_dir).decode("utf-8")
    assert leaks(stored, tritonsim) == []
    # Why nothing secret may be there: jsonfile makes every file readable by all, whatever the umask
    # (the plugin's documentation says so).
    assert {stat.S_IMODE(path.stat().st_mode) for path in cache_files(cache_dir)} == {0o644}
    # nor the fields of ListMachines that no variable is made of
    assert all('"%s"' % field not in stored for field in ("nics", "compute_node", "deletion_protection", "updated"))
    assert all(m["id"] in stored for m in machines) and "10.9.8.7" in stored  # what the inventory needs is there
    tritonsim.reset_stats()
    cached = unwrap_unsafe(json.loads(inventory(tritonsim, config, "--list").stdout))
    assert tritonsim.stats()["by_route"] == {}  # read from the cache
    assert cached == fresh
    assert [v["joyent_metadata"] for v in cached["_meta"]["hostvars"].values()] == [COLLECTION_KEYS] * 3
    assert cache_bytes(cache_dir).decode("utf-8") == stored


def test_a_cache_entry_read_with_other_metadata_keys_is_not_used(tritonsim, inventory, tmp_path):
    seed_with_metadata(tritonsim, 1, "w-")
    cache_dir = tmp_path / "cache"
    inventory(tritonsim, cached_config(cache_dir), "--list")
    tritonsim.reset_stats()
    config = cached_config(cache_dir, "metadata_keys: [motd]\n")
    hostvars = unwrap_unsafe(json.loads(inventory(tritonsim, config, "--list").stdout))["_meta"]["hostvars"]
    assert hostvars["w-1"]["joyent_metadata"] == HARMLESS
    assert tritonsim.route_stats("ListMachines") == {"200": 1}  # read again, with the new keys
    stored = cache_bytes(cache_dir).decode("utf-8")
    assert HARMLESS["motd"] in stored and "10.9.8.7" not in stored
    assert all(marker not in stored for marker in MARKERS + (public_key_blob(tritonsim),))


def test_a_cache_entry_of_the_old_format_with_whole_machines_is_replaced(tritonsim, inventory, tmp_path):
    """Before this fix the cache held CloudAPI's whole ListMachines answer (format 1). Such an entry left
    by an older version is neither shown nor kept: the next run reads CloudAPI and overwrites it."""
    machines = seed_with_metadata(tritonsim, 1, "w-")
    cache_dir = tmp_path / "cache"
    config = cached_config(cache_dir)
    inventory(tritonsim, config, "--list")
    entries = cache_files(cache_dir)
    assert len(entries) == 1
    old = {"format": 1, "machines": machines, "images": {}, "public_networks": []}
    entries[0].write_text(json.dumps(old))
    assert "db-password-secret-9c2e" in cache_bytes(cache_dir).decode("utf-8")
    tritonsim.reset_stats()
    proc = inventory(tritonsim, config, "--list")
    assert leaks(proc.stdout, tritonsim) == []
    assert tritonsim.route_stats("ListMachines") == {"200": 1}
    assert leaks(cache_bytes(cache_dir).decode("utf-8"), tritonsim) == []

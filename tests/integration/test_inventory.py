"""The locustfleet.triton.joyent inventory plugin through real ansible-inventory against tritonsim."""

import json
import subprocess

import pytest

from support.control import REPO, control_env, unwrap_unsafe, venv_bin


@pytest.fixture
def inventory(tmp_path):
    """run(sim, config_text, *args) -> (returncode, stdout, stderr) of ansible-inventory -i CONFIG args."""

    def run(sim, config, *args, name="fleet.joyent.yml", expect_rc=0, env=None):
        path = tmp_path / name
        path.write_text(config)
        run_env = control_env(sim, tmp_path / "home")
        run_env.update(env or {})
        proc = subprocess.run([venv_bin("ansible-inventory"), "-i", str(path),
                               *args], cwd=REPO, env=run_env, capture_output=True, text=True, timeout=300,
                              check=False)
        assert proc.returncode == expect_rc, proc.stdout + proc.stderr
        return proc
    return run


def listed(proc):
    return unwrap_unsafe(json.loads(proc.stdout))


def one_line(text):
    """ansible-core 2.17 wraps warnings and errors at 80 columns; later cores do not."""
    return " ".join(text.split())


def ansible_inventory_flushes_cache():
    """ansible-inventory has --flush-cache from ansible-core 2.18 on; before, only ansible-playbook has it."""
    usage = subprocess.run([venv_bin("ansible-inventory"), "--help"], capture_output=True, text=True, check=True)
    return "--flush-cache" in usage.stdout


BASIC = """
plugin: locustfleet.triton.joyent
tags: {cluster: demo}
"""


def test_graph_groups_by_tag_and_state_with_server_side_filters(tritonsim, inventory):
    tritonsim.seed_machines(2, tags={"cluster": "demo", "role": "worker"}, name_prefix="w-")
    tritonsim.seed_machines(1, tags={"cluster": "demo", "role": "master"}, name_prefix="m-")
    tritonsim.seed_machines(3, tags={"cluster": "other", "role": "worker"}, name_prefix="o-")
    tritonsim.reset_stats()
    graph = inventory(tritonsim, BASIC, "--graph").stdout
    assert "@tag_role_worker:" in graph and "@tag_role_master:" in graph and "@state_running:" in graph
    assert "|--w-1" in graph and "|--m-" in graph and "|--o-" not in graph
    data = listed(inventory(tritonsim, BASIC, "--list"))
    assert sorted(data["tag_role_worker"]["hosts"]) == ["w-1", "w-2"]
    hostvars = data["_meta"]["hostvars"]["w-1"]
    assert hostvars["joyent_tags"] == {"cluster": "demo", "role": "worker"}
    assert hostvars["ansible_host"] == hostvars["joyent_primaryIp"]
    assert hostvars["joyent_image_name"].startswith("debian-12@")
    assert "root_authorized_keys" not in json.dumps(hostvars)
    stats = tritonsim.stats()["by_route"]
    assert stats["ListMachines"] == {"200": 2} and stats["ListImages"] == {"200": 2}
    assert not any(route.startswith("GetMachine") for route in stats)


def test_the_shipped_configs_group_master_and_workers(tritonsim, inventory):
    tritonsim.seed_machines(3, tags={"locustfleet.cluster": "locustfleet", "locustfleet.role": "worker"},
                            name_prefix="worker-")
    tritonsim.seed_machines(1, tags={"locustfleet.cluster": "locustfleet", "locustfleet.role": "master"},
                            name_prefix="master-")
    tritonsim.seed_machines(1, tags={"locustfleet.cluster": "locustfleet"}, name_prefix="norole-")
    tritonsim.seed_machines(1, tags={"locustfleet.cluster": "other", "locustfleet.role": "worker"},
                            name_prefix="other-")
    for name in ("tritonsim.joyent.yml", "triton.joyent.yml"):
        config = (REPO / "inventory" / name).read_text()
        data = listed(inventory(tritonsim, config, "--list", name=name))
        assert data["locust_master"]["hosts"] == ["master-4"]
        assert sorted(data["locust_workers"]["hosts"]) == ["worker-1", "worker-2", "worker-3"]
        hostvars = data["_meta"]["hostvars"]
        assert sorted(hostvars) == ["master-4", "norole-5", "worker-1", "worker-2", "worker-3"]
        assert {host: v["ansible_user"] for host, v in hostvars.items()} == dict.fromkeys(hostvars, "root")
        ssh_args = {v.get("ansible_ssh_common_args") for v in hostvars.values()}
        assert ssh_args == ({"-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null"}
                            if name == "tritonsim.joyent.yml" else {None})


JINJA_FLEET = BASIC + """
groups:
  locust_master: joyent_tags['role'] | default('') == 'master'
  locust_workers: joyent_tags['role'] | default('') == 'worker'
compose:
  ansible_user: "'root'"
  ansible_ssh_common_args: "'-o StrictHostKeyChecking=no'"
  ports: "[5557, 5558]"
"""

FAST_FLEET = BASIC + """
tag_groups:
  locust_master: {role: master}
  locust_workers: {role: worker}
host_vars:
  ansible_user: root
  ansible_ssh_common_args: -o StrictHostKeyChecking=no
  ports: [5557, 5558]
"""


def test_tag_groups_and_host_vars_give_what_their_jinja_equivalent_gives(tritonsim, inventory):
    tritonsim.seed_machines(1, tags={"cluster": "demo", "role": "master"}, name_prefix="m-")
    tritonsim.seed_machines(3, tags={"cluster": "demo", "role": "worker"}, name_prefix="w-")
    tritonsim.seed_machines(1, tags={"cluster": "demo", "role": "spare"}, name_prefix="s-")
    tritonsim.seed_machines(1, tags={"cluster": "demo"}, name_prefix="n-")
    jinja = listed(inventory(tritonsim, JINJA_FLEET, "--list"))
    fast = listed(inventory(tritonsim, FAST_FLEET, "--list"))
    assert fast == jinja
    assert fast["locust_master"]["hosts"] == ["m-1"]
    assert sorted(fast["locust_workers"]["hosts"]) == ["w-2", "w-3", "w-4"]
    assert all(v["ansible_user"] == "root" and v["ports"] == [5557, 5558] for v in fast["_meta"]["hostvars"].values())


def test_tag_groups_and_host_vars_work_alongside_groups_keyed_groups_and_compose(tritonsim, inventory):
    tritonsim.seed_machines(2, tags={"cluster": "demo", "role": "worker", "zone": "a"}, name_prefix="w-")
    tritonsim.seed_machines(1, tags={"cluster": "demo", "role": "master", "zone": "b"}, name_prefix="m-")
    config = BASIC + """
tag_groups:
  zone_a_workers: {role: worker, zone: a}
  masters: {role: master}
host_vars:
  site: "{{ 'lab' | upper }}"
  ansible_user: root
compose:
  label: site ~ '-' ~ joyent_name
  ansible_user: "'admin'"
groups:
  first: joyent_name == 'w-1'
keyed_groups:
  - key: joyent_tags.zone
    prefix: zone
"""
    data = listed(inventory(tritonsim, config, "--list"))
    hostvars = data["_meta"]["hostvars"]
    assert sorted(data["zone_a_workers"]["hosts"]) == ["w-1", "w-2"] and data["masters"]["hosts"] == ["m-3"]
    assert data["first"]["hosts"] == ["w-1"]
    assert sorted(data["zone_a"]["hosts"]) == ["w-1", "w-2"] and data["zone_b"]["hosts"] == ["m-3"]
    assert {v["site"] for v in hostvars.values()} == {"LAB"}  # templated once, when the file was read
    assert sorted(v["label"] for v in hostvars.values()) == ["LAB-m-3", "LAB-w-1", "LAB-w-2"]
    assert {v["ansible_user"] for v in hostvars.values()} == {"admin"}  # compose comes after host_vars


def test_host_vars_are_templated_once_when_read_never_per_host(tritonsim, inventory, tmp_path):
    """A host_vars template gives its value when the file is read, on every ansible-core; that value is
    never templated again, even when it looks like a template itself, and cannot see host variables."""
    tritonsim.seed_machines(1, tags={"cluster": "demo"}, name_prefix="w-")
    config = BASIC + """
host_vars:
  answer: "{{ 6 * 7 }}"
  looks_like_jinja: "{{ '{{' }} 6 * 7 }}"
  home: "{{ lookup('ansible.builtin.env', 'HOME') }}"
  literal: plain text
"""
    hostvars = listed(inventory(tritonsim, config, "--list"))["_meta"]["hostvars"]["w-1"]
    assert hostvars["looks_like_jinja"] == "{{ 6 * 7 }}" and hostvars["literal"] == "plain text"
    assert str(hostvars["answer"]) == "42" and hostvars["home"] == str(tmp_path / "home")
    play = tmp_path / "show.yml"
    play.write_text("- hosts: all\n  gather_facts: false\n  tasks:\n"
                    "    - ansible.builtin.debug:\n"
                    "        msg: \"JINJA={{ looks_like_jinja }} ANSWER={{ answer }}\"\n")
    proc = subprocess.run([venv_bin("ansible-playbook"), "-i", str(tmp_path / "fleet.joyent.yml"), str(play)],
                          cwd=REPO, env=control_env(tritonsim, tmp_path / "home"), check=False,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "JINJA={{ 6 * 7 }} ANSWER=42" in proc.stdout


def test_tags_filter_and_tag_groups_compare_json_type_not_just_text(tritonsim, inventory):
    """CloudAPI's tag.flag=true lists a machine whose tag is the boolean true and one whose tag is the
    string "true"; the inventory keeps only the one of the type the config asks for."""
    tritonsim.seed_machines(1, tags={"cluster": "demo", "flag": True, "size": 8}, name_prefix="bool-")
    tritonsim.seed_machines(1, tags={"cluster": "demo", "flag": "true", "size": "8"}, name_prefix="text-")
    tritonsim.reset_stats()
    strings = listed(inventory(tritonsim, BASIC.replace("{cluster: demo}", '{cluster: demo, flag: "true"}'),
                               "--list"))
    assert list(strings["_meta"]["hostvars"]) == ["text-2"]
    assert tritonsim.route_stats("ListMachines") == {"200": 1}  # the tag filter still goes to CloudAPI
    booleans = listed(inventory(tritonsim, BASIC.replace("{cluster: demo}", "{cluster: demo, flag: true}"),
                                "--list"))
    assert list(booleans["_meta"]["hostvars"]) == ["bool-1"]
    config = BASIC + """
tag_groups:
  text_true: {flag: "true"}
  bool_true: {flag: true}
  number_eight: {size: 8.0}
  text_eight: {size: "8"}
"""
    data = listed(inventory(tritonsim, config, "--list"))
    assert data["text_true"]["hosts"] == ["text-2"] and data["bool_true"]["hosts"] == ["bool-1"]
    assert data["number_eight"]["hosts"] == ["bool-1"] and data["text_eight"]["hosts"] == ["text-2"]


@pytest.mark.parametrize("option, problem", [
    ("tag_groups: {locust_workers: worker}", "tag_groups entry locust_workers is 'worker'"),
    ("tag_groups: {locust_workers: {}}", "tag_groups entry locust_workers is {}"),
    ("tag_groups: {locust_workers: {role: [worker]}}",
     "tag_groups entry locust_workers is {'role': ['worker']}: tag 'role' has a list value"),
    ("tags: {cluster: demo, role: }", "tags is {'cluster': 'demo', 'role': None}: tag 'role' has no value (null)"),
    ("tag_groups: {'locust-workers': {role: worker}}", "tag_groups has the group name 'locust-workers'"),
    ("tag_groups: {all: {role: worker}}", "tag_groups has the group name 'all'"),
    ("tag_groups: [locust_workers]", ("tag_groups", "['locust_workers']")),  # ansible-core's own type check
    ("host_vars: {'ansible-user': root}", "host_vars has the variable name 'ansible-user'"),
    ("host_vars: {'class': x}", "host_vars has the variable name 'class'"),
    ("host_vars: [ansible_user]", ("host_vars", "['ansible_user']")),
])
def test_bad_tag_groups_host_vars_and_tags_are_one_line_errors(tritonsim, inventory, option, problem):
    tritonsim.reset_stats()
    config = ("plugin: locustfleet.triton.joyent\n" if option.startswith("tags:") else BASIC) + option + "\n"
    proc = inventory(tritonsim, config, "--list", expect_rc=1)
    stderr = one_line(proc.stderr)
    assert all(text in stderr for text in ((problem,) if isinstance(problem, str) else problem)), stderr
    assert "Traceback" not in proc.stderr
    assert tritonsim.stats()["by_route"] == {}  # refused before CloudAPI is asked anything


def test_hostnames_preference_keyed_groups_compose_and_name_pattern(tritonsim, inventory):
    tritonsim.seed_machines(3, tags={"cluster": "demo", "role": "worker"}, name_prefix="w-")
    config = BASIC + """
hostnames: ["tag:missing", primaryIp]
name_pattern: "^w-[12]$"
keyed_groups:
  - key: joyent_tags.role
    prefix: role
compose:
  machine_label: joyent_name ~ '/' ~ joyent_state
groups:
  early: joyent_name == 'w-1'
"""
    data = listed(inventory(tritonsim, config, "--list"))
    hosts = data["_meta"]["hostvars"]
    assert len(hosts) == 2 and all(host == v["joyent_primaryIp"] for host, v in hosts.items())
    assert sorted(v["machine_label"] for v in hosts.values()) == ["w-1/running", "w-2/running"]
    assert sorted(data["role_worker"]["hosts"]) == sorted(hosts)
    assert [hosts[h]["joyent_name"] for h in data["early"]["hosts"]] == ["w-1"]


def test_duplicate_hostnames_are_warned_about_not_merged(tritonsim, inventory):
    tritonsim.seed_machines(2, tags={"cluster": "demo", "role": "twin"}, name_prefix="w-")
    proc = inventory(tritonsim, BASIC + 'hostnames: ["tag:role", id]\n', "--list")
    hosts = listed(proc)["_meta"]["hostvars"]
    assert len(hosts) == 2 and "twin" in hosts
    assert "would be named twin" in proc.stderr


def test_templated_options_and_bad_settings(tritonsim, inventory):
    config = BASIC + "url: \"{{ lookup('ansible.builtin.env', 'SIM_URL') }}\"\n"
    inventory(tritonsim, config, "--list", env={"SIM_URL": tritonsim.url, "TRITON_URL": "http://127.0.0.1:9"})
    proc = inventory(tritonsim, BASIC, "--list", env={"TRITON_URL": "http://127.0.0.1:9", "TRITON_RETRIES": "0"},
                     expect_rc=1)
    stderr = one_line(proc.stderr)
    assert "locustfleet.triton.joyent inventory " in stderr and "cannot reach CloudAPI" in stderr
    assert "fleet.joyent.yml" in stderr
    proc = inventory(tritonsim, BASIC + "fail_on_errors: false\nretries: 0\n", "--list",
                     env={"TRITON_URL": "http://127.0.0.1:9"})
    assert "this source adds no hosts" in one_line(proc.stderr)
    proc = inventory(tritonsim, BASIC + "hostvars_prefix: joyent-\n", "--list", expect_rc=1)
    assert "hostvars_prefix 'joyent-' does not make valid variable names" in one_line(proc.stderr)


def test_settings_that_tls_does_not_protect_are_warned_about(tritonsim, inventory):
    # 0.0.0.0 is no loopback address, though a connection to it stays on this machine (it reaches tritonsim).
    url = tritonsim.url.replace("127.0.0.1", "0.0.0.0")
    proc = inventory(tritonsim, BASIC + "url: %s\n" % url, "--list")
    assert "CloudAPI url %s (from option url) is plain http://" % url in one_line(proc.stderr)
    proc = inventory(tritonsim, BASIC, "--list")  # tritonsim's plain http:// on loopback is no one else's to see
    assert "plain http://" not in one_line(proc.stderr)


def test_other_file_names_are_rejected_with_a_reason(tritonsim, inventory):
    proc = inventory(tritonsim, BASIC, "--list", "-vvv", name="fleet.yml", expect_rc=1)
    assert "only reads files ending in joyent.yml" in proc.stdout + proc.stderr


def test_cache_hit_makes_no_calls_and_flush_cache_refreshes(tritonsim, inventory, tmp_path):
    config = BASIC + "cache: true\ncache_plugin: ansible.builtin.jsonfile\ncache_connection: %s\n" % (
        tmp_path / "cache")
    tritonsim.seed_machines(2, tags={"cluster": "demo"}, name_prefix="w-")
    assert len(listed(inventory(tritonsim, config, "--list"))["_meta"]["hostvars"]) == 2
    tritonsim.seed_machines(1, tags={"cluster": "demo"}, name_prefix="late-")  # only a fresh read sees it
    tritonsim.reset_stats()
    assert len(listed(inventory(tritonsim, config, "--list"))["_meta"]["hostvars"]) == 2
    assert tritonsim.stats()["by_route"] == {}
    if ansible_inventory_flushes_cache():
        assert len(listed(inventory(tritonsim, config, "--list", "--flush-cache"))["_meta"]["hostvars"]) == 3
    else:
        play = tmp_path / "count.yml"
        play.write_text("- hosts: localhost\n  gather_facts: false\n  tasks:\n"
                        "    - ansible.builtin.debug:\n        msg: \"HOSTS={{ groups.joyent | length }}\"\n")
        proc = subprocess.run([venv_bin("ansible-playbook"), "--flush-cache", "-i", str(tmp_path / "fleet.joyent.yml"),
                               str(play)], cwd=REPO, env=control_env(tritonsim, tmp_path / "home"), check=False,
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0 and "HOSTS=3" in proc.stdout, proc.stdout + proc.stderr
    assert tritonsim.route_stats("ListMachines") == {"200": 1}
    tritonsim.reset_stats()  # the fresh read went into the cache
    assert len(listed(inventory(tritonsim, config, "--list"))["_meta"]["hostvars"]) == 3
    assert tritonsim.stats()["by_route"] == {}


def test_unreadable_cache_entry_is_ignored(tritonsim, inventory, tmp_path):
    cache_dir = tmp_path / "cache"
    config = BASIC + "cache: true\ncache_plugin: ansible.builtin.jsonfile\ncache_connection: %s\n" % cache_dir
    tritonsim.seed_machines(1, tags={"cluster": "demo"}, name_prefix="w-")
    inventory(tritonsim, config, "--list")
    for entry in cache_dir.iterdir():
        entry.write_text(json.dumps({"format": 0, "servers": "old"}))
    tritonsim.reset_stats()
    assert list(listed(inventory(tritonsim, config, "--list"))["_meta"]["hostvars"]) == ["w-1"]
    assert tritonsim.route_stats("ListMachines") == {"200": 1}


def test_2500_machines_across_three_pages(tritonsim, inventory):
    tritonsim.seed_machines(2500, tags={"cluster": "demo"}, name_prefix="w-")
    tritonsim.reset_stats()
    hosts = listed(inventory(tritonsim, BASIC, "--list"))["_meta"]["hostvars"]
    assert len(hosts) == 2500 and len({v["joyent_id"] for v in hosts.values()}) == 2500
    assert tritonsim.route_stats("ListMachines") == {"200": 3}


def test_cloud_supplied_values_are_never_templated(tritonsim, inventory, tmp_path):
    """A tag value that looks like Jinja reaches plays as literal text (no template injection), whether
    read as a host variable or through compose, groups or keyed_groups, and ansible-inventory shows it
    as it is in CloudAPI."""
    note = "{{ lookup('ansible.builtin.env', 'HOME') }}"
    sum_ = "{{ 6 * 7 }}"
    tritonsim.seed_machines(1, tags={"cluster": "demo", "note": note, "sum": sum_}, name_prefix="w-")
    config_text = BASIC + """
compose:
  note_copy: joyent_tags.note
  sum_copy: joyent_tags.sum
groups:
  templated: joyent_tags.sum == '42'
  literal: joyent_tags.sum.startswith('{')
keyed_groups:
  - key: joyent_tags.sum
    prefix: sum
"""
    data = listed(inventory(tritonsim, config_text, "--list"))
    hostvars = data["_meta"]["hostvars"]["w-1"]
    assert hostvars["joyent_tags"] == {"cluster": "demo", "note": note, "sum": sum_}
    assert hostvars["note_copy"] == note and hostvars["sum_copy"] == sum_
    assert "templated" not in data and data["literal"]["hosts"] == ["w-1"]
    assert data["sum____6___7___"]["hosts"] == ["w-1"]
    config = tmp_path / "fleet.joyent.yml"
    play = tmp_path / "show.yml"
    play.write_text("- hosts: all\n  gather_facts: false\n  tasks:\n"
                    "    - ansible.builtin.debug:\n"
                    "        msg: \"NOTE={{ joyent_tags.note }} COPY={{ note_copy }} SUM={{ sum_copy }}\"\n")
    proc = subprocess.run([venv_bin("ansible-playbook"), "-i", str(config), str(play)], cwd=REPO, check=False,
                          env=control_env(tritonsim, tmp_path / "home"), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "NOTE=%s COPY=%s SUM=%s" % (note, note, sum_) in proc.stdout
    assert str(tmp_path / "home") not in proc.stdout and "SUM=42" not in proc.stdout

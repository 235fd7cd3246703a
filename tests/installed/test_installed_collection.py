"""The collection as its users get it: built into a tarball from this checkout, installed with
ansible-galaxy into a directory of the user's, and used by FQCN from there, without the
repository's ansible.cfg or collections/ link, against tritonsim.

The flows that need real hosts (spawn_slaves, run_test, build_template) run from an installed
copy in tests/e2e; these are the ones a plain CloudAPI answers: modules, the inventory plugin
with the user's own file, teardown, and the scheduled teardown job run exactly as cron runs it.
"""

import os
import shlex
import tarfile
from pathlib import Path

import pytest

from support.control import REPO, live_machines, stop_machines
from support.installed import (ansible, build_tarball, cron_available, cron_command, cron_line, install_tarball,
                               run_as_cron, user_env)

CLUSTER = "demo"


@pytest.fixture(scope="module")
def tarball(tmp_path_factory):
    return build_tarball(tmp_path_factory.mktemp("build"))


@pytest.fixture(scope="module")
def user_dir(tarball, tmp_path_factory):
    """A user's project directory: collections installed with -p, nothing else of the repository."""
    return install_tarball(tarball, tmp_path_factory.mktemp("user"))


def seed_cluster(sim):
    """demo: two running workers and one stopped by its watcher; other: one stopped machine."""
    sim.seed_machines(3, tags={"locustfleet.cluster": CLUSTER, "locustfleet.role": "worker",
                               "locustfleet.ttl_hours": 8}, name_prefix="demo-w-")
    sim.seed_machines(1, tags={"locustfleet.cluster": "other", "locustfleet.ttl_hours": 8}, name_prefix="other-")
    stop_machines(sim, ["demo-w-1", "other-4"])


def names(sim):
    return sorted(m["name"] for m in live_machines(sim))


def test_the_tarball_holds_no_repository_tooling(tarball):
    with tarfile.open(tarball) as tar:
        members = tar.getnames()
    assert "MANIFEST.json" in members and "plugins/modules/joyent_machine.py" in members
    assert not [m for m in members if m.split("/")[0] in ("tests", "tritonsim", "bench", "scripts", "collections")]
    assert "ansible.cfg" not in members and "requirements.txt" not in members


def test_installed_copy_is_the_one_in_use(tritonsim, user_dir):
    listed = ansible("ansible-galaxy", tritonsim, user_dir, "collection", "list", "locustfleet.triton")
    assert listed.returncode == 0, listed.stderr
    assert str(user_dir / "collections" / "ansible_collections") in listed.stdout
    assert str(REPO) not in listed.stdout
    doc = ansible("ansible-doc", tritonsim, user_dir, "locustfleet.triton.joyent_machine")
    assert doc.returncode == 0 and "count_tags" in doc.stdout, doc.stderr


def test_inventory_from_the_users_own_file(tritonsim, user_dir):
    seed_cluster(tritonsim)
    (user_dir / "fleet.joyent.yml").write_text(
        "plugin: locustfleet.triton.joyent\n"
        "tags:\n  locustfleet.cluster: demo\n"
        "states: [running, stopped]\n"
        "groups:\n  locust_workers: joyent_tags['locustfleet.role'] | default('') == 'worker'\n")
    graph = ansible("ansible-inventory", tritonsim, user_dir, "-i", "fleet.joyent.yml", "--graph")
    assert graph.returncode == 0, graph.stderr
    workers = graph.stdout.split("@locust_workers:")[1].split("@")[0]
    assert sorted(line.strip(" |-") for line in workers.splitlines() if line.strip(" |-")) == \
        ["demo-w-1", "demo-w-2", "demo-w-3"]
    assert "other-4" not in graph.stdout


def test_an_unreadable_inventory_source_is_an_error_when_the_user_asks(tritonsim, user_dir):
    (user_dir / "broken.joyent.yml").write_text("plugin: locustfleet.triton.joyent\n")
    bad = user_env(tritonsim, user_dir, TRITON_KEY_ID="00:11:22:33:44:55:66:77:88:99:aa:bb:cc:dd:ee:ff")
    # Ansible's default: warnings and an empty inventory, exit 0 (what the README warns about) ...
    lenient = ansible("ansible-inventory", tritonsim, user_dir, "-i", "broken.joyent.yml", "--graph", env=bad)
    assert lenient.returncode == 0 and "@all" in lenient.stdout and "demo-w" not in lenient.stdout
    # ... and the setting the README gives turns it into an error.
    strict = ansible("ansible-inventory", tritonsim, user_dir, "-i", "broken.joyent.yml", "--graph",
                     env=dict(bad, ANSIBLE_INVENTORY_ANY_UNPARSED_IS_FAILED="true"))
    assert strict.returncode != 0
    assert "broken.joyent.yml" in strict.stderr and "Traceback" not in strict.stderr


def test_teardown_by_fqcn_from_the_users_directory(tritonsim, user_dir):
    seed_cluster(tritonsim)
    run = ansible("ansible-playbook", tritonsim, user_dir, "locustfleet.triton.teardown", "-e", "cluster=" + CLUSTER)
    assert run.returncode == 0, run.stdout + run.stderr
    assert names(tritonsim) == ["demo-w-2", "demo-w-3", "other-4"]


@pytest.mark.skipif(not cron_available(),
                    reason="installs a root crontab (the cron branch, taken where systemd is not PID 1)")
def test_scheduled_teardown_from_the_installed_copy_runs_as_cron_does(tritonsim, user_dir, tmp_path):
    seed_cluster(tritonsim)
    key = tmp_path / "teardown-key"  # not in ~/.ssh and not in any agent: the job must be told
    key.write_bytes(Path(tritonsim.key_path).read_bytes())
    key.chmod(0o600)
    env = user_env(tritonsim, user_dir)
    for name in ("id_rsa", "id_rsa.pub"):
        (user_dir / "home" / ".ssh" / name).unlink(missing_ok=True)

    missing = ansible("ansible-playbook", tritonsim, user_dir, "locustfleet.triton.schedule_teardown",
                      "-e", "cluster=" + CLUSTER, env=env)
    assert missing.returncode != 0, missing.stdout
    assert "Check that the job can sign" in missing.stdout
    assert not os.path.exists("/etc/locustfleet/locustfleet-teardown-%s.env" % CLUSTER)

    name = "locustfleet-teardown-" + CLUSTER
    env_file = Path("/etc/locustfleet/%s.env" % name)
    installed = ansible("ansible-playbook", tritonsim, user_dir, "locustfleet.triton.schedule_teardown",
                        "-e", "cluster=" + CLUSTER, "-e", "teardown_private_key_path=" + str(key),
                        "-e", "teardown_every_minutes=5", env=env)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    try:
        assert oct(env_file.stat().st_mode & 0o777) == "0o600"
        settings = {k: shlex.split(v)[0] for k, v in (line.split("=", 1) for line in env_file.read_text().splitlines())}
        assert settings["ANSIBLE_COLLECTIONS_PATH"].split(":")[0] == str(user_dir / "collections")
        assert "ANSIBLE_CONFIG" not in settings  # the user had none; never the collection's own folder
        assert settings["TRITON_URL"] == tritonsim.url and "PRIVATE KEY" not in env_file.read_text()
        line = cron_line(name)
        assert line.startswith("*/5 * * * * ")
        done = run_as_cron(cron_command(line))
        assert done.returncode == 0, done.stdout + done.stderr
        assert names(tritonsim) == ["demo-w-2", "demo-w-3", "other-4"]
    finally:
        ansible("ansible-playbook", tritonsim, user_dir, "locustfleet.triton.schedule_teardown",
                "-e", "cluster=" + CLUSTER, "-e", "schedule_state=absent", env=env)
    assert not env_file.exists()

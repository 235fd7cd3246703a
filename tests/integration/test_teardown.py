"""playbooks/teardown.yml and schedule_teardown.yml against tritonsim."""

import fcntl
import os
import pwd
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from support.control import REPO, control_env, live_machines as machines, stop_machines
from support.installed import cron_command, cron_line

TEARDOWN = REPO / "playbooks" / "teardown.yml"
SCHEDULE = REPO / "playbooks" / "schedule_teardown.yml"


def fleet(sim):
    """demo: 3 running workers (8 h TTL), one stopped by its watcher, one expired; other: 1; untagged: 1."""
    sim.seed_machines(4, tags={"locustfleet.cluster": "demo", "locustfleet.role": "worker",
                               "locustfleet.ttl_hours": 8}, name_prefix="demo-w-")
    sim.seed_machines(1, tags={"locustfleet.cluster": "demo", "locustfleet.ttl_hours": 0}, name_prefix="demo-old-")
    sim.seed_machines(1, tags={"locustfleet.cluster": "other", "locustfleet.ttl_hours": 0}, name_prefix="other-")
    sim.seed_machines(1, tags={"owner": "someone"}, name_prefix="untagged-")
    stop_machines(sim, ["demo-w-1"])


def names(sim):
    return sorted(m["name"] for m in machines(sim))


def test_default_teardown_deletes_only_stopped_and_expired_machines_of_the_cluster(tritonsim, playbook):
    fleet(tritonsim)
    before = names(tritonsim)
    run = playbook(tritonsim, TEARDOWN, extra_vars={"cluster": "demo"})
    after = names(tritonsim)
    gone = sorted(set(before) - set(after))
    assert gone == ["demo-old-5", "demo-w-1"]
    assert "other-6" in after and "untagged-7" in after
    assert [r["changed"] for r in run.result("Delete them")["results"]] == [True, True]
    again = playbook(tritonsim, TEARDOWN, extra_vars={"cluster": "demo"})
    assert again.recap["changed"] == 0 and again.result("Delete them").get("results", []) == []


def test_teardown_all_and_the_cluster_guard(tritonsim, playbook):
    fleet(tritonsim)
    before = names(tritonsim)
    run = playbook(tritonsim, TEARDOWN, expect_rc=2)
    assert "pass -e cluster=NAME" in run.output and names(tritonsim) == before
    run = playbook(tritonsim, TEARDOWN, extra_vars={"cluster": "*"}, expect_rc=2)
    assert names(tritonsim) == before
    playbook(tritonsim, TEARDOWN, extra_vars={"cluster": "demo", "teardown_all": True})
    assert names(tritonsim) == ["other-6", "untagged-7"]


@pytest.mark.skipif(os.geteuid() != 0, reason="installs a root crontab or systemd units")
def test_schedule_teardown_installs_a_locked_job_that_tears_down(tritonsim, playbook, tmp_path):
    fleet(tritonsim)
    cluster = "demo"
    playbook(tritonsim, SCHEDULE, extra_vars={"cluster": cluster, "teardown_every_minutes": 5})
    name = "locustfleet-teardown-" + cluster
    env_file = "/etc/locustfleet/%s.env" % name
    try:
        assert oct(os.stat(env_file).st_mode & 0o777) == "0o600"
        settings = {k: shlex.split(v)[0] for k, v in (line.split("=", 1) for line in open(env_file).read().splitlines())}
        assert settings["TRITON_URL"] == tritonsim.url and "PRIVATE" not in open(env_file).read()
        if os.path.isdir("/run/systemd/system"):
            unit = open("/etc/systemd/system/%s.service" % name).read()
            command = next(line for line in unit.splitlines() if line.startswith("ExecStart=")).split("=", 1)[1]
        else:
            line = cron_line(name)
            assert line.startswith("*/5 * * * * ")
            command = line.split(" ", 5)[5]
        env = control_env(tritonsim, tmp_path / "home")
        env = {k: v for k, v in env.items() if not k.startswith("TRITON_")}  # the job brings its own settings
        # While another run holds the lock (the environment file), a scheduled run does nothing.
        assert "flock --nonblock %s " % env_file in command
        with open(env_file) as held:
            fcntl.flock(held, fcntl.LOCK_EX)
            blocked = subprocess.run(["sh", "-c", "set -a; . %s; set +a; %s" % (env_file, command)], env=env,
                                     check=False, capture_output=True, timeout=120)
            assert blocked.returncode != 0 and "demo-w-1" in names(tritonsim)
        done = subprocess.run(["sh", "-c", "set -a; . %s; set +a; %s" % (env_file, command)], env=env,
                              capture_output=True, text=True, timeout=300, check=False)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "demo-w-1" not in names(tritonsim) and "demo-w-2" in names(tritonsim)
    finally:
        playbook(tritonsim, SCHEDULE, extra_vars={"cluster": cluster, "schedule_state": "absent"})
    assert not os.path.exists(env_file)


@pytest.fixture
def job_user():
    """A real unprivileged user with its own home, as the person who schedules the teardown."""
    if os.geteuid() != 0:
        pytest.fail("this test creates a user: run it as root (tests/run does)")
    base = tempfile.mkdtemp(prefix="locustfleet-user-", dir="/tmp")
    os.chmod(base, 0o755)
    name = "lfsched%d" % (os.getpid() % 100000)
    home = os.path.join(base, "home")
    subprocess.run(["useradd", "--no-create-home", "--home-dir", home, "--shell", "/bin/sh", name], check=True)
    try:
        os.mkdir(home, 0o700)
        shutil.chown(home, name, name)
        yield name, Path(home)
    finally:
        subprocess.run(["crontab", "-r", "-u", name], check=False, capture_output=True)
        subprocess.run(["userdel", name], check=True)
        shutil.rmtree(base)


def test_schedule_teardown_job_runs_as_the_user_not_as_root(tritonsim, playbook, job_user, tmp_path):
    """Root must not run the job with a user's ansible-playbook, config, collections and HOME: the
    job is that user's (-e schedule_user, by default the one who runs the playbook)."""
    user, home = job_user
    fleet(tritonsim)
    key = home / "teardown-key"
    shutil.copy(tritonsim.key_path, key)
    shutil.chown(key, user, user)
    key.chmod(0o600)
    name = "locustfleet-teardown-demo"
    env_file = Path("/etc/locustfleet/%s.env" % name)
    playbook(tritonsim, SCHEDULE, extra_vars={"cluster": "demo", "schedule_user": user,
                                              "teardown_private_key_path": str(key)})
    try:
        info = env_file.stat()
        assert (pwd.getpwuid(info.st_uid).pw_name, oct(info.st_mode & 0o777)) == (user, "0o600")
        assert "HOME='%s'" % home in env_file.read_text().splitlines()
        if os.path.isdir("/run/systemd/system"):
            unit = Path("/etc/systemd/system/%s.service" % name).read_text()
            assert "User=%s" % user in unit.splitlines()
            command = next(line for line in unit.splitlines() if line.startswith("ExecStart=")).split("=", 1)[1]
        else:
            line = cron_line(name, user=user)
            root_crontab = subprocess.run(["crontab", "-l"], capture_output=True, text=True, check=False).stdout
            assert name not in root_crontab
            command = cron_command(line)
        # The job as cron runs it for that user: its own uid, a bare environment. It can run only
        # where that user can execute this ansible-playbook: not when its Python lives in root's
        # 0700 home (pyenv under /root, as on the CI machines), which no other user may enter.

        def as_user(script):
            return subprocess.run(["setpriv", "--reuid", user, "--regid", user, "--init-groups", "/usr/bin/env", "-i",
                                   "HOME=%s" % home, "LOGNAME=%s" % user, "PATH=/usr/bin:/bin", "/bin/sh", "-c", script],
                                  capture_output=True, text=True, timeout=300, check=False, cwd="/")
        playbook_cli = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")
        if as_user("exec %s --version" % shlex.quote(playbook_cli)).returncode == 0:
            done = as_user("set -a; . %s; set +a; %s" % (env_file, command))
            assert done.returncode == 0, done.stdout + done.stderr
            assert "demo-w-1" not in names(tritonsim) and "demo-w-2" in names(tritonsim)
        else:
            print("\n[teardown] %s cannot execute %s here: the job's run as that user is not tried" % (user, playbook_cli))
    finally:
        playbook(tritonsim, SCHEDULE, extra_vars={"cluster": "demo", "schedule_user": user, "schedule_state": "absent"})
    assert not env_file.exists()

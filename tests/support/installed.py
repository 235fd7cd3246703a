"""The collection as its users get it: a tarball built with ansible-galaxy from this checkout,
installed with ``-p`` into a user's own directory outside the repository, and used by FQCN from
there without the repository's ansible.cfg or collections/ link (tests/installed, tests/e2e)."""

import os
import subprocess
import threading
import time
from pathlib import Path

from support.control import REPO, control_env, venv_bin

COLLECTION = ("locustfleet", "triton")


def build_tarball(out_dir):
    """``ansible-galaxy collection build`` of this checkout into ``out_dir``: the tarball's path."""
    subprocess.run([venv_bin("ansible-galaxy"), "collection", "build", str(REPO), "--output-path", str(out_dir)],
                   check=True, capture_output=True, text=True)
    (path,) = Path(out_dir).glob("locustfleet-triton-*.tar.gz")
    return path


def install_tarball(tarball, user):
    """A user's project directory ``user``: the tarball installed into ``user``/collections with -p."""
    user = Path(user)
    subprocess.run([venv_bin("ansible-galaxy"), "collection", "install", str(tarball), "-p", str(user / "collections")],
                   check=True, capture_output=True, text=True, cwd=user)
    return user


def installed_copy(user):
    """Where the installed collection is inside the user's directory."""
    return Path(user) / "collections" / "ansible_collections" / COLLECTION[0] / COLLECTION[1]


def user_env(sim, user, **extra):
    """A user's shell in ``user``: CloudAPI settings for ``sim``, the key in ~/.ssh (``user``/home),
    no ansible.cfg anywhere, the user's collections dir, PWD = ``user`` (as a shell sets it)."""
    env = control_env(sim, Path(user) / "home")
    for name in ("ANSIBLE_CONFIG", "ANSIBLE_CALLBACK_PLUGINS", "ANSIBLE_CALLBACKS_ENABLED"):
        env.pop(name)
    env.update(ANSIBLE_COLLECTIONS_PATH=str(Path(user) / "collections"), PWD=str(user), **extra)
    return env


def ansible(command, sim, user, *args, env=None, timeout=300):
    """Run an ansible-* command from the user's directory (cwd and PWD), in ``env`` or the user's shell."""
    env = env or user_env(sim, user)
    assert env.get("PWD") == str(user) and "ANSIBLE_CONFIG" not in env
    return subprocess.run([venv_bin(command), *args], cwd=user, env=env,
                          capture_output=True, text=True, timeout=timeout, check=False)


def ansible_streamed(command, sim, user, *args, env=None, timeout=300):
    """ansible() with the output read as it comes (stderr merged into stdout), as a terminal or a CI
    log gets it: ``(returncode, [(seconds since the start, line), ...])``."""
    env = env or user_env(sim, user)
    assert env.get("PWD") == str(user) and "ANSIBLE_CONFIG" not in env
    started = time.monotonic()
    proc = subprocess.Popen([venv_bin(command), *args], cwd=user, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    killer = threading.Timer(timeout, proc.kill)
    killer.start()
    try:
        lines = [(time.monotonic() - started, line.rstrip("\n")) for line in proc.stdout]
        return proc.wait(), lines
    finally:
        killer.cancel()


def cron_line(name, user="root"):
    """The one line of ``user``'s crontab that runs the scheduled teardown ``name``."""
    crontab = subprocess.run(["crontab", "-l", "-u", user], capture_output=True, text=True, check=True).stdout
    lines = [line for line in crontab.splitlines() if not line.startswith("#") and "teardown.yml" in line
             and name + ".env" in line]
    assert len(lines) == 1, crontab
    return lines[0]


def cron_command(line):
    """The command of a crontab line (after its five time fields), output kept for the test."""
    return line.split(" ", 5)[5].replace(" >/dev/null 2>&1", "")


def run_as_cron(job, timeout=300):
    """cron's own environment for root's jobs: no agent, no TRITON_*, no ANSIBLE_*, a bare PATH."""
    return subprocess.run(["/usr/bin/env", "-i", "HOME=/root", "LOGNAME=root", "SHELL=/bin/sh",
                           "PATH=/usr/bin:/bin", "/bin/sh", "-c", job],
                          capture_output=True, text=True, timeout=timeout, check=False, cwd="/")


def cron_available():
    """The cron branch of schedule_teardown.yml is what runs here: root, and systemd not PID 1."""
    return os.geteuid() == 0 and not os.path.isdir("/run/systemd/system")

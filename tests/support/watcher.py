"""The idle watcher's surroundings on this machine, for its tests and its bench: the watcher loaded
as a module, activity lines as the plugin writes them, the collection's CloudAPI client deployed
as the role deploys it, and a fake mdata-get."""

import importlib.util
from pathlib import Path
import shutil

import yaml

REPO = Path(__file__).resolve().parents[2]
MODULE_UTILS = REPO / "plugins" / "module_utils"


def load_script(path, name):
    """A script that is no package (the watcher, an old version of it) as a module."""
    spec = importlib.util.spec_from_file_location(name, str(path))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def activity_line(ts, event="tick", users=0, state="running", role="worker", pid=100, seq=1):
    """One line as the activity plugin (roles/locust/files/locustfleet_activity.py) writes it."""
    return "ts=%.3f event=%s role=%s state=%s users=%d pid=%d seq=%d\n" % (ts, event, role, state, users, pid, seq)


def role_client_files():
    """The module_utils files the role copies (the loop of "Install the collection's CloudAPI client")."""
    tasks = yaml.safe_load((REPO / "roles" / "locust_idle_watcher" / "tasks" / "main.yml").read_text())
    (task,) = [t for t in tasks if t.get("name") == "Install the collection's CloudAPI client"]
    return tuple(task["loop"])


def deploy_client(directory):
    """The collection's client files as the package locustfleet_cloudapi under ``directory``/lib, as
    the role installs them; returns the lib dir (the watcher's lib_dir)."""
    package = Path(directory) / "lib" / "locustfleet_cloudapi"
    package.mkdir(parents=True)
    for name in role_client_files():
        shutil.copy(MODULE_UTILS / name, package / name)
    (package / "__init__.py").write_text("")
    return str(package.parent)


def fake_mdata_get(directory, machine_id):
    """An mdata-get that knows sdc:uuid only."""
    script = Path(directory) / "mdata-get"
    script.write_text('#!/bin/sh\n[ "$1" = "sdc:uuid" ] && echo %s && exit 0\necho "No metadata for $1" >&2\nexit 1\n'
                      % machine_id)
    script.chmod(0o755)
    return str(script)

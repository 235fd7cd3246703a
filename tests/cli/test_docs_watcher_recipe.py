"""docs/roles.md's recipe "A watcher key that can only stop its own fleet", run as written with the
official triton CLI against tritonsim, and the key it makes tried as the watcher uses it."""

import os
import re
import subprocess
from pathlib import Path

import pytest

from cli.conftest import TRITON, TritonCLI
from support.control import REPO

DOCS = REPO / "docs" / "roles.md"


def recipe():
    """The shell block after "**Without the option**" in the watcher-key section."""
    section = DOCS.read_text().split("## A watcher key that can only stop its own fleet", 1)[1]
    after = section.split("**Without the option**", 1)[1]
    return re.search(r"```sh\n(.*?)```", after, re.S).group(1)


@pytest.fixture(scope="module")
def made(triton, cli_sim):
    names = {}
    for name, tags in (("demo-master", ["locustfleet.cluster=demo", "locustfleet.role=master"]),
                       ("demo-worker-1", ["locustfleet.cluster=demo", "locustfleet.role=worker"]),
                       ("someone-else", ["owner=someone"])):
        args = ["instance", "create", "-w", "-j", "-n", name]
        for tag in tags:
            args += ["-t", tag]
        names[name] = triton.json_lines(*args, "debian-12", "g1-small")[-1]["id"]
    env = dict(triton.env, PATH="%s:%s" % (TRITON.parent, os.environ["PATH"]))
    done = subprocess.run(["bash", "-euo", "pipefail", "-c", recipe()], env=env, cwd=triton.env["HOME"],
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return names, done


def test_the_recipe_makes_a_key_for_the_fleet_only(triton, cli_sim, made):
    names, done = made
    home = Path(triton.env["HOME"])
    key = home / ".locustfleet" / "keys" / "demo-watcher"
    assert oct(key.stat().st_mode & 0o777) == "0o600" and oct(key.parent.stat().st_mode & 0o777) == "0o700"
    assert not (home / ".locustfleet" / "user.json").exists()   # the password file is gone
    fingerprint = subprocess.run(["ssh-keygen", "-l", "-E", "md5", "-f", str(key) + ".pub"], capture_output=True,
                                 text=True, check=True).stdout.split()[1].removeprefix("MD5:")
    assert fingerprint in done.stdout          # the recipe's last line shows the key id to use
    for name in ("demo-master", "demo-worker-1"):
        assert triton.run("rbac", "instance-role-tags", name).stdout.split() == ["demo-watcher"]
    assert triton.run("rbac", "instance-role-tags", "someone-else").stdout.split() == []

    watcher = TritonCLI(cli_sim, home)
    watcher.env.update(TRITON_USER="demo-watcher", TRITON_KEY_ID=fingerprint)
    (home / ".ssh" / "demo-watcher").write_bytes(key.read_bytes())     # where the CLI finds keys
    (home / ".ssh" / "demo-watcher").chmod(0o600)
    (home / ".ssh" / "demo-watcher.pub").write_bytes((Path(str(key) + ".pub")).read_bytes())
    assert watcher.json("instance", "get", "-j", names["demo-worker-1"])["id"] == names["demo-worker-1"]
    watcher.run("instance", "stop", "-w", names["demo-worker-1"])
    for args in (("instance", "get", names["someone-else"]), ("instance", "stop", names["someone-else"]),
                 ("instance", "delete", "-f", names["demo-master"]), ("keys",)):
        result = watcher.run(*args, check=False)
        assert result.returncode != 0 and "You do not have permission to access" in result.stderr, (args, result)

"""Fixtures for the real-host tests (tritonsim.nspawn): root, tools, image, SSH.

Container tests skip when not root or when the host tools are missing, except in
CI (CI=true), where missing tools fail with how to install them
(tritonsim/install-host-tools.sh), since CI runs as root and must run these.
"""

import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from hostutil import Ssh, require_real_hosts  # noqa: E402


@pytest.fixture(scope="session")
def hosts_available():
    require_real_hosts()


@pytest.fixture(scope="session")
def base_image(hosts_available):
    """The cached debian-12 template (built once per machine, ~1 min)."""
    from tritonsim.nspawn import build_base_image
    started = time.monotonic()
    path = build_base_image()
    took = time.monotonic() - started
    if took > 5:
        print("\n[hosts] built base image %s in %.0fs" % (path, took))
    return path


@pytest.fixture(scope="session")
def ssh_key(tmp_path_factory):
    d = tmp_path_factory.mktemp("hostkeys")
    key = d / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "hosts-test",
                    "-f", str(key)], check=True, stdin=subprocess.DEVNULL)
    return key


@pytest.fixture(scope="session")
def ssh(ssh_key):
    return Ssh(ssh_key)

"""Shared pytest fixtures.

tritonsim (the CloudAPI-compatible local cloud in tritonsim/, installed by scripts/setup.sh) for any test folder:

    def test_something(tritonsim):                 # default instance
        requests.get(tritonsim.url + "/--ping")

    def test_other(tritonsim_factory):             # custom instances
        sim = tritonsim_factory(key_type="ecdsa", extra_keys=["ed25519"],
                                users=["worker"], provision_delay=0.5,
                                throttle="10:30", faults={"503": 0.5}, seed=1)
        sim.set_faults({"drop": 1.0}); sim.stats(); sim.reset_stats()
        sim.restart()                              # same data dir and port

Each instance is a real `python -m tritonsim serve` process on a free
127.0.0.1 port with its own temporary data dir and freshly generated SSH
keys; it is stopped with SIGTERM at teardown and must exit with status 0.
Attributes: url, account, key_path (private key), pub_path, fingerprint (MD5
colon-hex), key_id ("/ACCOUNT/keys/FP"), keys (all account KeyPairs, main
first), users ({login: KeyPair}), data_dir, log_path, process.
Keys for other purposes: tritonsim.testing.generate_key(dir, name, kind).
Defaults differ from the server's on purpose: provision_delay 0.2 s and
throttle off, so tests are quick and deterministic unless they ask otherwise.
"""

from pathlib import Path

import pytest

from tritonsim.testing import launcher

# Suites that boot systemd-nspawn hosts on this machine: they share its bridge, its CPUs and its clock
# (tests/roles steps it), so tests/run gives them the machine alone, one test at a time.
REAL_HOST_SUITES = ("hosts", "roles", "e2e")


def pytest_configure(config):
    config.addinivalue_line("markers", "real_hosts: boots systemd-nspawn hosts (tests/hosts, tests/roles, tests/e2e)")


def pytest_collection_modifyitems(items):
    tests = Path(__file__).resolve().parent
    for item in items:
        if item.path.resolve().relative_to(tests).parts[0] in REAL_HOST_SUITES:
            item.add_marker(pytest.mark.real_hosts)


@pytest.fixture
def tritonsim_factory():
    """Returns start(**options) -> TritonSimProcess; every instance is stopped at teardown.

    Options: account="testacct", key_type="rsa"|"ecdsa"|"ed25519"|None (no account key),
    extra_keys=[kinds], users=[logins] or {login: kind}, provision_delay=0.2,
    action_delay=None, throttle="off" (or "RATE:BURST"), faults={kind: value},
    seed=None, port=0, extra_args=[...]; see tritonsim.testing.launcher.
    """
    start, stop_all = launcher()
    yield start
    stop_all()


@pytest.fixture(scope="module")
def tritonsim_module_factory():
    """Like tritonsim_factory, for instances shared by the tests of one module."""
    start, stop_all = launcher()
    yield start
    stop_all()


@pytest.fixture
def tritonsim(tritonsim_factory):
    """A default tritonsim (RSA account key, throttle off, 0.2 s provisioning)."""
    return tritonsim_factory()

"""Fixtures for the role tests: a tritonsim with real nspawn hosts, a Locust fleet on it
(one master, two workers) provisioned through CloudAPI and configured by the roles with real
ansible-playbook over SSH, and a target HTTP server on the host's bridge address.

The tests run as root with the host tools installed (tritonsim/install-host-tools.sh); they
skip otherwise, except under CI=true where they fail instead, since CI must run them.
"""

import sys
import threading
import time
from pathlib import Path

import pytest

from ansible_collections.locustfleet.triton.plugins.module_utils._client import CloudAPIClient
from ansible_collections.locustfleet.triton.plugins.module_utils._config import CloudAPIConfig
from ansible_collections.locustfleet.triton.plugins.module_utils._keys import load_private_key

sys.path.insert(0, str(Path(__file__).resolve().parent))

from rolesutil import WORKERS, Fleet, TargetServer  # noqa: E402  pylint: disable=wrong-import-position
from hostutil import Ssh, assert_host_clean, host_snapshot, require_real_hosts  # noqa: E402  pylint: disable=wrong-import-position


@pytest.fixture(scope="module")
def fleet(tritonsim_module_factory, tmp_path_factory):
    require_real_hosts("the role tests on real hosts")
    from tritonsim.nspawn import build_base_image  # pylint: disable=import-outside-toplevel
    build_base_image()  # cached after the first time (about a minute)
    before = host_snapshot()
    started = time.monotonic()
    sim = tritonsim_module_factory(users=["watcher"], extra_args=["--backend", "nspawn"])
    client = CloudAPIClient(CloudAPIConfig(url=sim.url, account=sim.account, key_id=sim.fingerprint, rate_limit=0),
                            key=load_private_key(str(sim.key_path)))
    info = sim.info()  # /__sim/info, with the admin token (tritonsim.testing)
    fleet = Fleet(sim, client, Ssh(sim.key_path), info["guest_url"], tmp_path_factory.mktemp("roles"))
    try:
        fleet.create("master")
        fleet.wait_state("master", "running")
        for name in WORKERS:
            # template-style workers: the master comes from CloudAPI metadata, not from Ansible
            fleet.create(name, {"locust_master_host": fleet.ip("master")})
        for name in WORKERS:
            fleet.wait_state(name, "running")
        print("\n[roles] 3 machines running after %.0fs" % (time.monotonic() - started))
        fleet.write_inventory(sim)
        fleet.first_run = fleet.apply("site.yml")
        print("[roles] fleet ready after %.0fs" % (time.monotonic() - started))
        yield fleet
    finally:
        for machine in client.list_all("/%s/machines" % sim.account):
            client.delete("/%s/machines/%s" % (sim.account, machine["id"]))
        assert sim.stop(timeout=180) == 0
        assert_host_clean(before, host_snapshot(), mine=[str(sim.data_dir)])


@pytest.fixture(scope="module")
def target(fleet):
    server = TargetServer(fleet.bridge)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)

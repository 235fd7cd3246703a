"""NspawnBackend (tritonsim's machine-backend interface over HostManager) with real
containers and a recording BackendEvents: every report arrives asynchronously."""

import threading
import time

import pytest

from hostutil import assert_host_clean, host_snapshot, rm_state_dir

backends_base = pytest.importorskip("tritonsim.backends.base")

M1 = "e1e1e1e1-1111-4222-8333-444444444444"
M2 = "e2e2e2e2-1111-4222-8333-444444444444"
OWNER = "4d3c2b1a-0000-4000-8000-000000000001"
NET = {"id": "9ec60129-9034-47b4-b111-3026f9b1a10f", "name": "sim-public", "public": True,
       "subnet": "10.88.88.0/24", "gateway": "10.88.88.1"}


class RecordingEvents(backends_base.BackendEvents):
    def __init__(self):
        self.calls = []
        self.cond = threading.Condition()
        self.threads = set()

    def _rec(self, *call):
        with self.cond:
            self.calls.append(call)
            self.threads.add(threading.current_thread().name)
            self.cond.notify_all()

    def machine_provisioned(self, machine_id, nics, compute_node):
        self._rec("provisioned", machine_id, nics, compute_node)

    def machine_provision_failed(self, machine_id, reason):
        self._rec("provision_failed", machine_id, reason)

    def machine_action_done(self, machine_id, action, state, success=True):
        self._rec("action_done", machine_id, action, state, success)

    def machine_state(self, machine_id, state):
        self._rec("state", machine_id, state)

    def image_done(self, image_id, success, error=None):
        self._rec("image_done", image_id, success, error)

    def wait(self, kind, ident, timeout=120):
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for c in self.calls:
                    if c[0] == kind and c[1] == ident:
                        self.calls.remove(c)
                        return c
                left = deadline - time.monotonic()
                assert left > 0, "no %s for %s; got %s" % (kind, ident, self.calls)
                self.cond.wait(left)


def machine(mid, name):
    return {"id": mid, "name": name, "owner": OWNER, "package": "g1-small", "brand": "lx",
            "image": "seed-image", "requested_networks": [NET], "metadata": {}}


def test_backend_interface_end_to_end(tmp_path_factory, hosts_available, base_image,
                                      ssh_key, ssh):
    from tritonsim.nspawn.backend import NspawnBackend
    before = host_snapshot()
    data = tmp_path_factory.mktemp("hosts-backend")
    pub = open(str(ssh_key) + ".pub").read().strip()
    events = RecordingEvents()
    be = NspawnBackend(str(data))
    be.bind(events)
    mine = [be.hm.instance_id, str(data)]
    try:
        m1 = machine(M1, "be-one")
        t = time.monotonic()
        be.create(m1, {"id": "seed-image", "name": "debian-12"}, {"role": "x"}, [pub])
        assert time.monotonic() - t < 1, "commands must return at once"
        # while it provisions (the manager may not know it yet): written by the time it runs
        be.update_metadata(m1, {"role": "x", "early": "yes"})
        nics, node = events.wait("provisioned", M1)[2:]
        ip = nics[0]["ip"]
        assert ssh.out(ip, "mdata-get early") == "yes"
        assert nics[0]["primary"] and nics[0]["network"] == NET["id"]
        assert ssh.out(ip, "hostname") == "be-one"
        assert ssh.out(ip, "mdata-get sdc:owner_uuid") == OWNER
        assert ssh.out(ip, "mdata-get sdc:server_uuid") == node
        assert ssh.out(ip, "mdata-get sdc:image_uuid") == "seed-image"

        be.update_metadata(m1, {"role": "y"})
        time.sleep(0.5)
        assert ssh.out(ip, "mdata-get role") == "y"

        be.stop(m1)
        assert events.wait("action_done", M1)[2:] == ("stop", "stopped", True)
        be.start(m1)
        assert events.wait("action_done", M1)[2:] == ("start", "running", True)
        be.reboot(m1)
        assert events.wait("action_done", M1)[2:] == ("reboot", "running", True)

        ssh.run(ip, "echo in-image > /root/f && poweroff", check=False)
        assert events.wait("state", M1)[2] == "stopped"  # unsolicited, as on Triton

        be.snapshot(m1, {"id": "img-from-m1", "name": "tmpl"})
        assert events.wait("image_done", "img-from-m1")[2:] == (True, None)
        be.create(machine(M2, "be-two"), {"id": "img-from-m1", "name": "tmpl"}, {}, [pub])
        ip2 = events.wait("provisioned", M2)[2][0]["ip"]
        assert ssh.out(ip2, "cat /root/f") == "in-image"

        be.create(machine("e3e3e3e3-1111-4222-8333-444444444444", "be-three"),
                  {"id": "img-missing"}, {}, [pub])  # an image without files here boots the base
        events.wait("provisioned", "e3e3e3e3-1111-4222-8333-444444444444")

        for mid in (M1, M2, "e3e3e3e3-1111-4222-8333-444444444444"):
            be.delete({"id": mid})
        be.delete_image("img-from-m1")
        assert "MainThread" not in events.threads
    finally:
        be.close()
        rm_state_dir(data)
    assert_host_clean(before, host_snapshot(), mine)

"""A manager killed with SIGKILL leaves its container running; reopening the state dir
recovers (machine stopped, data kept, startable), and the cleanup CLI removes
everything, idempotently."""

import os
import signal
import subprocess
import sys
import textwrap

import pytest

import json

from hostutil import Events, assert_host_clean, host_snapshot, rm_state_dir
from tritonsim.nspawn import HostError, HostManager
from tritonsim.nspawn.container import ssh_banner

MID = "d0d0d0d0-1111-4222-8333-444444444444"

CHILD = textwrap.dedent("""
    import sys, time
    from tritonsim.nspawn import HostManager
    state, image, pub = sys.argv[1:4]
    hm = HostManager(state)
    info = hm.create(%r, "crashy", image, {"k": "v"}, open(pub).read())
    print(info.ip, flush=True)
    time.sleep(600)
""" % MID)


def crash_manager(state, base_image, ssh_key, ssh):
    """Start a manager in a child process, boot one machine, write a file, SIGKILL it."""
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(state), base_image,
                              str(ssh_key) + ".pub"], stdout=subprocess.PIPE, text=True)
    try:
        ip = child.stdout.readline().strip()
        assert ip, "child manager did not boot its machine"
        ssh.run(ip, "echo survived > /root/data")
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
        child.stdout.close()
    assert ssh_banner(ip), "the container should outlive its manager"
    return ip


def mine(state_dir):
    with open(state_dir / "state.json") as f:
        return [json.load(f)["instance_id"], str(state_dir)]


@pytest.fixture
def state_dir(tmp_path_factory, hosts_available):
    d = tmp_path_factory.mktemp("hosts-crash")
    yield d / "state"
    rm_state_dir(d)


def test_reopen_after_crash_recovers_and_cleans(state_dir, base_image, ssh_key, ssh):
    before = host_snapshot()
    ip = crash_manager(state_dir, base_image, ssh_key, ssh)
    events = Events()
    hm = HostManager(state_dir, on_state=events)
    try:
        assert events.of(MID)[-1] == ("stopped", {"reason": "recovered"})
        assert hm.get(MID).state == "stopped" and ssh_banner(ip) is None
        with pytest.raises(HostError, match="in use by another manager"):
            HostManager(state_dir)
        # same address unless another manager took the subnet meanwhile
        ip = hm.start(MID).ip
        assert ssh.out(ip, "cat /root/data") == "survived"
    finally:
        hm.close(purge=True)
    assert_host_clean(before, host_snapshot(), mine(state_dir))
    assert not os.path.exists(state_dir / "machines" / MID)


def test_cleanup_cli_after_crash_removes_everything(state_dir, base_image, ssh_key, ssh):
    before = host_snapshot()
    crash_manager(state_dir, base_image, ssh_key, ssh)
    during = host_snapshot()
    assert during["netns"] != before["netns"] and during["nspawn_procs"]
    cli = [sys.executable, "-m", "tritonsim.nspawn", "cleanup", "--state", str(state_dir)]
    r = subprocess.run(cli, capture_output=True, text=True, check=False)
    assert r.returncode == 0, r.stderr
    assert_host_clean(before, host_snapshot(), mine(state_dir))
    assert os.path.isdir(state_dir / "machines" / MID / "upper")  # data kept without --purge
    r = subprocess.run(cli + ["--purge"], capture_output=True, text=True, check=False)
    assert r.returncode == 0, r.stderr
    assert_host_clean(before, host_snapshot(), mine(state_dir))
    assert not os.path.exists(state_dir / "machines" / MID)

"""Two managers on one host (tritonsim serve next to a test run): separate bridges and
subnets, and one's cleanup leaves the other's bridge, rules and forwarding alone. A
manager whose old subnet got taken while it was down re-addresses its machines."""

import json

from hostutil import assert_host_clean, host_snapshot, rm_state_dir, wait_until
from tritonsim.nspawn import HostManager, network

M1 = "f1f1f1f1-1111-4222-8333-444444444444"
M2 = "f2f2f2f2-1111-4222-8333-444444444444"


def test_two_managers_side_by_side_and_readdressing(tmp_path_factory, hosts_available,
                                                    base_image, ssh_key, ssh):
    before = host_snapshot()
    root = tmp_path_factory.mktemp("hosts-managers")
    pub = open(str(ssh_key) + ".pub").read()
    one = HostManager(root / "one")
    mine = [one.instance_id, str(root)]
    two = None
    try:
        a = one.create(M1, "mgr-one", base_image, {}, pub)
        old_subnet = one.subnet
        two = HostManager(root / "two")
        mine.append(two.instance_id)
        b = two.create(M2, "mgr-two", base_image, {}, pub)
        assert not two.subnet.overlaps(old_subnet) and two.bridge != one.bridge
        assert ssh.out(a.ip, "hostname") == "mgr-one"
        assert ssh.out(b.ip, "hostname") == "mgr-two"

        # one goes away: two keeps its bridge, rules, forwarding and machine
        one.cleanup()
        assert network.link_exists(two.bridge) and not network.link_exists(one.bridge)
        assert network.tagged_rules(two.tag) and not network.tagged_rules(one.tag)
        assert open("/proc/sys/net/ipv4/ip_forward").read().strip() == "1"
        assert ssh.out(b.ip, "mdata-get sdc:uuid") == M2

        # two moves into one's old subnet while one is down
        two.close(purge=True)
        two = HostManager(root / "two", subnet=str(old_subnet))
        two.ensure_network()
        assert two.subnet == old_subnet

        # one's subnet is taken now: its machine gets a new address on start
        info = one.start(M1)
        assert one.subnet != old_subnet and info.ip != a.ip
        assert ssh.out(info.ip, "hostname") == "mgr-one"
        assert json.loads(ssh.out(info.ip, "mdata-get sdc:nics"))[0]["ip"] == info.ip
    finally:
        one.close(purge=True)
        if two is not None:
            two.close(purge=True)
        rm_state_dir(root)
    assert_host_clean(before, host_snapshot(), mine)


def test_user_script_every_boot_mode(tmp_path_factory, hosts_available, base_image,
                                     ssh_key, ssh):
    root = tmp_path_factory.mktemp("hosts-every-boot")
    pub = open(str(ssh_key) + ".pub").read()
    script = "#!/bin/sh\necho run >> /root/runs\n"
    hm = HostManager(root / "state", user_script_mode="every-boot")
    try:
        info = hm.create(M1, "every-boot", base_image, {"user-script": script}, pub)
        wait_until(lambda: ssh.run(info.ip, "test -e /var/lib/tritonsim/user-script.done",
                                   check=False).returncode == 0, what="first run")
        hm.reboot(M1)
        wait_until(lambda: ssh.out(info.ip, "wc -l < /root/runs", check=False) == "2",
                   what="second run after reboot")
    finally:
        hm.close(purge=True)
        rm_state_dir(root)

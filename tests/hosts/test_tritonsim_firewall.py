"""Cloud Firewall on real nspawn machines: rules become iptables in each machine's netns."""

import socket

import pytest

from ansible_collections.locustfleet.triton.plugins.module_utils._client import CloudAPIClient
from ansible_collections.locustfleet.triton.plugins.module_utils._config import CloudAPIConfig
from ansible_collections.locustfleet.triton.plugins.module_utils._keys import load_private_key
from hostutil import Ssh, wait_until

PORT = 5557
CONNECT = ("python3 -c \"import socket, sys; socket.create_connection((sys.argv[1], int(sys.argv[2])),"
           " timeout=3)\" %s %s")


@pytest.fixture(scope="module")
def cloud(hosts_available, base_image, tritonsim_module_factory):
    sim = tritonsim_module_factory(extra_args=["--backend", "nspawn"], throttle="off")
    client = CloudAPIClient(CloudAPIConfig(url=sim.url, account=sim.account, key_id=sim.fingerprint, rate_limit=0),
                            key=load_private_key(str(sim.key_path)))
    yield sim, client, Ssh(sim.key_path)
    for machine in client.list_all("/%s/machines" % sim.account):
        client.delete("/%s/machines/%s" % (sim.account, machine["id"]))
    assert sim.stop(timeout=180) == 0


def host_reaches(ip, port):
    try:
        socket.create_connection((ip, port), timeout=3).close()
        return True
    except OSError:
        return False


def test_rules_by_tag_and_ip_are_enforced_in_the_machines_netns(cloud):
    sim, client, ssh = cloud
    acct = "/" + sim.account
    gateway = sim.info()["guest_url"].split("//")[1].rsplit(":", 1)[0]
    image = client.get(acct + "/images", {"name": "debian-12"}, expect=list)[-1]["id"]
    workers = client.post(acct + "/fwrules", {"enabled": True, "rule":
                          "FROM tag role = worker TO tag role = master ALLOW tcp PORT %d" % PORT})
    host_ssh = client.post(acct + "/fwrules", {"enabled": True, "rule":
                           "FROM ip %s TO tag role = master ALLOW tcp PORT 22" % gateway})
    ids = {}
    for name, extra in (("fw-a", {"tag.role": "master", "firewall_enabled": True}),
                        ("fw-b", {"tag.role": "worker"}), ("fw-c", {})):
        ids[name] = client.post(acct + "/machines", dict(name=name, image=image, package="g1-small",
                                                         **extra))["id"]

    def running(mid):
        machine = client.get("%s/machines/%s" % (acct, mid), expect=dict)
        return machine if machine["state"] == "running" else None
    a, b, c = (wait_until(lambda m=ids[n]: running(m), timeout=240, interval=1, what=n)["primaryIp"]
               for n in ("fw-a", "fw-b", "fw-c"))
    ssh.run(a, "systemd-run --unit=listener python3 -m http.server %d" % PORT)
    wait_until(lambda: ssh.run(a, CONNECT % ("127.0.0.1", PORT), check=False).returncode == 0,
               timeout=30, what="listener on A (loopback always allowed)")

    # guest root has no CAP_NET_ADMIN in its netns: it cannot flush these rules
    assert not int(ssh.out(a, "sed -n 's/^CapBnd:\\t//p' /proc/1/status"), 16) & (1 << 12)
    assert ssh.run(b, CONNECT % (a, PORT), check=False).returncode == 0     # tagged worker
    assert ssh.run(c, CONNECT % (a, PORT), check=False).returncode != 0     # untagged
    assert not host_reaches(a, PORT)                                        # host: only port 22
    assert host_reaches(c, 22)                                              # C has no firewall

    client.post("%s/machines/%s/tags" % (acct, ids["fw-c"]), {"role": "worker"})
    wait_until(lambda: ssh.run(c, CONNECT % (a, PORT), check=False).returncode == 0,
               timeout=30, what="C allowed once tagged")
    assert ssh.run(a, CONNECT % (c, 22), check=False).returncode == 0       # outbound stays open

    client.post("%s/fwrules/%s/disable" % (acct, host_ssh["id"]))
    wait_until(lambda: not host_reaches(a, 22), timeout=30, what="host SSH blocked")
    client.post("%s/fwrules/%s/enable" % (acct, host_ssh["id"]))
    wait_until(lambda: host_reaches(a, 22), timeout=30, what="host SSH allowed by the ip rule")

    # after a restart of A the same policy holds from its first moment
    client.post("%s/machines/%s" % (acct, ids["fw-a"]), {"action": "reboot"}, idempotent=True)
    wait_until(lambda: any(e["action"] == "reboot" for e in
                           client.get("%s/machines/%s/audit" % (acct, ids["fw-a"]), expect=list)),
               timeout=180, interval=1, what="reboot of A")
    wait_until(lambda: host_reaches(a, 22), timeout=60, what="A back")
    assert ssh.run(c, CONNECT % (a, 22), check=False).returncode != 0       # only the host's ip
    client.post("%s/fwrules/%s/disable" % (acct, workers["id"]))


def test_a_machine_whose_firewall_lets_nothing_in_still_boots(cloud):
    """Provisioning waits for the guest's sshd; that wait must not depend on the customer's rules
    (on Triton a firewalled machine without rules is running all the same)."""
    sim, client, dummy = cloud
    acct = "/" + sim.account
    image = client.get(acct + "/images", {"name": "debian-12"}, expect=list)[-1]["id"]
    closed = client.post(acct + "/machines", dict(name="fw-closed", image=image, package="g1-small",
                                                  firewall_enabled=True, **{"tag.closed": "yes"}))["id"]

    def settled():
        machine = client.get("%s/machines/%s" % (acct, closed), expect=dict)
        return machine if machine["state"] in ("running", "failed") else None
    machine = wait_until(settled, timeout=240, interval=1, what="fw-closed provisioned")
    assert machine["state"] == "running"
    assert not host_reaches(machine["primaryIp"], 22)   # and nothing gets in from the host

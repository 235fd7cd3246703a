"""tritonsim serve --backend nspawn end to end: CloudAPI calls create, change and destroy real hosts."""

import os
import shutil
import stat
import subprocess
import sys
import tempfile

import pytest

from ansible_collections.locustfleet.triton.plugins.module_utils._client import CloudAPIClient, CloudAPIError
from ansible_collections.locustfleet.triton.plugins.module_utils._config import CloudAPIConfig
from ansible_collections.locustfleet.triton.plugins.module_utils._keys import load_private_key
from hostutil import Ssh, assert_host_clean, host_snapshot, tree_state, wait_until

IMAGE = "debian-12"
PACKAGE = "g1-small"


@pytest.fixture(scope="module")
def cloud(hosts_available, base_image, tritonsim_module_factory):
    before = host_snapshot()
    sim = tritonsim_module_factory(extra_args=["--backend", "nspawn"], throttle="off")
    client = CloudAPIClient(CloudAPIConfig(url=sim.url, account=sim.account, key_id=sim.fingerprint, rate_limit=0),
                            key=load_private_key(str(sim.key_path)))
    yield sim, client, Ssh(sim.key_path)
    for machine in client.list_all("/%s/machines" % sim.account):
        client.delete("/%s/machines/%s" % (sim.account, machine["id"]))
    assert sim.stop(timeout=180) == 0
    assert_host_clean(before, host_snapshot(), mine=[str(sim.data_dir)])


def machine_path(sim, machine_id, *rest):
    return "/".join(["", sim.account, "machines", machine_id] + list(rest))


def wait_state(client, sim, machine_id, state, timeout=180):
    def reached():
        try:
            machine = client.get(machine_path(sim, machine_id), expect=dict)
        except CloudAPIError as exc:
            return state == "deleted" and exc.status == 410
        return machine if machine["state"] == state else None
    return wait_until(reached, timeout=timeout, interval=0.5, what="machine %s %s" % (machine_id, state))


def create(client, sim, name, image=IMAGE, **extra):
    images = client.get("/%s/images" % sim.account, {"name": image}, expect=list) if "-" in image and len(image) < 36 else None
    image_id = images[-1]["id"] if images else image
    body = {"name": name, "image": image_id, "package": PACKAGE}
    body.update(extra)
    machine = client.post("/%s/machines" % sim.account, body)
    return wait_state(client, sim, machine["id"], "running")


def test_machine_is_a_real_host_with_metadata_and_user_script(cloud):
    sim, client, ssh = cloud
    metadata = {"metadata.greeting": "hello", "metadata.user-script": "#!/bin/sh\ntouch /root/user-script-ran\n"}
    machine = create(client, sim, "web-1", **metadata)
    ip = machine["primaryIp"]
    assert machine["ips"] == [ip] and machine["nics"][0]["ip"] == ip
    assert ssh.out(ip, "hostname") == "web-1"
    assert ssh.out(ip, "mdata-get sdc:uuid") == machine["id"]
    assert ssh.out(ip, "mdata-get greeting") == "hello"
    assert ssh.run(ip, "mdata-get nothing-here", check=False).returncode == 1
    wait_until(lambda: ssh.run(ip, "test -e /root/user-script-ran", check=False).returncode == 0, timeout=60,
               what="user-script")
    assert ssh.out(ip, "cat /proc/1/comm") == "systemd"

    client.post(machine_path(sim, machine["id"], "metadata"), {"greeting": "changed"})
    wait_until(lambda: ssh.out(ip, "mdata-get greeting") == "changed", timeout=30, what="metadata update")


def test_machines_reach_cloudapi_on_the_bridge(cloud):
    sim, client, ssh = cloud
    info = sim.info()
    assert info["backend"] == "nspawn" and info["guest_url"].endswith(":%s" % sim.url.rsplit(":", 1)[1])
    machine = create(client, sim, "caller-1")
    ping = ssh.out(machine["primaryIp"], "python3 -c \"import urllib.request; "
                                         "print(urllib.request.urlopen('%s/--ping').read().decode())\""
                   % info["guest_url"])
    assert '"ping": "pong"' in ping or '"ping":"pong"' in ping


def test_stop_start_reboot_and_poweroff_inside(cloud):
    sim, client, ssh = cloud
    machine = create(client, sim, "cycle-1")
    ip, machine_id = machine["primaryIp"], machine["id"]
    ssh.run(ip, "echo kept > /root/data")
    client.post(machine_path(sim, machine_id), {"action": "stop"}, idempotent=True)
    wait_state(client, sim, machine_id, "stopped")
    assert ssh.run(ip, "true", check=False, timeout=15).returncode != 0
    client.post(machine_path(sim, machine_id), {"action": "start"}, idempotent=True)
    wait_state(client, sim, machine_id, "running")
    assert ssh.out(ip, "cat /root/data") == "kept"
    boot_id = ssh.out(ip, "cat /proc/sys/kernel/random/boot_id; systemctl show -p ActiveEnterTimestamp sshd")
    client.post(machine_path(sim, machine_id), {"action": "reboot"}, idempotent=True)
    wait_until(lambda: any(e["action"] == "reboot" for e in client.get(machine_path(sim, machine_id, "audit"), expect=list)),
               timeout=120, what="reboot audit record")
    wait_state(client, sim, machine_id, "running")
    wait_until(lambda: ssh.run(ip, "true", check=False, timeout=15).returncode == 0, timeout=60, what="ssh back")
    assert ssh.out(ip, "cat /proc/sys/kernel/random/boot_id; systemctl show -p ActiveEnterTimestamp sshd") \
        != boot_id

    ssh.run(ip, "systemctl poweroff", check=False, timeout=15)
    wait_state(client, sim, machine_id, "stopped", timeout=120)


def test_image_from_machine_boots_with_its_files(cloud):
    sim, client, ssh = cloud
    template = create(client, sim, "template-1")
    ssh.run(template["primaryIp"], "echo from-template > /etc/locustfleet-marker")
    image = client.post("/%s/images" % sim.account, {"machine": template["id"], "name": "fleet-template",
                                                     "version": "1.0.0"})
    wait_until(lambda: client.get("/%s/images/%s" % (sim.account, image["id"]), expect=dict)["state"] == "active",
               timeout=300, interval=1, what="image active")
    clone = create(client, sim, "clone-1", image=image["id"])
    assert ssh.out(clone["primaryIp"], "cat /etc/locustfleet-marker") == "from-template"
    assert ssh.out(clone["primaryIp"], "hostname") == "clone-1"
    assert ssh.out(clone["primaryIp"], "mdata-get sdc:uuid") == clone["id"]
    # guest trees (setuid binaries, device nodes) and metadata: no other local user gets in
    nspawn = os.path.join(str(sim.data_dir), "nspawn")
    from tritonsim.nspawn.image import default_cache_dir
    for path in (nspawn, os.path.join(nspawn, "images"), os.path.join(nspawn, "hosts"),
                 os.path.join(nspawn, "hosts", "machines"), default_cache_dir()):
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o700, path


NOBODY = "setpriv --reuid=65534 --regid=65534 --clear-groups "


def test_guest_users_and_guest_root_stay_in_their_place(cloud):
    """Metadata is root's only (as mdata-get on Triton); guest root cannot make device
    nodes (the host's disk) yet boots, runs dpkg and sshd; the console log is root's."""
    sim, client, ssh = cloud
    machine = create(client, sim, "locked-1", **{"metadata.user-script": "#!/bin/sh\necho s3cret\n"})
    ip = machine["primaryIp"]
    assert ssh.out(ip, "mdata-get sdc:uuid") == machine["id"]
    other = ssh.run(ip, NOBODY + "mdata-get sdc:uuid", check=False)
    assert other.returncode == 2 and machine["id"] not in other.stdout, other
    other = ssh.run(ip, NOBODY + "cat /var/lib/tritonsim/metadata/metadata.json", check=False)
    assert other.returncode != 0 and "s3cret" not in other.stdout, other
    other = ssh.run(ip, NOBODY + "ls /var/lib/tritonsim/metadata", check=False)
    assert other.returncode != 0, other
    mknod = ssh.run(ip, "mknod /tmp/disk b 8 0", check=False)
    assert mknod.returncode != 0 and "Operation not permitted" in mknod.stderr, mknod
    assert ssh.run(ip, "test -e /tmp/disk", check=False).returncode != 0
    bounding = int(ssh.out(ip, "sed -n 's/^CapBnd:\\t//p' /proc/1/status"), 16)
    for bit in (27, 30, 9, 16, 17):  # MKNOD, AUDIT_CONTROL, LINUX_IMMUTABLE, SYS_MODULE, SYS_RAWIO
        assert not bounding & (1 << bit), (bit, hex(bounding))
    assert ssh.out(ip, "systemctl is-system-running --wait", check=False) == "running"
    # dpkg installs and removes a package (built here: no network)
    ssh.run(ip, "set -e; d=$(mktemp -d); mkdir -p $d/p/DEBIAN $d/p/usr/share/tscheck;"
                " printf 'Package: tscheck\\nVersion: 1\\nArchitecture: all\\n"
                "Maintainer: t <t@t>\\nDescription: t\\n' > $d/p/DEBIAN/control;"
                " echo ok > $d/p/usr/share/tscheck/f; dpkg-deb -b $d/p $d/t.deb >/dev/null;"
                " dpkg -i $d/t.deb >/dev/null; test -f /usr/share/tscheck/f; dpkg -r tscheck >/dev/null")
    assert "debian" in ssh.out(ip, "apt-get indextargets --no-release-info --format '$(URI)' | head -1")
    console = os.path.join(str(sim.data_dir), "nspawn", "hosts", "machines", machine["id"], "console.log")
    assert stat.S_IMODE(os.stat(console).st_mode) == 0o600


def test_guest_symlinks_to_host_paths_are_never_followed(cloud):
    """A guest plants symlinks to host directories before CreateImageFromMachine
    (var/log/journal, root/.ssh: emptied by the identity reset) and CreateMachine from
    that image writes root's authorized_keys: the host's files stay as they were."""
    sim, client, ssh = cloud
    # not under /tmp: nspawn mounts a tmpfs there in the guest, hiding what the host writes
    canary = tempfile.mkdtemp(prefix="tritonsim-canary-", dir="/var/tmp")
    try:
        for rel, text in (("journal/system.journal", "host journal"), ("journal/d/user.journal", "host journal 2"),
                          ("dotssh/authorized_keys", "host authorized_keys"), ("file", "host file")):
            os.makedirs(os.path.dirname(os.path.join(canary, rel)), exist_ok=True)
            with open(os.path.join(canary, rel), "w") as f:
                f.write(text)
        os.chmod(os.path.join(canary, "dotssh"), 0o755)
        before = tree_state(canary)
        template = create(client, sim, "planter-1")
        ssh.run(template["primaryIp"],
                "rm -rf /var/log/journal && ln -s {c}/journal /var/log/journal"
                " && ln -sfn {c}/file /etc/hostname && ln -sfn {c}/file /var/lib/tritonsim/user-script.done"
                " && mv /root/.ssh /root/.ssh.orig && ln -s {c}/dotssh /root/.ssh".format(c=canary))
        image = client.post("/%s/images" % sim.account, {"machine": template["id"], "name": "planted",
                                                         "version": "1.0.0"})

        def image_done():
            current = client.get("/%s/images/%s" % (sim.account, image["id"]), expect=dict)
            return current if current["state"] in ("active", "failed") else None
        done = wait_until(image_done, timeout=300, interval=1, what="image done")
        assert tree_state(canary) == before
        assert done["state"] == "active", done
        clone = create(client, sim, "clone-2", image=image["id"])
        assert tree_state(canary) == before
        # the clone's /root/.ssh still points at that path: the host resolved it inside the clone
        # when it wrote root's authorized_keys (so it is in the clone's overlay, not on the host)
        rootfs = os.path.join(str(sim.data_dir), "nspawn", "images", image["id"], "rootfs")
        assert os.readlink(os.path.join(rootfs, "root/.ssh")) == canary + "/dotssh"
        upper = os.path.join(str(sim.data_dir), "nspawn", "hosts", "machines", clone["id"], "upper")
        with open(os.path.join(upper, canary.lstrip("/"), "dotssh/authorized_keys")) as f:
            assert f.read() == open(sim.pub_path).read().strip() + "\n"
    finally:
        shutil.rmtree(canary, ignore_errors=True)


def test_delete_destroys_the_host(cloud):
    sim, client, ssh = cloud
    machine = create(client, sim, "doomed-1")
    client.delete(machine_path(sim, machine["id"]))
    wait_state(client, sim, machine["id"], "deleted")
    wait_until(lambda: ssh.run(machine["primaryIp"], "true", check=False, timeout=10).returncode != 0,
               timeout=60, what="host gone")
    assert not any(machine["id"] in line for line in subprocess.run(
        ["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout.splitlines())


def test_not_root_gets_one_clear_line(hosts_available, tmp_path):
    data = tempfile.mkdtemp(prefix="tritonsim-nobody-")
    os.chmod(data, 0o777)
    key = tmp_path / "k"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    os.chmod(tmp_path, 0o755)
    proc = subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", sys.executable, "-m",
                           "tritonsim", "serve", "--data", data, "--account", "a", "--key", str(key) + ".pub",
                           "--backend", "nspawn"], capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("tritonsim: error: ") and "root" in proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""

"""Real containers end to end: boot, SSH, systemd, metadata, user-script, stop/start,
reboot, poweroff inside, host reachability, snapshot, delete, exact cleanup.

The tests run in file order and share one manager and two machines (A, B) to keep
the module quick (a boot takes a second or two once the image is cached).
"""

import ipaddress
import json
import os
import socket
import threading
import time

import pytest

from hostutil import Events, assert_host_clean, host_snapshot, hosts_unavailable, rm_state_dir, wait_until
from tritonsim.nspawn import HostManager, MachineNotFound, fsutil, read_image_info
from tritonsim.nspawn import image as image_mod

A_ID = "a0a0a0a0-1111-4222-8333-444444444444"
B_ID = "b0b0b0b0-1111-4222-8333-444444444444"
C_ID = "c0c0c0c0-1111-4222-8333-444444444444"
OWNER = "930896af-bf8c-48d4-885c-6573a94b1853"
USER_SCRIPT = "#!/bin/sh\necho \"ran $(date +%s)\" >> /root/user-script-runs\n"


@pytest.fixture(scope="module")
def env(tmp_path_factory, base_image, ssh_key, request):
    assert hosts_unavailable() is None
    before = host_snapshot()
    root = tmp_path_factory.mktemp("hosts-lifecycle")
    events = Events()
    hm = HostManager(root / "state", on_state=events)
    pub = (ssh_key.parent / (ssh_key.name + ".pub")).read_text()
    ctx = {"hm": hm, "events": events, "root": root, "image": base_image, "pub": pub,
           "before": before, "info": {}}
    yield ctx
    try:
        hm.close(purge=True)
    finally:
        rm_state_dir(root)


@pytest.fixture(scope="module")
def fleet(env):
    """Machines A (with user-script) and B, created concurrently."""
    hm, results, errors = env["hm"], {}, []

    def make(mid, alias, md):
        try:
            t = time.monotonic()
            results[mid] = hm.create(mid, alias, env["image"], md, env["pub"],
                                     sdc={"owner_uuid": OWNER, "package_name": "sample-1G"})
            results[mid + "-secs"] = time.monotonic() - t
        except Exception as e:  # reported below
            errors.append(e)

    a_meta = {"role": "master", "user-script": USER_SCRIPT, "n": 3}
    threads = [threading.Thread(target=make, args=(A_ID, "host-a", a_meta)),
               threading.Thread(target=make, args=(B_ID, "host-b", {"role": "worker"}))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    print("\n[hosts] create-to-running: A %.1fs, B %.1fs (nspawn start to ssh banner: %s, %s)"
          % (results[A_ID + "-secs"], results[B_ID + "-secs"],
             results[A_ID].boot_seconds, results[B_ID].boot_seconds))
    return {"a": results[A_ID], "b": results[B_ID]}


def test_create_reports_running_once_sshd_answers(env, fleet, ssh):
    a, b = fleet["a"], fleet["b"]
    assert a.state == b.state == "running"
    assert a.ip != b.ip
    ipnet = env["hm"].subnet
    assert all(ipaddress.ip_address(x.ip) in ipnet for x in (a, b))
    for m in (a, b):
        states = env["events"].states(m.id)
        assert states[:2] == ["provisioning", "running"], states
    assert ssh.out(a.ip, "hostname") == "host-a"
    assert ssh.out(b.ip, "hostname") == "host-b"


def test_systemd_is_pid1_and_system_running(fleet, ssh):
    for m in fleet.values():
        assert ssh.out(m.ip, "cat /proc/1/comm") == "systemd"
        state = ssh.run(m.ip, "timeout 60 systemctl is-system-running --wait", check=False)
        # no unit failed (two machines booting together once failed one now and then: 219/CGROUP)
        assert state.stdout.strip() == "running", ssh.out(m.ip, "systemctl --failed --no-legend")


def test_root_user_manager_outlives_its_sessions(fleet, ssh):
    """logind stops root's user manager 10 s after its last session by default, and the next login
    starts a new one. The guests keep it (UserStopDelaySec=infinity)."""
    b = fleet["b"]
    invocation = "systemctl show user@0.service -p InvocationID --value"
    before = ssh.out(b.ip, invocation)
    time.sleep(12)
    started = time.monotonic()
    after = ssh.out(b.ip, invocation, timeout=40)
    took = time.monotonic() - started
    assert before and after == before, "root's user manager was stopped between two logins 12 s apart"
    assert took < 10, "a login 12 s after the last session took %.1f s" % took


def test_a_user_manager_stops_without_hanging_logins(fleet, ssh):
    """With logind's default (stop root's manager 10 s after its last session), on both guests at once:
    a login 12 s after the last one does not wait. While the guests shared one cgroup tree the stop
    hung in final-sigkill (the shared user@0.service cgroup never emptied) and such a login waited
    minutes: spawn_slaves re-runs stalled 120 s in wait_for_connection."""
    dropin = "/etc/systemd/logind.conf.d/tritonsim.conf"
    for m in fleet.values():
        ssh.run(m.ip, "mv %s %s.off && systemctl restart systemd-logind" % (dropin, dropin))
    try:
        for m in fleet.values():
            ssh.run(m.ip, "true")
        time.sleep(12)
        for name, m in fleet.items():
            started = time.monotonic()
            ssh.run(m.ip, "true", timeout=40)
            took = time.monotonic() - started
            assert took < 10, "a login on %s 12 s after the last session took %.1f s" % (name, took)
    finally:
        for m in fleet.values():
            ssh.run(m.ip, "mv %s.off %s && systemctl restart systemd-logind" % (dropin, dropin), check=False, timeout=120)


def test_each_guest_has_a_cgroup_tree_of_its_own(fleet, ssh):
    """Guests that shared one cgroup tree (every nspawn put its payload in the same cgroup) shared
    the cgroup of each unit of the same name: a short unit ending in one guest took its cgroup away
    from the other guest's, which failed with 219/CGROUP (now and then a boot unit of machines
    booting together), and one guest's root could kill the other's processes through cgroup.kill."""
    a, b = fleet["a"], fleet["b"]
    unit = "/sys/fs/cgroup/unified/system.slice/tsim-probe.service"
    for m in (a, b):
        ssh.run(m.ip, "systemd-run --quiet --unit=tsim-probe sleep 600")
    try:
        for m in (a, b):
            # only its own process, none from outside its pid namespace (listed as 0)
            assert ssh.out(m.ip, "cat %s/cgroup.procs" % unit) == ssh.out(m.ip, "systemctl show -p MainPID --value tsim-probe")
        ssh.run(a.ip, "echo 1 > %s/cgroup.kill" % unit)
        wait_until(lambda: ssh.run(a.ip, "systemctl is-active --quiet tsim-probe", check=False).returncode != 0,
                   timeout=10, what="A's unit killed")
        time.sleep(0.5)
        assert ssh.run(b.ip, "systemctl is-active tsim-probe", check=False).stdout.strip() == "active"
    finally:
        for m in (a, b):
            ssh.run(m.ip, "systemctl stop tsim-probe; systemctl reset-failed tsim-probe", check=False)


def test_mdata_get_sdc_and_customer_keys(fleet, ssh):
    a = fleet["a"]
    assert ssh.out(a.ip, "mdata-get sdc:uuid") == A_ID
    assert ssh.out(a.ip, "mdata-get sdc:alias") == "host-a"
    assert ssh.out(a.ip, "mdata-get sdc:hostname") == "host-a"
    assert ssh.out(a.ip, "mdata-get sdc:owner_uuid") == OWNER
    assert ssh.out(a.ip, "mdata-get sdc:package_name") == "sample-1G"
    nics = json.loads(ssh.out(a.ip, "mdata-get sdc:nics"))
    assert nics[0]["ip"] == a.ip and nics[0]["primary"] is True
    assert nics[0]["mac"] == a.mac == ssh.out(a.ip, "cat /sys/class/net/eth0/address")
    assert ssh.out(a.ip, "mdata-get role") == "master"
    assert ssh.out(a.ip, "mdata-get n") == "3"
    assert ssh.out(a.ip, "/lib/smartdc/mdata-get role") == "master"
    assert ssh.out(a.ip, "mdata-list").split() == ["n", "role", "user-script"]
    missing = ssh.run(a.ip, "mdata-get no-such-key", check=False)
    assert missing.returncode == 1 and "No metadata for 'no-such-key'" in missing.stderr
    assert ssh.run(a.ip, "mdata-get", check=False).returncode == 3
    assert ssh.out(fleet["b"].ip, "mdata-get sdc:uuid") == B_ID


def test_metadata_update_visible_without_reboot(env, fleet, ssh):
    hm, b = env["hm"], fleet["b"]
    pid = hm.get(B_ID).pid
    hm.update_metadata(B_ID, {"role": "worker", "batch": "42"})
    assert ssh.out(b.ip, "mdata-get batch") == "42"
    hm.update_metadata(B_ID, {"batch": "43"})
    assert ssh.out(b.ip, "mdata-get batch") == "43"
    assert ssh.run(b.ip, "mdata-get role", check=False).returncode == 1
    assert hm.get(B_ID).pid == pid  # same container process: no reboot
    ro = ssh.run(b.ip, "touch /var/lib/tritonsim/metadata/x", check=False)
    assert ro.returncode != 0 and "Read-only" in ro.stderr


def test_user_script_ran_once_at_first_boot(fleet, ssh):
    a, b = fleet["a"], fleet["b"]
    wait_until(lambda: ssh.run(a.ip, "test -e /var/lib/tritonsim/user-script.done",
                               check=False).returncode == 0, what="user-script marker")
    assert len(ssh.out(a.ip, "cat /root/user-script-runs").splitlines()) == 1
    assert ssh.out(a.ip, "cat /var/lib/tritonsim/user-script.done").startswith("exit=0")
    wait_until(lambda: ssh.run(b.ip, "test -e /var/lib/tritonsim/user-script.done",
                               check=False).returncode == 0, what="user-script marker on B")
    assert ssh.out(b.ip, "cat /var/lib/tritonsim/user-script.done").startswith("none")


def test_stop_is_clean_and_start_keeps_data(env, fleet, ssh):
    hm, events, a = env["hm"], env["events"], fleet["a"]
    # a unit whose stop job leaves a mark proves systemd ran its stop jobs
    ssh.run(a.ip, "printf '[Service]\\nType=oneshot\\nRemainAfterExit=yes\\nExecStart=/bin/true\\n"
                  "ExecStop=/bin/sh -c \"date > /root/stop-job-ran\"\\n' "
                  "> /etc/systemd/system/stopmark.service && systemctl daemon-reload && "
                  "systemctl start stopmark && echo kept > /root/keep")
    events.clear()
    info = hm.stop(A_ID)
    assert info.state == "stopped" and info.pid is None
    assert events.states(A_ID) == ["stopping", "stopped"]
    assert events.of(A_ID)[-1][1]["shutdown"] == "clean"
    m = hm._machine(A_ID)
    assert not os.path.exists("/run/netns/" + m["netns"])
    assert not any(mp.startswith(m["dir"]) for mp in fsutil.mount_points())
    info = hm.start(A_ID)
    assert info.state == "running" and info.ip == a.ip
    assert ssh.out(a.ip, "cat /root/keep") == "kept"
    assert ssh.out(a.ip, "cat /root/stop-job-ran")
    # not again after a restart
    time.sleep(1)
    assert len(ssh.out(a.ip, "cat /root/user-script-runs").splitlines()) == 1


def test_reboot(env, fleet, ssh):
    hm, events, a = env["hm"], env["events"], fleet["a"]
    ssh.run(a.ip, "touch /run/before-reboot")
    old_pid = hm.get(A_ID).pid
    events.clear()
    info = hm.reboot(A_ID)
    assert info.state == "running" and info.pid != old_pid
    assert events.states(A_ID) == ["stopping", "running"]
    assert ssh.run(a.ip, "test -e /run/before-reboot", check=False).returncode == 1
    assert ssh.out(a.ip, "cat /root/keep") == "kept"


def test_stop_kills_after_timeout_when_shutdown_hangs(env, fleet, ssh):
    hm, events, a = env["hm"], env["events"], fleet["a"]
    ssh.run(a.ip, "printf '[Service]\\nType=oneshot\\nRemainAfterExit=yes\\nExecStart=/bin/true\\n"
                  "ExecStop=/bin/sleep 600\\nTimeoutStopSec=infinity\\n' "
                  "> /etc/systemd/system/hang.service && systemctl daemon-reload && "
                  "systemctl start hang")
    events.clear()
    started = time.monotonic()
    info = hm.stop(A_ID, timeout=3)
    assert time.monotonic() - started < 20
    assert info.state == "stopped" and events.of(A_ID)[-1][1]["shutdown"] == "killed"
    m = hm._machine(A_ID)
    assert not any(m["nspawn_name"] in p for p in host_snapshot()["nspawn_procs"])
    assert not any(mp.startswith(m["dir"]) for mp in fsutil.mount_points())
    assert hm.start(A_ID).state == "running"
    assert ssh.out(a.ip, "cat /root/keep") == "kept"
    ssh.run(a.ip, "rm /etc/systemd/system/hang.service && systemctl daemon-reload")


def test_reboot_from_inside_boots_again(env, fleet, ssh):
    hm, events, b = env["hm"], env["events"], fleet["b"]
    old_pid = hm.get(B_ID).pid
    events.clear()
    ssh.run(b.ip, "systemctl reboot", check=False)
    events.wait_for(B_ID, "running", timeout=90, reason="reboot-inside")
    assert hm.get(B_ID).state == "running" and hm.get(B_ID).pid != old_pid
    assert ssh.out(b.ip, "hostname") == "host-b"


def test_poweroff_inside_is_reported_stopped(env, fleet, ssh):
    hm, events, b = env["hm"], env["events"], fleet["b"]
    events.clear()
    ssh.run(b.ip, "poweroff", check=False)
    info = events.wait_for(B_ID, "stopped", timeout=90)
    assert info["reason"] == "poweroff-inside" and info["exit_code"] == 0
    assert hm.get(B_ID).state == "stopped"
    m = hm._machine(B_ID)
    wait_until(lambda: not os.path.exists("/run/netns/" + m["netns"]), what="netns removed")
    # and it can be started again
    assert hm.start(B_ID).state == "running"
    assert ssh.out(b.ip, "mdata-get sdc:uuid") == B_ID


def test_container_reaches_host_on_bridge_address(env, fleet, ssh):
    hm, a = env["hm"], fleet["a"]
    srv = socket.socket()
    srv.bind((hm.bridge_address, 0))
    srv.listen(1)
    srv.settimeout(30)
    port = srv.getsockname()[1]
    seen = {}

    def serve():
        try:
            conn, addr = srv.accept()
            seen["peer"] = addr[0]
            conn.sendall(b"hello-from-host\n")
            conn.close()
        except OSError as e:
            seen["error"] = e

    t = threading.Thread(target=serve)
    t.start()
    got = ssh.out(a.ip, "python3 -c 'import socket; s=socket.create_connection((\"%s\", %d), 10);"
                        " print(s.recv(100).decode().strip())'" % (hm.bridge_address, port))
    t.join(10)
    srv.close()
    assert got == "hello-from-host"
    assert seen.get("peer") == a.ip


def test_snapshot_then_new_machine_has_the_file(env, fleet, ssh):
    hm, a = env["hm"], fleet["a"]
    ssh.run(a.ip, "echo from-template > /root/template-file")
    a_key = ssh.out(a.ip, "cat /etc/ssh/ssh_host_ed25519_key.pub")
    img = env["root"] / "images" / "tmpl-1"
    out = hm.snapshot(A_ID, str(img), name="tmpl")
    assert out == str(img) and read_image_info(out)["origin"] == "machine:" + A_ID
    assert hm.get(A_ID).state == "running"  # stopped for the copy, started again
    rootfs = image_mod.rootfs_of(out)
    assert not [f for f in os.listdir(rootfs + "/etc/ssh") if f.startswith("ssh_host_")]
    assert os.path.getsize(rootfs + "/etc/machine-id") == 0
    assert not os.path.exists(rootfs + "/var/lib/tritonsim/user-script.done")
    assert os.listdir(rootfs + "/var/lib/tritonsim/metadata") == []

    c = hm.create(C_ID, "host-c", out, {"user-script": USER_SCRIPT}, env["pub"])
    assert ssh.out(c.ip, "cat /root/template-file") == "from-template"
    assert ssh.out(c.ip, "hostname") == "host-c"
    assert ssh.out(c.ip, "cat /etc/machine-id") == C_ID.replace("-", "")
    assert ssh.out(c.ip, "cat /etc/ssh/ssh_host_ed25519_key.pub") != a_key
    wait_until(lambda: ssh.run(c.ip, "test -e /var/lib/tritonsim/user-script.done",
                               check=False).returncode == 0, what="user-script on C")
    # C ran its own first-boot user-script once (A's run came along in the copy)
    assert len(ssh.out(c.ip, "cat /root/user-script-runs").splitlines()) == 2
    assert hm.machines_using(out) == [C_ID]


def test_delete_removes_container_overlay_netns_veth(env, fleet, ssh):
    hm, events = env["hm"], env["events"]
    m = dict(hm._machine(C_ID))
    ip = m["ip"]
    hm.delete(C_ID)
    assert events.of(C_ID)[-1][0] == "deleted"
    with pytest.raises(MachineNotFound):
        hm.get(C_ID)
    assert not os.path.exists(m["dir"])
    assert not os.path.exists("/run/netns/" + m["netns"])
    assert m["veth"] not in host_snapshot()["links"]
    assert not any(m["dir"] in line for line in host_snapshot()["mounts"])
    assert ssh.run(ip, "true", check=False, timeout=30).returncode != 0
    # the deleted machine's address is free again
    assert hm._allocate_ip() == ip


def test_bad_machine_id_or_image_is_refused(env):
    from tritonsim.nspawn import HostError
    with pytest.raises(HostError, match="invalid machine id"):
        env["hm"].create("../../etc", "x", env["image"])
    with pytest.raises(HostError, match="not an image directory"):
        env["hm"].create("e0e0e0e0-0000-4000-8000-000000000000", "x", str(env["root"]))
    with pytest.raises(HostError, match="already exists"):
        env["hm"].create(A_ID, "dup", env["image"])


def test_cleanup_leaves_nothing_behind(env, fleet):
    hm, before = env["hm"], env["before"]
    hm.cleanup()
    after = host_snapshot()
    assert_host_clean(before, after, [hm.instance_id, str(env["root"])])
    assert hm.tag not in after["iptables_nat"] + after["iptables_filter"]
    assert not any(hm.bridge in line for line in after["links"])
    # machines survive as stopped data; cleanup is idempotent
    assert {m.state for m in hm.list()} == {"stopped"}
    hm.cleanup()
    assert_host_clean(after, host_snapshot(), [hm.instance_id, str(env["root"])])

"""The fleet_image role on real hosts: one image for the whole fleet, each machine made from it
running the Locust master or the workers as its CloudAPI metadata locustfleet_role says.

A template machine gets every role, as build_template.yml prepares it (locust_worker with an empty
locust_master_host, locust_master, locust_idle_watcher, then fleet_image); tritonsim makes an image
of it (CreateImageFromMachine) and three machines boot from that image: locustfleet_role=master,
locustfleet_role=worker (whose workers must reach that master) and one without the key, which
runs both like a machine configured by the roles. Then the worker's key becomes master and the
keyless machine gets a hostile value, and both reboot.

The tests share the machines and run in order.
"""

import json
import time

import pytest

from ansible_collections.locustfleet.triton.plugins.module_utils._client import CloudAPIClient
from ansible_collections.locustfleet.triton.plugins.module_utils._config import CloudAPIConfig
from ansible_collections.locustfleet.triton.plugins.module_utils._keys import load_private_key

from rolesutil import PACKAGE, Fleet, wait_until
from hostutil import Ssh, assert_host_clean, host_snapshot, require_real_hosts

CLUSTER = "fleet-image"
SCRIPT = "/opt/locust/bin/locustfleet-role-is"
DROP_INS = {"supervisor.service": "worker", "locust-master.service": "master"}
# Shell syntax in every form a careless script would run; the flag file must never appear.
PWNED = "/tmp/pwned"
HOSTILE = "$(touch %s) `touch %s`; touch %s" % (PWNED, PWNED, PWNED)
BOOT_MARK = "/run/fleet-image-test-boot"  # /run is a tmpfs: gone after a reboot


@pytest.fixture(scope="module")
def image_fleet(tritonsim_module_factory, tmp_path_factory):
    require_real_hosts("the fleet_image role on real hosts")
    from tritonsim.nspawn import build_base_image  # pylint: disable=import-outside-toplevel
    build_base_image()
    before = host_snapshot()
    sim = tritonsim_module_factory(extra_args=["--backend", "nspawn"])
    client = CloudAPIClient(CloudAPIConfig(url=sim.url, account=sim.account, key_id=sim.fingerprint, rate_limit=0),
                            key=load_private_key(str(sim.key_path)))
    fleet = Fleet(sim, client, Ssh(sim.key_path), sim.info()["guest_url"], tmp_path_factory.mktemp("fleet-image"))
    fleet.started = time.monotonic()
    try:
        fleet.create("template")
        fleet.wait_state("template", "running")
        write_inventory(fleet)
        fleet.first_run = fleet.apply("fleet_image.yml")
        yield fleet
    finally:
        for machine in client.list_all("/%s/machines" % sim.account):
            client.delete("/%s/machines/%s" % (sim.account, machine["id"]))
        assert sim.stop(timeout=180) == 0
        assert_host_clean(before, host_snapshot(), mine=[str(sim.data_dir)])
        print("\n[fleet_image] %.0fs in all" % (time.monotonic() - fleet.started))


def write_inventory(fleet):
    fleet.inventory.write_text(json.dumps({"all": {
        "vars": {
            "ansible_user": "root",
            "ansible_ssh_private_key_file": str(fleet.sim.key_path),
            "ansible_ssh_common_args": "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR",
            "ansible_python_interpreter": "/usr/bin/python3",
            # the machines of this test never stop themselves
            "idle_action": "poweroff",
            "idle_dry_run": True,
            "locust_idle_watcher_cluster": CLUSTER,
        },
        "hosts": {"template": {"ansible_host": fleet.ip("template")}},
    }}, indent=2))


# -- helpers

def set_metadata(fleet, name, **values):
    fleet.client.post(fleet.path(name, "metadata"), values)


def delete_metadata(fleet, name, key):
    fleet.client.delete(fleet.path(name, "metadata", key))


def role_is(fleet, name, *args):
    """(exit status, stderr) of the role check run by hand."""
    res = fleet.run(name, " ".join([SCRIPT, *args]), check=False)
    return res.returncode, res.stderr.strip()


def unit(fleet, name, service):
    out = fleet.out(name, "systemctl show -p ActiveState -p SubState -p Result %s" % service)
    return dict(line.split("=", 1) for line in out.splitlines())


def assert_runs(fleet, name, service):
    state = unit(fleet, name, service)
    assert state["ActiveState"] == "active" and state["SubState"] == "running", (
        name, service, state, fleet.out(name, "journalctl -b --no-pager -n 40 -u %s" % service, check=False))


def assert_skipped(fleet, name, service):
    """Skipped by its ExecCondition: inactive, not failed."""
    state = unit(fleet, name, service)
    assert state == {"ActiveState": "inactive", "SubState": "dead", "Result": "exec-condition"}, (name, service, state)


def locust_processes(fleet, name, kind):
    """Locust processes of the user locust started with --master or --worker."""
    res = fleet.run(name, "pgrep -u locust -c -f -- ' --%s '" % kind, check=False)
    return int(res.stdout.strip() or 0)


def running_workers(fleet, name):
    status = fleet.out(name, "supervisorctl status", check=False)
    return [line.split()[0] for line in status.splitlines() if line.split()[1:2] == ["RUNNING"]]


def wait_booted(fleet, name, timeout=180):
    """SSH answers and systemd has finished booting (no job left); the system state."""
    wait_until(lambda: fleet.run(name, "true", check=False, timeout=30).returncode == 0,
               timeout=timeout, interval=1, what="SSH on %s" % name)
    return fleet.run(name, "systemctl is-system-running --wait", check=False, timeout=timeout).stdout.strip()


def seconds_until_connected(fleet, nproc, when, timeout=60):
    """Seconds from now until the master has the worker machine's ``nproc`` processes."""
    started = time.monotonic()
    wait_until(lambda: fleet.connected_workers() == nproc, timeout=timeout, interval=0.25,
               what="the worker machine's %d processes connected to the master %s" % (nproc, when))
    return time.monotonic() - started


def reboot(fleet, names):
    for name in names:
        fleet.run(name, "touch %s" % BOOT_MARK)
    for name in names:
        fleet.action(name, "reboot")
    for name in names:
        wait_until(lambda name=name: fleet.run(name, "test ! -e %s" % BOOT_MARK, check=False, timeout=30).returncode == 0,
                   timeout=180, interval=1, what="%s rebooted" % name)
        fleet.wait_state(name, "running")
        assert wait_booted(fleet, name) == "running", fleet.out(
            name, "systemctl list-units --failed --no-pager; journalctl -b --no-pager -u 'systemd-*' | grep -iE 'fail|error' | tail -20")


# -- the template machine

def test_template_machine_gets_the_check_and_the_drop_ins(image_fleet):
    fleet = image_fleet
    recap = fleet.first_run.recap["template"]
    assert recap["failed"] == 0 and recap["changed"] > 0, recap
    assert fleet.out("template", "stat -c '%U:%G %a' " + SCRIPT) == "root:root 755"
    for service, role in DROP_INS.items():
        path = "/etc/systemd/system/%s.d/locustfleet-role.conf" % service
        assert fleet.out("template", "stat -c '%U:%G %a' " + path) == "root:root 644"
        assert path in fleet.out("template", "systemctl show -p DropInPaths " + service)
        # systemd has read it (daemon-reload), as root ('+') whatever the unit's User=
        condition = fleet.out("template", "systemctl show -p ExecConditionEx " + service)
        assert "path=%s ; argv[]=%s %s ;" % (SCRIPT, SCRIPT, role) in condition, condition
        assert "flags=privileged ;" in condition, condition  # the "+" prefix
    # no locustfleet_role on the template: both run, as on a machine configured by the roles,
    # also when started again (the condition is checked at every start)
    fleet.run("template", "systemctl restart supervisor.service locust-master.service")
    for service in DROP_INS:
        assert_runs(fleet, "template", service)


def test_second_run_changes_nothing(image_fleet):
    recap = image_fleet.apply("fleet_image.yml", extra_vars={"fleet_image_only": True}).recap["template"]
    assert recap["changed"] == 0 and recap["failed"] == 0, recap


def test_activity_files_do_not_reach_the_image(image_fleet):
    """A test run on the template machine leaves activity files, which the idle watcher would read
    as a test running on every machine made from the image: fleet_image removes them (check mode
    only says it would)."""
    fleet = image_fleet
    line = "ts=%.3f event=start role=master state=spawning users=0 pid=1 seq=1" % time.time()
    files = ["activity_master.log", "activity_worker_00.log", "activity_worker_00.log.1"]
    fleet.run("template", "for f in %s; do setpriv --reuid=locust --regid=locust --init-groups "
                          "sh -c 'echo \"$1\" >> \"$2\"' - '%s' /var/log/locust/$f; done" % (" ".join(files), line))
    listing = "ls -A /var/log/locust | grep '^activity' || true"
    assert sorted(fleet.out("template", listing).split()) == files
    check = fleet.apply("fleet_image.yml", extra_vars={"fleet_image_only": True, "fleet_image_check": True})
    assert check.recap["template"]["changed"] == 1 and sorted(fleet.out("template", listing).split()) == files, check.recap
    recap = fleet.apply("fleet_image.yml", extra_vars={"fleet_image_only": True}).recap["template"]
    assert recap["changed"] == 1, recap
    assert fleet.out("template", listing) == ""
    assert fleet.apply("fleet_image.yml", extra_vars={"fleet_image_only": True}).recap["template"]["changed"] == 0


def test_the_check_by_hand(image_fleet):
    """locustfleet-role-is on the template machine for each kind of metadata (tritonsim shows a
    metadata change to mdata-get at once)."""
    fleet = image_fleet
    try:
        assert role_is(fleet, "template", "master")[0] == 0
        assert role_is(fleet, "template", "worker")[0] == 0
        set_metadata(fleet, "template", locustfleet_role="worker")
        assert role_is(fleet, "template", "worker") == (0, "locustfleet-role-is: locustfleet_role is worker: worker runs here")
        assert role_is(fleet, "template", "master") == (
            1, "locustfleet-role-is: locustfleet_role is worker, not master: master skipped")
        set_metadata(fleet, "template", locustfleet_role="master")
        assert role_is(fleet, "template", "master")[0] == 0
        assert role_is(fleet, "template", "worker")[0] == 1
        set_metadata(fleet, "template", locustfleet_role="")  # empty: as no key
        assert role_is(fleet, "template", "master")[0] == 0
        assert role_is(fleet, "template", "worker")[0] == 0
        for value in (HOSTILE, "worker ", "Worker", "-n", "*", "master\nworker"):
            set_metadata(fleet, "template", locustfleet_role=value)
            for role in ("master", "worker"):
                assert role_is(fleet, "template", role) == (
                    1, "locustfleet-role-is: locustfleet_role is neither master nor worker: %s skipped" % role), value
                assert fleet.run("template", "test ! -e " + PWNED, check=False).returncode == 0, value
        # usage errors fail the unit (255) rather than skip it
        for args in ((), ("admin",), ("master", "worker"), ("'*'",), ("'$(touch %s)'" % PWNED,)):
            assert role_is(fleet, "template", *args)[0] == 255, args
        # mdata-get broken (exit 2): retried, then as no key, after about 4 s
        fleet.run("template", "printf '#!/bin/sh\\necho broken >&2\\nexit 2\\n' > /usr/local/sbin/mdata-get && "
                              "chmod 755 /usr/local/sbin/mdata-get")
        started = time.monotonic()
        status, err = role_is(fleet, "template", "worker")
        took = time.monotonic() - started
        assert status == 0 and err.count("broken") == 3 and "failed 3 times (last exit 2)" in err, (status, err)
        assert 3.5 < took < 10, took
        fleet.run("template", "rm /usr/local/sbin/mdata-get")
        # no mdata-get at all (not on Triton): as no key
        fleet.run("template", "mv /usr/sbin/mdata-get /usr/sbin/mdata-get.away")
        assert role_is(fleet, "template", "master") == (
            0, "locustfleet-role-is: no mdata-get on this machine, so no locustfleet_role: master runs here")
        fleet.run("template", "mv /usr/sbin/mdata-get.away /usr/sbin/mdata-get")
    finally:
        fleet.run("template", "rm -f /usr/local/sbin/mdata-get; test -e /usr/sbin/mdata-get || "
                              "mv /usr/sbin/mdata-get.away /usr/sbin/mdata-get", check=False)
        delete_metadata(fleet, "template", "locustfleet_role")


# -- machines made from the image

def create_from_image(fleet, name, metadata):
    body = {"name": name, "image": fleet.image_id, "package": PACKAGE, "tag.locustfleet.cluster": CLUSTER,
            "tag.locustfleet.role": metadata.get("locustfleet_role", "worker")}
    body.update({"metadata.%s" % k: v for k, v in metadata.items()})
    fleet.machines[name] = {"id": fleet.client.post(fleet.path(), body)["id"]}


def test_machines_from_the_image_take_their_role_from_metadata(image_fleet):
    fleet = image_fleet
    fleet.action("template", "stop")
    fleet.wait_state("template", "stopped")
    started = time.monotonic()
    image = fleet.client.post("/%s/images" % fleet.sim.account,
                              {"machine": fleet.machines["template"]["id"], "name": CLUSTER, "version": "1.0.0"})
    wait_until(lambda: fleet.client.get("/%s/images/%s" % (fleet.sim.account, image["id"]), expect=dict)["state"] == "active",
               timeout=600, interval=1, what="the image")
    fleet.image_id = image["id"]
    print("\n[fleet_image] image made in %.0fs" % (time.monotonic() - started))

    started = time.monotonic()
    create_from_image(fleet, "master", {"locustfleet_role": "master"})
    create_from_image(fleet, "worker", {"locustfleet_role": "worker"})  # its master address comes below
    create_from_image(fleet, "plain", {})
    for name in ("master", "worker", "plain"):
        fleet.wait_state(name, "running")
    # the worker machine learns its master's address once the master exists (read at every start)
    set_metadata(fleet, "worker", locust_master_host=fleet.ip("master"))
    for name in ("master", "worker", "plain"):
        assert wait_booted(fleet, name) == "running", fleet.out(
            name, "systemctl list-units --failed --no-pager; journalctl -b --no-pager -u 'systemd-*' | grep -iE 'fail|error' | tail -20")
    print("[fleet_image] 3 machines from the image booted in %.0fs" % (time.monotonic() - started))

    # master: the master's service, no workers (supervisor skipped, not failed)
    assert_runs(fleet, "master", "locust-master.service")
    assert_skipped(fleet, "master", "supervisor.service")
    assert locust_processes(fleet, "master", "worker") == 0
    assert "locustfleet_role is master, not worker: worker skipped" in fleet.out(
        "master", "journalctl -b -u supervisor.service --no-pager")

    # worker: one worker process per vCPU, connected to that master; no master service
    nproc = fleet.nproc("worker")
    assert_runs(fleet, "worker", "supervisor.service")
    assert_skipped(fleet, "worker", "locust-master.service")
    assert locust_processes(fleet, "worker", "master") == 0
    wait_until(lambda: len(running_workers(fleet, "worker")) == nproc and fleet.connected_workers() == nproc,
               timeout=90, interval=1, what="the worker machine's %d processes connected to the master" % nproc)
    assert locust_processes(fleet, "worker", "worker") == nproc

    # no key: both, as on a machine configured by the roles
    assert_runs(fleet, "plain", "supervisor.service")
    assert_runs(fleet, "plain", "locust-master.service")
    assert locust_processes(fleet, "plain", "master") == 1

    # no activity inherited from the template machine
    for name in ("master", "worker", "plain"):
        assert fleet.out(name, "ls -A /var/log/locust | grep '^activity' || true") == "", name


def test_a_waiting_worker_connects_soon_after_its_master_is_known(image_fleet):
    """spawn_slaves asks for the workers before the master has an address and adds it to their metadata
    later. A worker process without one used to sleep 10 s before supervisord started it again, so a
    fleet waited up to 10 s more for its workers; it now looks every second."""
    fleet = image_fleet
    nproc = fleet.nproc("worker")
    delete_metadata(fleet, "worker", "locust_master_host")
    fleet.run("worker", "systemctl restart supervisor.service")
    wait_until(lambda: fleet.connected_workers() == 0, timeout=60, interval=0.5, what="the workers gone from the master")
    time.sleep(1)  # the worker processes are waiting for the address now
    set_metadata(fleet, "worker", locust_master_host=fleet.ip("master"))
    took = seconds_until_connected(fleet, nproc, "after its address arrived")
    print("\n[fleet_image] workers connected %.1fs after their master's address arrived" % took)
    assert took < 7, "the workers connected %.1f s after their master's address arrived" % took


def test_workers_up_before_their_master_connect_when_it_comes(image_fleet):
    """The other order of boots: the workers know their master's address while the master is not up
    (stopped here: still booting, or stopped by its watcher and started after them). Locust's worker
    asks the master again every 5 s (for 5 minutes; then supervisord starts it again), so the
    workers connect soon after the master answers, with nothing run on them."""
    fleet = image_fleet
    nproc = fleet.nproc("worker")
    fleet.action("master", "stop")
    fleet.wait_state("master", "stopped")
    fleet.run("worker", "systemctl restart supervisor.service")
    wait_until(lambda: len(running_workers(fleet, "worker")) == nproc, timeout=60, interval=0.5,
               what="the worker machine's %d processes started again" % nproc)
    time.sleep(12)  # at least two of Locust's connection attempts find no master
    assert len(running_workers(fleet, "worker")) == nproc, fleet.out("worker", "supervisorctl status", check=False)
    assert locust_processes(fleet, "worker", "worker") == nproc

    fleet.action("master", "start")
    fleet.wait_state("master", "running")
    took = seconds_until_connected(fleet, nproc, "started after them", timeout=90)
    print("\n[fleet_image] workers up first connected %.1fs after their master was running" % took)
    assert took < 30, "the workers connected %.1f s after their master was running (its boot, then one 5 s retry)" % took
    assert "FATAL" not in fleet.out("worker", "supervisorctl status", check=False)


def test_a_reboot_takes_the_new_metadata(image_fleet):
    """The role is read at every boot: the worker machine becomes a master; a hostile value on the
    keyless machine starts neither service, and nothing of it is run."""
    fleet = image_fleet
    set_metadata(fleet, "worker", locustfleet_role="master")
    set_metadata(fleet, "plain", locustfleet_role=HOSTILE)
    fleet.run("plain", "rm -f " + PWNED)  # only what this boot does counts
    started = time.monotonic()
    reboot(fleet, ["worker", "plain"])
    print("\n[fleet_image] 2 machines rebooted in %.0fs" % (time.monotonic() - started))

    assert_runs(fleet, "worker", "locust-master.service")
    assert_skipped(fleet, "worker", "supervisor.service")
    assert locust_processes(fleet, "worker", "worker") == 0
    assert locust_processes(fleet, "worker", "master") == 1

    assert fleet.run("plain", "test ! -e " + PWNED, check=False).returncode == 0
    for service in DROP_INS:
        assert_skipped(fleet, "plain", service)
    assert locust_processes(fleet, "plain", "worker") + locust_processes(fleet, "plain", "master") == 0
    assert fleet.out("plain", "journalctl -b -u locust-master.service --no-pager").count(
        "locustfleet_role is neither master nor worker: master skipped") == 1

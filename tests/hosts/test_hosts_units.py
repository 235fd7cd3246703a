"""Parts of tritonsim.nspawn that need no container: subnet choice, mdata-get, mirror
parsing, image snapshot atomicity and identity reset, prerequisite errors, CLI, and the
backend's metadata updates over a stand-in host manager."""

import ipaddress
import json
import os
import shutil
import subprocess
import sys
import threading
import time
import types

import pytest

import tritonsim.nspawn
import tritonsim.nspawn.backend
from tritonsim.nspawn import HostError, PrerequisiteError, check_prerequisites
from tritonsim.nspawn import image, network
from tritonsim.nspawn.errors import MachineNotFound
from tritonsim.nspawn.manager import hostname_for

GUEST = os.path.join(os.path.dirname(tritonsim.nspawn.__file__), "guest")
N = ipaddress.ip_network


# ------------------------------------------------------------------ subnet choice

def test_default_subnet_when_free():
    assert network.choose_subnet(None, [N("192.0.2.0/24")]) == N("10.213.0.0/24")


def test_next_free_24_when_default_is_taken():
    used = [N("10.213.0.0/24"), N("10.213.1.0/25"), N("10.213.2.7/32")]
    assert network.choose_subnet(None, used) == N("10.213.3.0/24")


def test_wider_route_pushes_to_next_block():
    assert network.choose_subnet(None, [N("10.213.0.0/16")]) == N("10.214.0.0/24")


def test_no_free_subnet_is_an_error():
    with pytest.raises(HostError, match="no free private /24"):
        network.choose_subnet(None, [N("10.0.0.0/8")])


def test_explicit_subnet_colliding_is_an_error_not_replaced():
    with pytest.raises(HostError, match="collides with 10.0.0.0/8"):
        network.choose_subnet("10.50.0.0/24", [N("10.0.0.0/8")])
    with pytest.raises(HostError, match="private"):
        network.choose_subnet("8.8.8.0/24", [])
    assert network.choose_subnet("172.31.250.0/24", [N("10.0.0.0/8")]) == N("172.31.250.0/24")


@pytest.mark.skipif(not shutil.which("ip") and not os.path.exists("/usr/sbin/ip"),
                    reason="iproute2 missing")
def test_choice_on_this_host_avoids_its_addresses_routes_and_dns():
    used = network.used_networks()
    assert used, "expected at least one address or route on this host"
    chosen = network.choose_subnet(None, used)
    assert not any(u.overlaps(chosen) for u in used)


# ------------------------------------------------------------------ mdata-get / mdata-list

def _mdata(tmp_path, *args, doc=None, prog="mdata_get.py"):
    path = tmp_path / "metadata.json"
    if doc is not None:
        path.write_text(json.dumps(doc))
    env = dict(os.environ, TRITONSIM_METADATA=str(path))
    return subprocess.run([sys.executable, os.path.join(GUEST, prog), *args],
                          capture_output=True, text=True, check=False, env=env)


DOC = {"customer": {"role": "master", "n": 3, "flag": True, "multi": "a\nb\n"},
       "sdc": {"sdc:uuid": "u-1", "sdc:nics": [{"ip": "10.213.0.2", "primary": True}]}}


def test_mdata_get_values_and_exit_codes(tmp_path):
    r = _mdata(tmp_path, "role", doc=DOC)
    assert (r.returncode, r.stdout) == (0, "master\n")
    assert _mdata(tmp_path, "n").stdout == "3\n"
    assert _mdata(tmp_path, "flag").stdout == "true\n"
    assert _mdata(tmp_path, "multi").stdout == "a\nb\n"  # no extra newline
    assert _mdata(tmp_path, "sdc:uuid").stdout == "u-1\n"
    assert json.loads(_mdata(tmp_path, "sdc:nics").stdout)[0]["ip"] == "10.213.0.2"
    r = _mdata(tmp_path, "nope")
    assert (r.returncode, r.stdout, r.stderr) == (1, "", "No metadata for 'nope'\n")
    assert _mdata(tmp_path, "sdc:nope").returncode == 1
    assert _mdata(tmp_path, "sdc:uuid"[4:]).returncode == 1  # customer "uuid" != sdc:uuid
    assert _mdata(tmp_path).returncode == 3
    os.unlink(tmp_path / "metadata.json")
    assert _mdata(tmp_path, "role").returncode == 2


def test_mdata_list_lists_customer_keys_only(tmp_path):
    r = _mdata(tmp_path, doc=DOC, prog="mdata_list.py")
    assert r.returncode == 0 and r.stdout.split() == ["flag", "multi", "n", "role"]


# ------------------------------------------------------------------ mirror, names

def test_debian_mirror_from_deb822_skips_security(tmp_path, monkeypatch):
    monkeypatch.delenv("TRITONSIM_DEBIAN_MIRROR", raising=False)
    d = tmp_path / "sources.list.d"
    d.mkdir()
    (d / "debian.sources").write_text(
        "Types: deb\nURIs: http://mirror.example/debian-security\nSuites: bookworm-security\n"
        "Components: main\n\nTypes: deb\n# comment\nURIs: http://mirror.example/debian\n"
        "Suites: bookworm bookworm-updates\nComponents: main\n")
    assert image.debian_mirror(str(tmp_path)) == "http://mirror.example/debian"


def test_debian_mirror_from_one_line_format(tmp_path, monkeypatch):
    monkeypatch.delenv("TRITONSIM_DEBIAN_MIRROR", raising=False)
    (tmp_path / "sources.list").write_text(
        "deb http://sec.example/debian-security bookworm-security main\n"
        "deb [arch=amd64] http://m.example/debian bookworm main\n")
    assert image.debian_mirror(str(tmp_path)) == "http://m.example/debian"
    monkeypatch.setenv("TRITONSIM_DEBIAN_MIRROR", "http://override.example/debian")
    assert image.debian_mirror(str(tmp_path)) == "http://override.example/debian"


def test_debian_mirror_missing_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.delenv("TRITONSIM_DEBIAN_MIRROR", raising=False)
    with pytest.raises(HostError, match="TRITONSIM_DEBIAN_MIRROR"):
        image.debian_mirror(str(tmp_path))


def test_hostname_from_alias():
    assert hostname_for("web-1", "x") == "web-1"
    assert hostname_for("locust_worker.7", "x") == "locust-worker-7"
    assert hostname_for("___", "abcdef01-2345") == "ts-abcdef01"
    assert len(hostname_for("a" * 100, "x")) == 63


def test_machine_names_fit_interface_limits():
    names = network.names_for("0123abcd", "a0a0a0a0-1111-4222-8333-444444444444")
    assert len(names["veth"]) <= 15
    assert names != network.names_for("0123abcd", "b0a0a0a0-1111-4222-8333-444444444444")
    mac = network.mac_for("a0a0a0a0-1111-4222-8333-444444444444")
    assert mac.startswith("90:b8:d0:") and len(mac) == 17


# ------------------------------------------------------------------ images

def _fake_rootfs(root):
    for d in ("etc/ssh", "var/lib/tritonsim/metadata", "var/lib/dbus", "root/.ssh",
              "var/log/journal/abc"):
        os.makedirs(os.path.join(root, d), exist_ok=True)
    files = {"etc/ssh/ssh_host_ed25519_key": "k", "etc/ssh/ssh_host_ed25519_key.pub": "p",
             "etc/ssh/sshd_config": "cfg", "etc/machine-id": "0123456789abcdef\n",
             "etc/hostname": "old\n", "root/.ssh/authorized_keys": "ssh-ed25519 AAA",
             "root/data": "keep me", "var/lib/tritonsim/user-script.done": "exit=0",
             "var/lib/tritonsim/metadata/metadata.json": "{}",
             "var/log/journal/abc/system.journal": "j"}
    for rel, text in files.items():
        with open(os.path.join(root, rel), "w") as f:
            f.write(text)


def test_snapshot_copies_files_and_resets_identity(tmp_path):
    src = tmp_path / "src"
    _fake_rootfs(str(src))
    out = image.snapshot_rootfs(str(src), str(tmp_path / "images" / "img1"), name="img1")
    root = image.rootfs_of(out)
    info = image.read_image_info(out)
    assert info["name"] == "img1" and info["origin"] == "snapshot"
    assert open(os.path.join(root, "root/data")).read() == "keep me"
    assert open(os.path.join(root, "etc/ssh/sshd_config")).read() == "cfg"
    assert not [f for f in os.listdir(os.path.join(root, "etc/ssh")) if f.startswith("ssh_host")]
    assert os.path.getsize(os.path.join(root, "etc/machine-id")) == 0
    assert os.readlink(os.path.join(root, "var/lib/dbus/machine-id")) == "/etc/machine-id"
    for gone in ("etc/hostname", "root/.ssh/authorized_keys",
                 "var/lib/tritonsim/user-script.done", "var/log/journal/abc"):
        assert not os.path.lexists(os.path.join(root, gone)), gone
    assert os.listdir(os.path.join(root, "var/lib/tritonsim/metadata")) == []
    assert os.listdir(tmp_path / "images") == ["img1"]  # no temp dir left
    with pytest.raises(HostError, match="already exists"):
        image.snapshot_rootfs(str(src), out)


def test_failed_snapshot_leaves_no_image_and_no_temp_dir(tmp_path):
    with pytest.raises(HostError):
        image.snapshot_rootfs(str(tmp_path / "missing"), str(tmp_path / "images" / "img"))
    assert os.listdir(tmp_path / "images") == []
    assert image.read_image_info(str(tmp_path / "images" / "img")) is None


def test_stale_partial_image_from_dead_process_is_removed(tmp_path):
    stale = tmp_path / ".tmp-debian-12-abc-pid999999999-1"
    (stale / "rootfs").mkdir(parents=True)
    live = tmp_path / (".tmp-x-pid%d-2" % os.getppid())
    live.mkdir()
    image._cleanup_stale_tmp(str(tmp_path))
    assert not stale.exists() and live.exists()


def test_builder_hash_names_the_cached_image():
    h = image.builder_hash()
    assert len(h) == 12 and h == image.builder_hash()


# ------------------------------------------------------------------ prerequisites, CLI

def test_builder_hash_ignores_what_an_installed_package_adds_to_guest(tmp_path, monkeypatch):
    """pip byte-compiles guest/*.py into guest/__pycache__ when tritonsim is installed (not editable)."""
    before = image.builder_hash()
    guest = tmp_path / "guest"
    shutil.copytree(GUEST, guest)
    (guest / "__pycache__").mkdir()
    (guest / "__pycache__" / "mdata_get.cpython-311.pyc").write_bytes(b"\0")
    monkeypatch.setattr(image, "GUEST_DIR", str(guest))
    assert image.builder_hash() == before


def test_missing_tool_error_says_what_to_install():
    with pytest.raises(PrerequisiteError) as e:
        check_prerequisites(["systemd-nspawn-does-not-exist"], need_root=False)
    assert "apt-get install" in str(e.value)
    if os.geteuid() != 0:
        with pytest.raises(PrerequisiteError, match="must run as root"):
            check_prerequisites([])


def _cli(*args, as_nobody=False):
    cmd = [sys.executable, "-m", "tritonsim.nspawn", *args]
    if as_nobody:
        cmd = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *cmd]
    return subprocess.run(cmd, capture_output=True, text=True, check=False, cwd="/")


def test_cli_not_root_is_one_clear_line_without_traceback(tmp_path):
    as_nobody = os.geteuid() == 0
    if as_nobody and not shutil.which("setpriv"):
        pytest.skip("setpriv (util-linux) missing")
    os.chmod(tmp_path, 0o755)
    state = tmp_path / "state"
    state.mkdir(mode=0o777)
    (state / "state.json").write_text("{}")
    r = _cli("cleanup", "--state", str(state), as_nobody=as_nobody)
    assert r.returncode == 2, r
    assert "must run as root" in r.stderr and "Traceback" not in r.stderr
    assert r.stderr.startswith("error: ")


def test_cli_cleanup_without_state_is_a_no_op(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("needs root")
    r = _cli("cleanup", "--state", str(tmp_path / "none"))
    assert r.returncode == 0 and "nothing to clean up" in r.stdout
    assert not (tmp_path / "none").exists()


# ------------------------------------------------------------------ backend: metadata updates never lost

class StandInHostManager:
    """HostManager's calls that NspawnBackend makes for create and update_metadata, in memory. A machine is
    known once create() got past its slow part (image, network), which waits for ``prepared``;
    ``metadata`` holds what its metadata.json would hold; ``hold_first_update`` makes the first update
    wait for ``go_on`` once it has taken the machine's metadata."""

    def __init__(self, state_dir, **options):
        self.machines = {}
        self.prepared = threading.Event()
        self.update_tried = threading.Event()
        self.hold_first_update = False
        self.holding = threading.Event()
        self.go_on = threading.Event()
        self.updates = 0

    def delete(self, machine_id):
        raise MachineNotFound("no machine %s" % machine_id)

    def create(self, machine_id, alias, image_dir, metadata=None, authorized_keys=None, **options):
        assert self.prepared.wait(10)
        self.machines[machine_id] = dict(metadata or {})   # the boot writes metadata.json
        return types.SimpleNamespace(ip="10.213.0.2", mac="02:00:00:00:00:02", gateway="10.213.0.1",
                                     netmask="255.255.255.0", state="running")

    def update_metadata(self, machine_id, metadata=None, sdc=None):
        self.update_tried.set()
        if machine_id not in self.machines:
            raise MachineNotFound("no machine %s" % machine_id)
        self.updates += 1
        if self.hold_first_update and self.updates == 1:
            self.holding.set()
            assert self.go_on.wait(10)
        self.machines[machine_id] = dict(metadata)


class Reports:
    def __init__(self):
        self.provisioned = threading.Event()

    def machine_provisioned(self, machine_id, nics, compute_node):
        self.provisioned.set()

    def machine_provision_failed(self, machine_id, reason):
        raise AssertionError(reason)


MID = "c0c0c0c0-1111-4222-8333-444444444444"
MACHINE = {"id": MID, "name": "meta-1", "owner": "", "package": "g1-small", "brand": "lx", "requested_networks": []}


@pytest.fixture
def standin_backend(tmp_path, monkeypatch):
    monkeypatch.setattr(tritonsim.nspawn.backend, "check_prerequisites", lambda: None)
    monkeypatch.setattr(tritonsim.nspawn.backend, "HostManager", StandInHostManager)
    monkeypatch.setattr(tritonsim.nspawn.backend, "build_base_image", lambda cache=None: str(tmp_path / "base"))
    backend = tritonsim.nspawn.backend.NspawnBackend(str(tmp_path))
    backend.events = Reports()
    yield backend
    backend.hm.prepared.set()
    backend.hm.go_on.set()
    backend._pool.shutdown(wait=True)
    backend._fw_pool.shutdown(wait=True)


def test_a_metadata_update_before_the_manager_knows_the_machine_is_written_after_its_boot(standin_backend):
    """AddMachineMetadata while the machine is still being provisioned, before the host manager registered it
    (MachineNotFound): the update used to be dropped, and the guest kept the metadata of CreateMachine."""
    backend, hm = standin_backend, standin_backend.hm
    backend.create(dict(MACHINE), {"id": "seed-image"}, {"role": "worker", "master": "unknown"}, ["ssh-ed25519 K"])
    backend.update_metadata(dict(MACHINE), {"role": "worker", "master": "10.213.0.9"})
    assert hm.update_tried.wait(10)   # it reached the manager, which did not know the machine yet
    hm.prepared.set()
    assert backend.events.provisioned.wait(10)
    assert hm.machines[MID] == {"role": "worker", "master": "10.213.0.9"}


def test_an_older_metadata_update_never_undoes_a_newer_one(standin_backend):
    backend, hm = standin_backend, standin_backend.hm
    hm.prepared.set()
    backend.create(dict(MACHINE), {"id": "seed-image"}, {"v": "0"}, ["ssh-ed25519 K"])
    assert backend.events.provisioned.wait(10)
    hm.hold_first_update = True
    backend.update_metadata(dict(MACHINE), {"v": "1"})
    assert hm.holding.wait(10)        # the first update is being written, slowly
    backend.update_metadata(dict(MACHINE), {"v": "2"})
    time.sleep(0.3)                   # room for the second one to overtake (the old code let it)
    hm.go_on.set()
    backend._pool.shutdown(wait=True)
    assert hm.machines[MID] == {"v": "2"}


def test_create_without_updates_writes_metadata_once(standin_backend):
    backend, hm = standin_backend, standin_backend.hm
    hm.prepared.set()
    backend.create(dict(MACHINE), {"id": "seed-image"}, {"v": "0"}, ["ssh-ed25519 K"])
    assert backend.events.provisioned.wait(10)
    assert hm.machines[MID] == {"v": "0"} and hm.updates == 0   # the boot wrote it, nothing after


# ------------------------------------------------------------------ each container's cgroups

HYBRID_MOUNTS = """\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
"""
HYBRID_CGROUP = "9:name=systemd:/user.slice/session-4.scope\n1:cpu:/\n0::/user.slice/session-4.scope\n"


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_cgroups_of_a_container_on_a_hybrid_host(tmp_path):
    from tritonsim.nspawn import cgroups  # pylint: disable=import-outside-toplevel
    dirs = cgroups.machine_dirs("tsim-0123456789ab", write(tmp_path, "mi", HYBRID_MOUNTS), write(tmp_path, "cg", HYBRID_CGROUP))
    assert dirs == ["/sys/fs/cgroup/unified/user.slice/session-4.scope/tsim-0123456789ab",
                    "/sys/fs/cgroup/systemd/user.slice/session-4.scope/tsim-0123456789ab"]


def test_cgroups_of_a_container_on_a_cgroup2_host_inside_a_service(tmp_path):
    from tritonsim.nspawn import cgroups  # pylint: disable=import-outside-toplevel
    mounts = "30 23 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n"
    dirs = cgroups.machine_dirs("tsim-x", write(tmp_path, "mi", mounts), write(tmp_path, "cg", "0::/system.slice/tritonsim.service\n"))
    assert dirs == ["/sys/fs/cgroup/system.slice/tritonsim.service/tsim-x"]


def test_cgroups_of_a_container_where_the_mount_shows_a_subtree(tmp_path):
    """Inside a container of its own, /sys/fs/cgroup shows the subtree its cgroup namespace starts at."""
    from tritonsim.nspawn import cgroups  # pylint: disable=import-outside-toplevel
    mounts = "30 23 0:26 /payload /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n"
    dirs = cgroups.machine_dirs("tsim-x", write(tmp_path, "mi", mounts), write(tmp_path, "cg", "0::/payload/app.scope\n"))
    assert dirs == ["/sys/fs/cgroup/app.scope/tsim-x"]


def test_no_cgroups_where_the_host_mounts_no_systemd_hierarchy(tmp_path):
    from tritonsim.nspawn import cgroups  # pylint: disable=import-outside-toplevel
    mounts = "32 31 0:29 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n"
    assert cgroups.machine_dirs("tsim-x", write(tmp_path, "mi", mounts), write(tmp_path, "cg", "1:cpu:/\n")) == []
    assert cgroups.join_command([], ["nsenter", "x"]) == ["nsenter", "x"]


def test_the_command_starts_in_the_cgroups(tmp_path):
    """join_command's shell writes its own pid to each cgroup.procs, then execs the command (same pid)."""
    from tritonsim.nspawn import cgroups  # pylint: disable=import-outside-toplevel
    dirs = [tmp_path / "unified" / "tsim-x", tmp_path / "systemd" / "tsim-x"]
    cgroups.make([str(d) for d in dirs])
    cmd = cgroups.join_command([str(d) for d in dirs], [sys.executable, "-c", "import os; print(os.getpid())"])
    res = subprocess.run(cmd, capture_output=True, text=True, check=True)
    assert [(d / "cgroup.procs").read_text().strip() for d in dirs] == [res.stdout.strip()] * 2


def test_the_command_does_not_start_outside_its_cgroup(tmp_path):
    from tritonsim.nspawn import cgroups  # pylint: disable=import-outside-toplevel
    cmd = cgroups.join_command([str(tmp_path / "missing")], ["touch", str(tmp_path / "ran")])
    assert subprocess.run(cmd, capture_output=True, check=False).returncode == 125
    assert not (tmp_path / "ran").exists()


def test_removing_a_containers_cgroups_goes_bottom_up(tmp_path):
    from tritonsim.nspawn import cgroups  # pylint: disable=import-outside-toplevel
    top = tmp_path / "tsim-x"
    (top / "payload" / "system.slice" / "a.service").mkdir(parents=True)
    (top / "supervisor").mkdir()
    (tmp_path / "tsim-y").mkdir()
    assert cgroups.remove([str(top)], timeout=0.5) == []
    assert not top.exists() and (tmp_path / "tsim-y").is_dir()

"""What a guest (or another local user) must not get from tritonsim's files, console
and network: root-only metadata and image stores, root-only apt credentials, a capped
console log, dropped capabilities, no forwarding to link-local addresses.

The tests on files and processes need no container; the network one makes a bridge
and iptables rules (no container, no traffic); the guest ones are in
test_tritonsim_nspawn.py.
"""

import glob
import json
import os
import shutil
import stat
import subprocess
import tempfile

import pytest

from hostutil import assert_host_clean, host_snapshot, require_real_hosts, rm_state_dir
from tritonsim.nspawn import container, image, network, shared
from tritonsim.nspawn import metadata as mdoc

NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (chown, setpriv, iptables)")


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def open_dir():
    """A directory every local user can traverse (unlike pytest's tmp_path), so modes
    below it decide who reads what."""
    d = tempfile.mkdtemp(prefix="tritonsim-hardening-", dir="/var/tmp")
    os.chmod(d, 0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


# ------------------------------------------------------------------ 1. guest metadata

MACHINE = {"id": "m-1", "alias": "web", "hostname": "web", "mac": "90:b8:d0:00:00:01",
           "ip": "10.213.0.2", "metadata": {"user-script": "#!/bin/sh\necho secret\n",
                                            "root_authorized_keys": "ssh-ed25519 AAAA k"}}
NET = {"subnet": "10.213.0.0/24", "gateway": "10.213.0.1"}


@needs_root
def test_metadata_dir_and_file_are_root_only(open_dir):
    meta = os.path.join(open_dir, "metadata")
    os.makedirs(meta, mode=0o755)  # as an older tritonsim left it
    os.chmod(meta, 0o755)
    mdoc.write(meta, MACHINE, NET)
    path = os.path.join(meta, mdoc.FILE_NAME)
    assert (mode(meta), mode(path)) == (0o700, 0o600)
    assert os.stat(path).st_uid == 0
    # another user (the guest's locust user is such a user in the bind mount) reads nothing
    other = subprocess.run(NOBODY + ["cat", path], capture_output=True, text=True, check=False)
    assert other.returncode != 0 and "secret" not in other.stdout, other
    with open(path, encoding="utf-8") as f:  # root (the guest's root too) still does
        assert json.load(f)["customer"]["user-script"].endswith("echo secret\n")


# ------------------------------------------------------------------ 2. data dir, images, cache

@needs_root
def test_backend_makes_its_tree_root_only_also_when_it_was_0755(open_dir):
    require_real_hosts("the backend's directory modes")
    from tritonsim.nspawn.backend import NspawnBackend
    data = os.path.join(open_dir, "data")
    for sub in ("nspawn", "nspawn/images", "nspawn/hosts"):
        os.makedirs(os.path.join(data, sub), mode=0o755, exist_ok=True)
        os.chmod(os.path.join(data, sub), 0o755)
    backend = NspawnBackend(data)  # no machine, no bridge yet
    try:
        assert {sub: mode(os.path.join(data, sub)) for sub in ("nspawn", "nspawn/images", "nspawn/hosts")} \
            == {"nspawn": 0o700, "nspawn/images": 0o700, "nspawn/hosts": 0o700}
    finally:
        backend.close()


@needs_root
def test_snapshot_makes_the_image_store_root_only(open_dir):
    src = os.path.join(open_dir, "src")
    os.makedirs(os.path.join(src, "usr/bin"))
    with open(os.path.join(src, "usr/bin/su"), "w") as f:
        f.write("setuid root binary\n")
    os.chmod(os.path.join(src, "usr/bin/su"), 0o4755)
    store = os.path.join(open_dir, "images")
    os.makedirs(store, mode=0o755)
    os.chmod(store, 0o755)
    out = image.snapshot_rootfs(src, os.path.join(store, "img-1"), name="img-1")
    assert mode(store) == 0o700
    assert mode(os.path.join(out, "rootfs/usr/bin/su")) == 0o4755  # the guest's own modes stay
    assert subprocess.run(NOBODY + ["ls", os.path.join(out, "rootfs")], capture_output=True,
                          check=False).returncode != 0


@needs_root
def test_cached_base_image_dir_is_made_root_only(open_dir):
    require_real_hosts("build_base_image")
    cache = os.path.join(open_dir, "cache")
    final = os.path.join(cache, "%s-%s" % (image.BASE_NAME, image.builder_hash()))
    os.makedirs(os.path.join(final, "rootfs"))
    os.chmod(cache, 0o755)
    with open(os.path.join(final, "image.json"), "w") as f:
        json.dump({"name": image.BASE_NAME}, f)
    assert image.build_base_image(cache) == final  # cached: no debootstrap
    assert mode(cache) == 0o700


# ------------------------------------------------------------------ 3. host apt credentials

SOURCES = ("Types: deb\nURIs: http://fleet:s3cret@127.0.0.1:9/debian\nSuites: bookworm\n"
           "Components: main\n")
PROXY = 'Acquire::http::Proxy "http://fleet:s3cret@127.0.0.1:3128";\n'


def _fake_host_apt(top):
    apt = os.path.join(top, "hostapt")
    os.makedirs(os.path.join(apt, "sources.list.d"))
    os.makedirs(os.path.join(apt, "apt.conf.d"))
    for rel, text in (("sources.list.d/mirror.sources", SOURCES), ("apt.conf.d/80proxy", PROXY),
                      ("apt.conf.d/90hook", 'DPkg::Post-Invoke {"/host/only";};\n')):
        with open(os.path.join(apt, rel), "w") as f:
            f.write(text)
        os.chmod(os.path.join(apt, rel), 0o644)
    rootfs = os.path.join(top, "rootfs")
    os.makedirs(os.path.join(rootfs, "etc/apt/sources.list.d"))
    os.makedirs(os.path.join(rootfs, "etc/apt/apt.conf.d"))
    with open(os.path.join(rootfs, "etc/apt/sources.list"), "w") as f:
        f.write("deb http://fleet:s3cret@127.0.0.1:9/debian bookworm main\n")  # debootstrap's
    return apt, rootfs


@needs_root
def test_host_apt_config_is_copied_root_only(open_dir, monkeypatch):
    apt, rootfs = _fake_host_apt(open_dir)
    real_glob = glob.glob
    # the host's /etc/apt is the fake one for this call
    monkeypatch.setattr(glob, "glob", lambda pattern, **kw: real_glob(
        apt + pattern[len("/etc/apt"):] if pattern.startswith("/etc/apt/") else pattern, **kw))
    image.install_host_apt_config(rootfs)
    sources = os.path.join(rootfs, "etc/apt/sources.list.d/mirror.sources")
    proxy = os.path.join(rootfs, "etc/apt/apt.conf.d/80proxy")
    with open(sources) as f1, open(proxy) as f2:
        assert (f1.read(), f2.read()) == (SOURCES, PROXY)
    assert (mode(sources), mode(proxy)) == (0o600, 0o600)
    assert not os.path.exists(os.path.join(rootfs, "etc/apt/apt.conf.d/90hook"))
    assert not os.path.exists(os.path.join(rootfs, "etc/apt/sources.list"))
    for path in (sources, proxy):
        assert subprocess.run(NOBODY + ["cat", path], capture_output=True,
                              check=False).returncode != 0


@needs_root
def test_image_built_before_gets_its_host_apt_files_restricted(open_dir):
    apt, rootfs = _fake_host_apt(open_dir)
    os.unlink(os.path.join(apt, "sources.list.d/mirror.sources"))  # one-line format host
    for rel, text in (("etc/apt/apt.conf.d/80proxy", PROXY), ("etc/apt/apt.conf.d/70debconf", "x\n")):
        with open(os.path.join(rootfs, rel), "w") as f:
            f.write(text)
        os.chmod(os.path.join(rootfs, rel), 0o644)
    os.chmod(os.path.join(rootfs, "etc/apt/sources.list"), 0o644)
    image.restrict_host_apt_config(rootfs, apt)
    assert mode(os.path.join(rootfs, "etc/apt/apt.conf.d/80proxy")) == 0o600
    assert mode(os.path.join(rootfs, "etc/apt/sources.list")) == 0o600
    assert mode(os.path.join(rootfs, "etc/apt/apt.conf.d/70debconf")) == 0o644  # not the host's


def test_image_json_records_the_mirror_without_credentials(tmp_path, monkeypatch):
    """build_base_image with debootstrap faked (no network): image.json and the log."""
    def fake_run(args, check=True, **kw):
        if os.path.basename(args[0]) == "debootstrap":
            os.makedirs(args[-2])
        out = "4096\t.\n" if os.path.basename(args[0]) == "du" else ""
        return subprocess.CompletedProcess(args, 0, out, "")
    monkeypatch.setattr(image, "run", fake_run)
    monkeypatch.setattr(image, "check_prerequisites", lambda *a, **k: {})
    monkeypatch.setattr(image, "configure_base_rootfs", lambda rootfs: None)
    path = image.build_base_image(str(tmp_path / "cache"),
                                  mirror="http://fleet:s3cret@127.0.0.1:9/debian")
    with open(os.path.join(path, "image.json")) as f:
        text = f.read()
    assert "s3cret" not in text and "fleet@" not in text
    assert json.loads(text)["mirror"] == "http://127.0.0.1:9/debian"
    assert image.strip_userinfo("https://tok@m.example:8443/d@b") == "https://m.example:8443/d@b"


# ------------------------------------------------------------------ 4. capabilities

def test_guest_root_loses_mknod_and_other_host_reaching_capabilities():
    m = {"netns": "ns", "nspawn_name": "tsim-x", "hostname": "h", "id": "i"}
    cmd = container.nspawn_command(m, "/root", "/meta")
    for cap in ("CAP_MKNOD", "CAP_AUDIT_CONTROL", "CAP_LINUX_IMMUTABLE"):
        assert "--drop-capability=" + cap in cmd
    assert cmd[-1].startswith(container.NSPAWN_MARK)


# ------------------------------------------------------------------ 5. console log

def test_console_log_stays_capped_while_a_guest_floods_it(tmp_path, monkeypatch):
    """launch() with a fake nspawn that writes 3 MB to its console: the files stay under
    the cap and console_tail still shows the last lines."""
    limit = 100 * 1000
    monkeypatch.setattr(container, "CONSOLE_LOG_MAX", limit, raising=False)
    monkeypatch.setattr(shared, "note_path", lambda path: None)
    writer = ("import sys\nfor i in range(60000):\n"
              "    sys.stdout.write('flood line %06d ........................\\n' % i)\n"
              "sys.stdout.write('last words\\n')\n")
    monkeypatch.setattr(container, "nspawn_command",
                        lambda m, root, meta: ["python3", "-c", writer])
    machine_dir = str(tmp_path)
    proc = container.launch({}, "/nonexistent", machine_dir)
    assert proc.wait(timeout=60) == 0
    relay = getattr(proc, "console_relay", None)
    if relay is not None:
        relay.wait(timeout=30)
    log = os.path.join(machine_dir, "console.log")
    sizes = [os.path.getsize(p) for p in (log, log + ".1") if os.path.exists(p)]
    assert max(sizes) <= limit and sum(sizes) <= 2 * limit, sizes
    assert mode(log) == 0o600
    tail = container.console_tail(log, lines=3).splitlines()
    assert tail[-1] == "last words" and tail[-2].startswith("flood line 059999"), tail


def test_console_tail_reads_the_previous_file_just_after_a_switch(tmp_path):
    log = str(tmp_path / "console.log")
    with open(log + ".1", "w") as f:
        f.write("".join("old %d\n" % i for i in range(100)))
    with open(log, "w") as f:
        f.write("new 1\n")
    assert container.console_tail(log, lines=3).splitlines() == ["old 98", "old 99", "new 1"]


# ------------------------------------------------------------------ 6. forwarding

def _forward_rules():
    return subprocess.run(["iptables", "-w", "-S", "FORWARD"], capture_output=True, text=True,
                          check=True).stdout.splitlines()


@needs_root
def test_guests_are_not_forwarded_to_link_local(tmp_path_factory):
    """The DROP for 169.254.0.0/16 from the bridge sits above the bridge's ACCEPT while
    the network is up and is gone after cleanup (checked with iptables -S only)."""
    require_real_hosts("the forwarding rules")
    from tritonsim.nspawn import HostManager
    top = tmp_path_factory.mktemp("hosts-forward")
    before = host_snapshot()
    hm = HostManager(str(top / "state"))
    try:
        hm.ensure_network()
        rules = [r for r in _forward_rules() if hm.tag in r]
        drop = [i for i, r in enumerate(rules)
                if "-i %s" % hm.bridge in r and "-d 169.254.0.0/16" in r and r.endswith("-j DROP")]
        accept = [i for i, r in enumerate(rules)
                  if r.startswith("-A FORWARD -i %s -m comment" % hm.bridge) and r.endswith("-j ACCEPT")]
        assert drop and accept and drop[0] < accept[0], rules
        assert network.BLOCKED_FROM_GUESTS == ("169.254.0.0/16",)
    finally:
        hm.close(purge=True)
    assert not [r for r in _forward_rules() if hm.tag in r or "169.254.0.0/16" in r and hm.bridge in r]
    assert_host_clean(before, host_snapshot(), [hm.instance_id, str(top)])
    rm_state_dir(top)

"""A guest's symlinks never make the host touch files outside the guest's root.

The guest is not trusted: it can leave any symlink in its filesystem before
CreateImageFromMachine (image.snapshot_rootfs -> reset_identity) or in an image
later machines boot from (container.prepare_root at CreateMachine). These tests call
those real functions on real directory trees with real symlinks that point at a
"host" directory of canary files the test made (never at / or at real host files),
and check the canaries and everything else outside the guest root are unchanged.
No container is needed.
"""

import os
import stat

import pytest

from tritonsim.nspawn import HostError, container, image

from hostutil import tree_state

LABEL = "machine 0f1e2d3c"


def _write(path, text, mode=0o644):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)


def _host_tree(base):
    """What stands for the host: directories of canary files the guest's symlinks aim at."""
    host = os.path.join(base, "host")
    files = {
        "canary": "host canary file\n",
        "journal/system.journal": "host journal canary",
        "journal/sub/user.journal": "host journal canary 2",
        "varlog/journal/deep/system.journal": "host canary under varlog",
        "ssh/ssh_host_ed25519_key": "host private key canary",
        "ssh/ssh_host_ed25519_key.pub": "host public key canary",
        "etc/hostname": "real-host-name\n",
        "etc/hosts": "127.0.0.1 real-host\n",
        "etc/machine-id": "host machine id canary\n",
        "dbus/machine-id": "host dbus id canary\n",
        "lib/user-script.done": "host marker canary",
        "lib/user-script": "host script canary",
        "lib/metadata/metadata.json": "host metadata canary",
        "meta/metadata.json": "host metadata canary 2",
        "dotssh/authorized_keys": "host authorized_keys canary",
        "systemd/random-seed": "host seed canary",
    }
    for rel, text in files.items():
        _write(os.path.join(host, rel), text)
    os.chmod(os.path.join(host, "dotssh"), 0o755)
    return host


def _guest_rootfs(root):
    """A small machine filesystem with everything reset_identity and prepare_root touch."""
    files = {"etc/ssh/ssh_host_ed25519_key": "k", "etc/ssh/ssh_host_ed25519_key.pub": "p",
             "etc/ssh/sshd_config": "cfg", "etc/machine-id": "0123456789abcdef\n",
             "etc/hostname": "old\n", "etc/hosts": "127.0.0.1 localhost\n",
             "root/.ssh/authorized_keys": "ssh-ed25519 AAA", "root/data": "keep me",
             "var/lib/tritonsim/user-script.done": "exit=0",
             "var/lib/tritonsim/user-script": "#!/bin/sh\n",
             "var/lib/tritonsim/metadata/metadata.json": "{}",
             "var/lib/dbus/machine-id": "0123456789abcdef\n",
             "var/lib/systemd/random-seed": "seed",
             "var/log/journal/abc/system.journal": "j"}
    for rel, text in files.items():
        _write(os.path.join(root, rel), text)


def _plant(root, rel, target):
    """What a guest does as root inside: replace rel (whatever it is) by a symlink."""
    path = os.path.join(root, rel)
    if os.path.isdir(path) and not os.path.islink(path):
        for dirpath, dirnames, filenames in os.walk(path, topdown=False):
            for name in filenames:
                os.unlink(os.path.join(dirpath, name))
            for name in dirnames:
                p = os.path.join(dirpath, name)
                os.unlink(p) if os.path.islink(p) else os.rmdir(p)
        os.rmdir(path)
    elif os.path.lexists(path):
        os.unlink(path)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    os.symlink(target, path)


def _escape(root, rel, host_path):
    """A relative symlink target from root/rel that climbs out of root to host_path."""
    depth = len(os.path.normpath(os.path.join(root, rel)).split("/"))
    return "../" * depth + host_path.lstrip("/")


@pytest.fixture
def world(tmp_path):
    host = _host_tree(str(tmp_path))
    guest = str(tmp_path / "guest")
    os.makedirs(guest)
    return host, guest


# (path in the guest, host path under host/ it points at, absolute or relative escape)
RESET_ATTACKS = [
    ("var/log/journal", "journal", "abs"),          # the reported attack, with a canary dir
    ("var/log/journal", "journal", "rel"),
    ("var/log", "varlog", "abs"),                   # intermediate component
    ("etc/ssh", "ssh", "abs"),
    ("etc", "etc", "abs"),
    ("etc", "etc", "rel"),
    ("etc/machine-id", "canary", "abs"),            # a file replaced by a symlink
    ("etc/hostname", "canary", "abs"),
    ("var/lib/dbus", "dbus", "abs"),
    ("var/lib/dbus/machine-id", "canary", "abs"),
    ("var/lib/tritonsim", "lib", "abs"),
    ("var/lib/tritonsim", "lib", "rel"),
    ("var/lib/tritonsim/metadata", "meta", "abs"),
    ("var/lib/tritonsim/user-script.done", "canary", "abs"),
    ("var/lib/systemd", "systemd", "abs"),
    ("root/.ssh", "dotssh", "abs"),
    ("root", "", "abs"),
    ("var", "", "rel"),
]


def _ids(cases):
    return ["%s->%s(%s)" % c for c in cases]


@pytest.mark.parametrize("rel,host_rel,kind", RESET_ATTACKS, ids=_ids(RESET_ATTACKS))
def test_snapshot_never_touches_what_guest_symlinks_point_at(world, tmp_path, rel, host_rel, kind):
    """CreateImageFromMachine's copy + identity reset, with a planted symlink in the machine."""
    host, guest = world
    src = os.path.join(guest, "rootfs")
    _guest_rootfs(src)
    target = os.path.join(host, host_rel).rstrip("/")
    _plant(src, rel, target if kind == "abs" else _escape(src, rel, target))
    before = tree_state(host)
    out = image.snapshot_rootfs(src, str(tmp_path / "images" / "img"), name="img")
    assert tree_state(host) == before
    root = image.rootfs_of(out)
    if rel != "etc":          # the image's own identity is reset (etc/ is the guest's symlink)
        mid = os.path.join(root, "etc/machine-id")
        assert stat.S_ISREG(os.lstat(mid).st_mode) and os.path.getsize(mid) == 0
        assert stat.S_IMODE(os.lstat(mid).st_mode) == 0o444
    if rel != "root":
        assert open(os.path.join(root, "root/data")).read() == "keep me"


def _attack_leaves_host_unchanged(world, rel, host_rel, kind, act):
    """Plant a symlink at guest ``rel`` to the host's ``host_rel`` (absolute, or a ../.. escape),
    run ``act(guest)``: nothing under the host's canary tree may change."""
    host, guest = world
    _guest_rootfs(guest)
    target = os.path.join(host, host_rel).rstrip("/")
    _plant(guest, rel, target if kind == "abs" else _escape(guest, rel, target))
    before = tree_state(host)
    act(guest)
    assert tree_state(host) == before


@pytest.mark.parametrize("rel,host_rel,kind", RESET_ATTACKS, ids=_ids(RESET_ATTACKS))
def test_reset_identity_in_place_stays_inside(world, rel, host_rel, kind):
    _attack_leaves_host_unchanged(world, rel, host_rel, kind, image.reset_identity)


def test_reset_identity_replaces_planted_files_inside_the_guest(world):
    """Symlinks at the last component are removed or replaced themselves, not followed."""
    host, guest = world
    _guest_rootfs(guest)
    canary = os.path.join(host, "canary")
    for rel in ("etc/machine-id", "var/lib/dbus/machine-id", "etc/hostname",
                "var/lib/tritonsim/user-script.done", "root/.ssh/authorized_keys",
                "etc/ssh/ssh_host_rsa_key"):
        _plant(guest, rel, canary)
    before = tree_state(host)
    image.reset_identity(guest)
    assert tree_state(host) == before
    mid = os.path.join(guest, "etc/machine-id")
    assert stat.S_ISREG(os.lstat(mid).st_mode) and os.path.getsize(mid) == 0
    assert os.readlink(os.path.join(guest, "var/lib/dbus/machine-id")) == "/etc/machine-id"
    for rel in ("etc/hostname", "var/lib/tritonsim/user-script.done",
                "root/.ssh/authorized_keys", "etc/ssh/ssh_host_rsa_key"):
        assert not os.path.lexists(os.path.join(guest, rel)), rel


def test_symlinked_directories_resolve_inside_the_guest(world):
    """A symlink on the way means what it means to the guest: its own root, '..' stopped there.

    The targets name the test's canary directories, which the guest has too (its own
    copies): the guest's are emptied, the host's stay.
    """
    host, guest = world
    _guest_rootfs(guest)
    inside = os.path.join(guest, host.lstrip("/"))       # the guest's own HOST/... directory
    _write(os.path.join(inside, "varlog/journal/x/system.journal"), "guest journal")
    _plant(guest, "var/log", os.path.join(host, "varlog"))           # absolute
    _write(os.path.join(inside, "ssh/ssh_host_rsa_key"), "guest key")
    _plant(guest, "etc/ssh", _escape(guest, "etc/ssh", os.path.join(host, "ssh")))  # ../.. past /
    before = tree_state(host)
    image.reset_identity(guest)
    assert tree_state(host) == before
    assert os.listdir(os.path.join(inside, "varlog/journal")) == []
    assert os.listdir(os.path.join(inside, "ssh")) == []


@pytest.mark.parametrize("rel,host_rel,kind", [
    ("etc", "etc", "abs"),
    ("etc", "etc", "rel"),
    ("etc/hostname", "canary", "abs"),
    ("etc/hosts", "canary", "abs"),
    ("root", "", "abs"),
    ("root", "", "rel"),
    ("root/.ssh", "dotssh", "abs"),
    ("root/.ssh", "dotssh", "rel"),
    ("root/.ssh/authorized_keys", "canary", "abs"),
])
def test_prepare_root_never_writes_through_guest_symlinks(world, rel, host_rel, kind):
    """CreateMachine from an image whose files a guest replaced with symlinks."""
    _attack_leaves_host_unchanged(world, rel, host_rel, kind,
                                  lambda guest: container.prepare_root(guest, "new-name", "ssh-ed25519 AAAAnew key"))
    guest = world[1]
    if rel in ("etc/hostname", "etc/hosts", "root/.ssh/authorized_keys"):
        p = os.path.join(guest, rel)
        assert stat.S_ISREG(os.lstat(p).st_mode)
        if rel == "root/.ssh/authorized_keys":
            assert stat.S_IMODE(os.lstat(p).st_mode) == 0o600
            assert open(p).read() == "ssh-ed25519 AAAAnew key\n"


def test_prepare_root_follows_symlinks_the_way_the_guest_does(world):
    host, guest = world
    _guest_rootfs(guest)
    inside = os.path.join(guest, host.lstrip("/"), "home-admin")   # the guest's own copy
    os.makedirs(inside)
    os.makedirs(os.path.join(host, "home-admin"))
    _plant(guest, "root", os.path.join(host, "home-admin"))
    before = tree_state(host)
    container.prepare_root(guest, "n1", "ssh-ed25519 AAAA k")
    assert tree_state(host) == before
    keys = os.path.join(inside, ".ssh/authorized_keys")
    assert open(keys).read() == "ssh-ed25519 AAAA k\n"
    assert stat.S_IMODE(os.stat(os.path.dirname(keys)).st_mode) == 0o700


def test_symlink_loop_is_refused_with_machine_and_path(world):
    from tritonsim.nspawn.guestfs import GuestPathError
    host, guest = world
    _guest_rootfs(guest)
    loop = os.path.join(host, "loop")    # on the host: a canary dir; in the guest: a self-loop
    _write(os.path.join(loop, "hostname"), "canary in the loop target\n")
    _plant(guest, "etc", loop)
    _plant(guest, loop.lstrip("/"), loop)
    before = tree_state(host)
    with pytest.raises(HostError) as info:
        container.prepare_root(guest, "n1", None, LABEL)
    assert isinstance(info.value, GuestPathError)
    assert str(info.value) == LABEL + ": guest path /etc/hostname: too many levels of symbolic links"
    assert "\n" not in str(info.value)
    assert tree_state(host) == before


def test_directory_where_a_file_goes_is_refused(world):
    from tritonsim.nspawn.guestfs import GuestPathError
    host, guest = world
    _guest_rootfs(guest)
    os.unlink(os.path.join(guest, "etc/hostname"))
    os.makedirs(os.path.join(guest, "etc/hostname/x"))
    with pytest.raises(GuestPathError, match=r"^machine 0f1e2d3c: guest path /etc/hostname: is a directory"):
        container.prepare_root(guest, "n1", None, LABEL)
    assert [n for n in os.listdir(os.path.join(guest, "etc")) if n.startswith(".tritonsim")] == []


def test_file_where_a_directory_goes_is_refused(world):
    from tritonsim.nspawn.guestfs import GuestPathError
    host, guest = world
    _guest_rootfs(guest)
    _plant(guest, "root/.ssh", "../etc/hostname")   # resolves (inside) to a file
    before = tree_state(host)
    with pytest.raises(GuestPathError, match=r"^machine 0f1e2d3c: guest path /root/.ssh"):
        container.prepare_root(guest, "n1", "ssh-ed25519 AAAA k", LABEL)
    assert tree_state(host) == before


def test_snapshot_refusal_names_the_machine_and_leaves_no_image(world, tmp_path):
    host, guest = world
    src = os.path.join(guest, "rootfs")
    _guest_rootfs(src)
    loop = os.path.join(host, "journal")   # on the host: canaries; in the guest: a self-loop
    _plant(src, "var/log/journal", loop)
    _plant(src, loop.lstrip("/"), loop)
    before = tree_state(host)
    with pytest.raises(HostError, match=r"^machine 0f1e2d3c: guest path /var/log/journal: "
                                        r"too many levels of symbolic links$"):
        image.snapshot_rootfs(src, str(tmp_path / "images" / "img"), label=LABEL)
    assert os.listdir(tmp_path / "images") == []
    assert tree_state(host) == before

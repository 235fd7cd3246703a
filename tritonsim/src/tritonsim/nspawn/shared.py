"""Host-wide bits that several managers share, reference-counted in /run/tritonsim-nspawn.

- net.ipv4.ip_forward: set to 1 while any manager with NAT is up; the original value
  is restored when the last one leaves.
- /run/netns (its bind mount is made by the first `ip netns add` on a host) and
  /run/systemd/nspawn (made by the first systemd-nspawn): removed again, once empty,
  if tritonsim's use created them.
"""

import contextlib
import os

from . import fsutil
from .cmd import run

SHARED_DIR = "/run/tritonsim-nspawn"
IP_FORWARD = "/proc/sys/net/ipv4/ip_forward"
# path -> marker name; the path is removed (after unmounting) when ours and empty
CREATED_PATHS = {"/run/netns": "created-run-netns",
                 "/run/systemd/nspawn": "created-run-systemd-nspawn"}


def _p(name):
    return os.path.join(SHARED_DIR, name)


def lock():
    os.makedirs(SHARED_DIR, exist_ok=True)
    return fsutil.file_lock(_p("lock"))


def acquire_ip_forward(instance_id):
    with lock():
        with open(IP_FORWARD, encoding="utf-8") as f:
            cur = f.read().strip()
        if cur != "1":
            fsutil.write_atomic(_p("ip_forward.orig"), cur + "\n")
            with open(IP_FORWARD, "w", encoding="utf-8") as f:
                f.write("1\n")
        fsutil.write_atomic(_p("forward." + instance_id), "")


def release_ip_forward(instance_id):
    if not os.path.isdir(SHARED_DIR):
        return
    with lock():
        with contextlib.suppress(FileNotFoundError):
            os.unlink(_p("forward." + instance_id))
        users = [n for n in os.listdir(SHARED_DIR) if n.startswith("forward.")]
        if not users and os.path.exists(_p("ip_forward.orig")):
            with open(_p("ip_forward.orig"), encoding="utf-8") as f:
                value = f.read().strip()
            with open(IP_FORWARD, "w", encoding="utf-8") as f:
                f.write(value + "\n")
            os.unlink(_p("ip_forward.orig"))


def note_path(path):
    """Call before the command that may create path: remember if it did not exist yet."""
    with lock():
        if not os.path.lexists(path) and not os.path.exists(_p(CREATED_PATHS[path])):
            fsutil.write_atomic(_p(CREATED_PATHS[path]), "created by tritonsim nspawn\n")


def _empty_tree(path):
    """True if path holds only (empty) directories."""
    return not any(entry[2] for entry in os.walk(path))


def release_path(path):
    """Remove path if tritonsim created it and nothing is left in it."""
    marker = _p(CREATED_PATHS[path])
    if not os.path.exists(marker):
        return
    with lock():
        locks = os.path.join(path, "locks")
        if os.path.isdir(locks):  # systemd-nspawn's lock files of killed containers
            for name in os.listdir(locks):
                fsutil.remove_if_unlocked(os.path.join(locks, name))
        if os.path.isdir(path) and not _empty_tree(path):
            return
        if os.path.isdir(path) and fsutil.mounts_under(path):
            if fsutil.mounts_under(path) != [os.path.realpath(path)]:
                return  # namespaces still mounted below it
            run(["umount", path], check=False)
        if os.path.isdir(path) and not fsutil.mounts_under(path):
            # bottom-up rmdir of the empty tree
            for entry in os.walk(path, topdown=False):
                for d in entry[1]:
                    with contextlib.suppress(OSError):
                        os.rmdir(os.path.join(entry[0], d))
            with contextlib.suppress(OSError):
                os.rmdir(path)
        if not os.path.exists(path):
            os.unlink(marker)


def release_all_paths():
    for path in CREATED_PATHS:
        release_path(path)


def release_shared_dir():
    """Remove /run/tritonsim-nspawn when no manager uses it any more."""
    with contextlib.suppress(OSError):
        if not [n for n in os.listdir(SHARED_DIR) if n != "lock"]:
            os.unlink(_p("lock"))
            os.rmdir(SHARED_DIR)

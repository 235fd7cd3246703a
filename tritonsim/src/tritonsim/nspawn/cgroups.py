"""Each machine's own cgroup tree.

``systemd-nspawn --keep-unit`` puts the guest in a ``payload`` child of the cgroup it was started
in. Started straight from tritonsim, every container would get the same one, and the guests'
systemds would share one tree: units of the same name in two guests share a cgroup, so one guest's
unit that ends removes the cgroup another guest is putting a process in (its unit fails with
219/CGROUP), and one guest's root can kill another's processes through ``cgroup.kill``.

So each container starts in a cgroup of its own, ``<tritonsim's cgroup>/<nspawn name>``, in every
hierarchy systemd keeps its tree in (the cgroup2 one and the v1 ``name=systemd`` one, whichever the
host has). The directories are made before the boot and, once the container has exited, anything
the guest left there is killed and the directories are removed. A guest can make directories under
its own, nothing else: cgroupfs has no symlinks, and ``rmdir`` removes only empty cgroups.
"""

import errno
import logging
import os
import time

log = logging.getLogger(__name__)

UNIFIED = "0::"            # /proc/PID/cgroup key of the cgroup2 hierarchy
NAMED_SYSTEMD = "name=systemd"


def _mounts(mountinfo):
    """{key: (mount point, root in the hierarchy)} of the hierarchies systemd keeps its tree in."""
    found = {}
    with open(mountinfo, encoding="utf-8") as f:
        for line in f:
            fields = line.split()
            sep = fields.index("-")
            root, mount_point, fstype, super_opts = fields[3], fields[4], fields[sep + 1], fields[sep + 3]
            if fstype == "cgroup2":
                key = UNIFIED
            elif fstype == "cgroup" and NAMED_SYSTEMD in super_opts.split(","):
                key = NAMED_SYSTEMD
            else:
                continue
            found.setdefault(key, (mount_point.encode().decode("unicode_escape"), root))
    return found


def _own_paths(proc_cgroup):
    """{key: this process's path} in the cgroup2 and name=systemd hierarchies."""
    paths = {}
    with open(proc_cgroup, encoding="utf-8") as f:
        for line in f:
            hid, controllers, path = line.rstrip("\n").split(":", 2)
            if hid == "0" and controllers == "":
                paths[UNIFIED] = path
            elif NAMED_SYSTEMD in controllers.split(","):
                paths[NAMED_SYSTEMD] = path
    return paths


def machine_dirs(nspawn_name, mountinfo="/proc/self/mountinfo", proc_cgroup="/proc/self/cgroup"):
    """The cgroup directories a container named ``nspawn_name`` is to start in: one in each
    hierarchy systemd uses that this host mounts."""
    mounts, own = _mounts(mountinfo), _own_paths(proc_cgroup)
    dirs = []
    for key in (UNIFIED, NAMED_SYSTEMD):
        if key not in mounts or key not in own:
            continue
        mount_point, root = mounts[key]
        path = own[key]
        if root != "/" and path.startswith(root.rstrip("/") + "/"):
            path = path[len(root.rstrip("/")):]
        dirs.append(os.path.join(mount_point, path.lstrip("/"), nspawn_name))
    return dirs


def make(dirs):
    for d in dirs:
        os.makedirs(d, exist_ok=True)


def join_command(dirs, command):
    """``command`` run from a shell that first moves itself into each of ``dirs``; it then execs
    the command, which starts where the shell is."""
    if not dirs:
        return list(command)
    script = ('n=$1; shift; while [ "$n" -gt 0 ]; do echo $$ > "$1/cgroup.procs" || exit 125; '
              'shift; n=$((n - 1)); done; exec "$@"')
    return ["/bin/sh", "-c", script, "tritonsim-cgroup", str(len(dirs)), *dirs, *command]


def remove(dirs, timeout=5.0):
    """Kill what is left in ``dirs`` (a container that has exited) and remove them, bottom up.
    Returns the directories that could not be removed."""
    left = []
    for d in dirs:
        kill = os.path.join(d, "cgroup.kill")
        if os.path.exists(kill):
            try:
                with open(kill, "w", encoding="ascii") as f:
                    f.write("1")
            except OSError as exc:
                log.warning("cannot kill what is left in %s: %s", d, exc)
        deadline = time.monotonic() + timeout
        while not _rmdir_tree(d) and time.monotonic() < deadline:
            time.sleep(0.1)  # killed processes leave their cgroups a moment later
        if os.path.isdir(d):
            log.warning("cgroup %s still has processes; left in place", d)
            left.append(d)
    return left


def _rmdir_tree(top):
    """rmdir ``top`` and every cgroup under it, deepest first; True once ``top`` is gone."""
    if not os.path.isdir(top):
        return True
    for path, _dirs, _files in os.walk(top, topdown=False):
        try:
            os.rmdir(path)
        except OSError as exc:
            if exc.errno not in (errno.ENOENT, errno.EBUSY, errno.ENOTEMPTY):
                raise
    return not os.path.isdir(top)

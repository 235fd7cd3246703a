"""Filesystem helpers: atomic writes, mount listing, safe recursive removal, locks."""

import contextlib
import fcntl
import json
import os
import tempfile

from .cmd import run


def write_atomic(path, data, mode=0o644):
    """Write bytes or text to path via a temp file in the same directory and rename."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    d = os.path.dirname(os.path.abspath(path))
    os.makedirs(d, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=d)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def private_dir(path):
    """mkdir -p path as 0700 (root only), and make an existing one 0700 too.

    For directories that hold guest trees (setuid-root binaries, device nodes),
    metadata or credentials: no other local user may traverse them.
    """
    os.makedirs(path, mode=0o700, exist_ok=True)
    if os.stat(path).st_mode & 0o7777 != 0o700:
        os.chmod(path, 0o700)
    return path


def write_json_atomic(path, obj, mode=0o644):
    write_atomic(path, json.dumps(obj, indent=1, sort_keys=True) + "\n", mode)


def _unescape_mount(s):
    # /proc/mounts escapes space, tab, newline and backslash as octal
    return (s.replace("\\040", " ").replace("\\011", "\t")
            .replace("\\012", "\n").replace("\\134", "\\"))


def mounts():
    """Mount points of the calling process's mount namespace, in mount order."""
    out = []
    with open("/proc/self/mounts", encoding="utf-8") as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 3:
                out.append((_unescape_mount(parts[1]), parts[2], _unescape_mount(parts[0])))
    return out


def mount_points():
    return [entry[0] for entry in mounts()]


def is_mountpoint(path):
    path = os.path.realpath(path)
    return path in mount_points()


def mounts_under(path):
    """Mount points at or below path, deepest (latest) first."""
    path = os.path.realpath(path).rstrip("/")
    found = [m for m in mount_points() if m == path or m.startswith(path + "/")]
    return list(reversed(found))


def unmount_all_under(path):
    """Unmount everything mounted at or below path (lazily if busy)."""
    for m in mounts_under(path):
        if run(["umount", m], check=False, quiet=True).returncode != 0:
            run(["umount", "-l", m], check=False)


def safe_rmtree(path):
    """rm -rf that first unmounts anything below path and never crosses a filesystem."""
    if not os.path.lexists(path):
        return
    unmount_all_under(path)
    run(["rm", "-rf", "--one-file-system", path], timeout=900)


@contextlib.contextmanager
def file_lock(path):
    """An exclusive flock on path (created if missing), held for the with block."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def remove_if_unlocked(path):
    """Delete a lock file unless some process holds a flock on it."""
    try:
        fd = os.open(path, os.O_RDWR)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return False
    try:
        os.unlink(path)
    except OSError:
        pass
    os.close(fd)
    return True


def pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def pid_starttime(pid):
    """Start time (clock ticks since boot) of a process, or None if it is gone."""
    try:
        with open("/proc/%d/stat" % pid, encoding="utf-8") as f:
            data = f.read()
    except OSError:
        return None
    # comm may contain spaces and parentheses: split after the last ')'
    fields = data[data.rfind(")") + 2:].split()
    return int(fields[19])


def pid_cmdline(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return [a.decode("utf-8", "replace") for a in f.read().split(b"\0") if a]
    except OSError:
        return []


def child_pids(pid):
    """Direct children of pid (scans /proc)."""
    kids = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % name, encoding="utf-8") as f:
                data = f.read()
        except OSError:
            continue
        fields = data[data.rfind(")") + 2:].split()
        if int(fields[1]) == pid:
            kids.append(int(name))
    return kids

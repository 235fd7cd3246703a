"""One container's runtime: its overlay root, the systemd-nspawn process, readiness.

Per machine directory (MACHINE_DIR under the manager's state dir)::

    upper/ work/     the overlay's writable layer (the machine's "disk"; kept until delete)
    rootfs/          the overlay mount point (mounted only while the machine runs)
    metadata/        metadata.json, bind-mounted read-only into the guest
    console.log      the container's console (systemd boot messages); at most
                     CONSOLE_LOG_MAX bytes, then renamed to console.log.1 (one kept)
"""

import ctypes
import os
import signal
import socket
import subprocess
import sys
import threading
import time

from . import cgroups, fsutil, guestfs, shared
from .cmd import run, which
from .errors import HostError
from .metadata import GUEST_METADATA_DIR

NSPAWN_MARK = "--setenv=TRITONSIM_NSPAWN="  # in every nspawn command line we start

# Capabilities nspawn would give guest root that reach beyond the guest (there is no
# user namespace: guest root is host root, less nspawn's capability bounding set):
#   CAP_MKNOD            device nodes for the host's disks (no device cgroup policy
#                        applies with --keep-unit --register=no)
#   CAP_AUDIT_CONTROL    the host's (not namespaced) audit rules and audit on/off
#   CAP_LINUX_IMMUTABLE  chattr +i on its overlay files: the host could not delete them
# CAP_SYS_MODULE, CAP_SYS_RAWIO, CAP_SYS_TIME are not in nspawn's default set.
DROPPED_CAPABILITIES = ("CAP_MKNOD", "CAP_AUDIT_CONTROL", "CAP_LINUX_IMMUTABLE")

# console.log is written by a relay process (it outlives a crashed manager, as the
# container does): when the file reaches CONSOLE_LOG_MAX bytes it becomes
# console.log.1 (replacing the previous one) and a new console.log is started, so a
# guest writing to its console forever uses at most 2 * CONSOLE_LOG_MAX on the host.
CONSOLE_LOG_MAX = 4 * 2**20
_CONSOLE_RELAY = r"""
import os, sys
path, limit = sys.argv[1], int(sys.argv[2])
def openlog():
    return os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
fd = openlog()
size = os.fstat(fd).st_size
while True:
    try:
        data = os.read(0, 65536)
    except InterruptedError:
        continue
    if not data:
        break
    if size and size + len(data) > limit:
        os.close(fd)
        os.replace(path, path + ".1")
        fd = openlog()
        size = 0
    try:
        os.write(fd, data[-limit:])
    except OSError:
        pass  # disk full: drop console output, keep draining the pipe
    size += min(len(data), limit)
"""


def paths(machine_dir):
    return {k: os.path.join(machine_dir, k)
            for k in ("upper", "work", "rootfs", "metadata", "console.log")}


def mount_overlay(lowerdir, machine_dir):
    p = paths(machine_dir)
    for k in ("upper", "work", "rootfs"):
        os.makedirs(p[k], exist_ok=True)
    if fsutil.is_mountpoint(p["rootfs"]):
        return p["rootfs"]
    if not os.path.isdir(lowerdir):
        raise HostError("image rootfs missing: %s" % lowerdir)
    run(["mount", "-t", "overlay", "overlay", "-o",
         "lowerdir=%s,upperdir=%s,workdir=%s" % (lowerdir, p["upper"], p["work"]), p["rootfs"]])
    return p["rootfs"]


def unmount_overlay(machine_dir):
    root = paths(machine_dir)["rootfs"]
    if fsutil.is_mountpoint(root):
        remove_stale_nspawn_lock(root)
    fsutil.unmount_all_under(root)


NSPAWN_LOCKS = "/run/systemd/nspawn/locks"


def remove_stale_nspawn_lock(root):
    """nspawn's per-tree lock (inode-DEV:INO) stays behind when nspawn is killed."""
    try:
        st = os.stat(root)
    except OSError:
        return
    fsutil.remove_if_unlocked(os.path.join(NSPAWN_LOCKS, "inode-%d:%d" % (st.st_dev, st.st_ino)))


def prepare_root(root, hostname, authorized_keys, label=None):
    """Per-machine identity written into the (mounted) overlay before boot.

    The overlay shows the image, which may be a snapshot of a guest: its paths are
    handled with guestfs.GuestRoot (no guest symlink leads the host outside root).
    label names the machine in errors.
    """
    hosts = ("127.0.0.1\tlocalhost\n127.0.1.1\t%s\n"
             "::1\tlocalhost ip6-localhost ip6-loopback\n" % hostname)
    with guestfs.GuestRoot(root, label) as guest:
        guest.write_file("etc/hostname", hostname + "\n")
        guest.write_file("etc/hosts", hosts)
        if authorized_keys is not None:
            guest.makedirs("root/.ssh", mode=0o700, chmod=0o700)
            text = authorized_keys if authorized_keys.endswith("\n") or not authorized_keys \
                else authorized_keys + "\n"
            guest.write_file("root/.ssh/authorized_keys", text, mode=0o600)


def nspawn_command(m, root, metadata_dir):
    # nsenter first: nspawn mounts the guest's /sys before it joins the netns given by
    # --network-namespace-path, so /sys/class/net would show the host's interfaces;
    # started inside the netns already, the guest sees its own eth0 there too.
    return [
        which("nsenter") or "nsenter", "--net=/run/netns/" + m["netns"], "--",
        which("systemd-nspawn") or "systemd-nspawn",
        "--quiet",
        "-D", root,
        "-b",
        "--register=no", "--keep-unit",        # host systemd is not PID 1 (no machined)
        "-M", m["nspawn_name"],
        "--hostname=" + m["hostname"],
        "--uuid=" + m["id"],                   # /etc/machine-id at first boot
        "--network-namespace-path=/run/netns/" + m["netns"],
        "--bind-ro=%s:%s" % (metadata_dir, GUEST_METADATA_DIR),
        "--resolv-conf=copy-host",
        "--timezone=off",
        "--link-journal=no",
        "--console=read-only",                 # boot messages -> console.log
    ] + ["--drop-capability=" + cap for cap in DROPPED_CAPABILITIES] + [
        NSPAWN_MARK + m["nspawn_name"],
    ]


def start_console_relay(path, limit=None):
    """A process appending what is written to the returned fd to path, capped at limit
    bytes per file (default CONSOLE_LOG_MAX; see there).

    Returns (Popen, write_fd); the caller hands write_fd to the writer and closes it.
    """
    read_fd, write_fd = os.pipe()
    try:
        relay = subprocess.Popen(
            [sys.executable, "-I", "-S", "-c", _CONSOLE_RELAY, path,
             str(int(limit or CONSOLE_LOG_MAX))],
            stdin=read_fd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True, close_fds=True, env={"LANG": "C.UTF-8"})
    except BaseException:
        os.close(write_fd)
        raise
    finally:
        os.close(read_fd)
    return relay, write_fd


def launch(m, root, machine_dir, cgroup_dirs=()):
    """Start systemd-nspawn in its own session, in the cgroups ``cgroup_dirs`` (cgroups.py);
    return the Popen."""
    p = paths(machine_dir)
    cmd = cgroups.join_command(cgroup_dirs, nspawn_command(m, root, p["metadata"]))
    shared.note_path("/run/systemd/nspawn")
    relay, logfd = start_console_relay(p["console.log"])
    try:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S")
        os.write(logfd, ("\n--- %s boot: %s\n" % (stamp, " ".join(cmd))).encode())
        env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8",
               "SYSTEMD_LOG_LEVEL": "warning"}
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=logfd, stderr=logfd,
                                start_new_session=True, env=env, close_fds=True)
    except BaseException:
        os.close(logfd)
        relay.wait()  # EOF: it exits
        raise
    os.close(logfd)  # the relay ends when nspawn (the last writer) exits
    proc.console_relay = relay
    return proc


def console_tail(path, lines=15):
    """The last non-empty lines of the console (from console.log.1 too, just after a switch)."""
    data = b""
    for part in (path, path + ".1"):
        try:
            with open(part, "rb") as f:
                f.seek(max(0, os.path.getsize(part) - (8192 - len(data))))
                data = f.read() + data
        except OSError:
            if part == path:
                return "(no console log)"
        if len(data) >= 8192:
            break
    text = data.decode("utf-8", "replace")
    return "\n".join([line for line in text.splitlines() if line.strip()][-lines:])


_CLONE_NEWNET = 0x40000000


def netns_socket(netns_path):
    """A TCP socket that belongs to the network namespace at netns_path.

    Made in a thread of its own (setns changes only the calling thread's namespace, and that
    thread ends right after), so the caller's namespace never changes."""
    made = {}

    def make():
        try:
            with open(netns_path, "rb") as ns:
                if hasattr(os, "setns"):
                    os.setns(ns.fileno(), _CLONE_NEWNET)
                elif ctypes.CDLL(None, use_errno=True).setns(ns.fileno(), _CLONE_NEWNET) != 0:
                    errno = ctypes.get_errno()
                    raise OSError(errno, "setns(%s): %s" % (netns_path, os.strerror(errno)))
            made["socket"] = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        except OSError as exc:
            made["error"] = exc

    worker = threading.Thread(target=make, name="netns-socket")
    worker.start()
    worker.join()
    if "error" in made:
        raise made["error"]
    return made["socket"]


def ssh_banner(ip, port=22, timeout=1.0, netns_path=None):
    """The SSH server's banner line if it answers, else None.

    With netns_path the connection is made from inside that namespace (the machine's own): to its
    own address it goes over loopback, which the machine's Cloud Firewall always lets through,
    so readiness does not depend on the customer's rules, as on Triton."""
    try:
        if netns_path:
            s = netns_socket(netns_path)
            s.settimeout(timeout)
            s.connect((ip, port))
        else:
            s = socket.create_connection((ip, port), timeout=timeout)
        with s:
            s.settimeout(timeout)
            data = b""
            while b"\n" not in data and len(data) < 512:
                chunk = s.recv(256)
                if not chunk:
                    break
                data += chunk
    except OSError:
        return None
    line = data.split(b"\n", 1)[0].strip()
    return line.decode("ascii", "replace") if line.startswith(b"SSH-") else None


def wait_ssh(ip, proc_alive, timeout, netns_path=None):
    """Poll until sshd on ip:22 sends its banner; False on timeout or if the container died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not proc_alive():
            return None
        banner = ssh_banner(ip, timeout=min(1.0, max(0.1, deadline - time.monotonic())), netns_path=netns_path)
        if banner:
            return banner
        time.sleep(0.2)
    return None


def container_init_pid(nspawn_pid):
    """Host pid of the container's PID 1 (a descendant of nspawn that is 1 in its pid ns)."""
    todo, seen = [nspawn_pid], set()
    while todo:
        pid = todo.pop()
        if pid in seen:
            continue
        seen.add(pid)
        for kid in fsutil.child_pids(pid):
            try:
                with open("/proc/%d/status" % kid, encoding="utf-8") as f:
                    for line in f:
                        if line.startswith("NSpid:"):
                            ids = line.split()[1:]
                            if len(ids) >= 2 and ids[-1] == "1":
                                return kid
            except OSError:
                continue
            todo.append(kid)
    return None


def is_our_nspawn(pid, starttime, nspawn_name):
    """True if pid is still the nspawn process we started (not a reused pid)."""
    if not pid or fsutil.pid_starttime(pid) != starttime:
        return False
    cmd = fsutil.pid_cmdline(pid)
    return bool(cmd) and os.path.basename(cmd[0]) == "systemd-nspawn" \
        and (NSPAWN_MARK + nspawn_name) in cmd


def kill_nspawn(pid, starttime, nspawn_name, timeout, wait_exit):
    """SIGTERM (clean shutdown: systemd inside runs its stop jobs), then SIGKILL.

    wait_exit(seconds) -> bool must report whether the process has exited (the
    manager's watcher reaps it; for foreign pids, poll /proc).
    """
    if not is_our_nspawn(pid, starttime, nspawn_name):
        return "gone"
    with _suppress_lookup():
        os.kill(pid, signal.SIGTERM)
    if wait_exit(timeout):
        return "clean"
    init = container_init_pid(pid)
    if init:
        with _suppress_lookup():
            os.kill(init, signal.SIGKILL)  # kills the whole pid namespace
    if is_our_nspawn(pid, starttime, nspawn_name):
        with _suppress_lookup():
            os.kill(pid, signal.SIGKILL)
    wait_exit(10)
    return "killed"


class _suppress_lookup:
    def __enter__(self):
        return self

    def __exit__(self, et, ev, tb):
        return et is not None and issubclass(et, ProcessLookupError)


def poll_exit(pid, starttime, nspawn_name):
    """A wait_exit for processes that are not our children (after a crash)."""
    def wait(seconds):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if not is_our_nspawn(pid, starttime, nspawn_name):
                return True
            time.sleep(0.2)
        return not is_our_nspawn(pid, starttime, nspawn_name)
    return wait


def leftover_nspawn_dirs(nspawn_name):
    """Runtime dirs nspawn keeps per machine name under /run/systemd/nspawn."""
    base = "/run/systemd/nspawn"
    return [os.path.join(base, sub, nspawn_name) for sub in ("propagate", "unix-export")
            if os.path.lexists(os.path.join(base, sub, nspawn_name))]

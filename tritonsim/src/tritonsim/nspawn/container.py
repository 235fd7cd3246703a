"""One container's runtime: its overlay root, the systemd-nspawn process, readiness.

Per machine directory (MACHINE_DIR under the manager's state dir)::

    upper/ work/     the overlay's writable layer (the machine's "disk"; kept until delete)
    rootfs/          the overlay mount point (mounted only while the machine runs)
    metadata/        metadata.json, bind-mounted read-only into the guest
    console.log      the container's console (systemd boot messages)
"""

import os
import signal
import socket
import subprocess
import time

from . import fsutil, guestfs, shared
from .cmd import run, which
from .errors import HostError
from .metadata import GUEST_METADATA_DIR

NSPAWN_MARK = "--setenv=TRITONSIM_NSPAWN="  # in every nspawn command line we start


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
        NSPAWN_MARK + m["nspawn_name"],
    ]


def launch(m, root, machine_dir):
    """Start systemd-nspawn in its own session; return the Popen."""
    p = paths(machine_dir)
    cmd = nspawn_command(m, root, p["metadata"])
    shared.note_path("/run/systemd/nspawn")
    logf = open(p["console.log"], "ab")
    try:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S")
        logf.write(("\n--- %s boot: %s\n" % (stamp, " ".join(cmd))).encode())
        logf.flush()
        env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8",
               "SYSTEMD_LOG_LEVEL": "warning"}
        return subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=logf, stderr=logf,
                                start_new_session=True, env=env, close_fds=True)
    finally:
        logf.close()


def console_tail(path, lines=15):
    try:
        with open(path, "rb") as f:
            f.seek(max(0, os.path.getsize(path) - 8192))
            text = f.read().decode("utf-8", "replace")
    except OSError:
        return "(no console log)"
    return "\n".join([line for line in text.splitlines() if line.strip()][-lines:])


def ssh_banner(ip, port=22, timeout=1.0):
    """The SSH server's banner line if it answers, else None."""
    try:
        with socket.create_connection((ip, port), timeout=timeout) as s:
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


def wait_ssh(ip, proc_alive, timeout):
    """Poll until sshd on ip:22 sends its banner; False on timeout or if the container died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not proc_alive():
            return None
        banner = ssh_banner(ip, timeout=min(1.0, max(0.1, deadline - time.monotonic())))
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

"""Helpers for the real-host tests: SSH, callback recorder, host snapshots, waits."""

import hashlib
import os
import stat
import subprocess
import threading
import time

import pytest

from tritonsim.nspawn import fsutil
from tritonsim.nspawn.cmd import check_prerequisites
from tritonsim.nspawn.errors import PrerequisiteError

NSPAWN_TOOLS = ["systemd-nspawn", "debootstrap", "iptables", "ip", "ssh", "ssh-keygen"]


def hosts_unavailable():
    if os.geteuid() != 0:
        return "real-host tests need root (overlay mounts, netns, bridge, iptables)"
    try:
        check_prerequisites(NSPAWN_TOOLS)
    except PrerequisiteError as e:
        return str(e)
    return None


def require_real_hosts(what="the real-host tests"):
    """Skip when this machine cannot boot nspawn hosts, except in CI as root, where that is a failure
    (CI runs as root and must run these; tritonsim/install-host-tools.sh installs the tools)."""
    why = hosts_unavailable()
    if why:
        if os.geteuid() == 0 and os.environ.get("CI"):
            pytest.fail("CI must run %s: %s" % (what, why), pytrace=False)
        pytest.skip(why)


class Ssh:
    def __init__(self, key):
        self.key = str(key)

    def run(self, ip, command, check=True, timeout=60):
        args = ["ssh", "-i", self.key, "-o", "StrictHostKeyChecking=no",
                "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes",
                "-o", "ConnectTimeout=10", "-o", "LogLevel=ERROR", "root@" + ip, command]
        res = subprocess.run(args, capture_output=True, text=True, timeout=timeout, check=False,
                             stdin=subprocess.DEVNULL)
        if check and res.returncode != 0:
            raise AssertionError("ssh %s %r -> %d\nstdout: %s\nstderr: %s"
                                 % (ip, command, res.returncode, res.stdout, res.stderr))
        return res

    def out(self, ip, command, **kw):
        return self.run(ip, command, **kw).stdout.strip()


class Events:
    """Records on_state callbacks; wait_for() blocks until a matching one arrives."""

    def __init__(self):
        self.items = []
        self.cond = threading.Condition()

    def __call__(self, machine_id, state, info):
        with self.cond:
            self.items.append((machine_id, state, dict(info)))
            self.cond.notify_all()

    def states(self, machine_id):
        return [item[0] for item in self.of(machine_id)]

    def of(self, machine_id):
        with self.cond:
            return [(s, i) for m, s, i in self.items if m == machine_id]

    def wait_for(self, machine_id, state, timeout=60, **match):
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for m, s, i in self.items:
                    if m == machine_id and s == state and all(i.get(k) == v
                                                              for k, v in match.items()):
                        return i
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("no %s %s %s within %ss; got %s"
                                         % (machine_id, state, match, timeout, self.items))
                self.cond.wait(left)

    def clear(self):
        with self.cond:
            self.items.clear()


def host_snapshot():
    """What cleanup must leave as it found: netns, links, mounts, iptables, ip_forward, machine cgroups."""
    def out(*args):
        return subprocess.run(args, capture_output=True, text=True, check=False).stdout
    links = sorted(line.split(":")[1].strip().split("@")[0]
                   for line in out("ip", "-o", "link", "show").splitlines())
    with open("/proc/sys/net/ipv4/ip_forward") as f:
        forward = f.read().strip()
    return {
        "netns": sorted(line.split()[0]
                        for line in out("ip", "netns", "list").splitlines() if line.strip()),
        "links": links,
        "mounts": sorted("%s %s" % (entry[0], entry[1]) for entry in fsutil.mounts()),
        "iptables_nat": out("iptables", "-w", "-t", "nat", "-S"),
        "iptables_filter": out("iptables", "-w", "-t", "filter", "-S"),
        "ip_forward": forward,
        "run_netns": os.path.exists("/run/netns"),
        "run_systemd_nspawn": os.path.exists("/run/systemd/nspawn"),
        "cgroups": machine_cgroups(),
        "nspawn_procs": sorted(" ".join(fsutil.pid_cmdline(int(p))) for p in os.listdir("/proc")
                               if p.isdigit() and any("TRITONSIM_NSPAWN" in a
                                                      for a in fsutil.pid_cmdline(int(p)))),
    }


def machine_cgroups(top="/sys/fs/cgroup", depth=6):
    """The cgroup directories of tritonsim's containers (cgroups.py: named after the container)."""
    found = []
    for path, dirs, _files in os.walk(top):
        if os.path.basename(path).startswith("tsim-"):
            found.append(path)
            dirs[:] = []
        elif path.count("/") - top.count("/") >= depth:
            dirs[:] = []
    return sorted(found)


# names every tritonsim nspawn manager uses (see network.py, container.py, cgroups.py)
_TRITONSIM_MARKS = ("tritonsim-", "tsbr-", "tsv", "/run/netns", "/machines/", "TRITONSIM_NSPAWN", "/tsim-")
_SHARED_KEYS = ("ip_forward", "run_netns", "run_systemd_nspawn")


def _other_managers_active(snap):
    return any(link.startswith("tsbr-") for link in snap["links"])


def _strip(snap):
    out = {}
    for key, value in snap.items():
        if key in _SHARED_KEYS:
            continue
        lines = value.splitlines() if isinstance(value, str) else value
        out[key] = [v for v in lines if not any(mark in v for mark in _TRITONSIM_MARKS)]
    return out


def assert_host_clean(before, after, mine=()):
    """after == before, or, when other tritonsim managers run on this host (a
    tritonsim serve, another test run), the same outside anyone's tritonsim
    resources and nothing left that names one of `mine` (instance ids, state dirs)."""
    if not _other_managers_active(before) and not _other_managers_active(after):
        for key in before:
            assert after[key] == before[key], (key, before[key], after[key])
        return
    b, a = _strip(before), _strip(after)
    for key in b:
        assert a[key] == b[key], (key, b[key], a[key])
    for key, value in after.items():
        lines = value.splitlines() if isinstance(value, str) else value
        if isinstance(lines, list):
            leaked = [v for v in lines for m in mine if str(m) in v]
            assert not leaked, (key, leaked)


def rm_state_dir(path):
    """Remove a test's state/image dir (never crossing into a mount)."""
    if os.path.exists(path):
        fsutil.safe_rmtree(str(path))


def wait_until(predicate, timeout=30, interval=0.2, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError("timed out after %ss waiting for %s" % (timeout, what))


def tree_state(top):
    """Everything under top: type, mode, owner, size, content digest or link target, mtime."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(top):
        for name in dirnames + filenames + ["."]:
            path = os.path.normpath(os.path.join(dirpath, name))
            st = os.lstat(path)
            if stat.S_ISLNK(st.st_mode):
                what = "link:" + os.readlink(path)
            elif stat.S_ISREG(st.st_mode):
                with open(path, "rb") as f:
                    what = "file:" + hashlib.sha256(f.read()).hexdigest()
            else:
                what = "dir"
            out[os.path.relpath(path, top)] = (what, st.st_mode, st.st_uid, st.st_gid,
                                               st.st_size, st.st_mtime_ns)
    return out

"""Running host commands, and the root/tool prerequisite check."""

import logging
import os
import shutil
import subprocess

from .errors import HostError, PrerequisiteError

log = logging.getLogger("tritonsim.nspawn")

# tool -> Debian package that provides it
TOOLS = {
    "systemd-nspawn": "systemd-container",
    "debootstrap": "debootstrap",
    "iptables": "iptables",
    "ip": "iproute2",
    "nsenter": "util-linux",
    "mount": "mount",
}
_SBIN = ("/usr/local/sbin", "/usr/sbin", "/sbin")


def which(tool):
    """Find a tool on PATH or in the sbin directories (not always on PATH)."""
    found = shutil.which(tool)
    if found:
        return found
    for d in _SBIN:
        p = os.path.join(d, tool)
        if os.access(p, os.X_OK):
            return p
    return None


def check_prerequisites(tools=None, need_root=True):
    """Raise PrerequisiteError naming what to install, or return a {tool: path} map."""
    tools = list(tools or TOOLS)
    problems = []
    if need_root and os.geteuid() != 0:
        problems.append("must run as root (it mounts overlays, creates network "
                        "namespaces, a bridge and iptables rules)")
    found, missing = {}, []
    for tool in tools:
        path = which(tool)
        if path:
            found[tool] = path
        else:
            missing.append(tool)
    if missing:
        pkgs = sorted({TOOLS.get(t, t) for t in missing})
        problems.append("missing %s; install with: apt-get install %s "
                        "(or tritonsim/install-host-tools.sh)"
                        % (", ".join(missing), " ".join(pkgs)))
    if problems:
        raise PrerequisiteError("tritonsim nspawn backend cannot run: "
                                + "; ".join(problems))
    return found


def run(args, check=True, input=None, timeout=300, quiet=False):
    """Run a command; return CompletedProcess (text). Raise HostError on failure."""
    args = [str(a) for a in args]
    exe = which(args[0])
    if exe:
        args[0] = exe
    if not quiet:
        log.debug("run: %s", " ".join(args))
    try:
        res = subprocess.run(args, input=input, capture_output=True, text=True, check=False,
                             timeout=timeout, stdin=None if input is not None else subprocess.DEVNULL)
    except FileNotFoundError:
        raise PrerequisiteError("command not found: %s" % args[0]) from None
    except subprocess.TimeoutExpired:
        raise HostError("timed out after %ss: %s" % (timeout, " ".join(args))) from None
    if check and res.returncode != 0:
        raise HostError("command failed (%d): %s\n%s"
                        % (res.returncode, " ".join(args), (res.stderr or res.stdout).strip()))
    return res

"""Image templates: a debootstrapped Debian 12 rootfs, and snapshots of machines.

An image is a directory::

    IMAGE_DIR/rootfs/       the root filesystem (the overlay's lowerdir)
    IMAGE_DIR/image.json    what it is (name, version, builder hash, origin)

Images are built in a temp directory beside the final one and renamed into place,
so a crash never leaves a half image where a complete one is expected.
"""

import datetime
import glob
import hashlib
import json
import logging
import os
import re
import shutil
import stat
import time

from . import fsutil, guestfs
from .cmd import check_prerequisites, run
from .errors import HostError

log = logging.getLogger("tritonsim.nspawn")

DEFAULT_CACHE_DIR = "/var/cache/locustfleet-tritonsim/images"
SUITE = "bookworm"
BASE_NAME = "debian-12"
BASE_PACKAGES = [
    "python3", "python3-venv", "systemd", "systemd-sysv", "dbus", "libpam-systemd",
    "openssh-server", "ca-certificates", "sudo", "iproute2", "iputils-ping", "curl",
    "procps", "less", "netbase",
]
# Bump when the configure steps change in a way the guest files do not show.
BUILDER_VERSION = "3"
GUEST_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "guest")
GUEST_BIN = {  # guest file -> path inside the image (*.py get a python3 shebang)
    "mdata_get.py": "/usr/sbin/mdata-get",
    "mdata_list.py": "/usr/sbin/mdata-list",
    "tritonsim-user-script": "/usr/lib/tritonsim/tritonsim-user-script",
}
GUEST_UNITS = ["tritonsim-ssh-hostkeys.service", "tritonsim-user-script.service"]
HOST_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"


def default_cache_dir():
    return os.environ.get("TRITONSIM_IMAGE_CACHE", DEFAULT_CACHE_DIR)


def rootfs_of(image_dir):
    return os.path.join(image_dir, "rootfs")


def read_image_info(image_dir):
    """The image.json of a complete image, or None if image_dir is not one."""
    try:
        with open(os.path.join(image_dir, "image.json"), encoding="utf-8") as f:
            info = json.load(f)
    except (OSError, ValueError):
        return None
    return info if os.path.isdir(rootfs_of(image_dir)) else None


def builder_hash():
    """Identifies what build_base_image would produce; part of the cached dir name."""
    h = hashlib.sha256()
    h.update(("%s|%s|%s|" % (BUILDER_VERSION, SUITE, ",".join(BASE_PACKAGES))).encode())
    # Exactly the files the image gets: an installed package also has guest/__pycache__ (pip
    # byte-compiles the .py files) and may have other leftovers.
    for name in sorted(set(GUEST_BIN) | set(GUEST_UNITS)):
        h.update(name.encode())
        with open(os.path.join(GUEST_DIR, name), "rb") as f:
            h.update(f.read())
    return h.hexdigest()[:12]


def debian_mirror(sources_dir="/etc/apt"):
    """The Debian mirror apt already uses for the main archive (not security)."""
    env = os.environ.get("TRITONSIM_DEBIAN_MIRROR")
    if env:
        return env
    candidates = []
    for path in sorted(glob.glob(os.path.join(sources_dir, "sources.list.d", "*.sources"))):
        with open(path, encoding="utf-8") as f:
            text = f.read()
        for stanza in re.split(r"\n\s*\n", text):
            fields = {}
            for line in stanza.splitlines():
                if line.startswith("#") or ":" not in line or line[:1].isspace():
                    continue
                k, v = line.split(":", 1)
                fields[k.strip().lower()] = v.strip()
            if "deb" not in fields.get("types", "").split():
                continue
            if fields.get("enabled", "yes").lower() == "no":
                continue
            suites = fields.get("suites", "").split()
            for uri in fields.get("uris", "").split():
                if "security" not in uri and any(not s.endswith("-security") for s in suites):
                    candidates.append(uri)
    for path in [os.path.join(sources_dir, "sources.list")] + sorted(
            glob.glob(os.path.join(sources_dir, "sources.list.d", "*.list"))):
        try:
            with open(path, encoding="utf-8") as f:
                lines = f.readlines()
        except OSError:
            continue
        for line in lines:
            parts = line.split("#", 1)[0].split()
            if len(parts) >= 3 and parts[0] == "deb":
                uri = next((p for p in parts[1:] if not p.startswith("[")
                            and not p.endswith("]") and "=" not in p), None)
                if uri and "security" not in uri and "security" not in parts[-2]:
                    candidates.append(uri)
    if not candidates:
        raise HostError("no Debian mirror found in %s/sources.list(.d); "
                        "set TRITONSIM_DEBIAN_MIRROR" % sources_dir)
    return candidates[0]


def _pem_blocks(text):
    return re.findall(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----", text, re.S)


def _norm(block):
    return "".join(block.split())


def install_host_trust(rootfs):
    """Make the image trust what the host trusts, surviving update-ca-certificates inside.

    Certificates in the host bundle that the image's bundle lacks (e.g. a site CA
    in front of the package registries) go to /usr/local/share/ca-certificates, then
    the host bundle and resolv.conf are copied in.
    """
    if os.path.exists(HOST_CA_BUNDLE):
        with open(HOST_CA_BUNDLE, encoding="utf-8", errors="replace") as f:
            host = _pem_blocks(f.read())
        guest_bundle = os.path.join(rootfs, HOST_CA_BUNDLE.lstrip("/"))
        try:
            with open(guest_bundle, encoding="utf-8", errors="replace") as f:
                have = {_norm(b) for b in _pem_blocks(f.read())}
        except OSError:
            have = set()
        extra = [b for b in host if _norm(b) not in have]
        local = os.path.join(rootfs, "usr/local/share/ca-certificates")
        os.makedirs(local, exist_ok=True)
        for i, block in enumerate(extra):
            fsutil.write_atomic(os.path.join(local, "tritonsim-host-%02d.crt" % i), block + "\n")
        if extra:
            run(["chroot", rootfs, "update-ca-certificates"], timeout=300)
        os.makedirs(os.path.dirname(guest_bundle), exist_ok=True)
        shutil.copyfile(HOST_CA_BUNDLE, guest_bundle)
    # pip in venvs uses its own certifi bundle unless told otherwise
    fsutil.write_atomic(os.path.join(rootfs, "etc/pip.conf"),
                        "[global]\ncert = %s\n" % HOST_CA_BUNDLE)
    env = os.path.join(rootfs, "etc/environment")
    with open(env, "a", encoding="utf-8") as f:
        f.write("REQUESTS_CA_BUNDLE=%s\nSSL_CERT_FILE=%s\n" % (HOST_CA_BUNDLE, HOST_CA_BUNDLE))
    copy_resolv_conf(rootfs)


def copy_resolv_conf(rootfs):
    target = os.path.join(rootfs, "etc/resolv.conf")
    if os.path.lexists(target):
        os.unlink(target)
    with open("/etc/resolv.conf", encoding="utf-8") as f:
        fsutil.write_atomic(target, f.read())


def strip_userinfo(url):
    """url without user:password@ (for logs and image.json)."""
    return re.sub(r"^([A-Za-z][A-Za-z0-9+.-]*://)[^/@\s]*@", r"\1", url)


def _host_apt_files(apt_dir):
    """(host file, path relative to the rootfs) for the apt config an image gets.

    Sources (*.sources) and options only (e.g. Acquire::Check-Valid-Until for a snapshot
    mirror); apt.conf.d files with hooks (*::Pre-Invoke / Post-Invoke) would run host
    programs the image lacks.
    """
    out = []
    for path in sorted(glob.glob(os.path.join(apt_dir, "sources.list.d", "*.sources"))):
        out.append((path, "etc/apt/sources.list.d/" + os.path.basename(path)))
    for path in sorted(glob.glob(os.path.join(apt_dir, "apt.conf.d", "*"))):
        if not os.path.isfile(path):
            continue
        with open(path, encoding="utf-8", errors="replace") as f:
            if "Invoke" in f.read():
                continue
        out.append((path, "etc/apt/apt.conf.d/" + os.path.basename(path)))
    return out


def install_host_apt_config(rootfs, apt_dir="/etc/apt"):
    """Use the host's apt sources and options, so apt inside reaches the same mirror.

    The copies are root only (0600): they may hold credentials (a proxy's or mirror's
    user:password@, tokens), and apt reads its sources and options as root (its
    download methods get the URIs and settings from apt, they read no config file).
    Non-root apt commands in the guest only warn that they cannot read them.
    """
    copied = []
    for path, rel in _host_apt_files(apt_dir):
        dest = os.path.join(rootfs, rel)
        if rel.startswith("etc/apt/apt.conf.d/") and os.path.exists(dest):
            continue  # the image's own (Debian's) file of that name wins
        with open(path, "rb") as f:
            fsutil.write_atomic(dest, f.read(), mode=0o600)
        copied.append(rel)
    lst = os.path.join(rootfs, "etc/apt/sources.list")
    if any(rel.endswith(".sources") for rel in copied) and os.path.exists(lst):
        os.unlink(lst)
    elif os.path.exists(lst):
        os.chmod(lst, 0o600)  # debootstrap wrote the mirror there, credentials included
    return copied


def restrict_host_apt_config(rootfs, apt_dir="/etc/apt"):
    """Make the host apt files in an image built before they were copied 0600 root only.

    Files of the same names as the host's apt config (the ones install_host_apt_config
    copies) and sources.list lose group/other access; a cached image keeps working.
    """
    rels = [entry[1] for entry in _host_apt_files(apt_dir)] + ["etc/apt/sources.list"]
    for rel in rels:
        path = os.path.join(rootfs, rel)
        try:
            st = os.lstat(path)
        except OSError:
            continue
        if stat.S_ISREG(st.st_mode) and st.st_mode & 0o077:
            os.chmod(path, stat.S_IMODE(st.st_mode) & 0o700)


def _enable_unit(rootfs, unit_path_in_image):
    """systemctl enable, done by hand: symlink into each [Install] WantedBy= target."""
    with open(os.path.join(rootfs, unit_path_in_image.lstrip("/")), encoding="utf-8") as f:
        text = f.read()
    section = text.split("[Install]", 1)[1] if "[Install]" in text else ""
    name = os.path.basename(unit_path_in_image)
    for line in section.splitlines():
        if line.strip().startswith("WantedBy="):
            for target in line.split("=", 1)[1].split():
                wants = os.path.join(rootfs, "etc/systemd/system", target + ".wants")
                os.makedirs(wants, exist_ok=True)
                link = os.path.join(wants, name)
                if os.path.lexists(link):
                    os.unlink(link)
                os.symlink(unit_path_in_image, link)


def install_guest_tools(rootfs):
    for name, dest in GUEST_BIN.items():
        full = os.path.join(rootfs, dest.lstrip("/"))
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(os.path.join(GUEST_DIR, name), encoding="utf-8") as f:
            text = f.read()
        if name.endswith(".py"):
            text = "#!/usr/bin/python3\n" + text
        fsutil.write_atomic(full, text, mode=0o755)
    # HVM guest-tools location too, for scripts written against it
    smartdc = os.path.join(rootfs, "lib/smartdc")
    os.makedirs(smartdc, exist_ok=True)
    for name in ("mdata-get", "mdata-list"):
        link = os.path.join(smartdc, name)
        if not os.path.lexists(link):
            os.symlink("/usr/sbin/" + name, link)
    for unit in GUEST_UNITS:
        dest = "/etc/systemd/system/" + unit
        shutil.copyfile(os.path.join(GUEST_DIR, unit), os.path.join(rootfs, dest.lstrip("/")))
        _enable_unit(rootfs, dest)
    os.makedirs(os.path.join(rootfs, "var/lib/tritonsim/metadata"), exist_ok=True)


def configure_sshd(rootfs):
    d = os.path.join(rootfs, "etc/ssh/sshd_config.d")
    os.makedirs(d, exist_ok=True)
    fsutil.write_atomic(os.path.join(d, "tritonsim.conf"),
                        "# tritonsim: key-only root login, no DNS lookups\n"
                        "PermitRootLogin prohibit-password\n"
                        "PasswordAuthentication no\n"
                        "UseDNS no\n")
    # ssh.service must be enabled (openssh-server's postinst does it; make sure)
    unit = "/lib/systemd/system/ssh.service"
    if os.path.exists(os.path.join(rootfs, unit.lstrip("/"))):
        wants = os.path.join(rootfs, "etc/systemd/system/multi-user.target.wants")
        os.makedirs(wants, exist_ok=True)
        if not os.path.lexists(os.path.join(wants, "ssh.service")):
            os.symlink(unit, os.path.join(wants, "ssh.service"))
        alias = os.path.join(rootfs, "etc/systemd/system/sshd.service")
        if not os.path.lexists(alias):
            os.symlink(unit, alias)


def configure_logind(rootfs):
    """Keep each user's manager (user@UID.service) once started. logind stops it 10 s after the user's
    last session by default, so every SSH login more than 10 s after the previous one (each task of
    a playbook run that comes after a pause) paid for a new one. (While the guests shared one cgroup
    tree, see cgroups.py, such a stop also hung for minutes, and logins with it.)"""
    d = os.path.join(rootfs, "etc/systemd/logind.conf.d")
    os.makedirs(d, exist_ok=True)
    fsutil.write_atomic(os.path.join(d, "tritonsim.conf"),
                        "# tritonsim: never stop a user's manager after its last session (see tritonsim docs)\n"
                        "[Login]\nUserStopDelaySec=infinity\n")


def disable_units(rootfs, units=("apt-daily.timer", "apt-daily-upgrade.timer")):
    """Mask units that would fight the fleet's own apt runs for the dpkg lock."""
    for unit in units:
        for link in glob.glob(os.path.join(rootfs, "etc/systemd/system/*.wants", unit)):
            os.unlink(link)
        mask = os.path.join(rootfs, "etc/systemd/system", unit)
        if os.path.lexists(mask):
            os.unlink(mask)
        os.symlink("/dev/null", mask)


def reset_identity(rootfs, label=None):
    """Remove what makes a rootfs one particular machine, so each copy gets its own.

    SSH host keys (regenerated at first boot), machine-id (set from the machine's
    uuid at boot), the user-script first-boot marker and log, hostname, root's
    authorized_keys (rewritten at create), random seed, journal files.

    The rootfs may come from a guest (a snapshot): every path is handled with
    guestfs.GuestRoot, so no symlink in it makes the host touch anything outside it.
    label names the machine in errors.
    """
    with guestfs.GuestRoot(rootfs, label) as guest:
        guest.remove_matching("etc/ssh", "ssh_host_*")
        # empty: systemd treats the next boot as first boot
        guest.write_file("etc/machine-id", b"", mode=0o444)
        guest.symlink("var/lib/dbus/machine-id", "/etc/machine-id")
        for rel in ("var/lib/tritonsim/user-script.done", "var/lib/tritonsim/user-script",
                    "var/log/tritonsim-user-script.log", "etc/hostname",
                    "root/.ssh/authorized_keys", "var/lib/systemd/random-seed",
                    "var/lib/systemd/credential.secret"):
            guest.remove(rel)
        guest.clear_dir("var/log/journal")
        # mount point for the host's metadata dir: keep it empty
        guest.clear_dir("var/lib/tritonsim/metadata")


def _cleanup_stale_tmp(parent):
    for path in glob.glob(os.path.join(parent, ".tmp-*")):
        m = re.search(r"-pid(\d+)-", os.path.basename(path))
        if m and fsutil.pid_alive(int(m.group(1))) and int(m.group(1)) != os.getpid():
            continue
        log.info("removing stale partial image %s", path)
        fsutil.safe_rmtree(path)


def _tmp_dir_for(final):
    parent = os.path.dirname(os.path.abspath(final))
    fsutil.private_dir(parent)  # image stores hold guest trees: root only
    _cleanup_stale_tmp(parent)
    name = ".tmp-%s-pid%d-%d" % (os.path.basename(final), os.getpid(), time.monotonic_ns())
    tmp = os.path.join(parent, name)
    os.makedirs(tmp)
    return tmp


def _finish(tmp, final, info):
    fsutil.write_json_atomic(os.path.join(tmp, "image.json"), info)
    if os.path.exists(final):
        raise HostError("image directory already exists: %s" % final)
    os.rename(tmp, final)
    log.info("image ready: %s", final)
    return final


def _du_bytes(path):
    res = run(["du", "-sb", "--one-file-system", path], check=False, quiet=True)
    try:
        return int(res.stdout.split()[0])
    except (ValueError, IndexError):
        return None


def build_base_image(cache_dir=None, *, mirror=None, force=False):
    """Build (once) the debian-12 image template; return its directory.

    The result is cache_dir/debian-12-<builder hash>; a complete one is reused.
    Concurrent callers wait on a lock in cache_dir and share the result.
    """
    check_prerequisites(["debootstrap", "chroot"])
    cache_dir = os.path.abspath(cache_dir or default_cache_dir())
    final = os.path.join(cache_dir, "%s-%s" % (BASE_NAME, builder_hash()))
    fsutil.private_dir(cache_dir)  # guest trees (setuid binaries, devices): root only
    with fsutil.file_lock(os.path.join(cache_dir, ".build.lock")):
        if read_image_info(final) and not force:
            restrict_host_apt_config(rootfs_of(final))  # built by an older tritonsim
            return final
        if os.path.exists(final):
            fsutil.safe_rmtree(final)
        mirror = mirror or debian_mirror()
        tmp = _tmp_dir_for(final)
        rootfs = rootfs_of(tmp)
        started = time.monotonic()
        log.info("debootstrap %s from %s into %s", SUITE, strip_userinfo(mirror), tmp)
        try:
            res = run(["debootstrap", "--variant=minbase",
                       "--include=" + ",".join(BASE_PACKAGES), SUITE, rootfs, mirror],
                      check=False, timeout=1800)
            if res.returncode != 0:
                tail = "\n".join((res.stdout + res.stderr).strip().splitlines()[-20:])
                debootstrap_log = os.path.join(rootfs, "debootstrap/debootstrap.log")
                if os.path.exists(debootstrap_log):
                    with open(debootstrap_log, encoding="utf-8", errors="replace") as f:
                        tail += "\n--- debootstrap.log ---\n" + "".join(f.readlines()[-20:])
                raise HostError("debootstrap failed (%d):\n%s" % (res.returncode, tail))
            configure_base_rootfs(rootfs)
            info = {
                "name": BASE_NAME, "os": "linux", "version": time.strftime("%Y%m%d"),
                "suite": SUITE, "builder": builder_hash(), "mirror": strip_userinfo(mirror),
                "packages": BASE_PACKAGES, "origin": "debootstrap",
                "created": _now(), "build_seconds": round(time.monotonic() - started, 1),
                "size_bytes": _du_bytes(rootfs),
            }
            return _finish(tmp, final, info)
        except BaseException:
            fsutil.safe_rmtree(tmp)
            raise


def configure_base_rootfs(rootfs):
    install_host_apt_config(rootfs)
    install_host_trust(rootfs)
    configure_sshd(rootfs)
    configure_logind(rootfs)
    install_guest_tools(rootfs)
    disable_units(rootfs)
    reset_identity(rootfs)
    # no package caches or stale lists in the template (run apt-get update inside)
    for pattern in ("var/cache/apt/archives/*.deb", "var/cache/apt/*.bin",
                    "var/lib/apt/lists/*_*"):
        for p in glob.glob(os.path.join(rootfs, pattern)):
            os.unlink(p)


def snapshot_rootfs(source_root, new_image_dir, *, name=None, origin=None, extra=None,
                    label=None):
    """Copy a (stopped machine's merged) root filesystem into a new image template.

    label names the machine in errors (default: the source's path).
    """
    new_image_dir = os.path.abspath(new_image_dir)
    if os.path.exists(new_image_dir):
        raise HostError("image directory already exists: %s" % new_image_dir)
    tmp = _tmp_dir_for(new_image_dir)
    started = time.monotonic()
    try:
        # cp -a keeps owners, modes, links, hard links, xattrs; one filesystem only
        os.makedirs(rootfs_of(tmp))
        res = run(["cp", "-a", "--one-file-system", source_root.rstrip("/") + "/.",
                   rootfs_of(tmp) + "/"], check=False, timeout=1800)
        if res.returncode != 0:
            raise HostError("copying %s failed: %s" % (source_root, res.stderr.strip()))
        reset_identity(rootfs_of(tmp), label or source_root)
        info = {"name": name or os.path.basename(new_image_dir), "os": "linux",
                "origin": origin or "snapshot", "created": _now(),
                "build_seconds": round(time.monotonic() - started, 1),
                "size_bytes": _du_bytes(rootfs_of(tmp))}
        info.update(extra or {})
        return _finish(tmp, new_image_dir, info)
    except BaseException:
        fsutil.safe_rmtree(tmp)
        raise


def _now():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"

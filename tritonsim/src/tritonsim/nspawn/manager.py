"""HostManager: machines as systemd-nspawn containers, for tritonsim's nspawn backend.

States reported through on_state(machine_id, state, info) use CloudAPI's names:
provisioning, running, stopping, stopped, failed, deleted. See docs/nspawn-hosts.md.
"""

import dataclasses
import hashlib
import ipaddress
import logging
import os
import re
import threading
import time

from . import cgroups, container, firewall, fsutil, image, network, shared
from . import metadata as mdoc
from .cmd import check_prerequisites
from .errors import HostError, MachineNotFound, MachineStateError
from .state import StateFile

log = logging.getLogger("tritonsim.nspawn")

REBOOT_EXIT = 133  # systemd-nspawn's exit status when the container asked to reboot


@dataclasses.dataclass
class MachineInfo:
    id: str
    alias: str
    hostname: str
    state: str
    ip: str
    mac: str
    gateway: str
    netmask: str
    image_dir: str
    nic: dict
    pid: int = None
    boot_seconds: float = None


class _Run:
    """One boot of a container: its nspawn process and how it ended."""

    def __init__(self, proc, starttime):
        self.proc = proc
        self.starttime = starttime
        self.expected_exit = False  # set by stop/reboot/delete/cleanup before signalling
        self.exited = threading.Event()
        self.returncode = None


def hostname_for(alias, machine_id):
    name = re.sub(r"[^A-Za-z0-9-]+", "-", alias or "").strip("-")[:63].strip("-")
    return name or "ts-" + machine_id.replace("-", "")[:8]


class HostManager:
    """Create, run, stop, snapshot and delete container machines; clean up exactly.

    state_dir        per-manager directory: state.json, machines/ID/{upper,work,...}
    subnet           bridge subnet (e.g. "10.213.0.0/24"); None = first free 10.213.N.0/24
    on_state         callback(machine_id, state, info: dict), called from the calling
                     thread or from the manager's watcher threads
    nat              MASQUERADE the subnet so apt/pip inside reach the registries
    allow_host_ports TCP ports on the host's bridge address to open in INPUT for the
                     containers (only needed where INPUT's policy is not ACCEPT)
    boot_timeout     seconds from nspawn start to an SSH banner
    stop_timeout     seconds for a clean shutdown before SIGKILL
    user_script_mode "first-boot" (run the user-script once) or "every-boot"
    """

    def __init__(self, state_dir, *, subnet=None, on_state=None, nat=True,
                 allow_host_ports=(), boot_timeout=180, stop_timeout=60,
                 user_script_mode="first-boot"):
        check_prerequisites(["systemd-nspawn", "ip", "iptables", "nsenter", "mount"])
        if user_script_mode not in ("first-boot", "every-boot"):
            raise ValueError("user_script_mode must be first-boot or every-boot")
        self.state_dir = os.path.abspath(state_dir)
        self.on_state = on_state
        self.nat = nat
        self.allow_host_ports = tuple(allow_host_ports)
        self.boot_timeout = boot_timeout
        self.stop_timeout = stop_timeout
        self.user_script_mode = user_script_mode
        self._requested_subnet = subnet
        self._file = StateFile(self.state_dir)
        self._file.lock()
        self._lock = threading.RLock()       # guards self._state and the state file
        self._mlocks = {}                    # machine id -> RLock (one operation at a time)
        self._runs = {}                      # machine id -> _Run while a container runs
        self._fw_policies = {}               # machine id -> Cloud Firewall policy (set_firewall)
        self._fw_lock = threading.Lock()     # one policy write into a netns at a time
        self._closed = False
        try:
            self._state = self._file.load()
            self._save()
            self._recover()
        except BaseException:
            self._file.unlock()
            raise

    # ------------------------------------------------------------ properties

    @property
    def instance_id(self):
        return self._state["instance_id"]

    @property
    def tag(self):
        """The comment on every iptables rule this manager adds."""
        return self._state["network"]["tag"]

    @property
    def bridge(self):
        return self._state["network"]["bridge"]

    @property
    def subnet(self):
        """The bridge subnet (sets up the bridge if needed)."""
        self.ensure_network()
        return ipaddress.ip_network(self._state["network"]["subnet"])

    @property
    def bridge_address(self):
        """Host address on the bridge: where containers reach host services (e.g. CloudAPI)."""
        self.ensure_network()
        return self._state["network"]["gateway"]

    # ------------------------------------------------------------ helpers

    def _save(self):
        with self._lock:
            self._file.save(self._state)

    def _machine(self, machine_id):
        with self._lock:
            m = self._state["machines"].get(machine_id)
            if m is None:
                raise MachineNotFound("no machine %s" % machine_id)
            return m

    def _mlock(self, machine_id):
        with self._lock:
            return self._mlocks.setdefault(machine_id, threading.RLock())

    def _set(self, m, **fields):
        with self._lock:
            m.update(fields)
            self._save()

    def _emit(self, machine_id, state, **info):
        log.info("machine %s: %s %s", machine_id, state, info or "")
        if self.on_state:
            try:
                self.on_state(machine_id, state, info)
            except Exception:  # a broken callback must not break the container layer
                log.exception("on_state callback failed for %s %s", machine_id, state)

    def _write_metadata(self, m):
        mdoc.write(container.paths(m["dir"])["metadata"], m, self._state["network"],
                   self.user_script_mode)

    def _machine_dir(self, machine_id):
        return os.path.join(self.state_dir, "machines", machine_id)

    def _info(self, m):
        net = self._state["network"]
        run = self._runs.get(m["id"])
        subnet = ipaddress.ip_network(net["subnet"]) if net.get("subnet") else None
        return MachineInfo(
            id=m["id"], alias=m["alias"], hostname=m["hostname"], state=m["state"],
            ip=m["ip"], mac=m["mac"], gateway=net.get("gateway"),
            netmask=str(subnet.netmask) if subnet else None, image_dir=m["image_dir"],
            nic=mdoc.nic_for(m, net) if subnet else {},
            pid=run.proc.pid if run else None, boot_seconds=m.get("boot_seconds"))

    def _allocate_ip(self, wanted=None):
        """A free address in the bridge subnet (ensure_network() must have run)."""
        net = ipaddress.ip_network(self._state["network"]["subnet"])
        gw = ipaddress.ip_address(self._state["network"]["gateway"])
        with self._lock:
            taken = {m["ip"] for m in self._state["machines"].values() if m["ip"]}
        if wanted:
            addr = ipaddress.ip_address(wanted)
            if addr not in net or addr == gw or str(addr) in taken:
                raise HostError("address %s is not free in %s" % (wanted, net))
            return str(addr)
        for addr in net.hosts():
            if addr != gw and str(addr) not in taken:
                return str(addr)
        raise HostError("no free address left in %s" % net)

    # ------------------------------------------------------------ network

    def ensure_network(self):
        """Create the bridge, its address and the tagged NAT/forward rules (idempotent)."""
        if self._closed:
            raise HostError("manager is closed")
        with self._lock:
            network.setup_bridge(self._state["network"], self._save, self._requested_subnet,
                                 nat=self.nat, allow_host_ports=self.allow_host_ports)
            self._readdress()
            return dict(self._state["network"])

    def _readdress(self):
        """Machines whose address is outside the (new) subnet get a new one.

        Happens when the bridge is recreated and the old subnet is now taken by
        someone else; those machines are all stopped then (no bridge, no container).
        """
        net = ipaddress.ip_network(self._state["network"]["subnet"])
        stale = [m for m in self._state["machines"].values()
                 if not m["ip"] or ipaddress.ip_address(m["ip"]) not in net]
        for m in stale:
            m["ip"] = None
        for m in stale:
            m["ip"] = self._allocate_ip()
            log.info("machine %s re-addressed to %s (subnet now %s)", m["id"], m["ip"], net)
        if stale:
            self._save()

    # ------------------------------------------------------------ lifecycle

    def create(self, machine_id, alias, image_dir, metadata=None, authorized_keys=None, *,
               sdc=None, network_id=None, ip=None):
        """Create and boot a machine; return MachineInfo once sshd answers (state running).

        metadata: customer metadata (CloudAPI's), incl. user-script, root_authorized_keys.
        authorized_keys: root's ~/.ssh/authorized_keys; None = metadata root_authorized_keys.
        sdc: extra/overriding sdc: keys (owner_uuid, image_uuid, package_name, ...).
        Blocks for the boot (a few seconds); call it from a worker thread. On failure
        the machine is left in state "failed" (delete() removes it) and HostError raised.
        """
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}", machine_id or ""):
            raise HostError("invalid machine id %r (letters, digits, _ . - only)" % machine_id)
        image_dir = os.path.abspath(image_dir)
        if not image.read_image_info(image_dir):
            raise HostError("not an image directory (no image.json + rootfs/): %s" % image_dir)
        self.ensure_network()
        h = hashlib.sha1(("%s/%s" % (self.instance_id, machine_id)).encode()).hexdigest()
        names = network.names_for(self.instance_id, machine_id)
        with self._lock:
            if machine_id in self._state["machines"]:
                raise HostError("machine %s already exists" % machine_id)
            m = {
                "id": machine_id, "alias": alias, "hostname": hostname_for(alias, machine_id),
                "nspawn_name": "tsim-" + h[:12], "image_dir": image_dir,
                "metadata": dict(metadata or {}), "sdc": dict(sdc or {}),
                "network_id": network_id, "ip": self._allocate_ip(ip),
                "mac": network.mac_for(machine_id), "netns": names["netns"],
                "veth": names["veth"], "dir": self._machine_dir(machine_id),
                "state": "provisioning", "created": time.time(),
            }
            self._state["machines"][machine_id] = m
            self._save()
        self._emit(machine_id, "provisioning")
        with self._mlock(machine_id):
            try:
                fsutil.private_dir(os.path.dirname(m["dir"]))
                fsutil.private_dir(m["dir"])
                keys = authorized_keys if authorized_keys is not None \
                    else m["metadata"].get("root_authorized_keys")
                root = container.mount_overlay(image.rootfs_of(image_dir), m["dir"])
                container.prepare_root(root, m["hostname"], keys, "machine %s" % machine_id)
                self._boot(m)
            except Exception as e:
                self._teardown_runtime(m)
                self._set(m, state="failed", error=str(e))
                self._emit(machine_id, "failed", error=str(e))
                raise
        self._emit(machine_id, "running", ip=m["ip"], boot_seconds=m["boot_seconds"])
        return self.get(machine_id)

    def _boot(self, m):
        """Net, overlay, metadata, nspawn; wait for sshd. Caller holds the machine lock."""
        self.ensure_network()
        network.setup_machine_net(self._state["network"], m)
        self._enforce_firewall(m)   # before the guest runs: no unprotected moment
        root = container.mount_overlay(image.rootfs_of(m["image_dir"]), m["dir"])
        self._write_metadata(m)
        cgroup_dirs = cgroups.machine_dirs(m["nspawn_name"])
        cgroups.make(cgroup_dirs)
        self._set(m, cgroups=cgroup_dirs)
        started = time.monotonic()
        proc = container.launch(m, root, m["dir"], cgroup_dirs)
        run = _Run(proc, fsutil.pid_starttime(proc.pid))
        with self._lock:
            self._runs[m["id"]] = run
        self._set(m, pid=proc.pid, pid_starttime=run.starttime)
        threading.Thread(target=self._watch, args=(m["id"], run), daemon=True,
                         name="nspawn-watch-" + m["id"][:8]).start()
        banner = container.wait_ssh(m["ip"], lambda: not run.exited.is_set(), self.boot_timeout,
                                    netns_path=os.path.join(network.NETNS_DIR, m["netns"]))
        if not banner:
            why = ("exited with status %s" % run.returncode) if run.exited.is_set() \
                else "sshd did not answer within %ss" % self.boot_timeout
            self._stop_run(m, run, timeout=10)
            with self._lock:
                self._runs.pop(m["id"], None)
            log_path = container.paths(m["dir"])["console.log"]
            raise HostError("machine %s did not boot: container %s; %s ends with:\n%s"
                            % (m["id"], why, log_path, container.console_tail(log_path)))
        self._set(m, state="running", boot_seconds=round(time.monotonic() - started, 2),
                  ssh_banner=banner, error=None)

    def _watch(self, machine_id, run):
        run.returncode = run.proc.wait()
        relay = getattr(run.proc, "console_relay", None)
        if relay is not None:
            try:
                relay.wait(timeout=10)  # it has read nspawn's last words (EOF)
            except Exception:
                log.warning("console relay of %s did not exit", machine_id)
        run.exited.set()
        with self._mlock(machine_id):
            with self._lock:
                current = self._runs.get(machine_id)
                m = self._state["machines"].get(machine_id)
            if run.expected_exit or current is not run or m is None:
                return
            with self._lock:
                self._runs.pop(machine_id, None)
            rc = run.returncode
            if rc == REBOOT_EXIT and not self._closed:
                # `reboot` inside: boot again, as a real machine would
                self._teardown_runtime(m, keep_net=True)
                try:
                    self._boot(m)
                except Exception as e:
                    self._teardown_runtime(m)
                    self._set(m, state="stopped", pid=None)
                    self._emit(machine_id, "stopped", reason="reboot-failed", error=str(e))
                    return
                self._emit(machine_id, "running", reason="reboot-inside",
                           boot_seconds=m["boot_seconds"])
                return
            self._teardown_runtime(m)
            self._set(m, state="stopped", pid=None)
            self._emit(machine_id, "stopped",
                       reason="poweroff-inside" if rc == 0 else "exited", exit_code=rc)

    def _stop_run(self, m, run, timeout):
        run.expected_exit = True
        return container.kill_nspawn(run.proc.pid, run.starttime, m["nspawn_name"], timeout,
                                     run.exited.wait)

    def _teardown_runtime(self, m, keep_net=False):
        """Unmount the overlay, remove the container's cgroups and netns + veth (machine data stays)."""
        container.unmount_overlay(m["dir"])
        if m.get("cgroups"):
            cgroups.remove(m["cgroups"])
            self._set(m, cgroups=None)
        if not keep_net:
            network.teardown_machine_net(m)
        for d in container.leftover_nspawn_dirs(m["nspawn_name"]):
            fsutil.safe_rmtree(d)

    def _halt(self, m, timeout, reason):
        """Stop the running container (if any); caller holds the machine lock."""
        with self._lock:
            run = self._runs.pop(m["id"], None)
        how = "not-running"
        if run is not None:
            how = self._stop_run(m, run, self.stop_timeout if timeout is None else timeout)
        elif m.get("pid") and container.is_our_nspawn(
                m["pid"], m.get("pid_starttime"), m["nspawn_name"]):
            how = container.kill_nspawn(
                m["pid"], m["pid_starttime"], m["nspawn_name"], timeout or self.stop_timeout,
                container.poll_exit(m["pid"], m["pid_starttime"], m["nspawn_name"]))
        self._teardown_runtime(m)
        self._set(m, state="stopped", pid=None)
        return how

    def start(self, machine_id):
        """Boot a stopped machine again from the same overlay (data kept)."""
        with self._mlock(machine_id):
            m = self._machine(machine_id)
            if m["state"] == "running":
                return self.get(machine_id)
            if m["state"] not in ("stopped", "failed"):
                raise MachineStateError("machine %s is %s" % (machine_id, m["state"]))
            self._boot_or_stay_stopped(m, "start-failed")
        self._emit(machine_id, "running", reason="start", boot_seconds=m["boot_seconds"])
        return self.get(machine_id)

    def _boot_or_stay_stopped(self, m, failure_reason):
        """Boot ``m``; if that fails, tear down what the attempt made and report it stopped."""
        try:
            self._boot(m)
        except Exception as e:
            self._teardown_runtime(m)
            self._set(m, state="stopped", pid=None)
            self._emit(m["id"], "stopped", reason=failure_reason, error=str(e))
            raise

    def stop(self, machine_id, timeout=None):
        """Clean shutdown (SIGTERM to nspawn: systemd runs its stop jobs), SIGKILL after timeout."""
        with self._mlock(machine_id):
            m = self._machine(machine_id)
            if m["state"] == "stopped":
                return self.get(machine_id)
            self._emit(machine_id, "stopping", reason="stop")
            how = self._halt(m, timeout, "stop")
        self._emit(machine_id, "stopped", reason="stop", shutdown=how)
        return self.get(machine_id)

    def reboot(self, machine_id, timeout=None):
        with self._mlock(machine_id):
            m = self._machine(machine_id)
            self._emit(machine_id, "stopping", reason="reboot")
            self._halt(m, timeout, "reboot")
            self._boot_or_stay_stopped(m, "reboot-failed")
        self._emit(machine_id, "running", reason="reboot", boot_seconds=m["boot_seconds"])
        return self.get(machine_id)

    def delete(self, machine_id, timeout=None):
        """Destroy the container, overlay (the machine's data), netns and veth."""
        with self._mlock(machine_id):
            m = self._machine(machine_id)
            self._halt(m, 20 if timeout is None else timeout, "delete")
            fsutil.safe_rmtree(m["dir"])
            with self._lock:
                self._state["machines"].pop(machine_id, None)
                self._save()
        self._emit(machine_id, "deleted")

    def update_metadata(self, machine_id, metadata=None, sdc=None):
        """Replace the customer metadata (and/or merge sdc: keys); visible to mdata-get at once."""
        with self._mlock(machine_id):
            m = self._machine(machine_id)
            with self._lock:
                if metadata is not None:
                    m["metadata"] = dict(metadata)
                if sdc is not None:
                    m["sdc"].update(sdc)
                self._save()
            self._write_metadata(m)

    def set_firewall(self, machine_id, policy):
        """Remember the machine's firewall policy (None: none); every boot enforces it,
        apply_firewall() enforces it now.  Not persisted: tritonsim sets it at start."""
        with self._fw_lock:
            if policy is None:
                self._fw_policies.pop(machine_id, None)
            else:
                self._fw_policies[machine_id] = policy

    def apply_firewall(self, machine_id):
        """Enforce the remembered policy in the machine's netns if it has one now."""
        with self._lock:
            m = self._state["machines"].get(machine_id)
        if m is not None:
            self._enforce_firewall(m)

    def _enforce_firewall(self, m):
        with self._fw_lock:
            policy = self._fw_policies.get(m["id"])
            if os.path.exists(os.path.join(network.NETNS_DIR, m["netns"])):
                firewall.apply(m["netns"], policy)

    def rename(self, machine_id, alias):
        """Change the alias (sdc:alias); the hostname stays, as on Triton."""
        with self._mlock(machine_id):
            m = self._machine(machine_id)
            self._set(m, alias=alias)
            self._write_metadata(m)

    def snapshot(self, machine_id, new_image_dir, *, name=None, stop_running=True):
        """Copy the machine's filesystem into a new image template; return its dir.

        The copy needs a quiet filesystem: a running machine is stopped first and
        started again afterwards (as Triton's CreateImageFromMachine does);
        stop_running=False makes that an error instead. Per-machine identity (SSH
        host keys, machine-id, user-script marker, hostname, authorized_keys) is
        removed so machines created from the image get their own.
        """
        with self._mlock(machine_id):
            m = self._machine(machine_id)
            was_running = m["state"] == "running"
            if was_running and not stop_running:
                raise MachineStateError("machine %s is running; stop it first" % machine_id)
            if m["state"] not in ("running", "stopped"):
                raise MachineStateError("machine %s is %s" % (machine_id, m["state"]))
            if was_running:
                self.stop(machine_id)
            try:
                root = container.mount_overlay(image.rootfs_of(m["image_dir"]), m["dir"])
                try:
                    out = image.snapshot_rootfs(root, new_image_dir, name=name,
                                                origin="machine:" + machine_id,
                                                extra={"parent": m["image_dir"]},
                                                label="machine %s" % machine_id)
                finally:
                    container.unmount_overlay(m["dir"])
            finally:
                if was_running:
                    self.start(machine_id)
        return out

    # ------------------------------------------------------------ queries

    def get(self, machine_id):
        with self._lock:
            return self._info(self._machine(machine_id))

    def list(self):
        with self._lock:
            return [self._info(m) for m in self._state["machines"].values()]

    def machines_using(self, image_dir):
        image_dir = os.path.abspath(image_dir)
        with self._lock:
            return [m["id"] for m in self._state["machines"].values()
                    if m["image_dir"] == image_dir]

    # ------------------------------------------------------------ cleanup

    def _recover(self):
        """After a crash: stop leftover containers, drop runtime state; machines -> stopped."""
        leftovers = [m for m in self._state["machines"].values()
                     if m["state"] in ("running", "provisioning", "stopping") or m.get("pid")]
        for m in leftovers:
            with self._mlock(m["id"]):
                prev = m["state"]
                self._halt(m, 20, "recover")
                if prev == "provisioning":
                    self._set(m, state="failed", error="manager restarted during provisioning")
            if prev != "stopped":
                self._emit(m["id"], self._state["machines"][m["id"]]["state"],
                           reason="recovered")
        if self._state["network"].get("up") or network.tagged_rules(self.tag):
            network.teardown_bridge(self._state["network"])
            self._save()

    def cleanup(self, purge=False):
        """Remove every container, mount, netns, veth, bridge and iptables rule made.

        Machines stay known as stopped with their data (start() boots them again,
        recreating the network); purge=True also deletes their data and records.
        Idempotent. The manager stays usable unless close() is called.
        """
        with self._lock:
            ids = list(self._state["machines"])
        threads = []
        for mid in ids:  # in parallel: each clean shutdown takes a few seconds
            t = threading.Thread(target=self._cleanup_machine, args=(mid, purge), daemon=True)
            t.start()
            threads.append(t)
        for t in threads:
            t.join()
        with self._lock:
            network.teardown_bridge(self._state["network"])
            self._save()
        shared.release_all_paths()
        shared.release_shared_dir()

    def _cleanup_machine(self, machine_id, purge):
        try:
            if purge:
                self.delete(machine_id, timeout=20)
            else:
                with self._mlock(machine_id):
                    m = self._machine(machine_id)
                    was = m["state"]
                    self._halt(m, 20, "cleanup")
                if was != "stopped":
                    self._emit(machine_id, "stopped", reason="cleanup")
        except MachineNotFound:
            pass

    def close(self, purge=False):
        """cleanup() and release the state dir."""
        if self._closed:
            return
        self.cleanup(purge=purge)
        self._closed = True
        self._file.unlock()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

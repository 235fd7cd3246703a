"""NspawnBackend: HostManager behind tritonsim's machine-backend interface.

The one module of tritonsim.nspawn that knows tritonsim (tritonsim/backends/base.py).
Commands return at once; the blocking HostManager calls run in a small thread pool
and report through the bound BackendEvents, never synchronously (tritonsim may hold
its store lock while calling a command).

Wiring (tritonsim/backends/__init__.py)::

    if name == "nspawn":
        from ..nspawn.backend import NspawnBackend
        return NspawnBackend(data_dir)        # root only; PrerequisiteError says why not

Images: public (seeded) images all boot the cached debian-12 template; images made
by snapshot() live in DATA_DIR/nspawn/images/IMAGE_ID and boot from there.

Metadata: the backend keeps each machine's newest customer metadata (from create() and
every update_metadata(), which tritonsim calls in order) and every write reads that
newest one, one write per machine at a time. So an update is never lost: one that
arrives before the host manager knows the machine (still queued or being prepared) is
written by the provisioning right after the boot, and one that overtakes an older one in
the thread pool is not undone by it.
"""

import concurrent.futures
import logging
import os
import socket
import threading
import uuid

from ..backends.base import MachineBackend
from . import fsutil
from .cmd import check_prerequisites
from .errors import MachineNotFound
from .image import build_base_image, read_image_info
from .manager import HostManager

log = logging.getLogger("tritonsim.nspawn")

# on_state reasons that are not the answer to one of our own commands
UNSOLICITED = {"poweroff-inside", "exited", "reboot-inside", "reboot-failed", "recovered"}


class NspawnBackend(MachineBackend):
    name = "nspawn"

    def __init__(self, data_dir, *, image_cache=None, subnet=None, allow_host_ports=(),
                 workers=4, boot_timeout=180, stop_timeout=60):
        check_prerequisites()  # root, systemd-nspawn, debootstrap, iptables, ip...
        self.root = os.path.join(os.path.abspath(data_dir), "nspawn")
        self.images_dir = os.path.join(self.root, "images")
        # guest trees (setuid-root binaries, device nodes) and metadata: root only,
        # also when an older tritonsim made these 0755
        fsutil.private_dir(self.root)
        fsutil.private_dir(self.images_dir)
        self.image_cache = image_cache
        self.compute_node = str(uuid.uuid5(uuid.NAMESPACE_DNS,
                                           "tritonsim-nspawn." + socket.gethostname()))
        self.events = None
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=workers,
                                                           thread_name_prefix="nspawn")
        # firewall changes in order, never queued behind a boot
        self._fw_pool = concurrent.futures.ThreadPoolExecutor(max_workers=1,
                                                              thread_name_prefix="nspawn-fw")
        self._base = None
        self._base_lock = threading.Lock()
        self._metadata = {}                  # machine id -> newest customer metadata
        self._metadata_locks = {}            # machine id -> Lock: one metadata write at a time
        self._metadata_guard = threading.Lock()   # guards both dicts
        self.hm = HostManager(os.path.join(self.root, "hosts"), on_state=self._on_state,
                              subnet=subnet, allow_host_ports=allow_host_ports,
                              boot_timeout=boot_timeout, stop_timeout=stop_timeout)

    # ------------------------------------------------------------ helpers

    @property
    def bridge_address(self):
        """Where machines reach host services, e.g. tritonsim's CloudAPI."""
        return self.hm.bridge_address

    def guest_url(self, port):
        """The CloudAPI URL as seen from inside a machine (tritonsim must listen there)."""
        return "http://%s:%d" % (self.hm.bridge_address, port)

    def _submit(self, fn, *args):
        fut = self._pool.submit(fn, *args)
        fut.add_done_callback(lambda f: f.exception() and log.error(
            "nspawn backend %s failed: %s", fn.__name__, f.exception()))
        return fut

    def _base_image(self):
        with self._base_lock:
            if self._base is None:
                self._base = build_base_image(self.image_cache)  # cached; ~1 min first time
            return self._base

    def image_dir(self, image):
        """The template directory a machine of `image` boots from."""
        own = os.path.join(self.images_dir, image["id"])
        if read_image_info(own):
            return own
        return self._base_image()

    @staticmethod
    def _primary_network(machine):
        nets = machine.get("requested_networks") or []
        return next((n for n in nets if n.get("public")), nets[0] if nets else {})

    def _nics(self, machine, info):
        return [{"mac": info.mac, "ip": info.ip, "primary": True, "gateway": info.gateway,
                 "netmask": info.netmask, "state": "running",
                 "network": self._primary_network(machine).get("id")}]

    def _on_state(self, machine_id, state, info):
        if self.events is None or info.get("reason") not in UNSOLICITED:
            return
        self.events.machine_state(machine_id, state)

    # ------------------------------------------------------------ interface

    def bind(self, events):
        self.events = events
        self._submit(self._base_image)  # build the seed template now if it is not cached
        # after a restart the manager found its machines stopped: say so
        stopped = [m.id for m in self.hm.list() if m.state == "stopped"]
        if stopped:
            self._submit(self._report_stopped, stopped)

    def _report_stopped(self, ids):
        for mid in ids:
            self.events.machine_state(mid, "stopped")

    def _newest_metadata(self, machine_id, metadata=None):
        """Record ``metadata`` as the machine's newest (when given); return the newest (None: unknown)."""
        with self._metadata_guard:
            if metadata is not None:
                self._metadata[machine_id] = dict(metadata)
            newest = self._metadata.get(machine_id)
            return dict(newest) if newest is not None else None

    def _metadata_lock(self, machine_id):
        with self._metadata_guard:
            return self._metadata_locks.setdefault(machine_id, threading.Lock())

    def _write_newest_metadata(self, mid, unless=None):
        """Write the machine's newest metadata into it (unless it equals ``unless``, what it booted with).
        The newest is read under the machine's metadata lock, so writes never go back to an older one.
        Raises MachineNotFound when the host manager does not know the machine yet."""
        with self._metadata_lock(mid):
            newest = self._newest_metadata(mid)
            if newest is not None and newest != unless:
                self.hm.update_metadata(mid, newest)

    def create(self, machine, image, metadata, keys):
        self._newest_metadata(machine["id"], metadata)
        self._submit(self._create, machine, image, metadata, keys)

    def _create(self, machine, image, metadata, keys):
        mid = machine["id"]
        newest = self._newest_metadata(mid)
        if newest is not None:
            metadata = newest
        try:
            try:  # resumed provisioning after a restart: start over
                self.hm.delete(mid)
            except MachineNotFound:
                pass
            info = self.hm.create(
                mid, machine["name"], self.image_dir(image), metadata,
                "\n".join(keys) if not isinstance(keys, str) else keys,
                network_id=self._primary_network(machine).get("id"),
                sdc={"owner_uuid": machine.get("owner", ""), "image_uuid": image.get("id", ""),
                     "package_name": machine.get("package", ""),
                     "server_uuid": self.compute_node, "brand": machine.get("brand", "lx")})
        except Exception as e:
            log.error("provisioning %s failed: %s", mid, e)
            self.events.machine_provision_failed(mid, str(e))
            return
        try:  # an update that came while the manager did not know the machine yet
            self._write_newest_metadata(mid, unless=metadata)
        except Exception as e:
            log.error("metadata of %s not updated after provisioning: %s", mid, e)
        self.events.machine_provisioned(mid, self._nics(machine, info), self.compute_node)

    def _action(self, machine, action):
        mid = machine["id"]
        try:
            info = getattr(self.hm, action)(mid)
            self.events.machine_action_done(mid, action, info.state, True)
        except MachineNotFound:
            return
        except Exception as e:
            log.error("%s %s failed: %s", action, mid, e)
            try:
                state = self.hm.get(mid).state
            except MachineNotFound:
                return
            self.events.machine_action_done(mid, action, state, False)

    def start(self, machine):
        self._submit(self._action, machine, "start")

    def stop(self, machine):
        self._submit(self._action, machine, "stop")

    def reboot(self, machine):
        self._submit(self._action, machine, "reboot")

    def delete(self, machine):
        with self._metadata_guard:
            self._metadata.pop(machine["id"], None)
            self._metadata_locks.pop(machine["id"], None)
        self._submit(self._delete, machine["id"])

    def _delete(self, mid):
        try:
            self.hm.delete(mid)
        except MachineNotFound:
            pass

    def update_metadata(self, machine, metadata):
        self._newest_metadata(machine["id"], metadata)
        self._submit(self._update_metadata, machine["id"])

    def _update_metadata(self, mid):
        try:
            self._write_newest_metadata(mid)
        except MachineNotFound:
            pass  # not known to the manager yet: _create writes the newest once it booted

    def set_firewall(self, machine_id, policy):
        self.hm.set_firewall(machine_id, policy)   # the next boot uses it
        fut = self._fw_pool.submit(self.hm.apply_firewall, machine_id)
        fut.add_done_callback(lambda f: f.exception() and log.error(
            "firewall of %s not applied: %s", machine_id, f.exception()))

    def snapshot(self, machine, image):
        self._submit(self._snapshot, machine["id"], image)

    def _snapshot(self, mid, image):
        target = os.path.join(self.images_dir, image["id"])
        try:
            if os.path.exists(target) and not read_image_info(target):
                fsutil.safe_rmtree(target)  # an interrupted earlier try
            if not read_image_info(target):
                self.hm.snapshot(mid, target, name=image.get("name"))
        except Exception as e:
            log.error("image %s from %s failed: %s", image["id"], mid, e)
            self.events.image_done(image["id"], False, str(e))
            return
        self.events.image_done(image["id"], True)

    def delete_image(self, image_id):
        """Optional hook: remove a snapshot image's files (unless machines still use it)."""
        target = os.path.join(self.images_dir, image_id)
        if os.path.exists(target) and not self.hm.machines_using(target):
            fsutil.safe_rmtree(target)

    def close(self):
        """Finish queued work, then remove every container, mount, netns, veth, bridge
        and iptables rule (machines stay as stopped data in DATA_DIR/nspawn)."""
        self._pool.shutdown(wait=True)
        self._fw_pool.shutdown(wait=True)
        self.hm.close()

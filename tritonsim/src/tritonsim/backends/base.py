"""The machine-backend interface: what actually runs (or pretends to run) machines.

tritonsim's API layer owns the CloudAPI view of a machine (its record in the
store).  A backend is told what to do and reports back asynchronously through
the BackendEvents object it was bound to; provisioning therefore takes exactly
as long as the backend takes.  Rules for implementations:

* Every command returns quickly; real work happens in the backend's own
  threads/processes.  Commands may be called while the store lock is held, so
  they must not call back into the events object synchronously.
* Arguments are plain JSON-like dicts (copies; mutate freely):
  ``machine`` is the stored record (``id``, ``seq``, ``name``, ``brand``,
  ``image``, ``memory``, ``disk``, ``vcpus``, ``tags``, ``metadata``,
  ``requested_networks`` = [{id, name, public, subnet, gateway,
  provision_start_ip, provision_end_ip, ip?}], ``state``, ``pending``...),
  ``image`` an image object, ``metadata`` the customer metadata and ``keys``
  the authorized public key lines.
* A later command for the same machine supersedes an unfinished earlier one
  (for example stop while a start is still running).
* Events for a machine that was deleted in the meantime are ignored.
"""

from abc import ABC, abstractmethod


class BackendEvents(ABC):
    """Implemented by tritonsim; backends call these from any thread."""

    @abstractmethod
    def machine_provisioned(self, machine_id, nics, compute_node):
        """Provisioning finished; the machine is running.

        nics: [{"mac", "ip", "primary", "gateway", "netmask", "network"}] with
        exactly one primary; compute_node: a UUID naming the host."""

    @abstractmethod
    def machine_provision_failed(self, machine_id, reason):
        """Provisioning failed for good; the machine ends in state "failed"."""

    @abstractmethod
    def machine_action_done(self, machine_id, action, state, success=True):
        """An asynchronous action ("start", "stop", "reboot") has ended and the
        machine is now in `state` ("running", "stopped", ...)."""

    @abstractmethod
    def machine_state(self, machine_id, state):
        """An unsolicited state change (e.g. "offline", or "stopped" after the
        guest powered itself off)."""

    @abstractmethod
    def image_done(self, image_id, success, error=None):
        """snapshot() finished: the image becomes "active" (or "failed")."""


class MachineBackend(ABC):
    name = "abstract"

    def bind(self, events: BackendEvents):
        self.events = events

    @abstractmethod
    def create(self, machine, image, metadata, keys):
        """Provision a new machine; report machine_provisioned or
        machine_provision_failed."""

    @abstractmethod
    def start(self, machine):
        """Boot a stopped machine; report machine_action_done(id, "start", "running")."""

    @abstractmethod
    def stop(self, machine):
        """Shut a machine down; report machine_action_done(id, "stop", "stopped")."""

    @abstractmethod
    def reboot(self, machine):
        """Restart a machine; report machine_action_done(id, "reboot", "running")."""

    @abstractmethod
    def delete(self, machine):
        """Destroy a machine and free its resources (nothing is reported)."""

    @abstractmethod
    def snapshot(self, machine, image):
        """Create `image` (state "creating") from the machine; report image_done."""

    def resize(self, machine, package):
        """The machine's package changed (memory/disk/vcpus already updated)."""

    def update_metadata(self, machine, metadata):
        """Customer metadata changed; push it into the running guest if possible."""

    def set_firewall(self, machine_id, policy):
        """The machine's Cloud Firewall policy changed (also once per firewalled machine
        at every tritonsim start).  policy None: no firewall (disabled, or the machine is
        gone); else {"inbound_allow": [entry], "outbound_block": [entry]} where entry is
        {"proto": "tcp"|"udp", "addrs": [CIDR], "ports": [[lo, hi]] or None (all)} or
        {"proto": "icmp", "addrs": [CIDR], "types": [[type, code or None]] or None (all)}
        (see tritonsim/firewall.py compile_policies).  Everything inbound not allowed is
        dropped and everything outbound not blocked allowed; loopback and replies to the
        machine's own connections always pass.  The policy may arrive before create()
        and must hold from the first boot, across restarts of the machine.  Default:
        not enforced."""

    def resume(self, machine, image):
        """After a tritonsim restart: finish the interrupted operation named by
        machine["pending"]["action"] ("provision", "start", "stop", "reboot")."""
        action = machine["pending"]["action"]
        if action == "provision":
            keys = machine["metadata"].get("root_authorized_keys", "").splitlines()
            self.create(machine, image, machine["metadata"], keys)
        else:
            getattr(self, action)(machine)

    def close(self):
        """tritonsim is shutting down; stop background work (machines may stay)."""

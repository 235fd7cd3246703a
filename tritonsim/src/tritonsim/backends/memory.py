"""A backend that only keeps state: machines "boot" after a configurable delay."""

from ..accounts import stable_uuid
from ..netalloc import nics_for
from ..scheduler import Scheduler
from .base import MachineBackend

COMPUTE_NODES = [stable_uuid("server", "memory", str(i)) for i in range(4)]


class MemoryBackend(MachineBackend):
    name = "memory"

    def __init__(self, provision_delay=2.0, action_delay=None, image_delay=None):
        self.provision_delay = provision_delay
        self.action_delay = provision_delay if action_delay is None else action_delay
        self.image_delay = provision_delay if image_delay is None else image_delay
        self._timers = Scheduler()
        self.firewall = {}   # machine id -> last policy (not enforced; for tests)

    def _later(self, machine, delay, fn):
        # Keyed by machine: a new command supersedes an unfinished one.
        self._timers.call_later(delay, fn, key=machine["id"])

    def create(self, machine, image, metadata, keys):
        nics = nics_for(machine)
        node = COMPUTE_NODES[machine["seq"] % len(COMPUTE_NODES)]
        self._later(machine, self.provision_delay,
                    lambda: self.events.machine_provisioned(machine["id"], nics, node))

    def _action(self, machine, action, state):
        self._later(machine, self.action_delay,
                    lambda: self.events.machine_action_done(machine["id"], action, state))

    def start(self, machine):
        self._action(machine, "start", "running")

    def stop(self, machine):
        self._action(machine, "stop", "stopped")

    def reboot(self, machine):
        self._action(machine, "reboot", "running")

    def delete(self, machine):
        self._timers.cancel(machine["id"])

    def set_firewall(self, machine_id, policy):
        if policy is None:
            self.firewall.pop(machine_id, None)
        else:
            self.firewall[machine_id] = policy

    def snapshot(self, machine, image):
        self._timers.call_later(self.image_delay,
                                lambda: self.events.image_done(image["id"], True),
                                key=("image", image["id"]))

    def close(self):
        self._timers.close()

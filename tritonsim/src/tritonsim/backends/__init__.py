"""Machine backends.  `make_backend(name, ...)` builds one by name."""

from .base import BackendEvents, MachineBackend

BACKENDS = ("memory", "nspawn")


def make_backend(name, *, data_dir, provision_delay, action_delay=None):
    """data_dir: tritonsim's state directory (a backend may keep its own state under it)."""
    if name == "memory":
        from .memory import MemoryBackend
        return MemoryBackend(provision_delay=provision_delay, action_delay=action_delay)
    if name == "nspawn":
        # Real systemd-nspawn hosts (root only): the constructor raises PrerequisiteError,
        # a ValueError, saying what to install when it cannot run here.
        from ..nspawn.backend import NspawnBackend
        return NspawnBackend(data_dir)
    raise ValueError(f"unknown backend {name!r} (available: {', '.join(BACKENDS)})")


__all__ = ["BackendEvents", "MachineBackend", "make_backend", "BACKENDS"]

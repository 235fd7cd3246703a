"""Machine backends.  `make_backend(name, ...)` builds one by name."""

from .base import BackendEvents, MachineBackend

BACKENDS = ("memory",)


def make_backend(name, *, data_dir, provision_delay, action_delay=None):
    """data_dir: tritonsim's state directory (a backend may keep its own state under it)."""
    if name == "memory":
        from .memory import MemoryBackend
        return MemoryBackend(provision_delay=provision_delay, action_delay=action_delay)
    raise ValueError(f"unknown backend {name!r} (available: {', '.join(BACKENDS)})")


__all__ = ["BackendEvents", "MachineBackend", "make_backend", "BACKENDS"]

"""Exceptions raised by the nspawn host layer."""


class HostError(Exception):
    """Something went wrong creating, running or removing a real host."""


class PrerequisiteError(HostError):
    """The host cannot run containers: not root, or a required tool is missing.

    The message says what to install; CLIs print it without a traceback.
    """


class MachineNotFound(HostError, KeyError):
    """No machine with that id is known to the manager."""

    def __str__(self):  # KeyError would repr() the message
        return str(self.args[0]) if self.args else "machine not found"


class MachineStateError(HostError):
    """The operation is not valid in the machine's current state."""

"""The manager's state file: what it made, so cleanup (even after a crash) is exact.

STATE_DIR/state.json::

    {"version": 1, "instance_id": "3fa9c2d1",
     "network": {"instance_id", "tag", "bridge", "subnet", "gateway", "up",
                 "iptables": [[table, chain, spec...], ...], "ip_forward"},
     "machines": {ID: {record, see manager.py}}}

STATE_DIR/.lock is flock()ed by the one live manager (or cleanup) using the dir.
"""

import copy
import fcntl
import json
import os
import secrets

from . import fsutil
from .errors import HostError

VERSION = 1


def new_state():
    iid = secrets.token_hex(4)
    return {
        "version": VERSION,
        "instance_id": iid,
        "network": {"instance_id": iid, "tag": "tritonsim-" + iid, "bridge": "tsbr-" + iid,
                    "iptables": [], "up": False},
        "machines": {},
    }


class StateFile:
    def __init__(self, state_dir):
        self.dir = os.path.abspath(state_dir)
        self.path = os.path.join(self.dir, "state.json")
        self._lock_fd = None

    def lock(self):
        """Claim the state dir for this process; HostError if another one holds it."""
        fsutil.private_dir(self.dir)  # machines' disks and metadata: root only
        fd = os.open(os.path.join(self.dir, ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = os.read(fd, 64).decode(errors="replace").strip()
            os.close(fd)
            raise HostError("state dir %s is in use by another manager (pid %s)"
                            % (self.dir, owner or "?")) from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._lock_fd = fd

    def unlock(self):
        if self._lock_fd is not None:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            os.close(self._lock_fd)
            self._lock_fd = None

    def exists(self):
        return os.path.exists(self.path)

    def load(self):
        if not self.exists():
            return new_state()
        with open(self.path, encoding="utf-8") as f:
            state = json.load(f)
        if state.get("version") != VERSION:
            raise HostError("%s: unsupported state version %r" % (self.path, state.get("version")))
        return state

    def save(self, state):
        fsutil.write_json_atomic(self.path, copy.deepcopy(state), mode=0o600)

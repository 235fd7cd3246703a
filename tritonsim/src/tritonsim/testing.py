"""Run tritonsim servers from tests: key generation and a process handle.

Used by locustfleet.triton's tests/conftest.py (see there for examples); importable as
`tritonsim.testing` by any test suite that needs keys or a server outside a fixture.
The server runs as `sys.executable -m tritonsim`, so tritonsim must be installed
in the running interpreter's environment.
"""

import json
import os
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

START_TIMEOUT = 20


@dataclass
class KeyPair:
    key_path: Path      # private key (OpenSSH format)
    pub_path: Path
    fingerprint: str    # MD5 colon-hex
    kind: str


def generate_key(directory, name, kind="rsa"):
    """ssh-keygen a key pair (rsa 2048, ecdsa P-256 or ed25519) without passphrase."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    size = {"rsa": ["-b", "2048"], "ecdsa": ["-b", "256"], "ed25519": []}[kind]
    subprocess.run(["ssh-keygen", "-q", "-t", kind, *size, "-N", "", "-C", f"{name}@tritonsim",
                    "-f", str(path)], check=True, stdin=subprocess.DEVNULL)
    out = subprocess.run(["ssh-keygen", "-l", "-E", "md5", "-f", str(path) + ".pub"],
                         check=True, capture_output=True, text=True).stdout
    fingerprint = out.split()[1].removeprefix("MD5:")
    return KeyPair(path, Path(str(path) + ".pub"), fingerprint, kind)


@dataclass
class TritonSimProcess:
    url: str
    account: str
    keys: list
    users: dict
    data_dir: Path
    log_path: Path
    args: list
    process: subprocess.Popen = None
    stopped: bool = field(default=False)
    admin_token_file: Path = None   # default data_dir/admin-token (what the server writes)
    admin_token: str = None         # read from admin_token_file at every start

    @property
    def key_path(self):
        return self.keys[0].key_path

    @property
    def pub_path(self):
        return self.keys[0].pub_path

    @property
    def fingerprint(self):
        return self.keys[0].fingerprint

    @property
    def key_id(self):
        return f"/{self.account}/keys/{self.fingerprint}"

    # ---- /__sim helpers (loopback only, with the admin token of the current run)

    def admin_headers(self):
        """{"Authorization": "Bearer <token>"}: what a /__sim request needs."""
        return {"Authorization": f"Bearer {self.admin_token}"}

    def _sim(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json",
                                              **self.admin_headers()})
        with urllib.request.urlopen(req, timeout=30) as resp:
            return json.loads(resp.read() or b"null")

    def info(self):
        """{"backend", "account", "url", "guest_url"} (guest_url: CloudAPI as machines see it)."""
        return self._sim("GET", "/__sim/info")

    def stats(self):
        """{"by_route": {"ListMachines": {"200": 3, "429": 1}, ...}}"""
        return self._sim("GET", "/__sim/stats")

    def route_stats(self, route):
        return self.stats()["by_route"].get(route, {})

    def reset_stats(self):
        self._sim("DELETE", "/__sim/stats")

    def set_faults(self, faults):
        """e.g. {"503": 0.1, "drop": 0.05, "latency": 0.2}; {} clears."""
        return self._sim("POST", "/__sim/faults", faults)

    def get_faults(self):
        return self._sim("GET", "/__sim/faults")

    def seed_machines(self, count, tags=None, name_prefix="seed-"):
        return self._sim("POST", "/__sim/seed-machines",
                         {"count": count, "tags": tags or {}, "name_prefix": name_prefix})

    def firewall(self):
        """{machine id: firewall policy} as last handed to the backend."""
        return self._sim("GET", "/__sim/firewall")

    # ---- process control

    def start(self):
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen([sys.executable, "-m", "tritonsim", "serve", *self.args],
                                            stdout=subprocess.PIPE, stderr=log,
                                            stdin=subprocess.DEVNULL, env=env)
        sel = selectors.DefaultSelector()
        sel.register(self.process.stdout, selectors.EVENT_READ)
        ready = sel.select(timeout=START_TIMEOUT)
        sel.close()
        line = self.process.stdout.readline().decode().strip() if ready else ""
        if not line.startswith("http://"):
            self.process.kill()
            self.process.wait()
            raise RuntimeError(f"tritonsim did not start; log:\n{self.log_path.read_text()}")
        self.url = line
        self.admin_token = read_admin_token(self.admin_token_file or self.data_dir / "admin-token")
        self.stopped = False
        return self

    def stop(self, timeout=15):
        """SIGTERM and wait; returns the exit status."""
        if self.stopped:
            return self.process.returncode
        self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise
        finally:
            self.process.stdout.close()
            self.stopped = True
        return code

    def restart(self):
        """Stop (asserting a clean exit) and start again on the same port and data dir."""
        assert self.stop() == 0, self.log_path.read_text()
        port = self.url.rsplit(":", 1)[1]
        self.args = [a if not a.startswith("127.0.0.1:") else f"127.0.0.1:{port}"
                     for a in self.args]
        return self.start()


def _admin_token_file_option(args):
    """The --admin-token-file given in serve's args, if any (the last one wins)."""
    found = None
    for i, arg in enumerate(args):
        if arg == "--admin-token-file" and i + 1 < len(args):
            found = Path(args[i + 1])
        elif arg.startswith("--admin-token-file="):
            found = Path(arg.split("=", 1)[1])
    return found


def read_admin_token(path):
    """The /__sim admin token a running tritonsim wrote to path (DATA_DIR/admin-token)."""
    return Path(path).read_text(encoding="ascii").strip()


def launcher():
    """Returns (start, stop_all): start(**options) -> TritonSimProcess, and a function
    that stops every started instance (asserting exit status 0) and removes its files.

    Options: account="testacct", key_type="rsa"|"ecdsa"|"ed25519"|None (no account key),
    extra_keys=[kinds], users=[logins] or {login: kind}, provision_delay=0.2,
    action_delay=None, throttle="off" (or "RATE:BURST"), faults={kind: value},
    seed=None, port=0, extra_args=[...].
    """
    # Own temp dirs rather than tmp_path_factory: pytest's basetemp cleanup can be slow
    # when other suites leave big trees there, and nothing of ours needs to outlive the run.
    started, scratch = [], []

    def start(account="testacct", key_type="rsa", extra_keys=(), users=(), provision_delay=0.2,
              action_delay=None, throttle="off", faults=None, seed=None, port=0,
              extra_args=()):
        base = Path(tempfile.mkdtemp(prefix="tritonsim-test-"))
        scratch.append(base)
        keys = [generate_key(base / "keys", "id_" + key_type, key_type)] if key_type else []
        keys += [generate_key(base / "keys", f"extra{i}_{kind}", kind)
                 for i, kind in enumerate(extra_keys)]
        users = dict(users) if isinstance(users, dict) else {u: "rsa" for u in users}
        user_keys = {login: generate_key(base / "keys" / "users", login, kind)
                     for login, kind in users.items()}
        args = ["--listen", f"127.0.0.1:{port}", "--data", str(base / "data"),
                "--account", account, "--provision-delay", str(provision_delay),
                "--throttle", throttle]
        for kp in keys:
            args += ["--key", str(kp.pub_path)]
        for login, kp in user_keys.items():
            args += ["--user", f"{login}:{kp.pub_path}"]
        if action_delay is not None:
            args += ["--action-delay", str(action_delay)]
        if faults:
            args += ["--faults", ",".join(f"{k}={v}" for k, v in faults.items())]
        if seed is not None:
            args += ["--seed", str(seed)]
        args += list(extra_args)
        sim = TritonSimProcess(url="", account=account, keys=keys, users=user_keys,
                               data_dir=base / "data", log_path=base / "server.log", args=args,
                               admin_token_file=_admin_token_file_option(args))
        started.append(sim)
        return sim.start()

    def stop_all():
        problems = []
        for sim in started:
            if not sim.stopped:
                code = sim.stop()
                if code != 0:
                    problems.append(f"tritonsim exited with {code}; log:\n{sim.log_path.read_text()}")
        for base in scratch:
            shutil.rmtree(base, ignore_errors=True)
        assert not problems, "\n".join(problems)

    return start, stop_all

"""Helpers of the role tests (tests/roles): the fleet of real hosts, ansible-playbook runs against
it, and the load test's target server. Fixtures are in conftest.py."""

import json
import os
import re
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlparse

from ansible_collections.locustfleet.triton.plugins.module_utils._client import CloudAPIError

REPO = Path(__file__).resolve().parents[2]
FILES = Path(__file__).resolve().parent / "files"
if str(REPO / "tests" / "hosts") not in sys.path:
    sys.path.insert(0, str(REPO / "tests" / "hosts"))

from hostutil import wait_until  # noqa: E402  pylint: disable=wrong-import-position

IMAGE = "debian-12"
PACKAGE = "g1-medium"
WORKERS = ("worker1", "worker2")
MACHINES = ("master", *WORKERS)
CLUSTER = "roles"
# A master argument that holds everything a unit file could misread (quotes, $, %, backslash, space):
# systemd must hand it to Locust as it is (--exclude-tags of a tag no task has changes nothing).
ODD_ARG = "it's \"odd\" $HOME ${HOME} %i \\ end; touch /tmp/pwned"

# Short on purpose: the watcher tests wait for idle timeouts.
IDLE_TIMEOUT = 40
IDLE_GRACE = 20
WATCH_INTERVAL = 5
ACTIVITY_INTERVAL = 5


class TargetServer(ThreadingHTTPServer):
    """The load test's target: answers every GET and counts requests per X-Worker header.

    With ``profile=True`` it has a known latency and error profile per path: ``/slow`` answers
    after SLOW_MS, every second ``/flaky`` request gets a 500, the rest answer at once. ``burn``
    maps an X-Worker value to milliseconds of CPU its locustfile (fleetcheck.py) burns per request,
    sent in the X-Burn-Ms answer header.
    """

    daemon_threads = True
    SLOW_MS = 250

    def __init__(self, address, profile=False):
        super().__init__((address, 0), _TargetHandler)
        self.profile = profile
        self.burn = {}
        self.lock = threading.Lock()
        self.by_worker = {}
        self.flaky_calls = 0

    @property
    def url(self):
        return "http://%s:%d" % self.server_address[:2]

    def count(self, worker, path):
        """Count a request; its (status, delay in s, burn ms)."""
        with self.lock:
            self.by_worker[worker] = self.by_worker.get(worker, 0) + 1
            status = 200
            if self.profile and path == "/flaky":
                self.flaky_calls += 1
                status = 500 if self.flaky_calls % 2 == 0 else 200
            delay = self.SLOW_MS / 1000 if self.profile and path == "/slow" else 0
            return status, delay, self.burn.get(worker, 0)

    def reset(self):
        with self.lock:
            counts, self.by_worker = self.by_worker, {}
        return counts

    def snapshot(self):
        with self.lock:
            return dict(self.by_worker)


class _TargetHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):  # noqa: N802 (http.server's naming)
        status, delay, burn = self.server.count(self.headers.get("X-Worker", "-"), urlparse(self.path).path)
        if delay:
            time.sleep(delay)
        body = b"ok\n"
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        if burn:
            self.send_header("X-Burn-Ms", str(burn))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format, *args):  # pylint: disable=redefined-builtin
        pass


class PlaybookRun:
    def __init__(self, rc, output, recap):
        self.rc = rc
        self.output = output
        self.recap = recap  # {host: {"ok": n, "changed": n, ...}}


class Fleet:
    """The machines (name -> GetMachine dict), and helpers to act on them."""

    def __init__(self, sim, client, ssh, guest_url, workdir):
        self.sim = sim
        self.client = client
        self.ssh = ssh
        self.guest_url = guest_url
        self.bridge = urlparse(guest_url).hostname
        self.workdir = workdir
        self.machines = {}
        self.inventory = workdir / "inventory.yml"
        self.runs = 0

    # -- CloudAPI
    def path(self, name=None, *rest):
        parts = ["", self.sim.account, "machines"]
        if name is not None:
            parts.append(self.machines[name]["id"] if name in self.machines else name)
        return "/".join(parts + list(rest))

    def create(self, name, metadata=None):
        image = self.client.get("/%s/images" % self.sim.account, {"name": IMAGE}, expect=list)[-1]["id"]
        body = {"name": name, "image": image, "package": PACKAGE, "tag.locustfleet.cluster": CLUSTER,
                "tag.locustfleet.role": "master" if name == "master" else "worker"}
        body.update({"metadata.%s" % k: v for k, v in (metadata or {}).items()})
        machine_id = self.client.post(self.path(), body)["id"]
        self.machines[name] = {"id": machine_id}
        return machine_id

    def state(self, name):
        try:
            return self.client.get(self.path(name), expect=dict)["state"]
        except CloudAPIError as exc:
            if exc.status == 410:
                return "deleted"
            raise

    def wait_state(self, name, state, timeout=180):
        wait_until(lambda: self.state(name) == state, timeout=timeout, interval=0.5,
                   what="machine %s %s" % (name, state))
        if state == "running":
            self.machines[name] = self.client.get(self.path(name), expect=dict)

    def action(self, name, action):
        self.client.post(self.path(name), {"action": action}, idempotent=True)

    def audit(self, name):
        return self.client.get(self.path(name, "audit"), expect=list)

    def ip(self, name):
        return self.machines[name]["primaryIp"]

    # -- inside the machines
    def run(self, name, command, **kw):
        return self.ssh.run(self.ip(name), command, **kw)

    def out(self, name, command, **kw):
        return self.ssh.out(self.ip(name), command, **kw)

    def nproc(self, name):
        return int(self.out(name, "nproc"))

    def master_stats(self):
        """The master's /stats/requests, read on the master itself (the web UI is on 127.0.0.1)."""
        res = self.run("master", "python3 -c \"import urllib.request; "
                       "print(urllib.request.urlopen('http://127.0.0.1:8089/stats/requests', timeout=5).read().decode())\"",
                       check=False)
        return json.loads(res.stdout) if res.returncode == 0 else None

    def connected_workers(self):
        stats = self.master_stats()
        return stats["worker_count"] if stats else -1

    def journal(self, name):
        """The watcher's journal lines on ``name``: [(monotonic seconds, message)]. The machines share
        this host's kernel, so their CLOCK_MONOTONIC is time.monotonic() here, and the tests' clock
        steps do not move it."""
        out = self.out(name, "journalctl -q -o json --output-fields=MESSAGE,__MONOTONIC_TIMESTAMP "
                             "-t locustfleet-idle-watcher --no-pager")
        entries = []
        for line in out.splitlines():
            entry = json.loads(line)
            entries.append((int(entry["__MONOTONIC_TIMESTAMP"]) / 1e6, entry.get("MESSAGE") or ""))
        return entries

    def upper_file(self, name, path):
        """A file of a machine's disk, read on the host (works while the machine is stopped): the
        machine's overlay upper layer in tritonsim's nspawn state (tritonsim/docs/nspawn-hosts.md)."""
        upper = self.sim.data_dir / "nspawn" / "hosts" / "machines" / self.machines[name]["id"] / "upper"
        return (upper / path.lstrip("/")).read_text(errors="replace")

    # -- Ansible
    def write_inventory(self, sim):
        watcher = sim.users["watcher"]
        inventory = {"all": {
            "vars": {
                "ansible_user": "root",
                "ansible_ssh_private_key_file": str(sim.key_path),
                "ansible_ssh_common_args": "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR",
                "ansible_python_interpreter": "/usr/bin/python3",
                "locust_files": [str(FILES / "fleetcheck.py")],
                "locust_extra_files": [str(FILES / "fleetdata.txt"), str(FILES / "rampshape.py")],
                "locust_requirements": ["six==1.16.0"],
                "locust_activity_interval": ACTIVITY_INTERVAL,
                # the idle watcher, on the master and the workers
                "idle_timeout": IDLE_TIMEOUT,
                "idle_grace": IDLE_GRACE,
                "idle_watcher_interval": WATCH_INTERVAL,
                "idle_action": "stop",
                "idle_dry_run": True,
                "locust_idle_watcher_cluster": CLUSTER,
                "locust_idle_watcher_url": self.guest_url,
                "locust_idle_watcher_account": sim.account,
                "locust_idle_watcher_user": "watcher",
                "locust_idle_watcher_key_id": watcher.fingerprint,
                "locust_idle_watcher_private_key_src": str(watcher.key_path),
            },
            "children": {
                "locust_master": {"hosts": {"master": {"ansible_host": self.ip("master")}},
                                  "vars": {"locust_idle_watcher_role": "master",
                                           "locust_master_extra_args": ["--exclude-tags", ODD_ARG]}},
                "locust_workers": {
                    # locust_master_host stays empty: the workers read it with mdata-get
                    "hosts": {name: {"ansible_host": self.ip(name)} for name in WORKERS},
                    "vars": {"locust_idle_watcher_role": "worker"},
                },
            },
        }}
        self.inventory.write_text(json.dumps(inventory, indent=2))

    def apply(self, playbook, limit=None, extra_vars=None):
        self.runs += 1
        args = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", str(self.inventory),
                str(FILES / playbook)]
        if limit:
            args += ["--limit", limit]
        if extra_vars:
            args += ["-e", json.dumps(extra_vars)]
        env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
        env.update(ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0",
                   ANSIBLE_PIPELINING="1", ANSIBLE_FORKS="10", ANSIBLE_LOCAL_TEMP=str(self.workdir / "ansible-tmp"),
                   ANSIBLE_LOG_PATH=str(self.workdir / "ansible.log"),
                   PATH=os.path.dirname(sys.executable) + ":" + os.environ.get("PATH", ""))
        started = time.monotonic()
        proc = subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True, timeout=1200, check=False)
        output = proc.stdout + proc.stderr
        (self.workdir / ("ansible-run-%d.log" % self.runs)).write_text(output)
        recap = {host: {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", rest)}
                 for host, rest in re.findall(r"^(\S+)\s+:\s+(ok=.*)$", proc.stdout, re.M)}
        print("\n[roles] %s%s: %.0fs, recap %s" % (playbook, " --limit " + limit if limit else "",
                                                   time.monotonic() - started, recap))
        assert proc.returncode == 0, output[-6000:]
        return PlaybookRun(proc.returncode, output, recap)

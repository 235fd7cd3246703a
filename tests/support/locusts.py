"""Real Locust processes (the pinned version beside sys.executable) on loopback, and a local HTTP target.

    with http_target() as url:              # http://127.0.0.1:<port>, answers "ok" to every GET
        fleet = Locusts(tmp_path, [PLUGIN], {"locustfile.py": TEXT})
        fleet.workers(2)                    # connected to the master's port on 127.0.0.1
        master = fleet.master("--headless", "-u", "1", "-t", "5s", "-H", url)
        ...
        fleet.stop()                        # SIGTERM to the processes still running

Each process runs in ``tmp`` with its own Locust log ``<name>.log``; its environment is ours plus
``env(name)`` (override it) plus what ``start`` is given.
"""

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

LOCUST = Path(sys.executable).with_name("locust")


class _Ok(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (http.server's naming)
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, format, *args):  # pylint: disable=redefined-builtin
        pass


@contextlib.contextmanager
def http_target():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Ok)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    try:
        yield "http://127.0.0.1:%d" % server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Locusts:
    """Locust processes started in ``tmp``, loading the given locustfiles (written there) and ``plugins``."""

    def __init__(self, tmp, plugins, locustfiles):
        self.tmp = tmp
        self.plugins = [str(plugin) for plugin in plugins]
        self.procs = []
        for name, text in locustfiles.items():
            (tmp / name).write_text(text)
        self.port = free_port()

    def env(self, name):  # pylint: disable=unused-argument
        """Extra environment of the process ``name``."""
        return {}

    def start(self, name, *args, files=("locustfile.py",), env=None):
        environ = dict(os.environ, PYTHONUNBUFFERED="1", **self.env(name), **(env or {}))
        locustfile = ",".join([str(self.tmp / f) for f in files] + self.plugins)
        cmd = [str(LOCUST), "-f", locustfile, "--logfile", str(self.tmp / ("%s.log" % name)), "--loglevel", "INFO",
               *args]
        proc = subprocess.Popen(cmd, cwd=self.tmp, env=environ, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.procs.append(proc)
        return proc

    def worker(self, name, env=None):
        return self.start(name, "--worker", "--master-host", "127.0.0.1", "--master-port", str(self.port), env=env)

    def workers(self, count, env=None):
        for i in range(count):
            self.worker("worker_%02d" % i, env=env)

    def master(self, *args, files=("locustfile.py",), env=None):
        return self.start("master", "--master", "--master-bind-host", "127.0.0.1", "--master-bind-port",
                          str(self.port), *args, files=files, env=env)

    def stop(self):
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

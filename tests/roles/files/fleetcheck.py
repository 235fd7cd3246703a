"""Locustfile of the role and end-to-end tests: every request names the worker process that sent it
(hostname / supervisor process name), so the target server can count requests per worker. Three
paths, for the target's per-path latency and error profile (tests/roles/rolesutil.TargetServer);
when the target answers with X-Burn-Ms, the worker burns that much CPU (a saturated load generator)."""

import os
import socket
import time

from locust import HttpUser, constant, task

WORKER = "%s/%s" % (socket.gethostname(), os.environ.get("SUPERVISOR_PROCESS_NAME", "pid%d" % os.getpid()))
MAX_BURN_MS = 2000


def burn(response):
    try:
        milliseconds = min(int(response.headers.get("X-Burn-Ms", "0")), MAX_BURN_MS)
    except ValueError:
        return
    end = time.monotonic() + milliseconds / 1000
    while time.monotonic() < end:  # no yield to gevent: the whole process is busy
        pass


class FleetCheckUser(HttpUser):
    wait_time = constant(0.2)

    def get(self, path):
        burn(self.client.get(path, headers={"X-Worker": WORKER}))

    @task(3)
    def index(self):
        self.get("/")

    @task
    def slow(self):
        self.get("/slow")

    @task
    def flaky(self):
        self.get("/flaky")

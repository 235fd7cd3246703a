"""Locustfile of the role tests: every request names the worker process that sent it
(hostname / supervisor process name), so the target server can count requests per worker."""

import os
import socket

from locust import HttpUser, constant, task

WORKER = "%s/%s" % (socket.gethostname(), os.environ.get("SUPERVISOR_PROCESS_NAME", "pid%d" % os.getpid()))


class FleetCheckUser(HttpUser):
    wait_time = constant(0.2)

    @task
    def index(self):
        self.client.get("/", headers={"X-Worker": WORKER})

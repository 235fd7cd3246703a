"""A LoadTestShape for the idle watcher's role test: 0 users for ZERO_FOR seconds, then 1 user
(fewer than the fleet's worker processes) until END; only the master loads it (-f on locust-headless).

Its time is monotonic: the test steps the host's wall clock, which Locust's get_run_time() follows."""

import time

from locust import LoadTestShape

ZERO_FOR = 50
END = 180


class StartsAtZeroThenOneUser(LoadTestShape):
    started = None

    def tick(self):
        if self.started is None:
            self.started = time.monotonic()
        run_time = time.monotonic() - self.started
        if run_time < ZERO_FOR:
            return (0, 1)
        if run_time < END:
            return (1, 1)
        return None

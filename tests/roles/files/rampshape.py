"""A LoadTestShape for the idle watcher's role test: 0 users for ZERO_FOR seconds, then 1 user
(fewer than the fleet's worker processes) until END; only the master loads it (-f on locust-headless)."""

from locust import LoadTestShape

ZERO_FOR = 50
END = 180


class StartsAtZeroThenOneUser(LoadTestShape):
    def tick(self):
        run_time = self.get_run_time()
        if run_time < ZERO_FOR:
            return (0, 1)
        if run_time < END:
            return (1, 1)
        return None

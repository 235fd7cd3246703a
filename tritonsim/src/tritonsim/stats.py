"""Counts of answered requests per CloudAPI route name and outcome."""

import threading
from collections import defaultdict


class Stats:
    def __init__(self):
        self._lock = threading.Lock()
        self._by_route = defaultdict(lambda: defaultdict(int))

    def record(self, route, outcome):
        """outcome: an HTTP status (int or str) or "drop"."""
        with self._lock:
            self._by_route[route][str(outcome)] += 1

    def snapshot(self):
        with self._lock:
            return {"by_route": {route: dict(counts)
                                 for route, counts in sorted(self._by_route.items())}}

    def reset(self):
        with self._lock:
            self._by_route.clear()

"""A single timer thread for delayed callbacks, keyed so a new call can supersede an old one."""

import heapq
import itertools
import sys
import threading
import time
import traceback


class Scheduler:
    def __init__(self, clock=time.monotonic):
        self._clock = clock
        self._cond = threading.Condition()
        self._heap = []                 # (due, n, key, fn)
        self._live = {}                 # key -> n of the call that counts
        self._counter = itertools.count()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="tritonsim-scheduler", daemon=True)
        self._thread.start()

    def call_later(self, delay, fn, key=None):
        with self._cond:
            n = next(self._counter)
            if key is not None:
                self._live[key] = n
            heapq.heappush(self._heap, (self._clock() + max(0.0, delay), n, key, fn))
            self._cond.notify()

    def cancel(self, key):
        with self._cond:
            self._live.pop(key, None)

    def close(self):
        with self._cond:
            self._closed = True
            self._cond.notify()
        self._thread.join(timeout=5)

    def _run(self):
        while True:
            with self._cond:
                while not self._closed:
                    if self._heap and self._heap[0][0] <= self._clock():
                        break
                    timeout = self._heap[0][0] - self._clock() if self._heap else None
                    self._cond.wait(timeout)
                if self._closed:
                    return
                dummy, n, key, fn = heapq.heappop(self._heap)
                if key is not None:
                    if self._live.get(key) != n:
                        continue    # superseded or cancelled
                    del self._live[key]
            try:
                fn()
            except Exception:  # a failing callback must not kill the timer thread
                traceback.print_exc(file=sys.stderr)

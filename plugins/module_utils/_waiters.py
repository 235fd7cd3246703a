# -*- coding: utf-8 -*-
# Copyright: locustfleet.triton contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# PRIVATE to the collection: may change without notice between releases.
"""The one way anything in the collection waits: a task's Deadline and ``wait_until``.

Time is monotonic: a clock step on the control node neither ends a wait early nor stretches it.
"""

from __future__ import annotations

import time


class Deadline:
    """One time budget for everything a task does (``seconds`` from now, on the monotonic clock)."""

    def __init__(self, seconds, clock=time.monotonic):
        self._clock = clock
        self.seconds = seconds
        self.ends = clock() + seconds

    def remaining(self):
        return max(0.0, self.ends - self._clock())

    def expired(self):
        return self.remaining() <= 0


class WaitTimeout(Exception):
    """The deadline passed while waiting; the message says for what and what was last seen."""


def wait_until(probe, deadline, interval, timeout_error, sleep=time.sleep):
    """Call ``probe()`` until it returns something other than None, and return that.

    Between two calls it sleeps ``interval`` seconds, never past ``deadline``. When the deadline has
    passed after a call that returned None, it raises ``timeout_error()`` (an exception, built then so
    it can name what was last seen). ``probe`` is always called at least once.
    """
    while True:
        outcome = probe()
        if outcome is not None:
            return outcome
        if deadline.expired():
            raise timeout_error()
        sleep(min(interval, deadline.remaining()))


def retry_while(call, retryable, deadline, interval, sleep=time.sleep):
    """``call()``, repeated while it raises an exception that ``retryable(exc)`` accepts and the deadline
    allows; then that last exception is raised (with CloudAPI's own words and request id)."""
    last = []

    def probe():
        try:
            return (call(),)
        except Exception as exc:  # pylint: disable=broad-exception-caught
            if not retryable(exc):
                raise
            last[:] = [exc]
            return None

    return wait_until(probe, deadline, interval, lambda: last[0], sleep=sleep)[0]

# -*- coding: utf-8 -*-
# Copyright: locustfleet.triton contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# PRIVATE to the collection: may change without notice between releases.
"""The one way the collection works on many machines at once, with one error policy:
every item is attempted, what succeeded is kept, and every failure is reported."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

MAX_LISTED_ERRORS = 5


class BatchError(Exception):
    """Some items of a parallel run failed.

    ``done`` holds (item, result) for those that succeeded, ``failures`` (item, exception) for the
    others, both in the order of the items. ``str()`` is one line: how many failed, then each error
    (the first few).
    """

    def __init__(self, done, failures, total, describe=str):
        self.done = done
        self.failures = failures
        self.total = total
        listed = "; ".join("%s: %s" % (describe(item), _one_line(exc)) for item, exc in failures[:MAX_LISTED_ERRORS])
        if len(failures) > MAX_LISTED_ERRORS:
            listed += "; and %d more" % (len(failures) - MAX_LISTED_ERRORS)
        super().__init__("%d of %d failed: %s" % (len(failures), total, listed) if total > 1 else listed)

    @property
    def first(self):
        return self.failures[0][1]


def run_parallel(function, items, parallelism, describe=str):
    """``function(item)`` for every item, at most ``parallelism`` at a time; returns the results in order.

    Raises BatchError after every item was attempted when any of them failed.
    """
    items = list(items)
    if not items:
        return []
    with ThreadPoolExecutor(max_workers=max(1, min(parallelism, len(items)))) as pool:
        futures = [pool.submit(function, item) for item in items]
    done, failures = [], []
    for item, future in zip(items, futures):
        error = future.exception()
        if error is None:
            done.append((item, future.result()))
        else:
            failures.append((item, error))
    if failures:
        raise BatchError(done, failures, len(items), describe)
    return [result for item, result in done]


def _one_line(exc):
    return " ".join(str(exc).split())

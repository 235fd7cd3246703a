"""module_utils/_waiters.py (the one waiter) and _parallel.py (the one executor and its error policy)."""

import threading

import pytest

from ansible_collections.locustfleet.triton.plugins.module_utils._client import CloudAPIError
from ansible_collections.locustfleet.triton.plugins.module_utils._parallel import BatchError, run_parallel
from ansible_collections.locustfleet.triton.plugins.module_utils._waiters import (
    Deadline, WaitTimeout, retry_while, wait_until)


class FakeClock:
    """Monotonic time that moves only when the code under test sleeps."""

    def __init__(self):
        self.now = 1000.0
        self.sleeps = []

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds


def test_wait_until_returns_the_first_answer_and_sleeps_the_interval_between_polls():
    clock = FakeClock()
    answers = iter([None, None, "ready"])
    result = wait_until(lambda: next(answers), Deadline(10, clock=clock), 2, lambda: WaitTimeout("x"), sleep=clock.sleep)
    assert result == "ready" and clock.sleeps == [2, 2]


def test_wait_until_never_sleeps_past_the_deadline_and_raises_what_it_is_given():
    clock = FakeClock()
    polls = []
    with pytest.raises(WaitTimeout, match="still provisioning"):
        wait_until(lambda: polls.append(clock.now), Deadline(5, clock=clock), 2,
                   lambda: WaitTimeout("still provisioning"), sleep=clock.sleep)
    assert clock.sleeps == [2, 2, 1] and clock.now == 1005.0
    assert polls == [1000.0, 1002.0, 1004.0, 1005.0]  # a last look at the deadline, then no more


def test_a_deadline_is_on_the_monotonic_clock_by_default():
    deadline = Deadline(60)
    assert 59 < deadline.remaining() <= 60 and not deadline.expired()
    assert Deadline(0).expired()


def test_retry_while_repeats_only_what_it_is_told_and_raises_the_last_error_at_the_deadline():
    clock = FakeClock()
    calls = []

    def conflict():
        calls.append(clock.now)
        raise CloudAPIError("409 #%d" % len(calls), status=409)

    with pytest.raises(CloudAPIError, match="409 #4"):
        retry_while(conflict, lambda exc: exc.status == 409, Deadline(3, clock=clock), 1, sleep=clock.sleep)
    assert len(calls) == 4

    def refused():
        calls.append(clock.now)
        raise CloudAPIError("403", status=403)

    calls.clear()
    with pytest.raises(CloudAPIError, match="403"):
        retry_while(refused, lambda exc: exc.status == 409, Deadline(3, clock=clock), 1, sleep=clock.sleep)
    assert len(calls) == 1
    assert retry_while(lambda: None, lambda exc: True, Deadline(3, clock=clock), 1) is None


def test_run_parallel_keeps_order_and_bounds_concurrency():
    running, peak, lock = [0], [0], threading.Lock()
    gate = threading.Event()

    def work(item):
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        gate.wait(0.05)
        with lock:
            running[0] -= 1
        return item * 10

    assert run_parallel(work, range(12), 3) == [i * 10 for i in range(12)]
    assert peak[0] <= 3
    assert run_parallel(work, [], 3) == []


def test_every_item_is_attempted_and_every_failure_reported_with_what_succeeded():
    attempted = []

    def work(item):
        attempted.append(item)
        if item % 3 == 0:
            raise CloudAPIError("POST /jdoe/machines: CloudAPI said 503 ServiceUnavailable: busy [request id r-%d]"
                                % item, status=503)
        return "m-%d" % item

    with pytest.raises(BatchError) as error:
        run_parallel(work, range(1, 8), 2, describe=lambda item: "machine #%d" % item)
    assert sorted(attempted) == list(range(1, 8))
    assert error.value.done == [(1, "m-1"), (2, "m-2"), (4, "m-4"), (5, "m-5"), (7, "m-7")]
    assert [item for item, exc in error.value.failures] == [3, 6]
    assert str(error.value) == ("2 of 7 failed: machine #3: POST /jdoe/machines: CloudAPI said 503 "
                                "ServiceUnavailable: busy [request id r-3]; machine #6: POST /jdoe/machines: CloudAPI "
                                "said 503 ServiceUnavailable: busy [request id r-6]")
    assert error.value.first.status == 503


def test_one_failed_item_reads_as_its_own_error_and_long_lists_are_cut():
    with pytest.raises(BatchError) as one:
        run_parallel(lambda item: 1 / 0, ["only"], 4)
    assert str(one.value) == "only: division by zero"
    with pytest.raises(BatchError) as many:
        run_parallel(lambda item: 1 / 0, range(9), 4)
    assert str(many.value).startswith("9 of 9 failed: 0: division by zero; 1:")
    assert str(many.value).endswith("; and 4 more")

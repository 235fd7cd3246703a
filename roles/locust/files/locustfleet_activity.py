# Copyright: locustfleet.triton contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""locustfleet activity plugin, loaded beside the locustfile by every Locust process of the fleet.

At INFO a busy Locust worker logs nothing, exactly like an idle one, and a worker that takes part
in a test may run 0 users (fewer users than worker processes, a LoadTestShape that starts low).
So this plugin writes what the idle watcher needs into an activity file of its own
(LOCUSTFLEET_ACTIVITY_LOG; nothing is written when it is unset), one line per event:

    ts=1796300000.123 event=start role=worker state=spawning users=0 pid=812 seq=1
    ts=1796300030.125 event=tick role=worker state=running users=0 pid=812 seq=2
    ts=1796300041.870 event=stop role=worker state=stopping users=0 pid=812 seq=3

``start``/``stop`` on Locust's test_start/test_stop (a test_stop without a test before it, as
when an idle worker quits, writes nothing), ``tick`` every LOCUSTFLEET_ACTIVITY_INTERVAL seconds
(default 30) while the runner takes part in a test (state spawning or running), whatever its
number of users. ``ts`` is epoch seconds (never local time); masters, workers and standalone
runs all write. The Locust log itself gets nothing.
"""

import logging
import os
import time

import gevent
from locust import events
from locust.runners import STATE_RUNNING, STATE_SPAWNING, MasterRunner, WorkerRunner

DEFAULT_INTERVAL = 30.0
IN_A_TEST = (STATE_SPAWNING, STATE_RUNNING)

log = logging.getLogger("locustfleet.activity")


def activity_interval(environ=None):
    """Seconds between tick lines, from LOCUSTFLEET_ACTIVITY_INTERVAL (at least 1)."""
    environ = os.environ if environ is None else environ
    try:
        value = float(environ.get("LOCUSTFLEET_ACTIVITY_INTERVAL") or DEFAULT_INTERVAL)
    except ValueError:
        value = DEFAULT_INTERVAL
    return max(1.0, value)


def runner_role(runner):
    if isinstance(runner, MasterRunner):
        return "master"
    if isinstance(runner, WorkerRunner):
        return "worker"
    return "standalone"


class ActivityLog:
    """Appends one line per event to ``path``; the file is opened for every line, so a rotated or
    deleted file is simply created again."""

    def __init__(self, path, clock=time.time):
        self.path = path
        self.clock = clock
        self.seq = 0
        self.failing = False
        self.in_test = False

    def write(self, event, runner):
        self.seq += 1
        line = "ts=%.3f event=%s role=%s state=%s users=%d pid=%d seq=%d\n" % (
            self.clock(), event, runner_role(runner), runner.state, runner.user_count, os.getpid(), self.seq)
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
            try:
                os.write(fd, line.encode("ascii"))
            finally:
                os.close(fd)
        except OSError as exc:
            if not self.failing:  # say it once, not at every tick
                log.warning("locustfleet activity: cannot write %s: %s", self.path, exc.strerror)
            self.failing = True
            return
        self.failing = False


def tick_while_in_a_test(activity, runner, interval, sleep=gevent.sleep):
    while True:
        sleep(interval)
        if runner.state in IN_A_TEST:
            activity.write("tick", runner)


_activity = None


@events.init.add_listener
def on_init(environment, **kwargs):  # pylint: disable=unused-argument
    global _activity  # pylint: disable=global-statement
    path = os.environ.get("LOCUSTFLEET_ACTIVITY_LOG")
    if environment.runner is None or not path:
        return
    _activity = ActivityLog(path)
    gevent.spawn(tick_while_in_a_test, _activity, environment.runner, activity_interval())


@events.test_start.add_listener
def on_test_start(environment, **kwargs):  # pylint: disable=unused-argument
    if _activity is not None:
        _activity.in_test = True
        _activity.write("start", environment.runner)


@events.test_stop.add_listener
def on_test_stop(environment, **kwargs):  # pylint: disable=unused-argument
    # Locust fires test_stop when an idle worker quits too (its master restarted or went away):
    # that is no activity, or a restart loop would keep an idle machine busy.
    if _activity is not None and _activity.in_test:
        _activity.in_test = False
        _activity.write("stop", environment.runner)

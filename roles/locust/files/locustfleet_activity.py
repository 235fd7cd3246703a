# Copyright: locustfleet.triton contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""locustfleet activity plugin, loaded beside the locustfile by every Locust process of the fleet.

At INFO a busy Locust worker logs nothing, exactly like an idle one. This plugin makes
activity visible in the worker's log (--logfile) so locustfleet-idle-watcher can tell them
apart. It writes one INFO line

    locustfleet-activity: event=start users=N state=STATE     when a test starts
    locustfleet-activity: event=tick users=N state=STATE      every interval while users > 0
    locustfleet-activity: event=stop users=N state=STATE      when a test stops

where N is the number of users this process runs and STATE is Locust's runner state.
The interval is LOCUSTFLEET_ACTIVITY_INTERVAL seconds (default 30). The master writes no
lines (it runs no users); worker and standalone processes do.
"""

import logging
import os

import gevent
from locust import events
from locust.runners import MasterRunner

PREFIX = "locustfleet-activity:"
DEFAULT_INTERVAL = 30.0

log = logging.getLogger("locustfleet.activity")


def activity_interval(environ=None):
    """Seconds between tick lines, from LOCUSTFLEET_ACTIVITY_INTERVAL (at least 1)."""
    environ = os.environ if environ is None else environ
    try:
        value = float(environ.get("LOCUSTFLEET_ACTIVITY_INTERVAL") or DEFAULT_INTERVAL)
    except ValueError:
        value = DEFAULT_INTERVAL
    return max(1.0, value)


def _runs_users(runner):
    return runner is not None and not isinstance(runner, MasterRunner)


def write_line(event, runner):
    log.info("%s event=%s users=%d state=%s", PREFIX, event, runner.user_count, runner.state)


def _tick(runner, interval):
    while True:
        gevent.sleep(interval)
        try:
            if runner.user_count > 0:
                write_line("tick", runner)
        except Exception:  # pylint: disable=broad-exception-caught
            log.exception("%s tick failed", PREFIX)


@events.init.add_listener
def on_init(environment, **kwargs):  # pylint: disable=unused-argument
    if _runs_users(environment.runner):
        gevent.spawn(_tick, environment.runner, activity_interval())


@events.test_start.add_listener
def on_test_start(environment, **kwargs):  # pylint: disable=unused-argument
    if _runs_users(environment.runner):
        write_line("start", environment.runner)


@events.test_stop.add_listener
def on_test_stop(environment, **kwargs):  # pylint: disable=unused-argument
    if _runs_users(environment.runner):
        write_line("stop", environment.runner)

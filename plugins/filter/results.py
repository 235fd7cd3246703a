# -*- coding: utf-8 -*-
# Copyright: locustfleet.triton contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.locustfleet.triton.plugins.module_utils._results import parse_timespan, threshold_errors


def locust_threshold_errors(thresholds):
    """What is wrong with a ``thresholds`` value for locust_report, one line each ([] when nothing is)."""
    return threshold_errors(thresholds)


def locust_timespan(value):
    """Seconds in a Locust time span (``--run-time``: 90, 90s, 1m30s, 1h, 2h30m15s)."""
    try:
        return parse_timespan(value)
    except ValueError as exc:
        raise AnsibleFilterError("locust_timespan: %s" % exc) from None


class FilterModule:
    def filters(self):
        return {"locust_threshold_errors": locust_threshold_errors, "locust_timespan": locust_timespan}

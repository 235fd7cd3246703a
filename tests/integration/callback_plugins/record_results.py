# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Test helper: writes every task result of a run to $RECORD_RESULTS_FILE as JSON lines."""

from __future__ import annotations

import json
import os

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = r"""
name: record_results
type: aggregate
short_description: write task results to a JSON-lines file for the integration tests
description:
  - Appends one JSON object per task result (task name, host, status, result) to the file named
    by E(RECORD_RESULTS_FILE).
requirements:
  - enabled in the callbacks_enabled setting
"""


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "record_results"
    CALLBACK_NEEDS_ENABLED = True

    def _record(self, status, result):
        path = os.environ.get("RECORD_RESULTS_FILE")
        if not path:
            return
        entry = {"task": result.task_name, "host": result._host.get_name(), "status": status,
                 "result": result._result}
        with open(path, "a") as handle:
            handle.write(json.dumps(entry, default=str) + "\n")

    def v2_runner_on_ok(self, result):
        self._record("ok", result)

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._record("failed", result)

    def v2_runner_on_skipped(self, result):
        self._record("skipped", result)

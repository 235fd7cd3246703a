# -*- coding: utf-8 -*-
# Copyright: locustfleet.triton contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Follow an async Locust run: print its progress on the control node until it ends."""

from __future__ import annotations

import time

from ansible.plugins.action import ActionBase
from ansible.utils.display import Display

from ansible_collections.locustfleet.triton.plugins.module_utils._progress import last_record, progress_line

display = Display()

ARGUMENT_SPEC = {
    "jid": {"type": "str", "required": True},
    "progress_file": {"type": "str", "required": True},
    "read_as": {"type": "str", "default": "locust"},
    "interval": {"type": "float", "default": 5.0},
    "timeout": {"type": "int", "required": True},
    "expected_workers": {"type": "int"},
    "label": {"type": "str", "default": "locust"},
}
TAIL_BYTES = 4096


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _supports_check_mode = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        del tmp
        args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)[1]
        if not 1 <= args["interval"] <= 60:
            return dict(result, failed=True, msg="locust_follow: interval must be 1 to 60 seconds, got %s" % args["interval"])
        self._async_dir = self._remote_expand_user(self.get_shell_option("async_dir", default="~/.ansible_async"))
        started = time.monotonic()
        deadline = started + args["timeout"]
        record = None
        while True:
            tick = time.monotonic()
            status = self._job_status(args["jid"], task_vars)
            if status.get("finished") and "started" not in status:  # the job's own result
                break
            # async_status's own failures (unknown job, unreadable status file) say started and finished
            if not status.get("started") or status.get("failed"):
                return dict(result, failed=True, msg="locust_follow: job %s: %s"
                            % (args["jid"], (status.get("msg") or "no status").splitlines()[0]))
            record = self._read_progress(args, task_vars) or record
            display.display("%s: %s" % (args["label"], progress_line(record, time.monotonic() - started, args["expected_workers"])))
            if time.monotonic() >= deadline:
                return dict(result, failed=True, ansible_job_id=args["jid"],
                            msg="locust_follow: job %s still running after %d s (timeout); its async limit ends it"
                                % (args["jid"], args["timeout"]))
            # Once Locust has stopped, the job only writes its reports: look again soon, not a whole interval later.
            pause = 1.0 if (record or {}).get("state") == "stopped" else args["interval"]
            time.sleep(max(0.0, min(tick + pause, deadline) - time.monotonic()))
        record = self._read_progress(args, task_vars) or record  # the record written as the job ended
        self._execute_module("ansible.legacy.async_status", task_vars=task_vars,
                             module_args={"jid": args["jid"], "mode": "cleanup", "_async_dir": self._async_dir})
        status.pop("results_file", None)
        status.pop("invocation", None)
        status["finished"] = True  # async_status gives 1 on older ansible-core
        result.update(status)
        result["progress"] = record
        result["followed_for"] = round(time.monotonic() - started, 1)
        return result

    def _job_status(self, jid, task_vars):
        return self._execute_module("ansible.legacy.async_status", task_vars=task_vars,
                                    module_args={"jid": jid, "_async_dir": self._async_dir})

    def _read_progress(self, args, task_vars):
        """The last progress record, read as ``read_as`` (the file is that user's), or None.

        Only printable ASCII and line breaks leave the host (the plugin writes ASCII JSON), so bytes the
        locust user put there reach neither the module's answer, which must be UTF-8, nor the terminal."""
        argv = ["sh", "-c", "tail -c %d -- \"$1\" | LC_ALL=C tr -cd '\\11\\12\\15\\40-\\176'" % TAIL_BYTES, "sh",
                args["progress_file"]]
        if args["read_as"]:
            user = args["read_as"]
            argv = ["setpriv", "--reuid=" + user, "--regid=" + user, "--init-groups", *argv]
        answer = self._execute_module("ansible.legacy.command", task_vars=task_vars, module_args={"argv": argv})
        return last_record(answer.get("stdout", "")) if answer.get("rc") == 0 else None

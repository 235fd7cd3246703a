"""Run real ansible-playbook against tritonsim.

    def test_x(tritonsim, playbook):
        run = playbook(tritonsim, '''
          - locustfleet.triton.joyent_machine_info: {tags: {role: web}}
        ''')
        run.results[0]["machines"]    # each task's result, in order
        run.recap["changed"]          # from PLAY RECAP

Tasks run on localhost with CloudAPI settings from TRITON_URL/TRITON_ACCOUNT/TRITON_KEY_ID
and the key found in a throwaway ~/.ssh, as a user's would be.
"""

import json
import re
import subprocess
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

from support.control import REPO, control_env, venv_bin


@dataclass
class PlaybookRun:
    rc: int
    output: str
    entries: list
    recap: dict

    @property
    def results(self):
        """Result dicts of the tasks that ran on localhost, in order."""
        return [entry["result"] for entry in self.entries]

    def result(self, task_name):
        return next(entry["result"] for entry in self.entries if entry["task"] == task_name)


def _recap(output):
    match = re.search(r"localhost\s+:\s+(.*)", output)
    if not match:
        return {}
    return {key: int(value) for key, value in re.findall(r"(\w+)=(\d+)", match.group(1))}


@pytest.fixture
def playbook(tmp_path):
    counter = [0]

    def run(sim, tasks, extra_vars=None, check=False, diff=False, expect_rc=0, play_vars=None, env=None, wrapper=(),
            limit=None):
        """``tasks``: YAML task list for one play on localhost, or a Path of a playbook to run as it is.
        ``wrapper``: a command line to run ansible-playbook under (e.g. faketime); ``limit``: its --limit."""
        counter[0] += 1
        home = tmp_path / "home"
        if isinstance(tasks, Path):
            book = tasks
        else:
            book = tmp_path / ("play%d.yml" % counter[0])
            play = "- hosts: localhost\n  gather_facts: false\n"
            if play_vars:
                play += "  vars: %s\n" % json.dumps(play_vars)
            play += "  tasks:\n" + textwrap.indent(textwrap.dedent(tasks).strip() + "\n", "    ")
            book.write_text(play)
        record = tmp_path / ("results%d.jsonl" % counter[0])
        run_env = control_env(sim, home)
        run_env["RECORD_RESULTS_FILE"] = str(record)
        run_env.update(env or {})
        args = [*wrapper, venv_bin("ansible-playbook"), str(book)]
        if extra_vars:
            args += ["-e", json.dumps(extra_vars)]
        if check:
            args.append("--check")
        if diff:
            args.append("--diff")
        if limit:
            args += ["--limit", limit]
        proc = subprocess.run(args, cwd=REPO, env=run_env, capture_output=True, text=True, timeout=600, check=False)
        output = proc.stdout + proc.stderr
        entries = [json.loads(line) for line in record.read_text().splitlines()] if record.exists() else []
        outcome = PlaybookRun(proc.returncode, output, entries, _recap(proc.stdout))
        if expect_rc is not None:
            assert proc.returncode == expect_rc, output
        return outcome

    return run

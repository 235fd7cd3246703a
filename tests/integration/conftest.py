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
import os
import re
import shutil
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent


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


def control_env(sim, home):
    """The environment of a user whose CloudAPI settings point at ``sim``."""
    ssh = home / ".ssh"
    ssh.mkdir(parents=True, exist_ok=True)
    shutil.copy(sim.key_path, ssh / "id_rsa")
    shutil.copy(sim.pub_path, ssh / "id_rsa.pub")
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("TRITON_", "SDC_", "ANSIBLE_")) and k != "SSH_AUTH_SOCK"}
    env.update(HOME=str(home), TRITON_URL=sim.url, TRITON_ACCOUNT=sim.account, TRITON_KEY_ID=sim.fingerprint,
               ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_CALLBACK_PLUGINS=str(HERE / "callback_plugins"),
               ANSIBLE_CALLBACKS_ENABLED="record_results", ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0",
               ANSIBLE_LOCAL_TEMP=str(home / ".ansible-tmp"), PATH=os.path.dirname(sys.executable) + ":"
               + os.environ.get("PATH", ""))
    return env


@pytest.fixture
def playbook(tmp_path):
    counter = [0]

    def run(sim, tasks, extra_vars=None, check=False, diff=False, expect_rc=0, play_vars=None, env=None):
        counter[0] += 1
        home = tmp_path / "home"
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
        args = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), str(book)]
        if extra_vars:
            args += ["-e", json.dumps(extra_vars)]
        if check:
            args.append("--check")
        if diff:
            args.append("--diff")
        proc = subprocess.run(args, cwd=REPO, env=run_env, capture_output=True, text=True, timeout=600, check=False)
        output = proc.stdout + proc.stderr
        entries = [json.loads(line) for line in record.read_text().splitlines()] if record.exists() else []
        outcome = PlaybookRun(proc.returncode, output, entries, _recap(proc.stdout))
        if expect_rc is not None:
            assert proc.returncode == expect_rc, output
        return outcome

    return run

"""Every playbook checks the cluster name before it uses it (tags, machine and image names, the
folder run_test fetches reports to): a hostile name stops it with one line, before any CloudAPI call
(the URL below has nothing listening)."""

import json
import subprocess
from pathlib import Path

import pytest

from support.control import ansible_env, venv_bin

REPO = Path(__file__).resolve().parents[2]
PLAYBOOKS = ("spawn_slaves", "build_template", "run_test", "teardown", "schedule_teardown")


@pytest.mark.parametrize("playbook", PLAYBOOKS)
def test_a_hostile_cluster_name_stops_the_playbook_first(playbook, tmp_path):
    env = dict(ansible_env(tmp_path), TRITON_URL="http://127.0.0.1:9", TRITON_ACCOUNT="nobody", TRITON_KEY_ID="00:00")
    proc = subprocess.run([venv_bin("ansible-playbook"),
                           str(REPO / "playbooks" / (playbook + ".yml")), "-e", json.dumps({"cluster": "../../etc x"})],
                          env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    failed = [line for line in proc.stdout.splitlines() if line.startswith("fatal:")]
    assert len(failed) == 1 and "Check the cluster name" in proc.stdout, proc.stdout
    assert "%s.yml" % playbook in failed[0]
    assert "needs a cluster: pass -e cluster=NAME, lowercase letters, digits and dashes (got \\\"../../etc x\\\")" in failed[0]
    assert "ok=" in proc.stdout and "changed=0" in proc.stdout

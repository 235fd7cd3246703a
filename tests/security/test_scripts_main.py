"""scripts/main hands its settings to ansible-playbook as values, never as more key=value pairs:
the real script runs in a copy of the repo whose ansible-playbook records its arguments, which are
then read the way ansible-playbook reads -e."""

import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from ansible.parsing.splitter import parse_kv

REPO = Path(__file__).resolve().parents[2]

RECORDER = """#!%s
import json, os, sys
with open(os.environ["RECORD"], "a") as out:
    out.write(json.dumps(sys.argv[1:]) + "\\n")
""" % sys.executable


def extra_vars(argv):
    """The variables ansible-playbook's -e options set, in its own reading: JSON/YAML or key=value."""
    merged = {}
    for flag, value in zip(argv, argv[1:]):
        if flag == "-e":
            merged.update(json.loads(value) if value.startswith("{") else parse_kv(value))
    return merged


@pytest.fixture
def main_copy(tmp_path):
    root = tmp_path / "repo"
    (root / "scripts").mkdir(parents=True)
    shutil.copy(REPO / "scripts" / "main", root / "scripts" / "main")
    bindir = root / ".venv" / "bin"
    bindir.mkdir(parents=True)
    for tool in ("ansible-playbook", "ansible-inventory"):
        (bindir / tool).write_text(RECORDER)
        (bindir / tool).chmod(stat.S_IRWXU)
    return root


def run_main(root, tmp_path, **settings):
    record = tmp_path / "record.jsonl"
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "RECORD": str(record), "KEEP": "1",
           "TRITON_URL": "http://127.0.0.1:9", "TRITON_ACCOUNT": "demo", "TRITON_KEY_ID": "x",
           "TARGET_HOST": "http://127.0.0.1:8081", **settings}
    res = subprocess.run(["bash", str(root / "scripts" / "main")], env=env, capture_output=True, text=True,
                         timeout=60, check=False)
    calls = [json.loads(line) for line in record.read_text().splitlines()] if record.exists() else []
    return res, calls


def test_a_setting_with_spaces_and_key_value_pairs_stays_one_value(main_copy, tmp_path):
    res, calls = run_main(main_copy, tmp_path, RUN_TIME="20s report_dir=/etc", CLUSTER="demo cluster=other",
                          TARGET_HOST="http://127.0.0.1:8081 users=999")
    assert res.returncode == 0, res.stderr
    playbooks = {Path(argv[0]).name: extra_vars(argv) for argv in calls if argv[0].endswith(".yml")}
    assert playbooks["run_test.yml"] == {"cluster": "demo cluster=other", "target_host": "http://127.0.0.1:8081 users=999",
                                         "users": "20", "run_time": "20s report_dir=/etc"}
    assert playbooks["spawn_slaves.yml"] == {"cluster": "demo cluster=other", "count": "2"}


@pytest.mark.parametrize("name, value", [("COUNT", "2 teardown_all=true"), ("USERS", "-1"), ("COUNT", "")])
def test_counts_must_be_whole_numbers(main_copy, tmp_path, name, value):
    res, calls = run_main(main_copy, tmp_path, **{name: value})
    if value == "":
        assert res.returncode == 0 and calls  # empty means the default
        return
    assert res.returncode == 2 and calls == []
    assert res.stderr.strip() == "scripts/main: %s must be a whole number, not '%s'" % (name, value)

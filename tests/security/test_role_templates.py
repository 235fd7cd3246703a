"""Role template values that reach a shell script or a systemd unit arrive as exactly one value:
the real templates rendered by a real ansible-playbook, the scripts' assignments read back by bash.
(systemd's own reading of the master unit is checked on a real host in tests/roles.)"""

import json
import subprocess
from pathlib import Path

import pytest

from support.control import ansible_env, venv_bin

REPO = Path(__file__).resolve().parents[2]
ROLES = REPO / "roles"
HOSTILE = "x'; touch {canary}; echo '\"$(touch {canary})\" `touch {canary}` $HOME %i \\ end"

PLAYBOOK = """
- hosts: localhost
  connection: local
  gather_facts: false
  vars_files:
    - {roles}/locust_master/defaults/main.yml
    - {roles}/locust_worker/defaults/main.yml
  tasks:
    - ansible.builtin.template:
        src: "{roles}/{{{{ item }}}}.j2"
        dest: "{out}/{{{{ item | basename }}}}"
        mode: "0644"
      loop:
        - locust_master/templates/locust-headless.sh
        - locust_master/templates/locust-master.service
        - locust_worker/templates/locust-worker.sh
"""


def render(tmp_path, **values):
    out = tmp_path / "out"
    out.mkdir(exist_ok=True)
    playbook = tmp_path / "render.yml"
    playbook.write_text(PLAYBOOK.format(roles=ROLES, out=out))
    env = dict(ansible_env(tmp_path / "tmp"), ANSIBLE_LOCALHOST_WARNING="0", ANSIBLE_INVENTORY_UNPARSED_WARNING="0")
    proc = subprocess.run([venv_bin("ansible-playbook"), str(playbook),
                           "-e", json.dumps(values)], env=env, cwd=tmp_path, capture_output=True, text=True,
                          timeout=120, check=False)
    return proc, out


def shell_values(script, names):
    """The values bash gives ``names`` after running the script's own assignment lines for them."""
    lines = [line for line in script.read_text().splitlines() if line.split("=", 1)[0] in names]
    code = "\n".join(lines + ['printf "%s\\0" ' + " ".join('"$%s"' % name for name in names)])
    proc = subprocess.run(["bash", "-c", code], capture_output=True, text=True, timeout=10, check=True)
    return dict(zip(names, proc.stdout.split("\0")))


def test_hostile_values_stay_values_in_the_scripts(tmp_path):
    canary = tmp_path / "pwned"
    hostile = HOSTILE.format(canary=canary)
    proc, out = render(tmp_path, locust_master_target_host=hostile, locust_master_host=hostile,
                       locust_master_bind_host=hostile)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert shell_values(out / "locust-headless.sh", ["host"]) == {"host": hostile}
    assert shell_values(out / "locust-worker.sh", ["master_host", "master_port"]) == \
        {"master_host": hostile, "master_port": "5557"}
    args = next(line for line in (out / "locust-headless.sh").read_text().splitlines() if "--master-bind-host" in line)
    words = subprocess.run(["bash", "-c", "printf '%s\\0' " + args.split("--master-bind-host", 1)[1].split("--master-bind-port")[0]],
                           capture_output=True, text=True, check=True).stdout.split("\0")[:-1]
    assert words == [hostile]
    for script in ("locust-headless.sh", "locust-worker.sh"):
        assert subprocess.run(["bash", "-n", str(out / script)], check=False).returncode == 0
    assert not canary.exists()


def test_unit_values_are_quoted_for_systemd(tmp_path):
    proc, out = render(tmp_path, locust_master_target_host="http://127.0.0.1:9/a b\"c$HOME%i",
                       locust_master_extra_args=["--exclude-tags", "it's $x"])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    unit = (out / "locust-master.service").read_text()
    assert '--host "http://127.0.0.1:9/a b\\"c$$HOME%%i"' in unit
    assert '"--exclude-tags" \\\n    "it\'s $$x"' in unit
    assert unit.count("ExecStart") == 1 and "Description=Locust master (locustfleet)" in unit


@pytest.mark.parametrize("variable", ["locust_master_target_host", "locust_master_extra_args"])
def test_a_line_break_in_a_unit_value_fails_the_task(tmp_path, variable):
    value = "http://127.0.0.1:9\nExecStartPre=/bin/touch /tmp/pwned"
    proc, out = render(tmp_path, **{variable: [value] if variable.endswith("args") else value})
    assert proc.returncode != 0
    assert "systemd_quote: 'http://127.0.0.1:9\\nExecStartPre=/bin/touch /tmp/pwned' holds the control character " \
           "'\\n', which a unit file cannot keep in one argument" in proc.stdout
    assert not (out / "locust-master.service").exists()

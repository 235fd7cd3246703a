"""The config_digest lookup: what spawn_slaves.yml keeps on each machine to skip the roles when nothing
that configures it changed. It must change with every input the roles deploy, and only with those."""

import os
import subprocess
import sys

import pytest
from ansible.errors import AnsibleLookupError

from ansible_collections.locustfleet.triton.plugins.lookup.config_digest import DEPLOYED, digest

SETTINGS = {"locust_version": "2.47.0", "role": "worker", "master": "10.0.0.5"}


@pytest.fixture
def files(tmp_path):
    (tmp_path / "locustfile.py").write_text("from locust import HttpUser\n")
    data = tmp_path / "data"
    (data / "nested").mkdir(parents=True)
    (data / "users.csv").write_text("alice\n")
    (data / "nested" / "more.txt").write_text("x\n")
    return tmp_path


def paths(files):
    return [str(files / "locustfile.py"), str(files / "data")]


def test_the_same_inputs_give_the_same_digest(files):
    first = digest(paths(files), SETTINGS)
    assert len(first) == 64 and int(first, 16) >= 0
    assert digest(paths(files), dict(reversed(list(SETTINGS.items())))) == first
    (files / "data" / "__pycache__").mkdir()
    (files / "data" / "__pycache__" / "x.cpython-311.pyc").write_bytes(b"cache")
    assert digest(paths(files), SETTINGS) == first


@pytest.mark.parametrize("change", ["locustfile", "nested file", "new file", "renamed", "setting", "role"])
def test_every_input_changes_it(files, change):
    before = digest(paths(files), SETTINGS)
    settings = dict(SETTINGS)
    if change == "locustfile":
        (files / "locustfile.py").write_text("from locust import FastHttpUser\n")
    elif change == "nested file":
        (files / "data" / "nested" / "more.txt").write_text("y\n")
    elif change == "new file":
        (files / "data" / "extra.json").write_text("{}")
    elif change == "renamed":
        (files / "data" / "users.csv").rename(files / "data" / "people.csv")
    elif change == "setting":
        settings["locust_version"] = "2.47.1"
    else:
        settings["role"] = "master"
    assert digest(paths(files), settings) != before


def test_a_file_counts_by_the_name_it_is_deployed_under(files, tmp_path_factory):
    other = tmp_path_factory.mktemp("other")
    (other / "locustfile.py").write_text((files / "locustfile.py").read_text())
    (other / "renamed.py").write_text((files / "locustfile.py").read_text())
    assert digest([str(other / "locustfile.py")], {}) == digest([str(files / "locustfile.py")], {})
    assert digest([str(other / "renamed.py")], {}) != digest([str(files / "locustfile.py")], {})


def test_a_missing_path_is_one_line_naming_it(files):
    with pytest.raises(AnsibleLookupError, match=r"^config_digest: .*/gone\.py does not exist$"):
        digest([str(files / "gone.py")], {})


def test_it_covers_what_the_roles_deploy():
    names = [path.rsplit("/", 2)[-2:] for path in DEPLOYED]
    assert names == [["triton", "roles"], ["plugins", "module_utils"]]


def test_the_lookup_in_a_playbook(files, tmp_path):
    book = tmp_path / "digest.yml"
    book.write_text("""
- hosts: localhost
  gather_facts: false
  tasks:
    - ansible.builtin.debug:
        msg: "{{ lookup('locustfleet.triton.config_digest', '%s', settings={'role': 'worker'}) }}"
    - ansible.builtin.debug:
        msg: "{{ lookup('locustfleet.triton.config_digest', '%s/missing.py') }}"
      ignore_errors: true
""" % (files / "locustfile.py", files))
    playbook = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")
    run = subprocess.run([playbook, "-i", "localhost,", str(book)], capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stdout + run.stderr
    assert '"msg": "%s"' % digest([*DEPLOYED, str(files / "locustfile.py")], {"role": "worker"}) in run.stdout
    assert "config_digest: %s/missing.py does not exist" % files in run.stdout

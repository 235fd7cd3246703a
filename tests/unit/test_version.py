"""One version: galaxy.yml's. plugins/module_utils/_version.py repeats it for the CloudAPI User-Agent
(modules run from AnsiballZ zips, where galaxy.yml and MANIFEST.json cannot be read), and these tests
fail whenever the copy differs. scripts/release.sh writes both, and is run here on a copy of the repo."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from ansible_collections.locustfleet.triton.plugins.module_utils import _client, _version

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = os.path.dirname(sys.executable)


def galaxy_version(root=REPO):
    return yaml.safe_load((root / "galaxy.yml").read_text())["version"]


def test_module_utils_version_is_galaxy_yml_version():
    assert _version.COLLECTION_VERSION == galaxy_version(), (
        "plugins/module_utils/_version.py and galaxy.yml disagree: set the version with scripts/release.sh")


def test_user_agent_carries_the_collection_version():
    assert _client.USER_AGENT == "locustfleet.triton/%s" % galaxy_version()


def release_key(version):
    """MAJOR.MINOR.PATCH as numbers (a pre-release sorts with its release: close enough here)."""
    return tuple(int(part) for part in version.split("-", 1)[0].split("."))


def test_galaxy_yml_version_is_not_older_than_the_last_release():
    releases = yaml.safe_load((REPO / "changelogs" / "changelog.yaml").read_text())["releases"]
    assert releases, "changelogs/changelog.yaml has no release"
    assert max(release_key(v) for v in releases) <= release_key(galaxy_version())


def release_copy(tmp_path):
    """The files scripts/release.sh and antsibull-changelog read, copied to ``tmp_path``."""
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "galaxy.yml", "README.md", "meta",
                            "plugins", "roles", "changelogs", "scripts/release.sh"],
                           cwd=REPO, check=True, capture_output=True, text=True).stdout.split()
    for name in files:
        if (REPO / name).is_file():
            (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, tmp_path / name)
    return tmp_path


def test_release_script_sets_both_and_releases(tmp_path):
    root = release_copy(tmp_path)
    fragments = root / "changelogs" / "fragments"
    shutil.rmtree(fragments, ignore_errors=True)  # the tree's own unreleased fragments are not this test's
    fragments.mkdir(parents=True)
    (fragments / "next.yml").write_text("---\nrelease_summary: The next one.\nbugfixes:\n  - joyent_tag - a fix.\n")
    env = dict(os.environ, PATH=VENV_BIN + os.pathsep + os.environ.get("PATH", ""))
    out = subprocess.run(["bash", "scripts/release.sh", "98.7.6"], cwd=root, env=env,
                         capture_output=True, text=True, timeout=300, check=False)
    assert out.returncode == 0, out.stdout + out.stderr
    assert galaxy_version(root) == "98.7.6"
    assert 'COLLECTION_VERSION = "98.7.6"\n' in (root / "plugins" / "module_utils" / "_version.py").read_text()
    release = yaml.safe_load((root / "changelogs" / "changelog.yaml").read_text())["releases"]["98.7.6"]
    assert release["changes"] == {"release_summary": "The next one.", "bugfixes": ["joyent_tag - a fix."]}
    assert "v98.7.6" in (root / "CHANGELOG.rst").read_text()
    assert not (fragments / "next.yml").exists()


def test_release_script_refuses_a_non_version(tmp_path):
    root = release_copy(tmp_path)
    before = (root / "galaxy.yml").read_text()
    out = subprocess.run(["bash", "scripts/release.sh", "v1.0"], cwd=root, capture_output=True, text=True, timeout=60,
                         check=False)
    assert out.returncode == 2 and "usage" in out.stderr
    assert (root / "galaxy.yml").read_text() == before

"""The built collection holds what a collection user needs and nothing else, even when it is built
from a used working tree: ansible-galaxy collection build (galaxy.yml's ``manifest`` allow-list) runs
on a copy of the repository's files with junk planted in it (reports, caches, keys, dotfiles), and
the tarball must hold exactly the allow-listed files, with real metadata and one version."""

import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
from collections import namedtuple
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
ANSIBLE_GALAXY = os.path.join(os.path.dirname(sys.executable), "ansible-galaxy")

# Files a used working tree collects, or that must never ship whatever their place.
JUNK = (
    "reports/x",
    ".ansible/x",
    ".cache/x",
    ".coverage",
    "tests/foo/id_rsa",
    "roles/locust/files/id_ed25519",
    "roles/locust/files/id_ed25519.pub",
    "roles/locust/files/server.key",
    "plugins/modules/key.pem",
    "playbooks/.secret",
    "playbooks/.secret.yml",
    "plugins/modules/.hidden/x.py",
    "plugins/module_utils/__pycache__/_client.cpython-311.pyc",
    "plugins/module_utils/__pycache__/stray.py",
    "roles/locust/.ansible/roles/r/tasks/main.yml",
    "roles/locust/tasks/main.yml.orig",
    "playbooks/run_test.yml.swp",
    "tests/output/junit.xml",
    "bench/results/run.json",
    "locustfleet-triton-0.0.1.tar.gz",
)

# Top-level files and whole trees that ship; nothing else may.
SHIPPED_FILES = {
    "MANIFEST.json", "FILES.json", "README.md", "LICENSE", "CHANGELOG.rst",
    "changelogs/changelog.yaml", "changelogs/config.yaml", "docs/roles.md", "docs/security.md", "docs/results.md",
    "inventory/triton.joyent.yml",
}
SHIPPED_TREES = ("meta/", "plugins/", "roles/", "playbooks/")
PLUGIN_KINDS = (".py", ".yml", ".yaml")  # code and documentation

Build = namedtuple("Build", "members tarball")  # the files in the tarball, and its path


def repo_files():
    """The tracked files and the untracked ones git does not ignore (what a commit would hold)."""
    out = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                         cwd=REPO, check=True, capture_output=True).stdout.decode()
    return sorted({f for f in out.split("\0") if f and not f.startswith("collections/") and (REPO / f).is_file()})


def wanted(path):
    """Whether a repository file belongs in the collection."""
    if path in SHIPPED_FILES:
        return True
    if path.startswith("plugins/"):
        return path.endswith(PLUGIN_KINDS)
    return path.startswith(SHIPPED_TREES)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The collection built from a copy of the repository's files plus JUNK."""
    tree = tmp_path_factory.mktemp("tree")
    for name in repo_files():
        (tree / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, tree / name)
    for name in JUNK:
        (tree / name).parent.mkdir(parents=True, exist_ok=True)
        (tree / name).write_text("junk: must not ship\n")
    out = tmp_path_factory.mktemp("out")
    run = subprocess.run([ANSIBLE_GALAXY, "collection", "build", "--output-path", str(out)], cwd=tree,
                         capture_output=True, text=True, timeout=300, check=False)
    assert run.returncode == 0, run.stdout + run.stderr
    (tarball,) = out.glob("locustfleet-triton-*.tar.gz")
    with tarfile.open(tarball) as tar:
        members = {m.name for m in tar.getmembers() if m.isfile()}
    return Build(members, tarball)


def read_member(tarball, name):
    with tarfile.open(tarball) as tar:
        return tar.extractfile(name).read().decode()


def test_only_allow_listed_paths(built):
    members = built.members
    stray = sorted(m for m in members if not (m in SHIPPED_FILES or m.startswith(SHIPPED_TREES)))
    assert not stray, "shipped but not for users: %s" % stray
    odd = sorted(m for m in members if m.startswith("plugins/") and not m.endswith(PLUGIN_KINDS))
    assert not odd, "plugins/ ships code and docs only: %s" % odd
    hidden = sorted(m for m in members if any(part.startswith(".") or part == "__pycache__"
                                              for part in m.split("/")))
    assert not hidden, "dotfiles or caches shipped: %s" % hidden


def test_no_junk(built):
    members = built.members
    assert not set(JUNK) & members
    keys = sorted(m for m in members if re.search(r"(^|/)id_|\.(pem|key|p12|pfx|ppk)$", m))
    assert not keys, "private keys or certificates shipped: %s" % keys


def test_exactly_the_collection_files(built):
    """Every repository file a user needs ships (a role that loses a template breaks), and nothing more."""
    members = built.members
    expected = {f for f in repo_files() if wanted(f)} | {"MANIFEST.json", "FILES.json"}
    assert sorted(expected - members) == [], "missing from the tarball"
    assert sorted(members - expected) == [], "in the tarball but not wanted"


def test_required_files(built):
    members = built.members
    required = {"MANIFEST.json", "FILES.json", "LICENSE", "README.md", "CHANGELOG.rst", "meta/runtime.yml",
                "changelogs/changelog.yaml", "plugins/module_utils/_version.py"}
    every = re.compile(r"plugins/modules/[^/]+\.py|roles/[^/]+/meta/argument_specs\.yml|playbooks/[^/.][^/]*\.yml")
    required |= {f for f in repo_files() if every.fullmatch(f)}
    assert len([r for r in required if r.startswith("plugins/modules/")]) >= 4
    assert len([r for r in required if r.startswith("roles/")]) >= 4
    assert len([r for r in required if r.startswith("playbooks/")]) >= 5
    assert sorted(required - members) == []


def test_files_json_lists_the_members(built):
    members, tarball = built.members, built.tarball
    files = json.loads(read_member(tarball, "FILES.json"))["files"]
    assert {f["name"] for f in files if f["ftype"] == "file"} == members - {"MANIFEST.json", "FILES.json"}


def test_metadata_is_real_and_the_version_is_one(built):
    tarball = built.tarball
    text = read_member(tarball, "MANIFEST.json")
    assert "example.invalid" not in text
    info = json.loads(text)["collection_info"]
    galaxy = yaml.safe_load((REPO / "galaxy.yml").read_text())
    assert (info["namespace"], info["name"]) == ("locustfleet", "triton")
    assert info["version"] == galaxy["version"]
    assert info["license"] == ["GPL-3.0-or-later"] and not info["license_file"]
    for field in ("repository", "documentation", "homepage", "issues"):
        assert info[field] is None or re.match(r"https://[^/]+\.[a-z]{2,}/", info[field]), (field, info[field])
    assert info["authors"] and info["description"] and info["tags"]
    version_py = read_member(tarball, "plugins/module_utils/_version.py")
    assert 'COLLECTION_VERSION = "%s"' % info["version"] in version_py


def test_license_is_the_full_gpl3(built):
    tarball = built.tarball
    text = read_member(tarball, "LICENSE")
    assert text.lstrip().startswith("GNU GENERAL PUBLIC LICENSE")
    assert "Version 3, 29 June 2007" in text
    for landmark in ("TERMS AND CONDITIONS", "15. Disclaimer of Warranty.", "END OF TERMS AND CONDITIONS",
                     "How to Apply These Terms to Your New Programs"):
        assert landmark in text
    assert len(text.splitlines()) > 600


def test_changelog_has_the_release(built):
    tarball = built.tarball
    info = json.loads(read_member(tarball, "MANIFEST.json"))["collection_info"]
    assert "v%s\n" % info["version"] in read_member(tarball, "CHANGELOG.rst")
    releases = yaml.safe_load(read_member(tarball, "changelogs/changelog.yaml"))["releases"]
    assert info["version"] in releases

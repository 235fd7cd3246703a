#!/usr/bin/env bash
# Makes release VERSION of the collection, in the working tree (nothing is committed):
#   1. writes VERSION into galaxy.yml, the one source of the collection's version, and into its copy
#      plugins/module_utils/_version.py, which the CloudAPI User-Agent reads (modules run from
#      AnsiballZ zips, where galaxy.yml cannot be read; tests/unit/test_version.py fails when the two
#      differ);
#   2. runs antsibull-changelog release: the fragments in changelogs/fragments/ (add one with
#      release_summary) become release VERSION in changelogs/changelog.yaml and CHANGELOG.rst.
# Then review `git diff`, run tests/run and commit; `ansible-galaxy collection build` makes the tarball.
#   scripts/release.sh 0.2.0
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -d .venv/bin ]; then export PATH="$PWD/.venv/bin:$PATH"; fi

version=${1:-}
semver='^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(-[0-9A-Za-z.-]+)?$'
if [ $# -ne 1 ] || ! [[ $version =~ $semver ]]; then
    echo "usage: scripts/release.sh VERSION   (a semantic version such as 0.2.0)" >&2
    exit 2
fi

antsibull-changelog lint
sed -i -E "s/^version: .*/version: $version/" galaxy.yml
sed -i -E "s/^COLLECTION_VERSION = .*/COLLECTION_VERSION = \"$version\"/" plugins/module_utils/_version.py
grep -qx "version: $version" galaxy.yml || { echo "release.sh: no version line in galaxy.yml" >&2; exit 1; }
grep -qx "COLLECTION_VERSION = \"$version\"" plugins/module_utils/_version.py ||
    { echo "release.sh: no COLLECTION_VERSION line in plugins/module_utils/_version.py" >&2; exit 1; }
antsibull-changelog release --version "$version"
antsibull-changelog lint
echo "locustfleet.triton $version: galaxy.yml, plugins/module_utils/_version.py, changelogs/changelog.yaml, CHANGELOG.rst"

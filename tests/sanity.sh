#!/usr/bin/env bash
# ansible-test sanity over the collection, with no ignore files. ansible-test needs the
# collection at .../ansible_collections/locustfleet/triton, so the tracked and untracked
# (not ignored) files are copied there first.
set -euo pipefail
cd "$(dirname "$0")/.."
# A venv of its own: ansible-test --requirements installs its linters there, not in .venv.
venv=tests/output/sanity-venv
if [ ! -x "$venv/bin/ansible-test" ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q "$(grep '^ansible-core==' requirements.txt)"
fi
python="$PWD/$venv/bin/python"
export PATH="$PWD/$venv/bin:$PATH"
pip_version=$("$python" - <<'PY'
import re, ansible_test._internal.python_requirements as r
print(re.search(r"pip='([0-9.]+)'", open(r.__file__).read()).group(1))
PY
)
mkdir -p ~/.ansible/test/cache
cp tests/ansible_test_get_pip.py ~/.ansible/test/cache/get_pip_"${pip_version//./_}".py
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
dest="$work/ansible_collections/locustfleet/triton"
mkdir -p "$dest"
{ git ls-files; git ls-files --others --exclude-standard; } | grep -v '^collections/' | sort -u |
    while read -r f; do [ -e "$f" ] && printf '%s\0' "$f"; done | xargs -0 cp --parents -t "$dest"
cd "$dest"
ansible-test sanity --python "$($python -c 'import sys; print("%d.%d" % sys.version_info[:2])')" \
    --requirements --color no "$@" 2>&1 || exit $?

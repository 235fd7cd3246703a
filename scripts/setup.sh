#!/usr/bin/env bash
# Installs what locustfleet.triton needs on a Debian/Ubuntu machine into ./.venv.
#   scripts/setup.sh          control node (ansible-core, requests, cryptography) and tritonsim,
#                             the local CloudAPI the main job rehearses on (the `tritonsim` command)
#   scripts/setup.sh --test   plus the test tools (pytest, linters, the npm CLI and verifier);
#                             tritonsim installed editable, so changes to tritonsim/src show at once
set -euo pipefail
cd "$(dirname "$0")/.."

with_tests=false
[ "${1:-}" = "--test" ] && with_tests=true

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

apt_packages=(python3 python3-venv python3-pip openssh-client ca-certificates git)
if $with_tests; then
    # faketime: a control node whose clock is ahead of CloudAPI's (tests/integration/test_one_way.py)
    apt_packages+=(shellcheck cron faketime)
    # A node/npm that came from elsewhere (nvm, a base image) is fine as it is.
    command -v node >/dev/null && command -v npm >/dev/null || apt_packages+=(nodejs npm)
fi
missing=()
for pkg in "${apt_packages[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
fi

# Real-host rehearsals and tests (tritonsim --backend nspawn) need debootstrap, systemd-nspawn, iptables.
as_root tritonsim/install-host-tools.sh

[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip==25.3
# tritonsim is a package of its own (tritonsim/pyproject.toml); its pins sit beside it.
if $with_tests; then
    .venv/bin/python -m pip install -q -r tests/requirements.txt -c tritonsim/requirements.txt -e ./tritonsim
    (cd tests/node && npm ci --no-audit --no-fund --loglevel=error)
else
    .venv/bin/python -m pip install -q -r requirements.txt -c tritonsim/requirements.txt ./tritonsim
fi
echo "locustfleet.triton: set up in $PWD/.venv"

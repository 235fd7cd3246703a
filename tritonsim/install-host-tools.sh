#!/usr/bin/env bash
# Install the host tools that tritonsim's nspawn backend (real-host machines) needs.
# Idempotent: installs only what is missing. Run as root on Debian/Ubuntu.
#   tritonsim/install-host-tools.sh          # install missing tools
#   tritonsim/install-host-tools.sh --check  # only report, exit 1 if something is missing
set -euo pipefail

# command -> Debian package that provides it
declare -A PKG=(
  [debootstrap]=debootstrap
  [systemd-nspawn]=systemd-container
  [iptables]=iptables
  [ip]=iproute2
  [ssh]=openssh-client
  [ssh-keygen]=openssh-client
)

missing=()
for cmd in "${!PKG[@]}"; do
  if ! command -v "$cmd" >/dev/null 2>&1 && ! [ -x "/usr/sbin/$cmd" ] && ! [ -x "/sbin/$cmd" ]; then
    missing+=("${PKG[$cmd]}")
  fi
done
# de-duplicate, stable order
mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u | sed '/^$/d')

if [ "${#missing[@]}" -eq 0 ]; then
  echo "host tools: all present (debootstrap, systemd-nspawn, iptables, ip, ssh)"
  exit 0
fi
if [ "${1:-}" = "--check" ]; then
  echo "host tools missing; install with: apt-get install -y ${missing[*]}" >&2
  exit 1
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "must run as root to install: ${missing[*]}" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"
echo "host tools: installed ${missing[*]}"

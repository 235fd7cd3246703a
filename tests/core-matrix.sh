#!/usr/bin/env bash
# The supported ansible-core range: runs the module and inventory integration tests on the
# oldest ansible-core the collection claims and on the newest release, each in a venv of its
# own under tests/output/core-VERSION/ (reused while its Python, pins and the simulator's source
# are unchanged, made anew otherwise).
#
#   tests/core-matrix.sh                 every entry: min, then newest
#   tests/core-matrix.sh newest          only the named entries (min, newest)
#   tests/core-matrix.sh -- -x -k tag    arguments after -- go to pytest
#
# Pins live in one place each: ansible-core, the Pythons to try (in order) and the Pythons it
# needs in tests/requirements-core-ENTRY.txt; requests, cryptography and bcrypt in
# requirements.txt; pytest and pytest-xdist (each test file runs in one of 2 processes) in
# tests/requirements.txt; the simulator is the package in ./tritonsim, installed with its own pins
# (tritonsim/requirements.txt) as constraints. An entry
# whose Python is not on this machine is skipped with one line saying so; with CI=true a
# skipped entry fails the run.
set -euo pipefail
cd "$(dirname "$0")/.."

TESTS=(tests/integration/test_joyent_machine.py tests/integration/test_joyent_tag.py
       tests/integration/test_joyent_image.py tests/integration/test_machine_info.py
       tests/integration/test_inventory.py tests/integration/test_inventory_secrets.py tests/integration/test_one_way.py
       tests/integration/test_odd_answers.py tests/integration/test_return_docs.py
       tests/integration/test_locust_report.py tests/integration/test_locust_follow.py)
SIM_PACKAGE=./tritonsim
SIM_PINS=tritonsim/requirements.txt

entries=()
pytest_args=()
while [ $# -gt 0 ]; do
    case "$1" in
        --) shift; pytest_args=("$@"); break ;;
        -h|--help) awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0"; exit 0 ;;
        *) [ -f "tests/requirements-core-$1.txt" ] || { echo "core-matrix: no tests/requirements-core-$1.txt" >&2; exit 2; }
           entries+=("$1"); shift ;;
    esac
done
[ "${#entries[@]}" -gt 0 ] || entries=(min newest)

# The tests talk to their own tritonsim; nothing from the caller's cloud settings may leak in.
unset SSH_AUTH_SOCK TRITON_PROFILE TRITON_URL TRITON_ACCOUNT TRITON_KEY_ID TRITON_USER \
      SDC_URL SDC_ACCOUNT SDC_KEY_ID SDC_USER

# "# KEY: value" header line of a requirements file.
header() { sed -n "s/^# $2: *//p" "$1" | head -n 1; }

# The pinned line for each package name, from a requirements file.
pins_from() {
    local file=$1 name line
    shift
    for name in "$@"; do
        line=$(grep -iE "^${name}==" "$file") || { echo "core-matrix: no $name== pin in $file" >&2; return 1; }
        printf '%s\n' "$line"
    done
}

# The first working interpreter for version X.Y: on PATH (a pyenv shim only counts if it runs),
# then in pyenv's versions, then the usual system places. It must have venv and ensurepip.
find_python() {
    local version=$1 root=${PYENV_ROOT:-$HOME/.pyenv} candidate
    local candidates=("python$version")
    if [ -d "$root/versions" ]; then
        while IFS= read -r candidate; do
            candidates+=("$candidate")
        done < <(find "$root/versions" -mindepth 3 -maxdepth 3 -path "*/versions/$version.*/bin/python$version" | sort -rV)
    fi
    candidates+=("/usr/local/bin/python$version" "/usr/bin/python$version")
    for candidate in "${candidates[@]}"; do
        "$candidate" -c "import sys, venv, ensurepip; sys.exit(sys.version_info[:2] != tuple(map(int, '$version'.split('.'))))" \
            >/dev/null 2>&1 || continue
        "$candidate" -c 'import sys; print(sys.executable)'
        return 0
    done
    return 1
}

# What pip installs from the simulator package: its metadata and sources.
sim_digest() {
    find "$SIM_PACKAGE/pyproject.toml" "$SIM_PACKAGE/src" -type f ! -path '*/__pycache__/*' ! -path '*.egg-info/*' \
        ! -name '*.pyc' -print0 | LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum | cut -d' ' -f1
}

# pip builds a package in its source tree (build/, *.egg-info); build a scratch copy instead, so
# nothing lands in ./tritonsim.
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
sim_copy() {
    if [ ! -d "$scratch/tritonsim" ]; then
        cp -a "$SIM_PACKAGE" "$scratch/tritonsim"
        rm -rf "$scratch/tritonsim/build" "$scratch"/tritonsim/src/*.egg-info
    fi
    echo "$scratch/tritonsim"
}

clock() { local s=$1; printf '%dm%02ds' $((s / 60)) $((s % 60)); }

summary=()
status=0
for entry in "${entries[@]}"; do
    reqs="tests/requirements-core-$entry.txt"
    core=$(sed -n 's/^ansible-core==//p' "$reqs")
    needs=$(header "$reqs" needs)
    read -r -a pythons <<<"$(header "$reqs" python)"
    if [ -z "$core" ] || [ "${#pythons[@]}" -eq 0 ]; then
        echo "core-matrix: $reqs needs an ansible-core== pin and a '# python:' line" >&2
        exit 2
    fi

    python=""
    for version in "${pythons[@]}"; do
        python=$(find_python "$version") && break
        python=""
    done
    if [ -z "$python" ]; then
        line="ansible-core $core needs $needs; none found on this machine (tried ${pythons[*]}): not tested"
        echo "== $line"
        summary+=("$line")
        [ "${CI:-}" = true ] && status=1
        continue
    fi
    python_version=$("$python" -c 'import platform; print(platform.python_version())')
    echo "== ansible-core $core on Python $python_version ($python)"

    venv="tests/output/core-$core"
    log="tests/output/core-$core.install.log"
    mkdir -p tests/output
    started=$SECONDS
    pins=("$(cat "$reqs")"
          "$(pins_from requirements.txt requests cryptography bcrypt)"
          "$(pins_from tests/requirements.txt pytest pytest-xdist execnet)")
    mapfile -t packages < <(printf '%s\n' "${pins[@]}" | grep -vE '^[[:space:]]*(#|$)')
    deps_stamp=$(printf '%s\n' "$python" "$python_version" "${packages[@]}" | cat - "$SIM_PINS" | sha256sum | cut -d' ' -f1)
    if [ ! -f "$SIM_PACKAGE/pyproject.toml" ]; then
        echo "core-matrix: $SIM_PACKAGE/pyproject.toml not found: the simulator package is missing" >&2
        exit 2
    fi
    stamp=$(printf '%s\n' "$deps_stamp" "$(sim_digest)" | sha256sum | cut -d' ' -f1)
    if [ "$(cat "$venv/.core-matrix-stamp" 2>/dev/null)" = "$stamp" ]; then
        echo "   reusing $venv"
    else
        echo "   creating $venv"
        rm -rf "$venv"
        if ! { "$python" -m venv "$venv" &&
               "$venv/bin/python" -m pip install --disable-pip-version-check "${packages[@]}" -c "$SIM_PINS" "$(sim_copy)"; } >"$log" 2>&1; then
            tail -n 30 "$log"
            echo "core-matrix: installing into $venv failed; the whole log is $log" >&2
            summary+=("ansible-core $core on Python $python_version: install FAILED (see $log)")
            status=1
            continue
        fi
        echo "$stamp" >"$venv/.core-matrix-stamp"
    fi
    installed=$("$venv/bin/python" -c 'from ansible.release import __version__; print(__version__)')
    if [ "$installed" != "$core" ]; then
        echo "core-matrix: $venv has ansible-core $installed, not $core" >&2
        summary+=("ansible-core $core on Python $python_version: FAILED ($venv has ansible-core $installed)")
        status=1
        continue
    fi
    setup_time=$((SECONDS - started))

    started=$SECONDS
    if PATH="$PWD/$venv/bin:$PATH" "$venv/bin/python" -m pytest -p no:cacheprovider -q -n 2 --dist loadfile "${TESTS[@]}" "${pytest_args[@]}"; then
        result=passed
    else
        result=FAILED
        status=1
    fi
    test_time=$((SECONDS - started))
    summary+=("ansible-core $core on Python $python_version: $result in $(clock "$test_time") (venv $(clock "$setup_time"))")
done

echo "== summary"
printf '   %s\n' "${summary[@]}"
exit "$status"

#!/usr/bin/env bash
# Create (or reuse) a virtualenv with this project installed in editable mode.
#
#   scripts/venv.sh PY VENV [EXTRAS] [REQUIREMENT...]
#   scripts/venv.sh 3.11 .venv-test/py3.11-dj5.2 test 'Django>=5.2,<5.3'
#
# PY is a version such as 3.11. The venv is reused when it still works and was built from the
# same setup.cfg, pyproject.toml, extras and requirements; otherwise pip runs again. That keeps
# a second `make test` or `make demo` down to seconds. pip runs with -qq because this machine's
# pip config names local indexes that may be absent, and a warning per package buries the rest.
set -euo pipefail

py=$1 venv=$2 extras=${3:-}
shift $(( $# < 3 ? $# : 3 ))
cd "$(dirname "$0")/.."

# pyenv's shim answers "command not found" for versions that are installed but not selected
# (python3.12 here, where only 3.11 is global), so try the shim, then pyenv's folders.
find_python() {
    local cand
    for cand in "$(command -v "python$py" || true)" \
                $(ls -d "$HOME"/.pyenv/versions/"$py".*/bin/"python$py" 2>/dev/null | sort -V -r); do
        if [ -n "$cand" ] && "$cand" -c 'import venv' >/dev/null 2>&1; then
            echo "$cand"; return 0
        fi
    done
    echo "scripts/venv.sh: no working python$py found (on PATH or under ~/.pyenv/versions/)" >&2
    return 1
}

target=.
[ -n "$extras" ] && target=".[$extras]"
stamp_file=$venv/.vi-stamp
stamp=$(cat setup.cfg pyproject.toml <(echo "$target $*") | sha256sum | cut -d' ' -f1)

# A venv whose base interpreter disappeared cannot run python: rebuild it.
if [ -d "$venv" ] && ! "$venv/bin/python" -c 'import sys' >/dev/null 2>&1; then
    echo "scripts/venv.sh: $venv is broken; recreating it" >&2
    rm -rf "$venv"
fi
if [ ! -d "$venv" ]; then
    python=$(find_python)
    echo "Creating $venv with $python" >&2
    "$python" -m venv "$venv"
fi
if [ "$(cat "$stamp_file" 2>/dev/null)" != "$stamp" ]; then
    echo "Installing -e $target${*:+ $*} into $venv" >&2
    "$venv/bin/python" -m pip install -qq --disable-pip-version-check -e "$target" "$@"
    echo "$stamp" > "$stamp_file"
fi

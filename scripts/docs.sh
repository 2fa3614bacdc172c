#!/usr/bin/env bash
# Build the documentation in docs/ into docs/_build/html, with every warning and every broken
# cross-reference an error (-W -n), in a virtualenv of its own (.venv-test/docs).
#
#   scripts/docs.sh [SPHINX_ARG...]
#
# Environment: PY (default 3.11).
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PY:-3.11}
venv=.venv-test/docs
scripts/venv.sh "$PY" "$venv" docs
"$venv/bin/python" -m sphinx -E -W -n --keep-going -q -b html "$@" docs docs/_build/html
echo "docs built: docs/_build/html/index.html"

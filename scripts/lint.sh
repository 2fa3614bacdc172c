#!/usr/bin/env bash
# Lint: `ruff check` (the rules in pyproject.toml) and `ruff format --check`, in a virtualenv of
# its own (.venv-test/lint, the `lint` extra). Both always run, so one run shows every problem;
# fails if either finds one. Changes nothing: to apply the fixes, run
# `.venv-test/lint/bin/ruff format` and `.venv-test/lint/bin/ruff check --fix`.
#
#   scripts/lint.sh [PATH...]        default: the whole repository
#
# Environment: PY (default 3.11).
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PY:-3.11}
venv=.venv-test/lint
scripts/venv.sh "$PY" "$venv" lint
[ $# -gt 0 ] || set -- .

failed=()
echo "=== ruff check ==="
"$venv/bin/ruff" check "$@" || failed+=("ruff check")
echo "=== ruff format --check ==="
"$venv/bin/ruff" format --check "$@" || failed+=("ruff format --check")

if [ ${#failed[@]} -gt 0 ]; then
    printf -v list '%s, ' "${failed[@]}"
    echo "lint FAILED: ${list%, }" >&2
    exit 1
fi

#!/usr/bin/env bash
# Run the benchmarks (python -m benchmarks) in the test venv of one Python/Django combination,
# with the bench extra added.
#
# Environment: PY (default 3.11), DJANGO (default 5.2). Arguments go to python -m benchmarks.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PY:-3.11}
DJANGO=${DJANGO:-5.2}

if [ ! -f benchmarks/__main__.py ]; then
    echo "No benchmarks yet (benchmarks/__main__.py is missing)."
    exit 0
fi
next_minor="${DJANGO%%.*}.$(( ${DJANGO#*.} + 1 ))"
venv=.venv-test/py$PY-dj$DJANGO-bench
scripts/venv.sh "$PY" "$venv" test,bench "Django>=$DJANGO,<$next_minor"
exec "$venv/bin/python" -m benchmarks "$@"

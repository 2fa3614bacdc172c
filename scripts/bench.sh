#!/usr/bin/env bash
# Run the benchmarks (python -m benchmarks) in the test venv of one Python/Django combination,
# with the bench extra added: on SQLite, then on a throw-away PostgreSQL cluster (scripts/pg.sh).
#
#   scripts/bench.sh [ARG...]             e.g. scripts/bench.sh --smoke, --scenario listing
#
# Environment: PY (default 3.11), DJANGO (default 5.2), BENCH_DBS (default "sqlite postgres").
# Arguments go to python -m benchmarks; with --db in them, only that database runs.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PY:-3.11}
DJANGO=${DJANGO:-5.2}
BENCH_DBS=${BENCH_DBS:-sqlite postgres}

if [ ! -f benchmarks/__main__.py ]; then
    echo "No benchmarks yet (benchmarks/__main__.py is missing)."
    exit 0
fi
next_minor="${DJANGO%%.*}.$(( ${DJANGO#*.} + 1 ))"
venv=.venv-test/py$PY-dj$DJANGO-bench
scripts/venv.sh "$PY" "$venv" test,bench "Django>=$DJANGO,<$next_minor"

for arg in "$@"; do
    case $arg in --db|--db=*) BENCH_DBS=given ;; esac
done
status=0
for db in $BENCH_DBS; do
    case $db in
        given)    "$venv/bin/python" -m benchmarks "$@" || status=$? ;;
        sqlite)   "$venv/bin/python" -m benchmarks --db sqlite "$@" || status=$? ;;
        postgres) scripts/pg.sh "$venv/bin/python" -m benchmarks --db postgres "$@" || status=$? ;;
        *) echo "scripts/bench.sh: unknown database '$db' in BENCH_DBS (sqlite, postgres)" >&2; exit 2 ;;
    esac
done
exit $status

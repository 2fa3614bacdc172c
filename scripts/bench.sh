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

# --db in the arguments: that database only (python -m benchmarks reads the flag itself).
given=""
previous=""
for arg in "$@"; do
    case $arg in --db=*) given=${arg#--db=} ;; esac
    [ "$previous" = "--db" ] && given=$arg
    previous=$arg
done
[ -n "$given" ] && BENCH_DBS=$given
status=0
for db in $BENCH_DBS; do
    flag=(--db "$db")
    [ -n "$given" ] && flag=()
    case $db in
        sqlite)   "$venv/bin/python" -m benchmarks "${flag[@]}" "$@" || status=$? ;;
        # A server given through PGHOST is used as it is; otherwise a throw-away cluster.
        postgres) if [ -n "${PGHOST:-}" ]; then runner=(); else runner=(scripts/pg.sh); fi
                  "${runner[@]}" "$venv/bin/python" -m benchmarks "${flag[@]}" "$@" || status=$? ;;
        *) echo "scripts/bench.sh: unknown database '$db' (sqlite, postgres)" >&2; exit 2 ;;
    esac
done
exit $status

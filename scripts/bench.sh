#!/usr/bin/env bash
# Run the benchmarks (python -m benchmarks) in the test venv of one Python/Django combination,
# with the bench extra added: on SQLite, then on a throw-away PostgreSQL cluster (scripts/pg.sh).
#
#   scripts/bench.sh [ARG...]             e.g. scripts/bench.sh --smoke, --scenario listing
#
# Environment: PY (default 3.11), DJANGO (default 5.2), BENCH_DBS (default "sqlite postgres"),
#              BENCH_PARALLEL (1: the databases' runs at once, each printed when both end; for
#              the smoke run in CI, whose times mean nothing: full runs measure one at a time).
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
for db in $BENCH_DBS; do
    case $db in sqlite|postgres) ;;
        *) echo "scripts/bench.sh: unknown database '$db' (sqlite, postgres)" >&2; exit 2 ;;
    esac
done

one() {  # the database, then python -m benchmarks' arguments
    local db=$1 flag=(--db "$1") runner=()
    shift
    [ -n "$given" ] && flag=()
    # A server given through PGHOST is used as it is; otherwise a throw-away cluster.
    [ "$db" = postgres ] && [ -z "${PGHOST:-}" ] && runner=(scripts/pg.sh)
    "${runner[@]}" "$venv/bin/python" -m benchmarks "${flag[@]}" "$@"
}

status=0
if [ "${BENCH_PARALLEL:-0}" = 1 ]; then
    logs=$(mktemp -d)
    for db in $BENCH_DBS; do
        (rc=0; one "$db" "$@" > "$logs/$db.log" 2>&1 || rc=$?; echo "$rc" > "$logs/$db.rc") &
    done
    wait
    for db in $BENCH_DBS; do
        cat "$logs/$db.log"
        [ "$(cat "$logs/$db.rc")" = 0 ] || status=1
    done
    rm -rf "$logs"
else
    for db in $BENCH_DBS; do
        one "$db" "$@" || status=$?
    done
fi
exit $status

#!/usr/bin/env bash
# Run the whole test suite on SQLite, then on a throw-away PostgreSQL cluster, then the core,
# site and admin tests once more without the search app ("nosearch": a site that installs only
# the core), for one Python/Django combination. The run "tantivy" (in VI_TEST_DBS) runs the
# search suite with both indexes on the tantivy engine. Fails if any run fails (pytest's "no tests
# ran", exit 5, too).
#
#   scripts/test.sh [PYTEST_ARG...]        e.g. scripts/test.sh -x -k listing
#
# Environment: PY (default 3.11), DJANGO (a feature release, default 5.2),
#              VI_TEST_DBS (default "sqlite postgres nosearch"; e.g. "sqlite" for a quick run),
#              VI_TEST_PARALLEL (1: the runs at once, their output printed when all end).
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PY:-3.11}
DJANGO=${DJANGO:-5.2}
VI_TEST_DBS=${VI_TEST_DBS:-sqlite postgres nosearch}

# "5.2" -> "Django>=5.2,<5.3": the newest patch release of that feature release.
next_minor="${DJANGO%%.*}.$(( ${DJANGO#*.} + 1 ))"
venv=.venv-test/py$PY-dj$DJANGO
scripts/venv.sh "$PY" "$venv" test "Django>=$DJANGO,<$next_minor"
versions=$("$venv/bin/python" -c 'import sys, django; print(f"Python {sys.version.split()[0]}, Django {django.get_version()}")')

# One run: the database, then pytest's arguments.
run() {
    local db=$1 runner selection=()
    shift
    case $db in
        sqlite)   runner=(env VI_TEST_DB=sqlite) ;;
        postgres) runner=(scripts/pg.sh env VI_TEST_DB=postgres) ;;
        # The stress tests already ran above; the browser tests drive the search pages too.
        nosearch) runner=(env VI_TEST_DB=sqlite VI_TEST_SEARCH=0)
                  selection=(-m "not slow" --ignore=tests/site/test_browser.py tests/core tests/site tests/admin
                             tests/project/test_structure.py) ;;
        # The search suite with both indexes on the tantivy engine.
        tantivy)  runner=(env VI_TEST_DB=sqlite VI_TEST_ENGINE=tantivy)
                  selection=(-m "not slow and not browser" tests/search) ;;
    esac
    # The run's own selection last: its -m wins over one in the arguments.
    "${runner[@]}" "$venv/bin/python" -m pytest "$@" "${selection[@]}"
}

for db in $VI_TEST_DBS; do
    case $db in sqlite|postgres|nosearch|tantivy) ;;
        *) echo "scripts/test.sh: unknown run '$db' in VI_TEST_DBS (sqlite, postgres, nosearch, tantivy)" >&2; exit 2 ;;
    esac
done

failed=()
record() {  # the run's name and pytest's exit status
    case $2 in
        0) ;;
        5) failed+=("$1 (no tests ran)") ;;
        *) failed+=("$1 (pytest exit $2)") ;;
    esac
}
if [ "${VI_TEST_PARALLEL:-0}" = 1 ]; then
    # VI_TEST_PARALLEL=1: the runs go at once (each has its own temporary folder, database and
    # PostgreSQL cluster), each into a log printed when all have ended. CI uses it: on 2 cores
    # the runs, each mostly one process, take about half the time side by side.
    logs=$(mktemp -d)
    for db in $VI_TEST_DBS; do
        (status=0; run "$db" "$@" > "$logs/$db.log" 2>&1 || status=$?; echo "$status" > "$logs/$db.rc") &
    done
    wait
    for db in $VI_TEST_DBS; do
        echo "=== $versions, $db ==="
        cat "$logs/$db.log"
        record "$db" "$(cat "$logs/$db.rc")"
    done
    rm -rf "$logs"
else
    for db in $VI_TEST_DBS; do
        echo "=== $versions, $db ==="
        status=0
        run "$db" "$@" || status=$?
        record "$db" "$status"
    done
fi

# Said only on failure, so that on success the last line is pytest's own summary.
if [ ${#failed[@]} -gt 0 ]; then
    printf -v list '%s, ' "${failed[@]}"
    echo "FAILED on $versions: ${list%, }" >&2
    exit 1
fi

#!/usr/bin/env bash
# Run the whole test suite on SQLite, then on a throw-away PostgreSQL cluster, for one
# Python/Django combination. Fails if either run fails (pytest's "no tests ran", exit 5, too).
#
#   scripts/test.sh [PYTEST_ARG...]        e.g. scripts/test.sh -x -k listing
#
# Environment: PY (default 3.11), DJANGO (a feature release, default 5.2),
#              VI_TEST_DBS (default "sqlite postgres"; e.g. "sqlite" for a quick run).
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PY:-3.11}
DJANGO=${DJANGO:-5.2}
VI_TEST_DBS=${VI_TEST_DBS:-sqlite postgres}

# "5.2" -> "Django>=5.2,<5.3": the newest patch release of that feature release.
next_minor="${DJANGO%%.*}.$(( ${DJANGO#*.} + 1 ))"
venv=.venv-test/py$PY-dj$DJANGO
scripts/venv.sh "$PY" "$venv" test "Django>=$DJANGO,<$next_minor"
versions=$("$venv/bin/python" -c 'import sys, django; print(f"Python {sys.version.split()[0]}, Django {django.get_version()}")')

failed=()
for db in $VI_TEST_DBS; do
    echo "=== $versions, $db ==="
    case $db in
        sqlite)   runner=() ;;
        postgres) runner=(scripts/pg.sh) ;;
        *) echo "scripts/test.sh: unknown database '$db' in VI_TEST_DBS (sqlite, postgres)" >&2; exit 2 ;;
    esac
    status=0
    "${runner[@]}" env VI_TEST_DB="$db" "$venv/bin/python" -m pytest "$@" || status=$?
    case $status in
        0) ;;
        5) failed+=("$db (no tests ran)") ;;
        *) failed+=("$db (pytest exit $status)") ;;
    esac
done

# Said only on failure, so that on success the last line is pytest's own summary.
if [ ${#failed[@]} -gt 0 ]; then
    printf -v list '%s, ' "${failed[@]}"
    echo "FAILED on $versions: ${list%, }" >&2
    exit 1
fi

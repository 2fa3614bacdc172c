#!/usr/bin/env bash
# Run Haystack's own Whoosh test suite against the app's engine (or, for comparison, the stock one).
#
#   scripts/haystack_suite.sh [--engine ours|stock] [TEST_LABEL...]
#   scripts/haystack_suite.sh                         # test_haystack.whoosh_tests, the app's engine
#   scripts/haystack_suite.sh --engine stock          # the same tests on Haystack's engine
#
# The suite comes from the sdist of the installed django-haystack (pip download, cached under
# .venv-test/haystack-sdist/), unpacked into a temp dir; only its test_haystack/ is used, so the
# tests run against the installed Haystack. With --engine ours (the default) the harness's
# `whoosh` and `filtered_whoosh` connections get versioned_items' WhooshEngine, and
# whoosh_tests/testcases.py treats that ENGINE as a Whoosh engine (it cleans and sets up only
# connections whose ENGINE it knows). The exit status is the test runner's.
#
# Environment: PY (default 3.11), DJANGO (default 5.2): the venv of `make test` for that combination;
#              VENV: use this existing venv instead (it needs the `test` extra installed).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD

engine=ours
if [ "${1:-}" = "--engine" ]; then
    engine=${2:?"--engine needs ours or stock"}
    shift 2
fi
case $engine in
    ours|stock) ;;
    *) echo "scripts/haystack_suite.sh: unknown engine '$engine' (ours, stock)" >&2; exit 2 ;;
esac
[ $# -gt 0 ] || set -- test_haystack.whoosh_tests

PY=${PY:-3.11}
DJANGO=${DJANGO:-5.2}
next_minor="${DJANGO%%.*}.$(( ${DJANGO#*.} + 1 ))"
if [ -n "${VENV:-}" ]; then
    python=$(cd "$VENV" && pwd)/bin/python
else
    scripts/venv.sh "$PY" ".venv-test/py$PY-dj$DJANGO" test "Django>=$DJANGO,<$next_minor"
    python=$repo/.venv-test/py$PY-dj$DJANGO/bin/python
fi

# --- the sdist of the installed version, downloaded once ---
version=$("$python" -c 'import importlib.metadata as m; print(m.version("django-haystack"))')
cache=$repo/.venv-test/haystack-sdist
sdist=$(ls "$cache"/django_haystack-"$version".tar.gz 2>/dev/null || true)
if [ -z "$sdist" ]; then
    mkdir -p "$cache"
    "$python" -m pip download -qq --disable-pip-version-check --no-binary :all: --no-deps \
        -d "$cache" "django-haystack==$version"
    sdist=$(ls "$cache"/django_haystack-"$version".tar.gz)
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
tar -xzf "$sdist" -C "$work" --strip-components=1 --wildcards '*/test_haystack/*'

# --- point the two Whoosh connections at the app's engine ---
if [ "$engine" = ours ]; then
    "$python" - "$work/test_haystack" <<'EOF'
import pathlib
import re
import sys

stock = "haystack.backends.whoosh_backend.WhooshEngine"
ours = "versioned_items.search.backends.WhooshEngine"
root = pathlib.Path(sys.argv[1])
with (root / "settings.py").open("a") as settings:
    settings.write(f"\nfor _alias in ('whoosh', 'filtered_whoosh'):\n"
                   f"    HAYSTACK_CONNECTIONS[_alias]['ENGINE'] = {ours!r}\n")
testcases = root / "whoosh_tests" / "testcases.py"
text, count = re.subn(r'!=\s*"' + re.escape(stock) + '"', f"not in ({stock!r}, {ours!r})",
                      testcases.read_text())
if count != 2:  # a new Haystack changed the harness: look at it again rather than run half of it
    sys.exit(f"{testcases}: expected 2 engine comparisons, found {count}")
testcases.write_text(text)
EOF
fi

echo "=== Haystack $version test suite ($*), $engine engine ==="
cd "$work"
PYTHONPATH=$repo "$python" test_haystack/run_tests.py "$@"

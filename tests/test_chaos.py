"""Chaos: OS processes doing every kind of write at random on overlapping subtrees, with index
rebuilds running, for a bounded time; then the store must be whole.

Whole means: :func:`versioned_items.integrity.check` with ``verify_content`` (which includes the
search index comparison) finds nothing, the statistics equal a recomputation, every version's
content reads back with its recorded SHA-256, and every error a caller saw is one of the app's
exceptions. The operation and error counts are printed (``pytest -s`` shows them).

``VI_CHAOS_SECONDS`` sets the length of the run (default 15 s per database, for CI); e.g.
``VI_CHAOS_SECONDS=120 pytest tests/test_chaos.py -s`` for a longer one.
"""

import hashlib
import json
import os
import subprocess
import sys
from collections import Counter

import pytest

from versioned_items import integrity
from versioned_items.models import Version
from versioned_items.search import indexing

from .helpers import assert_statistics_exact
from .search_fixtures import child_env

WRITERS = 6
SECONDS = float(os.environ.get("VI_CHAOS_SECONDS", "15"))


def start(env: dict, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "tests.chaos_worker", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def results(processes: list[subprocess.Popen]) -> list[dict]:
    found = []
    for process in processes:
        out, err = process.communicate(timeout=SECONDS + 300)
        assert process.returncode == 0, err[-3000:]
        found.append(json.loads(out.strip().splitlines()[-1]))
    return found


def assert_contents_read_back() -> int:
    """Every version's content has its recorded SHA-256 and size; returns how many were read."""
    read = 0
    for version in Version.objects.exclude(checksum="").iterator():
        with version.open() as file:
            data = file.read()
        assert (hashlib.sha256(data).hexdigest(), len(data)) == (version.checksum, version.size), version.serial
        read += 1
    return read


@pytest.mark.slow
@pytest.mark.xfail(strict=False, reason="issue 8: the write path's locking (branch locks) is not merged yet; "
                   "api.recluster makes two NORMAL versions and live delete markers")
@pytest.mark.django_db(transaction=True)
def test_chaos_leaves_a_whole_store(search_index, subprocess_env, settings):
    settings.VERSIONED_ITEMS = {**settings.VERSIONED_ITEMS, "SEARCH_SYNC": False}
    env = child_env(subprocess_env, search_index)
    processes = [start(env, "write", str(w), str(SECONDS)) for w in range(WRITERS)]
    processes.append(start(env, "rebuild", str(SECONDS)))
    found = results(processes)
    done = sum((Counter(r["done"]) for r in found), Counter())
    errors = sum((Counter(r["errors"]) for r in found), Counter())
    foreign = [line for r in found for line in r["foreign"]]
    print(f"\nchaos {SECONDS:g} s, {WRITERS} writers: operations {dict(sorted(done.items()))}; "
          f"errors {dict(sorted(errors.items()))}; foreign {len(foreign)}")
    indexing.wait_for_index()
    report = integrity.check(verify_content=True)
    assert report.problems == [], "\n".join(map(str, report.problems[:50]))
    assert_statistics_exact()
    assert assert_contents_read_back() > 0
    assert foreign == [], "\n".join(foreign[:50])
    assert len(done) == 15  # every kind of write ran

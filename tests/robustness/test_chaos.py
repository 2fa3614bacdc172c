"""Chaos: OS processes doing every kind of write at random on overlapping subtrees, with index
rebuilds running, for a bounded time; then the store must be whole.

Whole means: :func:`versioned_items.integrity.check` with ``verify_content`` (which includes the
search index comparison) finds nothing, the statistics equal a recomputation, every version's
content reads back with its recorded SHA-256, and every error a caller saw is one of the app's
exceptions. The operation and error counts are printed (``pytest -s`` shows them).

``VI_CHAOS_SECONDS`` sets the length of the run (default 15 s per database, for CI); e.g.
``VI_CHAOS_SECONDS=120 pytest tests/robustness/test_chaos.py -s`` for a longer one.
"""

import hashlib
import io
import json
import os
import signal
import subprocess
import sys
from collections import Counter
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command

from versioned_items import integrity
from versioned_items.models import Version
from versioned_items.search import indexing

from ..helpers import assert_statistics_exact
from ..search_fixtures import child_env

WRITERS = 6
SECONDS = float(os.environ.get("VI_CHAOS_SECONDS", "15"))


def start(env: dict, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.chaos_worker", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


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
        assert (hashlib.sha256(data).hexdigest(), len(data)) == (version.checksum, version.size), (
            version.serial
        )
        read += 1
    return read


@pytest.mark.slow
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
    print(
        f"\nchaos {SECONDS:g} s, {WRITERS} writers: operations {dict(sorted(done.items()))}; "
        f"errors {dict(sorted(errors.items()))}; foreign {len(foreign)}"
    )
    indexing.wait_for_index()
    report = integrity.check(verify_content=True)
    assert report.problems == [], "\n".join(map(str, report.problems[:50]))
    assert_statistics_exact()
    assert assert_contents_read_back() > 0
    assert foreign == [], "\n".join(foreign[:50])
    assert len(done) == 16  # every kind of write ran, and the rebuild


# --- processes killed at the worst moments, then vi_check --fix ------------------------------


def vi_check(*args: str) -> str:
    out = io.StringIO()
    call_command("vi_check", "--grace", "0", *args, stdout=out)
    return out.getvalue()


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "worker, left",
    [
        ("killed_batch", "orphan"),  # files moved into place by a batch that never committed
        ("killed_import", "orphan"),
        ("killed_purge", "orphan"),  # freed files whose deletion after the commit never ran
        ("killed_content_write", "stale-temp"),  # a half-staged file
    ],
)
def test_kill_9_then_vi_check_fix_leaves_a_clean_store(search_index, subprocess_env, tmp_path, worker, left):
    args = [worker]
    if worker == "killed_import":
        for i in range(8):
            (tmp_path / f"f{i}.txt").write_bytes(f"imported file {i}".encode())
        args.append(str(tmp_path))
    child = start(child_env(subprocess_env, search_index), *args)
    child.communicate(timeout=120)
    assert child.returncode == -signal.SIGKILL
    indexing.wait_for_index()
    with pytest.raises(CommandError, match="problems found"):
        vi_check()
    assert left in {p.kind for p in integrity.check(grace=timedelta(0)).problems}
    out = vi_check("--fix", "--verify-content")
    assert f"repaired: [{left}]" in out and out.endswith("no problems found\n")
    vi_check("--verify-content")
    assert_statistics_exact()
    assert_contents_read_back()
    if worker == "killed_content_write":  # the same bytes put again are stored whole
        from versioned_items import api

        from ..chaos_worker import HALF

        version = api.put("killed/write.bin", HALF * 3)
        assert api.open_content(version).read() == HALF * 3
        assert not integrity.check(verify_content=True, grace=timedelta(0))

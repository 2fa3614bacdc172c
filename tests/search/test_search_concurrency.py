"""Several OS processes write at once, each with its own background applier: no caller sees
a LockError or any other error, no index update is dropped, and the check finds no difference."""

import json
import subprocess
import sys

import pytest
from django.db.models import F

from versioned_items.models import Cluster, Version
from versioned_items.search import indexing
from versioned_items.search.api import search

from ..search_fixtures import child_env

WORKERS = 3
ROUNDS = 12


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_concurrent_writers_leave_the_indexes_in_step(search_index, subprocess_env, settings):
    settings.VERSIONED_ITEMS = {**settings.VERSIONED_ITEMS, "SEARCH_SYNC": False}
    env = child_env(subprocess_env, search_index)
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.search_workers", "write_mix", str(w), str(ROUNDS)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for w in range(WORKERS)
    ]
    results = []
    for process in processes:
        out, err = process.communicate(timeout=240)
        assert process.returncode == 0, err
        assert "Traceback" not in err and "failed" not in err, err
        results.append(json.loads(out.strip().splitlines()[-1]))
    assert [r["errors"] for r in results] == [[]] * WORKERS
    # The storage invariant the indexes rely on: one NORMAL version per node, its current one.
    stray = Version.objects.filter(cluster=Cluster.NORMAL).exclude(node__current=F("serial"))
    assert list(stray.values_list("serial", "node__path")) == []
    # Every change was applied by the writers' own appliers before they exited.
    assert indexing.pending_count() == 0
    report = indexing.check(apply=False)
    assert report.diff.count == 0, report.diff
    assert report.statistics == []
    assert report.ok
    assert search("common").total == report.diff.latest.documents

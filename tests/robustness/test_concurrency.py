"""Several OS processes writing into the same subtree at once: no error reaches a caller, and
the statistics equal a recomputation (the origin document read-modify-wrote them)."""

import json
import subprocess
import sys

import pytest

from versioned_items.models import Version

from ..helpers import assert_statistics_exact

WORKERS = 4
PUTS = 40


@pytest.mark.django_db(transaction=True)
def test_concurrent_writers_keep_statistics_exact(subprocess_env):
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.workers", "put_many", str(w), str(PUTS)],
            env=subprocess_env,
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
        results.append(json.loads(out.strip().splitlines()[-1]))
    assert [r["errors"] for r in results] == [[]] * WORKERS
    deletes = WORKERS * (PUTS // 10)
    assert Version.objects.count() == WORKERS * PUTS + deletes
    assert_statistics_exact()

"""A rebuild of the tantivy indexes killed with SIGKILL, at each point of its work.

A child process runs a real rebuild (:func:`versioned_items.search.indexing.rebuild`) of the
test's tantivy indexes and writes twice while it runs: once while it reads the database (its
new indexes get that write too) and once after (they do not: only the outbox brings it). At
the point named by the test, one function of the rebuild is replaced by ``SIGKILL``, which is
the only way to stop it at an exact point every time. Then each live index must open and be
the old index or the new one, whole; the outbox must bring the writes made meanwhile; and the
next rebuild and the integrity check (``vi_check``) must find nothing left and nothing wrong.

Skipped as a whole where tantivy is not installed (it is an optional extra).
"""

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("tantivy")

from django.core.management import call_command  # noqa: E402

from versioned_items import api  # noqa: E402
from versioned_items.models import Version  # noqa: E402
from versioned_items.search import indexing, locks  # noqa: E402
from versioned_items.search.api import search  # noqa: E402
from versioned_items.search.models import IndexChange  # noqa: E402

from ..search_fixtures import assert_in_step, child_env, found, point_connections_at  # noqa: E402

ITEMS = 12
BATCH = 4  # versions per batch of the rebuild: several batches
EARLY = "kill/early.txt"  # written while the rebuild reads the database
LATE = "kill/late.txt"  # written after it read the database, before the swap

LIVE = {"latest", "history"}
REBUILT = {"latest.rebuild", "history.rebuild"}

#: Where the child dies; which index each live folder then holds, (latest, history); and the
#: folders the child left (``vi_`` left out of their names).
POINTS = {
    "while indexing into the temporary folders": ("building", "old", "old", LIVE | REBUILT),
    "new indexes committed, before the swap": ("built", "old", "old", LIVE | REBUILT),
    "history swapped in, latest not": ("between_swaps", "old", "new", LIVE | {"latest.rebuild"}),
    "history exchanged, its old index not yet deleted": ("exchanged", "old", "new", LIVE | REBUILT),
    "both swapped in, before the replay": ("replay", "new", "new", LIVE),
    "without the exchange: between the two renames": (
        "between_renames",
        "old",
        "old",
        {"latest", "history.old"} | REBUILT,  # no history index: it was moved aside
    ),
    "without the exchange: after the two renames": (
        "after_renames",
        "old",
        "new",
        LIVE | {"history.old", "latest.rebuild"},
    ),
}


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("point", "latest_is", "history_is", "left"), list(POINTS.values()), ids=list(POINTS)
)
def test_a_killed_rebuild_leaves_whole_indexes_and_loses_no_write(
    point, latest_is, history_is, left, tantivy_index, subprocess_env
):
    for i in range(ITEMS):
        api.put(f"kill/f{i}.txt", f"steady item{i}".encode())
    api.put("kill/f0.txt", b"steady item0 again")
    indexing.wait_for_index()

    child = run_child(subprocess_env, tantivy_index, point)
    assert child.returncode == -signal.SIGKILL, (child.returncode, child.stderr[-3000:])
    assert folders(tantivy_index) == left  # it died where the test says

    # Each live index opens, and holds the old index or the new one, every document of it.
    point_connections_at(tantivy_index)  # what a process started now sees
    old, new = indexes_before_and_after(late_written=point != "building")
    expected = {"old": old, "new": new}
    assert contents() == {"latest": expected[latest_is]["latest"], "history": expected[history_is]["history"]}
    steady = sorted(p for p in expected[latest_is]["latest"] if p != LATE)
    assert sorted(found("steady", page_size=100)) == steady
    assert search("steady", history=True, page_size=100).total == len(
        expected[history_is]["history"] - late()
    )

    # Nothing is left that blocks the next writer or rebuild.
    assert not locks.rebuild_running()
    api.put("kill/after.txt", b"written after the crash")  # takes the writer lock of both
    # The writes made meanwhile were not lost: the outbox brings them to both indexes.
    indexing.wait_for_index()
    assert found("latecomer") == ([LATE] if point != "building" else [])
    assert found("early", history=True) == [EARLY]
    assert_in_step()

    call_command("vi_rebuild_index", verbosity=0)
    assert folders(tantivy_index) == LIVE
    assert IndexChange.objects.count() == 0
    call_command("vi_check", verbosity=0)  # raises CommandError on any problem
    assert_in_step()


def indexes_before_and_after(late_written: bool) -> tuple[dict, dict]:
    """What the old and the new indexes hold: the old index took every write, the new one was
    built from the database before the late write."""
    everything = {
        "latest": {f"kill/f{i}.txt" for i in range(ITEMS)} | {EARLY} | ({LATE} if late_written else set()),
        "history": set(Version.objects.values_list("serial", flat=True)),
    }
    built = {"latest": everything["latest"] - {LATE}, "history": everything["history"] - late()}
    return everything, built


def folders(folder: Path) -> set[str]:
    """The folders of the indexes, ``vi_`` left out of their names."""
    return {name.removeprefix("vi_") for name in os.listdir(folder) if name.startswith("vi_")}


def late() -> set[int]:
    return set(Version.objects.filter(node__path=LATE).values_list("serial", flat=True))


def contents() -> dict:
    return {
        "latest": {d["path_exact"] for d in indexing.dump()},
        "history": {d["serial"] for d in indexing.dump(history=True)},
    }


# --- the child -------------------------------------------------------------------------------


def run_child(subprocess_env: dict, folder: Path, point: str) -> subprocess.CompletedProcess:
    """Run :func:`_rebuild_and_die` at ``point`` in a new process on the test's indexes."""
    code = (
        "import json, sys, django\n"
        "django.setup()\n"
        "from tests.search import test_search_tantivy_kill as kill\n"
        "print(json.dumps(kill._rebuild_and_die(sys.argv[1])), flush=True)\n"
    )
    env = {**child_env(subprocess_env, folder), "VI_TEST_ENGINE": "tantivy"}
    return subprocess.run(
        [sys.executable, "-c", code, point], env=env, capture_output=True, text=True, timeout=240
    )


def _die(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGKILL)


def _rebuild_and_die(point: str) -> dict:
    """In the child: rebuild with two writes meanwhile, and die at ``point``."""
    from django.conf import settings

    from versioned_items.search import maintenance
    from versioned_items.search.backends import tantivy as engine

    settings.VERSIONED_ITEMS = {**settings.VERSIONED_ITEMS, "SEARCH_SYNC": True}
    point_connections_at(Path(os.environ["VI_SEARCH_INDEX_DIR"]))
    read_batches = maintenance._version_batches

    def batches_with_writes(batch_size):
        for number, batch in enumerate(read_batches(batch_size)):
            yield batch
            if number == 0:
                api.put(EARLY, b"steady early words")
                indexing.wait_for_index()
                if point == "building":
                    _die()  # the first batches are in the temporary indexes, not committed
        api.put(LATE, b"latecomer words")
        indexing.wait_for_index()

    maintenance._version_batches = batches_with_writes
    backend = engine.TantivySearchBackend
    if point == "built":
        backend.swap_in = _die
    elif point == "between_swaps":
        swap_in = backend.swap_in
        swapped = []

        def swap_one(self, folder):
            if swapped:
                _die()
            swapped.append(folder)
            swap_in(self, folder)

        backend.swap_in = swap_one
    elif point == "exchanged":
        exchange = engine._exchange

        def exchange_and_die(first, second):
            assert exchange(first, second), "this file system cannot exchange folders"
            _die()

        engine._exchange = exchange_and_die
    elif point == "replay":
        maintenance.drain = _die
    elif point in ("between_renames", "after_renames"):
        engine._exchange = lambda first, second: False  # as where there is no renameat2
        rename = os.rename
        # Between: the live index moved aside, the new one not yet in its place. After: the
        # new one in place, the old one not yet deleted.
        last = ".old" if point == "between_renames" else "vi_history"

        def rename_and_die(source, target):
            rename(source, target)
            if str(target).endswith(last):
                _die()

        os.rename = rename_and_die
    indexing.rebuild(batch_size=BATCH)
    return {"survived": point}

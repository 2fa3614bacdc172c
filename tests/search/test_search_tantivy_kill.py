"""A rebuild of the tantivy indexes killed with SIGKILL, at each point of its work.

A child process runs a real rebuild (:func:`versioned_items.search.indexing.rebuild`) of the
test's tantivy indexes and writes twice while it runs: once while it reads the database (its
new indexes get that write too) and once after (they do not: only the outbox brings it). At
the point named by the test, one function of the rebuild is replaced by ``SIGKILL``, which is
the only way to stop it at an exact point every time; another test kills it at random moments
after it read the database, inside tantivy's commits and the swaps. Then each live index must
open and be the old index or the new one (told apart by its version marker), whole; the
outbox must bring the writes made meanwhile; and the next rebuild and the integrity check
(``vi_check``) must find nothing left and nothing wrong.

Skipped as a whole where tantivy is not installed (it is an optional extra).
"""

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("tantivy")

from django.core.management import call_command  # noqa: E402
from django.db.models import Q  # noqa: E402

from versioned_items import api  # noqa: E402
from versioned_items.models import Version  # noqa: E402
from versioned_items.search import indexing, locks  # noqa: E402
from versioned_items.search.api import search  # noqa: E402
from versioned_items.search.backends.tantivy import MARKER  # noqa: E402
from versioned_items.search.models import IndexChange  # noqa: E402

from ..search_fixtures import assert_in_step, child_env, found, point_connections_at  # noqa: E402

ITEMS = 12
BATCH = 4  # versions per batch of the rebuild: several batches

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
    paths = fill_store()
    before = markers(tantivy_index)
    child = subprocess.run(
        child_command(point, "0"),
        env=child_environment(subprocess_env, tantivy_index),
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert child.returncode == -signal.SIGKILL, (child.returncode, child.stderr[-3000:])
    assert folders(tantivy_index) == left  # it died where the test says
    late_written = point != "building"
    which = live_indexes(tantivy_index, before, paths, "0", late_written)
    assert which == {"latest": latest_is, "history": history_is}
    assert_recovers(tantivy_index, "0", late_written)


#: Kills at random moments after the rebuild read the database: in tantivy's commits of the new
#: indexes, the swaps, the replay, or after the child's end (then nothing is killed).
TRIALS = 5
SEED = 13


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_rebuild_killed_at_random_moments_leaves_whole_indexes(tantivy_index, subprocess_env):
    paths = fill_store()
    delays = random.Random(SEED).choices(range(0, 400, 5), k=TRIALS)  # milliseconds
    outcomes = []
    for trial, delay in enumerate(delays):
        tag = str(trial)
        before = markers(tantivy_index)
        child = subprocess.Popen(
            child_command("random", tag),
            env=child_environment(subprocess_env, tantivy_index),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for line in child.stdout:
            if line.strip() == "read":
                break
        else:
            pytest.fail(child.stderr.read())
        time.sleep(delay / 1000)
        child.send_signal(signal.SIGKILL)
        child.communicate(timeout=60)
        assert child.returncode in (0, -signal.SIGKILL), child.returncode
        which = live_indexes(tantivy_index, before, paths, tag, late_written=True)
        outcomes.append((delay, child.returncode, which["latest"], which["history"]))
        # History is swapped in first: a new latest index with the old history one is a mix.
        assert (which["latest"], which["history"]) != ("new", "old"), outcomes
        paths |= assert_recovers(tantivy_index, tag, late_written=True)
    print("trials (delay ms, return code, latest, history):", outcomes)  # seen with -s


def fill_store() -> set[str]:
    """Write the items the killed rebuilds rebuild; return their paths."""
    for i in range(ITEMS):
        api.put(f"kill/f{i}.txt", f"steady item{i}".encode())
    api.put("kill/f0.txt", b"steady item0 again")
    indexing.wait_for_index()
    return {f"kill/f{i}.txt" for i in range(ITEMS)}


def meanwhile(tag: str) -> tuple[str, str]:
    """The paths the child writes to while it rebuilds: (early, late); see the module's doc."""
    return f"kill/early{tag}.txt", f"kill/late{tag}.txt"


def markers(folder: Path) -> dict[str, int]:
    """Which index each live folder holds: ``{side: inode of its version marker}``."""
    return {side: os.stat(folder / f"vi_{side}" / MARKER).st_ino for side in ("latest", "history")}


def live_indexes(folder: Path, before: dict, paths: set[str], tag: str, late_written: bool) -> dict[str, str]:
    """``{"latest": "old" or "new", "history": ...}``: which index each live folder holds, the
    one of the ``markers`` ``before`` the rebuild or the one it built.

    Fails unless each opens, holds every document it should and nothing else, and answers
    searches. The old index took every write; the new one was built before the late write,
    which the replay may have brought already (to the history index first)."""
    point_connections_at(folder)  # what a process started now sees
    early, late = meanwhile(tag)
    late_serials = set(Version.objects.filter(node__path=late).values_list("serial", flat=True))
    old = {
        "latest": paths | {early} | ({late} if late_written else set()),
        "history": set(Version.objects.values_list("serial", flat=True)),
    }
    new = {"latest": old["latest"] - {late}, "history": old["history"] - late_serials}
    held = {
        "latest": {d["path_exact"] for d in indexing.dump()},
        "history": {d["serial"] for d in indexing.dump(history=True)},
    }
    which = {side: "old" if inode == before[side] else "new" for side, inode in markers(folder).items()}
    for side, index in which.items():
        allowed = [old[side]] if index == "old" else [new[side], old[side]]
        assert held[side] in allowed, (side, index, "missing:", old[side] - held[side])
    # Searches answer: the steady words are in every document but those written meanwhile late
    # and after a crash.
    others = Version.objects.filter(
        Q(node__path__startswith="kill/late") | Q(node__path__startswith="kill/after")
    )
    steady = {p for p in held["latest"] if not p.startswith(("kill/late", "kill/after"))}
    assert set(found("steady", page_size=1000)) == steady
    total = search("steady", history=True, page_size=1).total
    assert total == len(held["history"] - set(others.values_list("serial", flat=True)))
    return which


def assert_recovers(folder: Path, tag: str, late_written: bool) -> set[str]:
    """Nothing the killed rebuild left blocks a writer, the outbox brings the writes made
    meanwhile, and the next rebuild and ``vi_check`` find nothing wrong. Returns the paths
    written since the store was filled."""
    early, late = meanwhile(tag)
    assert not locks.rebuild_running()
    after = f"kill/after{tag}.txt"
    api.put(after, b"written after the crash")  # takes the writer lock of both indexes
    indexing.wait_for_index()
    assert found(f"latecomer{tag}") == ([late] if late_written else [])
    assert found(f"early{tag}", history=True) == [early]
    assert_in_step()
    call_command("vi_rebuild_index", verbosity=0)
    assert folders(folder) == LIVE
    assert IndexChange.objects.count() == 0
    call_command("vi_check", verbosity=0)  # raises CommandError on any problem
    assert_in_step()
    return {early, after} | ({late} if late_written else set())


def folders(folder: Path) -> set[str]:
    """The folders of the indexes, ``vi_`` left out of their names."""
    return {name.removeprefix("vi_") for name in os.listdir(folder) if name.startswith("vi_")}


# --- the child -------------------------------------------------------------------------------


def child_command(point: str, tag: str) -> list[str]:
    """The command of a child that runs :func:`_rebuild_and_die` (``point``, ``tag``)."""
    code = (
        "import json, sys, django\n"
        "django.setup()\n"
        "from tests.search import test_search_tantivy_kill as kill\n"
        "print(json.dumps(kill._rebuild_and_die(*sys.argv[1:])), flush=True)\n"
    )
    return [sys.executable, "-c", code, point, tag]


def child_environment(subprocess_env: dict, folder: Path) -> dict:
    """A child's environment: this test's database, the tantivy indexes in ``folder``."""
    return {**child_env(subprocess_env, folder), "VI_TEST_ENGINE": "tantivy"}


def _die(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGKILL)


def _rebuild_and_die(point: str, tag: str) -> dict:
    """In the child: rebuild with two writes meanwhile (:func:`meanwhile` of ``tag``), and die
    at ``point``; at "random", print ``read`` once the database is read, for the parent to kill
    it some time later."""
    from django.conf import settings

    from versioned_items.search import maintenance
    from versioned_items.search.backends import tantivy as engine

    settings.VERSIONED_ITEMS = {**settings.VERSIONED_ITEMS, "SEARCH_SYNC": True}
    point_connections_at(Path(os.environ["VI_SEARCH_INDEX_DIR"]))
    read_batches = maintenance._version_batches
    early, late = meanwhile(tag)

    def batches_with_writes(batch_size):
        for number, batch in enumerate(read_batches(batch_size)):
            yield batch
            if number == 0:
                api.put(early, f"steady early{tag} words".encode())
                indexing.wait_for_index()
                if point == "building":
                    _die()  # the first batches are in the temporary indexes, not committed
        api.put(late, f"latecomer{tag} words".encode())
        indexing.wait_for_index()
        if point == "random":
            print("read", flush=True)

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

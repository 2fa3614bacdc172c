"""Faults: many writers at once, processes killed at the worst moments, a broken index folder.

After each fault the store must be whole: no error reached a caller, the statistics equal a
recomputation, and the indexes agree with the database (``vi_check``) once the next process
or command has done its work.

Child processes run the functions at the bottom of this module (``_child_*``) through
:func:`run_child`; a few of them replace one library function by ``SIGKILL`` to die at an
exact point (right after a commit, in the middle of a rebuild), which is the only way to hit
those points every time.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command

from versioned_items import api
from versioned_items.exceptions import IndexUnavailable
from versioned_items.models import Version
from versioned_items.search import indexing
from versioned_items.search.api import search

from ..helpers import assert_statistics_exact
from ..search_fixtures import assert_in_step, child_env, found, point_connections_at

WRITERS = 8
VERSIONS_EACH = 200


def run_child(env: dict, name: str, *args, timeout: float = 240) -> subprocess.CompletedProcess:
    """Run ``_child_<name>(*args)`` of this module in a new Python process."""
    code = (
        "import json, sys, django\n"
        "django.setup()\n"
        "from tests.robustness import test_faults\n"
        f"result = test_faults._child_{name}(*sys.argv[1:])\n"
        "print(json.dumps(result), flush=True)\n"
    )
    return subprocess.run(
        [sys.executable, "-c", code, *map(str, args)],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def answer(child: subprocess.CompletedProcess) -> dict:
    assert child.returncode == 0, child.stderr[-3000:]
    return json.loads(child.stdout.strip().splitlines()[-1])


def killed(child: subprocess.CompletedProcess) -> None:
    assert child.returncode == -signal.SIGKILL, (child.returncode, child.stderr[-3000:])


# --- many writers ----------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_eight_writers_in_overlapping_subtrees(search_index, subprocess_env, settings):
    settings.VERSIONED_ITEMS = {**settings.VERSIONED_ITEMS, "SEARCH_SYNC": False}
    env = child_env(subprocess_env, search_index)
    code = (
        "import json, sys, django\n"
        "django.setup()\n"
        "from tests.robustness import test_faults\n"
        "print(json.dumps(test_faults._child_write(*sys.argv[1:])), flush=True)\n"
    )
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", code, str(w), str(VERSIONS_EACH)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for w in range(WRITERS)
    ]
    results = []
    for process in processes:
        out, err = process.communicate(timeout=300)
        assert process.returncode == 0, err[-3000:]
        assert "Traceback" not in err, err[-3000:]
        results.append(json.loads(out.strip().splitlines()[-1]))
    assert [r["errors"] for r in results] == [[]] * WRITERS
    assert Version.objects.count() == WRITERS * VERSIONS_EACH
    assert_statistics_exact()
    call_command("vi_check", verbosity=0)  # raises CommandError on any difference
    report = indexing.check(apply=False)
    assert report.ok and report.diff.count == 0, report.diff
    # Every writer's last word on its own file is what search finds.
    for w in range(WRITERS):
        assert found(f"writer{w}x", page_size=50), w


def _child_write(worker: str, count: str) -> dict:
    """Write ``count`` versions, most into subtrees that every other writer also writes to."""
    _use_test_indexes()
    from versioned_items.search.indexing import flush_background, wait_for_index

    errors = []
    for i in range(int(count)):
        if i == int(count) - 1:
            path = f"faults/own/w{worker}.txt"
        else:
            path = f"faults/s{(int(worker) + i) % 4}/f{i % 6}.txt"
        try:
            api.put(
                path,
                f"writer{worker}x round{i} shared words".encode(),
                user=f"w{worker}",
                attributes={"round": str(i), "writer": worker},
            )
        except Exception as error:  # reported to the parent, which fails the test
            errors.append(f"{path}: {type(error).__name__}: {error}")
    flush_background()
    wait_for_index()
    return {"worker": worker, "errors": errors}


# --- a writer killed between its commit and the index write ----------------------------------


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_writer_killed_after_commit_loses_nothing(search_index, subprocess_env):
    env = child_env(subprocess_env, search_index)
    api.put("kill/before.txt", b"written before the crash")
    indexing.wait_for_index()
    killed(run_child(env, "commit_then_die", "kill/victim.txt"))
    # The commit happened; the index never heard of it.
    assert api.lookup("kill/victim.txt") is not None
    assert indexing.pending_count() > 0
    assert found("orphaned") == []
    # Any later process drains the outbox: here one that only writes something else.
    answer(run_child(env, "write_one", "kill/after.txt"))
    assert indexing.pending_count() == 0
    assert found("orphaned") == ["kill/victim.txt"]
    assert_in_step()
    assert_statistics_exact()


def _child_commit_then_die(path: str) -> dict:
    _use_test_indexes()
    from versioned_items.search import indexing

    # The on_commit hook is the first thing after the commit: die there, before any index write.
    indexing.apply_after_commit = lambda: os.kill(os.getpid(), signal.SIGKILL)
    api.put(path, b"orphaned content of a crashed writer")
    return {"survived": True}


def _child_write_one(path: str) -> dict:
    _use_test_indexes()
    from versioned_items.search.indexing import flush_background, wait_for_index

    api.put(path, b"written by the next process")
    flush_background()
    wait_for_index()
    return {"ok": True}


# --- a rebuild killed at three points --------------------------------------------------------

KILL_POINTS = {
    "while indexing batches": "batch",
    "after the new indexes are committed, before the swap": "before_swap",
    "during the swap, segments moved, table of contents not yet written": "mid_swap",
}


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("point", list(KILL_POINTS.values()), ids=list(KILL_POINTS))
def test_rebuild_killed_leaves_the_live_index_answering(point, search_index, subprocess_env):
    env = child_env(subprocess_env, search_index)
    for i in range(30):
        api.put(f"rebuild/f{i}.txt", f"steady item{i} {'even' if i % 2 == 0 else 'odd'}".encode())
    api.put("rebuild/f0.txt", b"steady item0 even again")
    indexing.wait_for_index()
    before = _answers()
    killed(run_child(env, "rebuild_and_die", point))
    assert _answers() == before
    # The next rebuild cleans up what the killed one left and succeeds.
    call_command("vi_rebuild_index", verbosity=0)
    assert _answers() == before
    assert_in_step()
    leftovers = [p for p in Path(search_index).rglob("*.rebuild") if p.is_dir()]
    assert leftovers == []


def _answers() -> tuple:
    return (
        search("steady", page_size=100).total,
        sorted(found("even", page_size=100)),
        sorted(h.serial for h in search("steady", history=True, page_size=100)),
        sorted(found("odd", history=True, page_size=100)),
    )


def _child_rebuild_and_die(point: str) -> dict:
    _use_test_indexes()
    from whoosh import index as windex

    from versioned_items.search import backends, indexing

    def die(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGKILL)

    progress = None
    if point == "batch":
        progress = die
    elif point == "before_swap":
        backends.WhooshSearchBackend.swap_in = die
    elif point == "mid_swap":
        write = windex.TOC.write
        live = {
            os.path.abspath(indexing.latest_side().backend.path),
            os.path.abspath(indexing.history_side().backend.path),
        }

        def write_or_die(toc, storage, indexname):
            if os.path.abspath(getattr(storage, "folder", "")) in live:
                die()
            return write(toc, storage, indexname)

        windex.TOC.write = write_or_die
    indexing.rebuild(batch_size=10, progress=progress)
    return {"survived": True}


# --- a missing or corrupted index folder -----------------------------------------------------


def _break(folder: Path, how: str) -> None:
    if how == "missing":
        shutil.rmtree(folder)
        return
    for file in folder.iterdir():
        if file.is_file() and not file.name.endswith(".lock"):
            # A new file under the old name: overwriting in place would pull the pages from
            # under this process's memory-mapped segments (SIGBUS), which no code can catch.
            garbage = file.with_name(file.name + ".tmp")
            garbage.write_bytes(b"\x00garbage\xff" * 7)
            garbage.replace(file)


def _break_indexes(folder: Path, how: str) -> None:
    api.put("broken/a.txt", b"sturdy content alpha")
    indexing.wait_for_index()
    assert found("sturdy") == ["broken/a.txt"]
    _break(folder / "vi_latest", how)
    _break(folder / "vi_history", how)
    point_connections_at(folder)  # what a process started now sees


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("how", ["missing", "corrupted"])
def test_broken_index_makes_search_fail_clearly(how, search_index):
    _break_indexes(Path(search_index), how)
    with pytest.raises(IndexUnavailable, match="vi_rebuild_index"):
        search("sturdy")


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("how", ["missing", "corrupted"])
def test_broken_index_keeps_writes_and_vi_rebuild_index_repairs_it(how, search_index):
    _break_indexes(Path(search_index), how)
    # Writes still reach the database and the outbox.
    version = api.put("broken/b.txt", b"sturdy content beta")
    assert api.lookup("broken/b.txt").serial == version.serial
    assert_statistics_exact()
    call_command("vi_rebuild_index", verbosity=0)
    assert sorted(found("sturdy")) == ["broken/a.txt", "broken/b.txt"]
    assert_in_step()


# --- shared --------------------------------------------------------------------------------


def _use_test_indexes() -> None:
    """In a child: use the parent test's index folder (see search_fixtures.child_env)."""
    from ..search_fixtures import point_connections_at

    point_connections_at(Path(os.environ["VI_SEARCH_INDEX_DIR"]))

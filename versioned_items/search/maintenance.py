"""Whole-index maintenance: :func:`rebuild` (into temporary folders, swapped in when complete,
with the writes made meanwhile replayed), :func:`optimize` and :func:`dump`."""

import contextlib
import logging
import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from versioned_items.conf import app_settings
from versioned_items.models import Cluster, Version

from . import documents, locks
from .documents import SOURCE_ATTR
from .models import MaintenanceRun
from .outbox import drain
from .sides import Side, history_side, latest_side, sides, stored_documents, write
from .status import recorded

logger = logging.getLogger("versioned_items.search")

Progress = Callable[[int, int], None]  # (done, total)


# --- rebuilding ------------------------------------------------------------------------------


@dataclass
class RebuildReport:
    """What a rebuild wrote."""

    latest: int = 0
    history: int = 0
    replayed: int = 0  # outbox entries applied after the swap


def rebuild(
    *, procs: int = 1, batch_size: int | None = None, progress: Progress | None = None
) -> RebuildReport:
    """Rebuild both indexes from the database.

    With the app's engines (Whoosh or tantivy), the indexes are built in temporary folders
    beside the live ones and swapped in atomically (each engine's ``swap_in``); until then the
    live indexes keep answering and being updated. Entries applied while the rebuild runs are
    kept in the outbox and replayed into the new indexes after the swap, so no write made
    meanwhile is lost. A rebuild that is killed leaves the live indexes untouched; the next
    one removes its leftovers first.
    With another backend, the indexes are cleared and refilled in place.

    ``procs`` > 1 lets Whoosh index in that many processes (tantivy indexes with its
    ``WRITER_THREADS`` threads). ``progress(done, total)`` is called after each batch of
    versions. Raises IndexUnavailable when another rebuild runs.
    The run is recorded (see :func:`~versioned_items.search.indexing.index_status`).
    """
    batch_size = batch_size or app_settings.SEARCH_BATCH_SIZE
    latest, history = sides()
    with locks.rebuild_lock(), recorded(MaintenanceRun.Kind.REBUILD) as run:
        # Appliers that started before us finish first: what they deleted from the outbox is
        # in the database we are about to read. Later ones keep their entries for the replay.
        with locks.apply_lock():
            pass
        if latest.app_engine and history.app_engine:
            report = _rebuild_swapped(latest, history, procs, batch_size, progress)
        else:
            report = _rebuild_in_place(latest, history, batch_size, progress)
        with locks.apply_lock():
            report.replayed = drain(keep=False)
        run.latest_documents, run.history_documents = report.latest, report.history
        run.applied = report.replayed
    return report


def _temp_folder(side: Side) -> str:
    # Beside the live index, so that moving files into it is a rename on one file system.
    return f"{os.path.abspath(side.backend.path)}.rebuild"


def _rebuild_swapped(latest: Side, history: Side, procs, batch_size, progress) -> RebuildReport:
    report = RebuildReport()
    folders = {side.name: _temp_folder(side) for side in (latest, history)}
    for folder in folders.values():
        shutil.rmtree(folder, ignore_errors=True)  # what a killed run left behind
    latest_index, history_index = latest.index, history.index
    # Both indexes are committed when the block ends, and both abandoned if anything raises.
    with contextlib.ExitStack() as building:
        add = {
            side.name: building.enter_context(side.backend.building(folders[side.name], procs=procs))
            for side in (latest, history)
        }
        for batch, done, total in _version_batches(batch_size):
            for version in batch:
                add["history"](history_index.full_prepare(version))
                report.history += 1
                node = version.node
                if node.current_id == version.serial and version.cluster == Cluster.NORMAL:
                    # The current version's source serves the node's latest document too.
                    setattr(node, SOURCE_ATTR, getattr(version, SOURCE_ATTR))
                    add["latest"](latest_index.full_prepare(node))
                    report.latest += 1
            if progress:
                progress(done, total)
    with locks.apply_lock():
        history.backend.swap_in(folders["history"])
        latest.backend.swap_in(folders["latest"])
    return report


def _rebuild_in_place(latest: Side, history: Side, batch_size, progress) -> RebuildReport:
    report = RebuildReport()
    for side in (latest, history):
        side.backend.clear()
    for batch, done, total in _version_batches(batch_size):
        current = []
        for version in batch:
            node = version.node
            if node.current_id == version.serial and version.cluster == Cluster.NORMAL:
                setattr(node, SOURCE_ATTR, getattr(version, SOURCE_ATTR))
                current.append(node)
        write(history, batch)
        write(latest, current)
        report.history += len(batch)
        report.latest += len(current)
        if progress:
            progress(done, total)
    return report


def _version_batches(batch_size: int) -> Iterator[tuple[list, int, int]]:
    """All versions in serial order, in batches with sources and texts: (batch, done, total)."""
    total = Version.objects.count()
    done = 0
    last = 0
    while True:
        batch = list(documents.history_queryset().filter(serial__gt=last).order_by("serial")[:batch_size])
        if not batch:
            return
        sources = documents.attach_history_sources(batch)
        documents.fill_texts(sources)
        last = batch[-1].serial
        done += len(batch)
        yield batch, done, max(total, done)


# --- maintenance -----------------------------------------------------------------------------


def optimize() -> None:
    """Merge each index's segments (faster searches after many small commits): Whoosh merges
    into one segment, tantivy finishes the merges its merge policy starts."""
    for side in sides():
        side.backend.optimize()


def dump(*, history: bool = False) -> Iterator[dict]:
    """The stored fields of every document of one index, by path then serial."""
    side = history_side() if history else latest_side()
    docs = list(stored_documents(side))
    docs.sort(key=lambda d: (d.get("path_exact", ""), d.get("serial", 0)))
    yield from docs

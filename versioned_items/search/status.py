"""The record of maintenance runs (:class:`.models.MaintenanceRun`) and the status of both
indexes, for the admin's panel and ``vi_check``."""

import contextlib
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import router, transaction
from django.utils import timezone

from versioned_items.exceptions import IndexUnavailable

from . import locks
from .models import IndexChange, MaintenanceRun
from .sides import document_count, sides

logger = logging.getLogger("versioned_items.search")

Progress = Callable[[int, int], None]  # (done, total)


# --- the record of maintenance runs, and the index status ------------------------------------


@contextlib.contextmanager
def recorded(kind: str, **fields) -> Iterator[MaintenanceRun]:
    """Record a maintenance run: a row when it starts, given its finish time (and the counts
    the caller set on it) when it ends, or the error that stopped it. A killed run keeps no
    finish time. Only the newest runs of each kind are kept."""
    run = MaintenanceRun.objects.create(kind=kind, **fields)
    try:
        yield run
    except Exception as error:
        # Inside a transaction that an error broke, nothing more can be written.
        if not transaction.get_connection(router.db_for_write(MaintenanceRun)).needs_rollback:
            run.error = f"{type(error).__name__}: {error}"
            run.save(update_fields=["error"])
        raise
    run.finished = timezone.now()
    run.save()
    MaintenanceRun.objects.prune(kind)


@dataclass
class IndexState:
    """The state of one index, as :func:`~versioned_items.search.indexing.index_status` reports it."""

    name: str  # "latest" or "history"
    alias: str  # its Haystack connection
    documents: int | None  # None when the index cannot be read; ``problem`` says why
    problem: str
    pending: int  # outbox entries not applied yet
    oldest_pending: datetime | None  # when the oldest of them was recorded
    last_rebuild: datetime | None  # when the last rebuild that succeeded finished
    last_check: datetime | None  # when the last check that succeeded finished
    last_check_differences: int | None  # documents it found missing, stale or changed

    @property
    def pending_age(self) -> timedelta | None:
        """How long the oldest pending entry has waited."""
        return timezone.now() - self.oldest_pending if self.oldest_pending else None


@dataclass
class IndexStatus:
    """Both indexes' states, and the newest maintenance run of each kind, whatever its outcome."""

    indexes: list[IndexState]
    last_runs: dict[str, MaintenanceRun]  # by kind: "rebuild", "update", "check"
    rebuild_running: bool

    @property
    def pending(self) -> int:
        """Outbox entries not applied yet, for both indexes."""
        return sum(index.pending for index in self.indexes)


def index_status() -> IndexStatus:
    """Each index's document count, pending outbox entries and the age of the oldest, when it
    was last rebuilt, and when it was last checked with how many differences; and the newest
    run of each kind of maintenance.

    The maintenance times come from the runs that
    :func:`~versioned_items.search.indexing.rebuild`,
    :func:`~versioned_items.search.indexing.update_index` and
    :func:`~versioned_items.search.indexing.check` record, whoever called them. Three queries,
    and a document count from each index. Never raises IndexUnavailable: an index that cannot
    be read has ``documents=None`` and its ``problem``.
    """
    backlog = IndexChange.objects.backlog()
    succeeded = MaintenanceRun.objects.succeeded().newest_of_each_kind()
    rebuilt, checked = succeeded.get(MaintenanceRun.Kind.REBUILD), succeeded.get(MaintenanceRun.Kind.CHECK)
    indexes = []
    for side in sides():
        pending, oldest = backlog.get(side.outbox_kind, (0, None))
        documents, problem = None, ""
        try:
            documents = document_count(side)
        except IndexUnavailable as error:
            problem = str(error)
        indexes.append(
            IndexState(
                name=side.name,
                alias=side.alias,
                documents=documents,
                problem=problem,
                pending=pending,
                oldest_pending=oldest,
                last_rebuild=rebuilt.finished if rebuilt else None,
                last_check=checked.finished if checked else None,
                last_check_differences=getattr(checked, f"{side.name}_differences") if checked else None,
            )
        )
    return IndexStatus(
        indexes=indexes,
        last_runs=MaintenanceRun.objects.newest_of_each_kind(),
        rebuild_running=locks.rebuild_running(),
    )

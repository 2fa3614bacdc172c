"""Comparing both indexes with the database document by document: :func:`compare`, the
intelligent :func:`update_index` that rewrites only what differs, and :func:`check`."""

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, timedelta

from django.db.models import F
from django.utils import timezone
from haystack.utils import get_model_ct

from versioned_items import api
from versioned_items.conf import app_settings
from versioned_items.models import Cluster

from . import documents, locks
from .documents import SOURCE_ATTR
from .models import IndexChange, MaintenanceRun
from .outbox import apply_pending
from .sides import Side, reconcile, sides, stored_documents
from .status import recorded

logger = logging.getLogger("versioned_items.search")

Progress = Callable[[int, int], None]  # (done, total)


# --- comparing index and database ------------------------------------------------------------

# The stored fields that must agree with the database (the text is not compared: it follows
# from checksum and content type).
SIGNATURE_FIELDS = (
    "path_exact",
    "serial",
    "node",
    "cluster",
    "mtime",
    "valid_until",
    "size",
    "muser",
    "content_type",
    "checksum",
    "attributes",
    "comment",
)


_TEXT_FIELDS = ("path_exact", "muser", "content_type", "checksum", "attributes", "comment")


@dataclass
class SideDiff:
    """Differences between one index and the database, as primary keys."""

    missing: set = field(default_factory=set)  # in the database, not in the index
    stale: set = field(default_factory=set)  # in the index, not in the database
    changed: set = field(default_factory=set)  # in both, with different fields
    documents: int = 0  # documents in the index
    expected: int = 0  # documents the database calls for

    @property
    def count(self) -> int:
        return len(self.missing) + len(self.stale) + len(self.changed)


@dataclass
class IndexDiff:
    latest: SideDiff
    history: SideDiff

    @property
    def count(self) -> int:
        return self.latest.count + self.history.count


def _signature(fields: dict) -> tuple:
    return tuple(_normalize(name, fields.get(name)) for name in SIGNATURE_FIELDS)


def _normalize(name, value):
    if hasattr(value, "tzinfo"):
        # The engines hand back naive UTC datetimes; the database aware ones.
        return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value
    if name in ("serial", "node", "cluster", "size") and value is not None:
        return int(value)
    if name in _TEXT_FIELDS:
        # No value is an empty one: tantivy stores no empty string (a deletion's content type),
        # and an index built before the comment field existed has no comment.
        return value or ""
    return value


def _expected(side: Side, batch_size: int) -> Iterator[tuple[int, tuple]]:
    """(pk, signature) of every document the database calls for on ``side``, in batches."""
    queryset = documents.history_queryset().order_by("serial")
    if side.name == "latest":
        queryset = queryset.filter(node__current=F("serial"), cluster=Cluster.NORMAL)
    last = 0
    while True:
        batch = list(queryset.filter(serial__gt=last)[:batch_size])
        if not batch:
            return
        last = batch[-1].serial
        for version, source in zip(batch, documents.attach_history_sources(batch), strict=True):
            source.text_status = ""  # the text is not compared: no need to extract it
            if side.name == "latest":
                setattr(version.node, SOURCE_ATTR, source)
                obj, pk = version.node, version.node_id
            else:
                obj, pk = version, version.serial
            prepared = side.index.full_prepare(obj)
            yield pk, _signature(prepared)


def _indexed(side: Side) -> Iterator[tuple[int, tuple]]:
    """(pk, signature) of every document in the index of ``side``."""
    prefix = get_model_ct(side.model) + "."
    for fields in stored_documents(side):
        ident = fields.get("id", "")
        if ident.startswith(prefix):
            yield int(ident[len(prefix) :]), _signature(fields)


def compare(*, batch_size: int | None = None) -> IndexDiff:
    """Compare both indexes with the database, document by document (texts excepted)."""
    batch_size = batch_size or app_settings.SEARCH_BATCH_SIZE
    result = []
    for side in sides():
        diff = SideDiff()
        indexed = {}
        for pk, signature in _indexed(side):
            if pk in indexed:
                diff.changed.add(pk)  # a duplicate document
            indexed[pk] = signature
        diff.documents = len(indexed)
        for pk, signature in _expected(side, batch_size):
            diff.expected += 1
            found = indexed.pop(pk, None)
            if found is None:
                diff.missing.add(pk)
            elif found != signature:
                diff.changed.add(pk)
        diff.stale = set(indexed)
        result.append(diff)
    return IndexDiff(*result)


@dataclass
class UpdateReport:
    """What the intelligent update found (and fixed, unless it was a dry run)."""

    diff: IndexDiff
    applied: int = 0  # outbox entries applied first
    dry_run: bool = False


def update_index(*, dry_run: bool = False, batch_size: int | None = None) -> UpdateReport:
    """The intelligent update: compare index and database and fix only the differences.

    Pending outbox entries are applied first (unless ``dry_run``). Then missing documents are
    added, stale ones removed and changed ones rewritten (reusing texts already indexed),
    which also fixes the latest set. Returns the differences found; the run is recorded (see
    :func:`~versioned_items.search.indexing.index_status`).
    """
    batch_size = batch_size or app_settings.SEARCH_BATCH_SIZE
    with recorded(MaintenanceRun.Kind.UPDATE, dry_run=dry_run) as run:
        applied = 0 if dry_run else apply_pending()
        with locks.apply_lock():
            diff = compare(batch_size=batch_size)
            if not dry_run:
                nodes = sorted(diff.latest.missing | diff.latest.stale | diff.latest.changed)
                serials = sorted(diff.history.missing | diff.history.stale | diff.history.changed)
                for start in range(0, max(len(nodes), len(serials)), batch_size):
                    reconcile(nodes[start : start + batch_size], serials[start : start + batch_size])
        _record_diff(run, diff)
        run.applied = applied
    return UpdateReport(diff=diff, applied=applied, dry_run=dry_run)


# --- checking --------------------------------------------------------------------------------


@dataclass
class CheckReport:
    """Index-vs-database and statistics differences, and the outbox backlog."""

    diff: IndexDiff
    statistics: list  # api.StatisticsDifference
    pending: int  # outbox entries not applied
    overdue: int  # of which older than SEARCH_MAX_LAG

    @property
    def ok(self) -> bool:
        return not (self.diff.count or self.statistics or self.overdue)


def check(*, apply: bool = True) -> CheckReport:
    """Report differences between the indexes and the database, and in the statistics.

    With ``apply`` (the default) pending outbox entries are applied first, so that changes
    merely in flight are not reported as differences. The run is recorded (see
    :func:`~versioned_items.search.indexing.index_status`).
    """
    with recorded(MaintenanceRun.Kind.CHECK) as run:
        run.applied = apply_pending() if apply else 0
        with locks.apply_lock():
            diff = compare()
        pending = IndexChange.objects.filter(applied=False)
        overdue = pending.filter(created__lt=timezone.now() - timedelta(seconds=app_settings.SEARCH_MAX_LAG))
        report = CheckReport(
            diff=diff, statistics=api.recompute_statistics(), pending=pending.count(), overdue=overdue.count()
        )
        _record_diff(run, diff)
        run.statistics_differences = len(report.statistics)
    return report


def _record_diff(run: MaintenanceRun, diff: IndexDiff) -> None:
    run.latest_documents, run.history_documents = diff.latest.documents, diff.history.documents
    run.latest_differences, run.history_differences = diff.latest.count, diff.history.count

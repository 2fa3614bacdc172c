"""The one place where every write ends.

Each operation of :mod:`versioned_items.api` runs inside :func:`operation`, which opens a
transaction and hands out a :class:`ChangeSet`. The operation records in it which nodes and
versions it touched and how the statistics move. When the outermost operation finishes, the
change set applies all statistics deltas in one upsert statement and sends
:data:`versioned_items.signals.versions_changed`, still inside the transaction. Search (and
anything else that must follow every change) hooks in there.

Operations nest: an inner operation collects into a change set of its own, merged into the
outer one only when it succeeds, so a failed inner call that the caller catches leaves no
statistics behind. ``api.batch()`` is this context manager, for grouping many writes.

A database error caused by a concurrent writer (a deadlock, a racing insert: see
:func:`versioned_items.locking.is_concurrency_error`) leaves an operation as
:class:`~versioned_items.exceptions.ConcurrentUpdate`, never as the driver's error;
:func:`versioned_items.locking.retrying` runs an outermost API call again on it.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime

from django.db import DatabaseError, connection, transaction

from . import locking, paths
from .models import Node, Statistics, Version
from .signals import versions_changed

#: The change set of the running operation: per thread, and per task in async code.
_current: "ContextVar[ChangeSet | None]" = ContextVar("versioned_items_change_set", default=None)


@dataclass
class ChangeSet:
    """What one operation (or batch) changed; see :mod:`versioned_items.signals`."""

    nodes: set[int] = field(default_factory=set)
    versions: set[int] = field(default_factory=set)
    removed_versions: set[int] = field(default_factory=set)
    # (ancestor path, cluster) -> [population delta, size delta, time of change]
    statistics: dict[tuple[str, int], list] = field(default_factory=dict)
    # path -> node id, for paths the operation already looked up
    node_ids: dict[str, int] = field(default_factory=dict)

    def count(self, path: str, cluster: int, population: int, size: int, when: datetime) -> None:
        """Record that ``population`` versions totalling ``size`` bytes entered ``cluster``
        at the node ``path`` (negative numbers: left it). Rolls up to every ancestor:
        population only on the parent, size and time on all of them."""
        for level, ancestor in enumerate(reversed(paths.ancestor_paths(path))):
            entry = self.statistics.setdefault((ancestor, cluster), [0, 0, when])
            if level == 0:
                entry[0] += population
            entry[1] += size
            entry[2] = max(entry[2], when)

    def remember(self, *nodes: Node) -> None:
        for node in nodes:
            self.node_ids[node.path] = node.pk

    def merge(self, other: "ChangeSet") -> None:
        self.nodes |= other.nodes
        self.versions |= other.versions
        self.removed_versions |= other.removed_versions
        self.node_ids.update(other.node_ids)
        for key, (population, size, when) in other.statistics.items():
            entry = self.statistics.setdefault(key, [0, 0, when])
            entry[0] += population
            entry[1] += size
            entry[2] = max(entry[2], when)

    def __bool__(self) -> bool:
        return bool(self.nodes or self.versions or self.removed_versions or self.statistics)

    def flush(self) -> None:
        """Apply the statistics deltas and send ``versions_changed``."""
        self._apply_statistics()
        self.versions -= self.removed_versions
        if self.nodes or self.versions or self.removed_versions:
            versions_changed.send(sender=Version, changes=self)

    def _apply_statistics(self) -> None:
        if not self.statistics:
            return
        missing = {p for p, _ in self.statistics} - self.node_ids.keys()
        if missing:
            self.node_ids.update(Node.objects.filter(path__in=missing).values_list("path", "id"))
        rows = sorted(
            (self.node_ids[p], cluster, population, size, when)
            for (p, cluster), (population, size, when) in self.statistics.items()
            if p in self.node_ids
        )
        upsert_statistics(rows)
        self.statistics.clear()


def upsert_statistics(rows: list[tuple[int, int, int, int, datetime]]) -> None:
    """Add (node id, cluster, population, size, time) deltas in one statement.

    Rows are sorted so that concurrent writers lock statistics rows in the same order and
    cannot deadlock; the arithmetic happens in the database, so no update is lost.
    """
    if not rows:
        return
    qn = connection.ops.quote_name
    table = qn(Statistics._meta.db_table)
    adapt = connection.ops.adapt_datetimefield_value
    values = ", ".join(["(%s, %s, %s, %s, %s)"] * len(rows))
    params = [v for node, cluster, pop, size, when in rows for v in (node, cluster, pop, size, adapt(when))]
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (node_id, cluster, population, size, mtime) VALUES {values} "
            f"ON CONFLICT (node_id, cluster) DO UPDATE SET "
            f"population = {table}.population + excluded.population, "
            f"size = {table}.size + excluded.size, "
            f"mtime = CASE WHEN {table}.mtime IS NULL OR {table}.mtime < excluded.mtime "
            f"THEN excluded.mtime ELSE {table}.mtime END",
            params,
        )


def current() -> ChangeSet | None:
    """The change set of the operation running in this thread (or task), if any."""
    return _current.get()


@contextmanager
def operation() -> Iterator[ChangeSet]:
    """Run a write operation atomically and collect its changes (usable as a decorator)."""
    parent = current()
    changes = ChangeSet()
    token = _current.set(changes)
    try:
        with transaction.atomic():
            yield changes
            if parent is None:
                changes.flush()
    except DatabaseError as error:
        # Also the errors of COMMIT (deferred foreign keys), raised when atomic() exits.
        if locking.is_concurrency_error(error):
            raise locking.as_conflict(error) from error
        raise
    finally:
        _current.reset(token)
    if parent is not None:
        parent.merge(changes)

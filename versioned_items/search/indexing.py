"""Keeping the two indexes in step with the database: the library behind the commands.

How a change reaches the index
------------------------------
1. A write operation of :mod:`versioned_items.api` sends ``versions_changed`` inside its
   transaction; :mod:`.receivers` records outbox entries (:class:`.models.IndexChange`) in the
   same transaction and registers :func:`apply_after_commit` with ``transaction.on_commit``.
2. After commit, :func:`apply_after_commit` either applies the outbox at once
   (``SEARCH_SYNC = True``) or wakes this process's applier thread (the default).
3. :func:`apply_pending` takes the apply lock, reads every pending entry, loads the current
   state of those nodes and versions from the database, and writes it to each index with one
   writer and one commit, then deletes the entries. Under load, one round serves many
   transactions (group commit).

Entries are idempotent, so nothing is lost when a process dies after its commit: the entries
stay in the outbox, and the next round of any process, ``wait_for_index()`` or
``vi_update_index`` applies them.

On SQLite, deleting the applied entries needs the database's single write lock, which a
process that writes transaction after transaction (an import) holds nearly all the time. The
applier thread does not wait for it: it leaves the deletion to that writer's next transaction
(see :class:`_Unsettled`) and retries quietly, after a short pause, what a busy database
refused, logging it at DEBUG level only; entries that wait to be deleted are not applied again.

The visibility lag
------------------
A committed change is visible to search once the round that reads it commits. The applier
thread starts a round as soon as it is woken; a change committed while a round runs is picked
up by the next one. The lag is therefore at most two rounds plus the wait for the apply lock,
which another process holds for at most one round. A round reads ``SEARCH_BATCH_SIZE`` entries;
while a backlog keeps the rounds full they double, up to ``MAX_ROUND_GROWTH`` times that (see
:func:`round_sizes`), so a change committed during a large import may wait for a larger round. ``SEARCH_MAX_LAG`` is the bound this is expected to stay
under: ``vi_check`` reports outbox entries older than it. Callers that need to read their own
writes call :func:`wait_for_index`, or set ``SEARCH_SYNC``.

Maintenance
-----------
:func:`rebuild`, :func:`update_index` and :func:`check` record each run
(:class:`.models.MaintenanceRun`); :func:`index_status` reports, per index, the documents, the
outbox backlog, the last rebuild and the last check, for the admin's panel and ``vi_check``.
"""

import atexit
import contextlib
import logging
import os
import shutil
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.db import OperationalError, router, transaction
from django.db import connections as db_connections
from django.db.models import F
from django.utils import timezone
from haystack import connections
from haystack.utils import get_model_ct

from versioned_items import api
from versioned_items.conf import app_settings
from versioned_items.exceptions import IndexUnavailable
from versioned_items.models import Cluster, Node, Version

from . import documents, locks
from .documents import SOURCE_ATTR
from .models import IndexChange, MaintenanceRun

logger = logging.getLogger("versioned_items.search")

Progress = Callable[[int, int], None]  # (done, total)


# --- the two indexes -------------------------------------------------------------------------


@dataclass
class Side:
    """One of the two indexes: its name, Haystack connection, SearchIndex and backend."""

    name: str  # "latest" or "history"
    alias: str
    model: type

    @property
    def backend(self):
        return connections[self.alias].get_backend()

    @property
    def index(self):
        return connections[self.alias].get_unified_index().get_index(self.model)

    @property
    def outbox_kind(self) -> int:
        """The kind of the outbox entries for this index."""
        return IndexChange.Kind.LATEST if self.name == "latest" else IndexChange.Kind.HISTORY

    def identifier(self, pk) -> str:
        """Haystack's document id of the object with primary key ``pk``."""
        return f"{get_model_ct(self.model)}.{pk}"

    @property
    def fast(self) -> bool:
        """Whether the backend is the app's Whoosh engine (batched writes, atomic swap)."""
        from .backends import WhooshSearchBackend

        return isinstance(self.backend, WhooshSearchBackend)


def latest_side() -> Side:
    return Side("latest", app_settings.LATEST_CONNECTION, Node)


def history_side() -> Side:
    return Side("history", app_settings.HISTORY_CONNECTION, Version)


def sides() -> tuple[Side, Side]:
    return latest_side(), history_side()


def create_indexes() -> None:
    """Create the indexes that do not exist yet, empty (run after ``migrate``).

    Raises IndexUnavailable when an existing index cannot be read.
    """
    for side in sides():
        if side.fast:
            side.backend.ensure_index()


def _write(side: Side, objects: list, delete_pks: Iterable = ()) -> None:
    """Write ``objects`` (with sources attached) and remove ``delete_pks``: one commit if possible."""
    delete_ids = [side.identifier(pk) for pk in delete_pks]
    backend = side.backend
    if side.fast:
        backend.apply(side.index, objects, delete_ids)
        return
    # Any other Haystack backend: its own update and remove.
    if objects:
        backend.update(side.index, objects)
    for ident in delete_ids:
        backend.remove(ident)


def _text_lookup(history: Side):
    """Find texts the history index already holds (Whoosh engine only)."""
    return history.backend.stored_texts if history.fast else None


# --- reconciling objects ---------------------------------------------------------------------


def reconcile(node_ids: Iterable[int] = (), serials: Iterable[int] = ()) -> None:
    """Make the index documents of these nodes (latest) and versions (history) match the database.

    Documents are written for what exists and removed for what does not. Texts already in
    the history index are reused. Four to five queries, plus the content reads of new texts.
    Raises IndexUnavailable when an index stays locked.
    """
    node_ids, serials = set(node_ids), set(serials)
    latest, history = sides()
    nodes = documents.load_latest(node_ids) if node_ids else {}
    versions = documents.load_history(serials) if serials else {}
    sources = [getattr(obj, SOURCE_ATTR) for obj in [*nodes.values(), *versions.values()]]
    documents.fill_texts(sources, lookup=_text_lookup(history))
    if serials:
        _write(history, list(versions.values()), serials - versions.keys())
    if node_ids:
        _write(latest, list(nodes.values()), node_ids - nodes.keys())


# --- applying the outbox ---------------------------------------------------------------------


def apply_pending(*, timeout: float | None = None) -> int:
    """Apply every outbox entry to the indexes; return how many entries were applied.

    Waits for the apply lock at most ``timeout`` seconds (default ``SEARCH_LOCK_TIMEOUT``), and
    for the database's locks as long as its connection says. Raises IndexUnavailable when the
    apply lock or an index lock cannot be had in time; the entries then stay in the outbox.
    """
    with locks.apply_lock(timeout):
        settle_applied()
        return _drain(keep=locks.rebuild_running())


def _drain(*, keep: bool, background: bool = False) -> int:
    """Apply outbox entries in rounds of SEARCH_BATCH_SIZE; the caller holds the apply lock.

    With ``keep`` (a rebuild is running) applied entries are marked, not deleted, and only
    entries not yet applied are read. In the ``background``, a round whose entries stay
    unsettled (see :class:`_Unsettled`) is the last.
    """
    done = 0
    for size in round_sizes(app_settings.SEARCH_BATCH_SIZE):
        rows = list(
            IndexChange.objects.pending(include_applied=not keep)
            .values_list("id", "kind", "object_id")[:size]
        )
        if not rows:
            return done
        reconcile(
            node_ids={oid for _, kind, oid in rows if kind == IndexChange.Kind.LATEST},
            serials={oid for _, kind, oid in rows if kind == IndexChange.Kind.HISTORY},
        )
        done += len(rows)
        if not _settle([row[0] for row in rows], keep=keep, background=background):
            return done
        if len(rows) < size:
            # Entries committed after this read have scheduled a round of their own.
            return done
    return done


#: A backlog's rounds grow up to this many times SEARCH_BATCH_SIZE entries.
MAX_ROUND_GROWTH = 16


def round_sizes(batch_size: int) -> Iterator[int]:
    """The entries read by each round of a drain: ``batch_size``, then doubling while the
    rounds come back full, up to ``MAX_ROUND_GROWTH * batch_size``.

    A single save is one small round, so its visibility lag is unchanged. A large backlog (an
    import) is applied in a few large rounds: each round costs a commit per index, a searcher
    reopen and a handful of queries whatever its size, which at 500 entries a round held the
    outbox to 0.44x the speed of one raw Whoosh commit.
    """
    size = batch_size
    while True:
        yield size
        size = min(size * 2, batch_size * MAX_ROUND_GROWTH)


def wait_for_index(timeout: float | None = None) -> int:
    """Return once every change committed before the call is visible in both indexes.

    Applies what is pending in the calling thread (read-your-writes). Returns the number of
    entries it applied itself. Raises IndexUnavailable when the indexes stay locked longer
    than ``timeout`` seconds (default ``SEARCH_LOCK_TIMEOUT``).
    """
    return apply_pending(timeout=timeout)


def pending_count() -> int:
    """Number of outbox entries not yet applied to the live index."""
    return IndexChange.objects.filter(applied=False).count()


def apply_after_commit() -> None:
    """The ``on_commit`` hook: apply now (``SEARCH_SYNC``) or wake the applier thread.

    Never raises: the transaction has committed, and its entries wait in the outbox for the
    next round if this one fails.
    """
    if app_settings.SEARCH_SYNC or _inside_transaction():
        try:
            apply_pending()
        except Exception:
            logger.exception("Applying index changes failed; they stay in the outbox for the next writer or vi_update_index")
    else:
        _applier.wake()


def _inside_transaction() -> bool:
    # Commit hooks run inside a transaction only when a test runs them inside its own
    # (TestCase.captureOnCommitCallbacks(execute=True), pytest-django's
    # django_capture_on_commit_callbacks). The applier thread's connection could not see the
    # entries, and on SQLite it would wait for the test's write lock until the timeout: apply
    # them here, in the connection that sees them.
    return transaction.get_connection(router.db_for_write(IndexChange)).in_atomic_block


# --- settling applied entries ----------------------------------------------------------------


class _Unsettled:
    """Outbox entries this process applied to the indexes but could not delete yet (or mark
    ``applied``, while a rebuild runs), because a writer held SQLite's write lock.

    The applier thread does not wait for that lock. A process that writes transaction after
    transaction (an import) holds it nearly all the time: the thread would wait out SQLite's
    whole timeout, fail with "database is locked" and apply the same entries again, round after
    round, while the backlog grew. Instead the thread leaves the deletion to the writer's next
    transaction, which holds the lock anyway (:func:`settle_applied`, called by the receiver),
    or to its own next round, and reads no further entries until then. Entries of a process
    that dies before they are settled are merely applied once more by someone else.
    """

    def __init__(self):
        self._guard = threading.Lock()
        self._keep: dict[int, bool] = {}  # entry id -> mark it applied (True) or delete it

    def add(self, ids: Iterable[int], *, keep: bool) -> None:
        with self._guard:
            self._keep.update(dict.fromkeys(ids, keep))

    def take(self) -> dict[bool, list[int]]:
        """Remove and return every entry: ``{keep: [ids]}``."""
        with self._guard:
            entries, self._keep = self._keep, {}
        taken: dict[bool, list[int]] = {}
        for entry, keep in entries.items():
            taken.setdefault(keep, []).append(entry)
        return taken

    def __bool__(self) -> bool:
        return bool(self._keep)


_unsettled = _Unsettled()


def settle_applied(*, background: bool = False) -> bool:
    """Delete the outbox entries this process applied but left unsettled (see
    :class:`_Unsettled`), or mark them ``applied`` if a rebuild was running then.

    The receiver calls it inside each write's transaction (no query when nothing is
    unsettled, and never on PostgreSQL). Returns False when, in the ``background``, the
    database was too busy: the entries then stay unsettled.
    """
    return all([_settle(ids, keep=keep, background=background) for keep, ids in _unsettled.take().items()])


def _settle(ids: list[int], *, keep: bool, background: bool = False) -> bool:
    """Delete the applied entries ``ids``, or with ``keep`` mark them applied (a rebuild will
    replay them). In the ``background``, a database busy with a writer leaves them unsettled
    and gives False."""
    entries = IndexChange.objects.filter(id__in=ids)
    try:
        if keep:
            entries.update(applied=True)
        else:
            entries.delete()
    except OperationalError as error:
        if not (background and _database_busy(error)):
            raise
        _unsettled.add(ids, keep=keep)
        return False
    return True


def _database_busy(error: BaseException) -> bool:
    """Whether ``error`` is SQLite's "database is locked": another connection holds the lock."""
    code = getattr(error.__cause__, "sqlite_errorcode", None)
    return isinstance(error, OperationalError) and code is not None and code & 0xFF == sqlite3.SQLITE_BUSY


#: Seconds the applier thread waits for SQLite's write lock before leaving the work for later.
BACKGROUND_LOCK_WAIT = 0.1


@contextlib.contextmanager
def _brief_lock_waits() -> Iterator[None]:
    """On SQLite, have this thread's connection give up after BACKGROUND_LOCK_WAIT seconds,
    instead of its ``timeout``, when another connection holds the lock it needs."""
    connection = db_connections[router.db_for_write(IndexChange)]
    if connection.vendor != "sqlite":
        yield
        return
    connection.ensure_connection()
    raw = connection.connection
    (before,) = raw.execute("PRAGMA busy_timeout").fetchone()
    raw.execute(f"PRAGMA busy_timeout = {int(BACKGROUND_LOCK_WAIT * 1000)}")
    try:
        yield
    finally:
        if connection.connection is raw:
            raw.execute(f"PRAGMA busy_timeout = {int(before)}")


def _apply_in_background() -> bool:
    """One round of the applier thread: :func:`apply_pending`, except that on SQLite it waits
    only briefly for the database's locks. Returns False when work is left for a later round
    (entries unsettled, or a database too busy to read)."""
    try:
        with locks.apply_lock(), _brief_lock_waits():
            if settle_applied(background=True):
                _drain(keep=locks.rebuild_running(), background=True)
    except OperationalError as error:
        if not _database_busy(error):
            raise
        return False
    return not _unsettled


# --- the applier thread ----------------------------------------------------------------------


class _Applier:
    """This process's background applier: a thread that drains the outbox when woken.

    Under load one thread serves every commit; after ``LINGER`` seconds without a wake-up it
    ends (with its database connection), and the next commit starts another. Work that a busy
    SQLite database refused is retried after a pause that doubles from ``RETRY_FIRST`` up to
    ``RETRY_MAX`` seconds, or as soon as the next commit wakes the thread, and logged at DEBUG
    level only. A round that fails otherwise is logged once, not again until a round succeeds.
    """

    LINGER = 2.0
    RETRY_FIRST = 0.05
    RETRY_MAX = 1.0

    def __init__(self):
        self._guard = threading.Lock()
        self._wanted = threading.Event()
        self._idle = threading.Event()
        self._idle.set()
        self._stop = False
        self._failing = False
        self._thread: threading.Thread | None = None

    def wake(self) -> None:
        with self._guard:
            self._idle.clear()
            self._wanted.set()
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="vi-search-applier", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        retry = 0.0  # the pause before retrying work left by a busy database; 0: none is left
        try:
            while True:
                self._wanted.wait(timeout=retry or self.LINGER)
                with self._guard:
                    if self._stop or not (self._wanted.is_set() or retry):
                        self._thread = None
                        self._idle.set()
                        return
                    self._wanted.clear()
                retry = self._round(retry)
                with self._guard:
                    if not (self._wanted.is_set() or retry):
                        self._idle.set()
        finally:
            # The thread's own database connection goes with it.
            db_connections.close_all()

    def _round(self, retry: float) -> float:
        """Apply what is pending; return the pause before a retry, 0 when nothing is left."""
        try:
            finished = _apply_in_background()
        except Exception:
            if not self._failing:
                logger.exception("Applying index changes failed; they stay in the outbox for the next round")
            self._failing = True
            return 0.0
        if self._failing:
            logger.info("Applying index changes works again")
            self._failing = False
        if finished:
            return 0.0
        retry = min(self.RETRY_MAX, max(self.RETRY_FIRST, 2 * retry))
        logger.debug("The database is busy with a writer; index changes wait %.2f s", retry)
        return retry

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until the thread has nothing left to do; False if ``timeout`` ran out first."""
        return self._idle.wait(timeout)

    def stop(self, timeout: float | None = None) -> None:
        """End the thread after its current round (what is left stays in the outbox)."""
        with self._guard:
            thread, self._stop = self._thread, True
            self._wanted.set()
        if thread is not None:
            thread.join(timeout)
        with self._guard:
            self._stop = False
            self._wanted.clear()
            self._idle.set()


_applier = _Applier()


def flush_background(timeout: float | None = None) -> bool:
    """Wait for this process's applier thread to finish its rounds (for tests and at exit)."""
    return _applier.flush(timeout)


def stop_background(timeout: float | None = None) -> None:
    """End this process's applier thread (tests do, so that the next starts with fresh
    connections). What is left stays in the outbox, applied entries not yet deleted included:
    they are forgotten here, and applied once more by the next round."""
    _applier.stop(timeout)
    _unsettled.take()


def _reset_after_fork() -> None:
    # A forked child has no applier thread and nothing to settle, whatever its parent had.
    global _applier, _unsettled
    _applier = _Applier()
    _unsettled = _Unsettled()


os.register_at_fork(after_in_child=_reset_after_fork)
# A script that exits right after a write still gets its changes indexed, within reason; if it
# cannot, they wait in the outbox.
atexit.register(lambda: _applier.flush(app_settings.SEARCH_LOCK_TIMEOUT))


# --- rebuilding ------------------------------------------------------------------------------


@dataclass
class RebuildReport:
    """What a rebuild wrote."""

    latest: int = 0
    history: int = 0
    replayed: int = 0  # outbox entries applied after the swap


def rebuild(*, procs: int = 1, batch_size: int | None = None, progress: Progress | None = None) -> RebuildReport:
    """Rebuild both indexes from the database.

    With the app's Whoosh engine, the indexes are built in temporary folders beside the live
    ones and swapped in atomically; until then the live indexes keep answering and being
    updated. Entries applied while the rebuild runs are kept in the outbox and replayed into
    the new indexes after the swap, so no write made meanwhile is lost. A rebuild that is
    killed leaves the live indexes untouched; the next one removes its leftovers first.
    With another backend, the indexes are cleared and refilled in place.

    ``procs`` > 1 lets Whoosh index in that many processes. ``progress(done, total)`` is
    called after each batch of versions. Raises IndexUnavailable when another rebuild runs.
    The run is recorded (see :func:`index_status`).
    """
    batch_size = batch_size or app_settings.SEARCH_BATCH_SIZE
    latest, history = sides()
    with locks.rebuild_lock(), _recorded(MaintenanceRun.Kind.REBUILD) as run:
        # Appliers that started before us finish first: what they deleted from the outbox is
        # in the database we are about to read. Later ones keep their entries for the replay.
        with locks.apply_lock():
            pass
        if latest.fast and history.fast:
            report = _rebuild_swapped(latest, history, procs, batch_size, progress)
        else:
            report = _rebuild_in_place(latest, history, batch_size, progress)
        with locks.apply_lock():
            report.replayed = _drain(keep=False)
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
    writer_args = {"procs": procs, "multisegment": True, "limitmb": 128} if procs > 1 else {}
    writers = {
        side.name: side.backend.writer(side.backend.create_index_in(folders[side.name]), **writer_args)
        for side in (latest, history)
    }
    try:
        latest_index, history_index = latest.index, history.index
        latest_backend, history_backend = latest.backend, history.backend
        for batch, done, total in _version_batches(batch_size):
            for version in batch:
                doc = history_index.full_prepare(version)
                writers["history"].add_document(**history_backend.whoosh_document(doc))
                report.history += 1
                node = version.node
                if node.current_id == version.serial and version.cluster == Cluster.NORMAL:
                    # The current version's source serves the node's latest document too.
                    setattr(node, SOURCE_ATTR, getattr(version, SOURCE_ATTR))
                    doc = latest_index.full_prepare(node)
                    writers["latest"].add_document(**latest_backend.whoosh_document(doc))
                    report.latest += 1
            if progress:
                progress(done, total)
    except BaseException:
        for writer in writers.values():
            writer.cancel()
        raise
    for writer in writers.values():
        writer.commit()
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
        _write(history, batch)
        _write(latest, current)
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


# --- comparing index and database ------------------------------------------------------------

# The stored fields that must agree with the database (the text is not compared: it follows
# from checksum and content type).
SIGNATURE_FIELDS = ("path_exact", "serial", "node", "cluster", "mtime", "valid_until", "size",
                    "muser", "content_type", "checksum", "attributes")


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
        # Whoosh hands back naive UTC datetimes; the database aware ones.
        return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value
    if name in ("serial", "node", "cluster", "size") and value is not None:
        return int(value)
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
        for version, source in zip(batch, documents.attach_history_sources(batch)):
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
    for fields in _stored_documents(side):
        ident = fields.get("id", "")
        if ident.startswith(prefix):
            yield int(ident[len(prefix):]), _signature(fields)


def _stored_documents(side: Side) -> Iterator[dict]:
    if side.fast:
        yield from side.backend.iter_stored()
        return
    from haystack.query import SearchQuerySet

    for result in SearchQuerySet(using=side.alias).models(side.model).all():
        fields = result.get_additional_fields()
        fields["id"] = f"{result.app_label}.{result.model_name}.{result.pk}"
        yield fields


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
    :func:`index_status`).
    """
    batch_size = batch_size or app_settings.SEARCH_BATCH_SIZE
    with _recorded(MaintenanceRun.Kind.UPDATE, dry_run=dry_run) as run:
        applied = 0 if dry_run else apply_pending()
        with locks.apply_lock():
            diff = compare(batch_size=batch_size)
            if not dry_run:
                nodes = sorted(diff.latest.missing | diff.latest.stale | diff.latest.changed)
                serials = sorted(diff.history.missing | diff.history.stale | diff.history.changed)
                for start in range(0, max(len(nodes), len(serials)), batch_size):
                    reconcile(nodes[start:start + batch_size], serials[start:start + batch_size])
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
    :func:`index_status`).
    """
    with _recorded(MaintenanceRun.Kind.CHECK) as run:
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


# --- the record of maintenance runs, and the index status ------------------------------------


@contextlib.contextmanager
def _recorded(kind: str, **fields) -> Iterator[MaintenanceRun]:
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


def _record_diff(run: MaintenanceRun, diff: IndexDiff) -> None:
    run.latest_documents, run.history_documents = diff.latest.documents, diff.history.documents
    run.latest_differences, run.history_differences = diff.latest.count, diff.history.count


@dataclass
class IndexState:
    """The state of one index, as :func:`index_status` reports it."""

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

    The maintenance times come from the runs that :func:`rebuild`, :func:`update_index` and
    :func:`check` record, whoever called them. Three queries, and a document count from each
    index. Never raises IndexUnavailable: an index that cannot be read has ``documents=None``
    and its ``problem``.
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
        indexes.append(IndexState(
            name=side.name, alias=side.alias, documents=documents, problem=problem,
            pending=pending, oldest_pending=oldest,
            last_rebuild=rebuilt.finished if rebuilt else None,
            last_check=checked.finished if checked else None,
            last_check_differences=getattr(checked, f"{side.name}_differences") if checked else None,
        ))
    return IndexStatus(indexes=indexes, last_runs=MaintenanceRun.objects.newest_of_each_kind(),
                       rebuild_running=locks.rebuild_running())


def document_count(side: Side) -> int:
    """The number of documents in one index. Raises IndexUnavailable when it cannot be read."""
    if side.fast:
        return side.backend.searcher().doc_count()
    from haystack.query import SearchQuerySet

    return SearchQuerySet(using=side.alias).models(side.model).count()


# --- maintenance -----------------------------------------------------------------------------


def optimize() -> None:
    """Merge each index into one segment (faster searches after many small commits)."""
    for side in sides():
        side.backend.optimize()


def dump(*, history: bool = False) -> Iterator[dict]:
    """The stored fields of every document of one index, by path then serial."""
    side = history_side() if history else latest_side()
    docs = list(_stored_documents(side))
    docs.sort(key=lambda d: (d.get("path_exact", ""), d.get("serial", 0)))
    yield from docs

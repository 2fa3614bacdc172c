"""Applying the outbox: rounds that move committed changes into both indexes, the settling
of applied entries on a busy SQLite database, and the applier thread (see :mod:`.indexing`
for the whole path)."""

import atexit
import contextlib
import itertools
import logging
import os
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator

from django.db import OperationalError, router, transaction
from django.db import connections as db_connections

from versioned_items.conf import app_settings

from . import locks
from .models import IndexChange
from .sides import reconcile

logger = logging.getLogger("versioned_items.search")

Progress = Callable[[int, int], None]  # (done, total)


# --- applying the outbox ---------------------------------------------------------------------


def apply_pending(*, timeout: float | None = None) -> int:
    """Apply every outbox entry to the indexes; return how many entries were applied.

    Waits for the apply lock at most ``timeout`` seconds (default ``SEARCH_LOCK_TIMEOUT``), and
    for the database's locks as long as its connection says. Raises IndexUnavailable when the
    apply lock or an index lock cannot be had in time; the entries then stay in the outbox.
    """
    with locks.apply_lock(timeout):
        settle_applied()
        return drain(keep=locks.rebuild_running())


def drain(*, keep: bool, background: bool = False) -> int:
    """Apply outbox entries in rounds (see :func:`round_sizes`); the caller holds the apply lock.

    With ``keep`` (a rebuild is running) applied entries are marked, not deleted, and only
    entries not yet applied are read. In the ``background``, a round whose entries stay
    unsettled (see :class:`_Unsettled`) is the last.
    """
    done = 0
    for size in round_sizes(app_settings.SEARCH_BATCH_SIZE):
        rows = list(
            IndexChange.objects.pending(include_applied=not keep).values_list("id", "kind", "object_id")[
                :size
            ]
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


#: The most entries one round reads, in multiples of SEARCH_BATCH_SIZE.
MAX_ROUND_GROWTH = 32


def round_sizes(batch_size: int) -> Iterator[int]:
    """The most entries each round of a drain reads: ``MAX_ROUND_GROWTH * batch_size``.

    A round reads what is pending, up to that: a single save is still one small round, so its
    visibility lag is unchanged, and a backlog (an import) is applied in as few rounds as the
    cap allows. Each round costs a commit per index, a searcher reopen and a handful of
    queries whatever its size, and a node changed in several rounds is written once per round:
    rounds that doubled from 500 entries wrote 35% more documents than a 5,000-write import had
    (5 rounds, 10 commits) and held it to 0.56x the speed of one raw Whoosh commit per index.
    The cap bounds the memory of a round (its documents are prepared before they are written).
    """
    return itertools.repeat(batch_size * MAX_ROUND_GROWTH)


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
            logger.exception(
                "Applying index changes failed; they stay in the outbox for the next writer "
                "or vi_update_index"
            )
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
                drain(keep=locks.rebuild_running(), background=True)
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

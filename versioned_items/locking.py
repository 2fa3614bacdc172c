"""The locking discipline of the write path, in one place.

Every write operation of :mod:`versioned_items.api` follows the same three rules, so that its
invariants (one NORMAL version per node at most, a right current pointer, exact statistics and
content reference counts) hold under any interleaving of writers:

1. **Lock before reading.** An operation first locks the node rows it will change (and their
   ancestors), and only then reads the state it changes: current pointers, versions,
   attributes. A locking statement never joins another table: after waiting for a concurrent
   writer, PostgreSQL re-reads only the locked rows, so joined rows would be the stale ones.
2. **One global order.** Node rows are locked in path order (code point order, so ancestors
   before descendants), all node locks before any other row lock. Then come, in this order,
   the content rows (:class:`~versioned_items.models.Blob`, in checksum order, see
   :mod:`versioned_items.blobs`) and last the statistics rows (in node id order, in one
   statement when the outermost operation ends, see :mod:`versioned_items.operations`).
3. **Change only what was locked.** Deletions name the locked rows, and statistics and
   reference counts move by what the deleting statement returned (``DELETE ... RETURNING``).

The lock modes (:class:`Mode`) are PostgreSQL's row locks, chosen to conflict only where
they must:

- ``KEY_SHARE`` on every ancestor of a node an operation changes: its path (the key that
  statistics roll up to) cannot change and it cannot be removed until commit, but other
  writers below it run in parallel.
- ``SHARE`` on a node whose versions an operation reads without changing them (the source of a
  copy, the node of a version whose attributes change): no version of it comes or goes.
- ``NO_KEY_UPDATE`` on a node whose versions or current pointer an operation changes (put,
  delete, restore, remove_version, recluster, purge, set_versioning): one such writer per node.
- ``UPDATE`` on the nodes whose path changes or that are deleted (move, remove_node): this
  also waits for every writer below them, which holds ``KEY_SHARE`` on them.

Subtree operations lock the whole subtree, node by node in path order, in one statement: a
purge of a subtree takes ``NO_KEY_UPDATE`` on each node (puts of new items below still run, and
are not touched by the purge), a move takes ``UPDATE`` on each (nothing below changes while it
moves). Puts that create nodes insert them with ``ON CONFLICT DO NOTHING`` and then lock them
like existing ones, so two puts creating the same folder wait for each other instead of
failing.

What a writer racing a move sees: an operation on a path inside the moved subtree waits for
the move. Then it either finds nothing at the old path (``put`` creates a new item there, with
new folders; ``delete`` raises :class:`~versioned_items.exceptions.NodeNotFound`), or, if it
went first, its change moves with the subtree. A version-targeted operation (``restore``,
``remove_version``, ``recluster``, ...) locks by the path its version had when it looked it up
and, when the node has moved meanwhile, starts again (it never acts on the wrong node).

On SQLite, writes are serialized by the database: the app requires
``"OPTIONS": {"transaction_mode": "IMMEDIATE"}`` (system check ``versioned_items.W001``), so a
writing transaction takes the write lock at ``BEGIN`` and no read lock is ever upgraded (which
would deadlock). The locking statements run there without ``FOR ...`` clauses.

Deadlocks can still happen between transactions that group several operations in an unknown
order (``api.batch``), and a racing insert of the same row can fail a unique or foreign key
constraint. :func:`retrying` runs an outermost operation again, up to
``VERSIONED_ITEMS['WRITE_RETRIES']`` times, and raises
:class:`~versioned_items.exceptions.ConcurrentUpdate` when it still fails; inside an enclosing
transaction nothing can be retried, so the error goes up to the outermost operation.
"""

import enum
import functools
import random
import time
from collections.abc import Callable, Iterable, Mapping

from django.db import DatabaseError, IntegrityError, OperationalError, connection

from . import paths
from .conf import app_settings
from .exceptions import ConcurrentUpdate
from .models import Node


class Mode(enum.IntEnum):
    """Row lock modes, weakest first; a node locked twice gets the stronger one."""

    KEY_SHARE = 1
    SHARE = 2
    NO_KEY_UPDATE = 3
    UPDATE = 4

    @property
    def clause(self) -> str:
        """The ``FOR ...`` clause of this mode ("" where the database has no row locks)."""
        if not connection.features.has_select_for_update:
            return ""
        return " FOR " + self.name.replace("_", " ")


def plan(**paths_by_mode: Iterable[str]) -> dict[str, Mode]:
    """{path: mode} from ``key_share=[...]``, ``share=[...]``, ``no_key_update=[...]``,
    ``update=[...]``, keeping the strongest mode of a path named twice."""
    return merge(*({path: Mode[name.upper()] for path in names} for name, names in paths_by_mode.items()))


def merge(*plans: Mapping[str, Mode]) -> dict[str, Mode]:
    """One plan with every path of ``plans``, each in the strongest mode asked for it."""
    wanted: dict[str, Mode] = {}
    for one in plans:
        for path, mode in one.items():
            wanted[path] = max(mode, wanted.get(path, mode))
    return wanted


def for_path(path: str, mode: Mode = Mode.NO_KEY_UPDATE) -> dict[str, Mode]:
    """The plan of an operation that changes the node ``path``: its ancestors in ``KEY_SHARE``,
    the node in ``mode``."""
    return merge(plan(key_share=paths.ancestor_paths(path)), {path: mode})


def lock(wanted: Mapping[str, Mode], subtree: tuple[str, Mode] | None = None) -> dict[str, Node]:
    """Lock the nodes at the paths of ``wanted``, each in its mode, and with ``subtree`` =
    (path, mode) every node strictly below that path, all in path order.

    Consecutive paths with the same mode share one statement; the subtree is one statement in
    its place in the order (its root, if wanted, is a path of ``wanted``). Returns
    {path: node} of the locked nodes that exist, as they are after any wait.
    """
    prefix = paths.subtree_prefix(subtree[0]) if subtree is not None else None
    items: list[tuple[str, str, list, Mode]] = []  # (first path, condition, params, mode)
    run: list[str] = []
    ordered = sorted(wanted)
    for path, following in zip(ordered, ordered[1:] + [None], strict=True):
        run.append(path)
        spans_subtree = prefix is not None and following is not None and path < prefix <= following
        if following is None or wanted[following] != wanted[path] or spans_subtree:
            items.append((run[0], f"path IN ({', '.join(['%s'] * len(run))})", run, wanted[path]))
            run = []
    if subtree is not None:
        upper = paths.next_prefix(prefix)
        if not prefix:
            items.append(("", "path <> %s", [""], subtree[1]))
        elif upper is None:
            items.append((prefix, "path >= %s", [prefix], subtree[1]))
        else:
            items.append((prefix, "path >= %s AND path < %s", [prefix, upper], subtree[1]))
    locked: dict[str, Node] = {}
    for _, condition, params, mode in sorted(items, key=lambda item: item[0]):
        locked.update((node.path, node) for node in _select(condition, params, mode))
    return locked


def _select(where: str, params: list, mode: Mode) -> list[Node]:
    table = connection.ops.quote_name(Node._meta.db_table)
    sql = f"SELECT * FROM {table} WHERE {where} ORDER BY path{mode.clause}"
    return list(Node.objects.raw(sql, params))


def lock_node_of_version(serial: int, mode: Mode) -> Node | None:
    """Lock the node of version ``serial`` alone (no ancestors) in ``mode``; None when there
    is no such version. For operations that change a version's attributes, not its node."""
    table = connection.ops.quote_name(Node._meta.db_table)
    version_table = connection.ops.quote_name(Node._meta.get_field("current").related_model._meta.db_table)
    # A subquery, not a join: only node rows are locked and re-read after a wait. A version
    # never changes node, so the subquery cannot be stale.
    node_of_version = f"(SELECT node_id FROM {version_table} WHERE serial = %s)"
    sql = f"SELECT * FROM {table} WHERE id = {node_of_version}{mode.clause}"
    return next(iter(Node.objects.raw(sql, [serial])), None)


# --- retries ---------------------------------------------------------------------------------

# PostgreSQL SQLSTATEs of errors caused by concurrent transactions: deadlock_detected,
# serialization_failure, lock_not_available.
_RETRYABLE_STATES = {"40P01", "40001", "55P03"}


def is_concurrency_error(error: BaseException) -> bool:
    """Whether a database error comes from a concurrent writer, so that running the operation
    again can succeed: a deadlock, a serialization failure, a lock timeout, SQLite's "database
    is locked", or a constraint violation (a racing insert of the same path, a row removed by a
    transaction that committed meanwhile)."""
    if isinstance(error, IntegrityError):
        return True
    if not isinstance(error, OperationalError):
        return False
    cause = error.__cause__
    state = getattr(cause, "sqlstate", None) or getattr(cause, "pgcode", None)
    if state in _RETRYABLE_STATES:
        return True
    return connection.vendor == "sqlite" and "locked" in str(error)


def as_conflict(error: DatabaseError) -> ConcurrentUpdate:
    """The app's exception for a concurrency error of the database."""
    return ConcurrentUpdate(f"the operation collided with a concurrent write and was rolled back: {error}")


def retrying(func: Callable) -> Callable:
    """Run ``func`` again when it raises :class:`ConcurrentUpdate`, at most ``WRITE_RETRIES``
    more times, with a short random pause that grows; then let the error go to the caller.

    Only an outermost call is retried: inside an enclosing transaction (``api.batch()``, the
    caller's ``transaction.atomic()``) the work done before cannot be done again here, so the
    error goes up to whoever opened that transaction.
    """

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        if connection.in_atomic_block:
            return func(*args, **kwargs)
        attempt = 0
        while True:
            try:
                return func(*args, **kwargs)
            except ConcurrentUpdate:
                if attempt >= app_settings.WRITE_RETRIES:
                    raise
            attempt += 1
            time.sleep(random.uniform(0, 0.005 * 2 ** min(attempt, 8)))

    return wrapper

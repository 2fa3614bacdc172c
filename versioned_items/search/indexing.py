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
which another process holds for at most one round. A round reads what is pending, up to
``MAX_ROUND_GROWTH`` times ``SEARCH_BATCH_SIZE`` entries (see :func:`round_sizes`): a single
save is one small round, and a change committed during a large import may wait for a round of
that size.
``SEARCH_MAX_LAG`` is the bound this is expected to stay under: ``vi_check`` reports outbox
entries older than it. Callers that need to read their own writes call :func:`wait_for_index`,
or set ``SEARCH_SYNC``.

Maintenance
-----------
:func:`rebuild`, :func:`update_index` and :func:`check` record each run
(:class:`.models.MaintenanceRun`); :func:`index_status` reports, per index, the documents, the
outbox backlog, the last rebuild and the last check, for the admin's panel and ``vi_check``.

Where the code is
-----------------
This module is the facade that the commands, the admin and callers use; the work is done in:

- :mod:`.sides`: the two indexes, writing their documents, :func:`reconcile`;
- :mod:`.outbox`: applying the outbox, settling applied entries, the applier thread;
- :mod:`.maintenance`: :func:`rebuild`, :func:`optimize`, :func:`dump`;
- :mod:`.compare`: :func:`compare`, :func:`update_index`, :func:`check`;
- :mod:`.status`: the record of maintenance runs and :func:`index_status`.
"""

from .compare import CheckReport, IndexDiff, SideDiff, UpdateReport, check, compare, update_index
from .maintenance import RebuildReport, dump, optimize, rebuild
from .outbox import (
    MAX_ROUND_GROWTH,
    apply_after_commit,
    apply_pending,
    flush_background,
    pending_count,
    round_sizes,
    settle_applied,
    stop_background,
    wait_for_index,
)
from .sides import Side, create_indexes, document_count, history_side, latest_side, reconcile, sides
from .status import IndexState, IndexStatus, index_status

__all__ = [
    "MAX_ROUND_GROWTH",
    "CheckReport",
    "IndexDiff",
    "IndexState",
    "IndexStatus",
    "RebuildReport",
    "Side",
    "SideDiff",
    "UpdateReport",
    "apply_after_commit",
    "apply_pending",
    "check",
    "compare",
    "create_indexes",
    "document_count",
    "dump",
    "flush_background",
    "history_side",
    "index_status",
    "latest_side",
    "optimize",
    "pending_count",
    "rebuild",
    "reconcile",
    "round_sizes",
    "settle_applied",
    "sides",
    "stop_background",
    "update_index",
    "wait_for_index",
]

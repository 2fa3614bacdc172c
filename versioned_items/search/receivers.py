"""Receivers: the storage app's changes become outbox entries in the same transaction.

Connected in ``apps.py`` to ``versioned_items.signals.versions_changed`` with
``sender=Version`` only; no receiver here listens to every model.
"""

import logging

from django.db import router, transaction

from versioned_items.exceptions import VersionedItemsError

from .models import IndexChange

logger = logging.getLogger("versioned_items.search")


def record_index_changes(sender, changes, **kwargs) -> None:
    """Record the index work of one write operation, and have it applied after commit.

    Runs inside the operation's transaction: the entries commit with the change or roll back
    with it. The apply is scheduled with ``transaction.on_commit``, once per transaction.
    Entries the applier thread has applied but could not delete go in the same transaction.
    """
    entries = [IndexChange(kind=IndexChange.Kind.LATEST, object_id=n) for n in sorted(changes.nodes)]
    entries += [
        IndexChange(kind=IndexChange.Kind.HISTORY, object_id=s)
        for s in sorted(set(changes.versions) | set(changes.removed_versions))
    ]
    if not entries:
        return
    using = router.db_for_write(IndexChange)
    IndexChange.objects.using(using).bulk_create(entries, batch_size=500)
    _settle_applied()
    _schedule_once(using)


def create_indexes_after_migrate(sender, **kwargs) -> None:
    """Create missing (empty) indexes once the outbox table exists, so that a new site can
    search before its first write. An existing index is never replaced here."""
    from . import indexing

    try:
        indexing.create_indexes()
    except VersionedItemsError as error:
        # migrate must not fail because of the indexes; searching will say what is wrong.
        logger.warning("Search indexes not created after migrate: %s", error)


def _settle_applied() -> None:
    from . import indexing

    # Entries this process's applier thread applied but could not delete, because writes like
    # this one kept SQLite's write lock: this transaction holds the lock anyway.
    indexing.settle_applied()


def _schedule_once(using: str) -> None:
    from . import indexing

    connection = transaction.get_connection(using)
    # One callback per transaction is enough: it drains every entry, whoever recorded it.
    # (Callbacks registered inside a savepoint that rolls back are dropped with it, so a
    # later operation in the outer transaction registers again.)
    if connection.in_atomic_block and any(
        func is indexing.apply_after_commit for _, func, _ in connection.run_on_commit
    ):
        return
    transaction.on_commit(indexing.apply_after_commit, using=using)

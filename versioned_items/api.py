"""The service API of versioned_items: the one way to change nodes, versions and attributes.

Every function that writes is atomic and ends in :func:`versioned_items.operations.operation`,
which keeps statistics exact and tells search (through ``versions_changed``) what changed.
Group many writes into one transaction with :func:`batch`.

Paths follow :mod:`versioned_items.paths`: ``docs/guide/intro.txt``; the root is ``""``.
Parents are created as needed, like ``mkdir -p``. Errors are the classes of
:mod:`versioned_items.exceptions`; a failed call writes nothing.

Times are timezone-aware datetimes. "As of" arguments are called ``before``: the state as of
``before`` is made of the versions written strictly before it.
"""

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, BinaryIO, TextIO

from django.db import connection
from django.db.models import Count, F, Max, OuterRef, Q, Subquery, Sum, Value
from django.db.models.functions import Concat, Substr
from django.utils import timezone

from . import blobs as content_store
from . import content_types, locking, paths
from .attribute_filters import as_number
from .exceptions import (
    ConcurrentUpdate,
    InvalidArgument,
    InvalidPath,
    NodeExists,
    NodeNotEmpty,
    NodeNotFound,
    VersionNotFound,
)
from .grants import can, grant, grants, revoke  # noqa: F401  (re-exported)
from .listing import ListResult, list_deleted, list_latest  # noqa: F401  (re-exported)
from .locking import Mode
from .models import Attribute, Cluster, Node, Statistics, Version, Versioning
from .operations import ChangeSet, operation
from .validation import (
    clean_cluster,
    clean_comment,
    clean_content_type,
    clean_domain,
    clean_key,
    clean_limit,
    clean_serial,
    clean_time,
    clean_user,
    clean_value,
    clean_versioning,
)

__all__ = [
    "batch",
    "can",
    "grant",
    "grants",
    "revoke",
    "Cluster",
    "Versioning",
    "StatisticsResult",
    "ListResult",
    "create_node",
    "get_node",
    "lookup_node",
    "children",
    "count_children",
    "remove_node",
    "move",
    "set_versioning",
    "put",
    "delete",
    "restore",
    "undelete",
    "copy",
    "recluster",
    "remove_version",
    "purge",
    "purge_summary",
    "versions",
    "get_version",
    "lookup",
    "open_content",
    "get_attributes",
    "set_attributes",
    "delete_attributes",
    "copy_attributes",
    "attribute_domains",
    "latest_attribute_keys",
    "get_statistics",
    "latest_statistics",
    "recompute_statistics",
    "StatisticsDifference",
    "list_latest",
    "list_deleted",
]


def batch(body: Callable[[], Any] | None = None):
    """Group writes into one transaction and one index update.

    ``with api.batch(): ...`` runs the block once. The block cannot be run again, so when it
    collides with a concurrent writer (a deadlock between batches that lock the same items in
    another order, a serialization failure) :class:`ConcurrentUpdate` is raised at once and
    nothing of the block is written; the caller may run it again.

    ``api.batch(body)`` calls ``body()`` (a callable without arguments that only writes
    through this API) in one batch and returns what it returns. On :class:`ConcurrentUpdate`
    the whole batch is rolled back and ``body()`` is called again, at most
    ``VERSIONED_ITEMS['WRITE_RETRIES']`` more times, as for any outermost call; inside an
    enclosing transaction it runs once. So ``body`` must be safe to run again: stage content
    first (:func:`versioned_items.blobs.stage`; an open file would be read on from where the
    first run left it), and count what it did in its return value, not in outside state.
    Raises what the calls in the batch raise.
    """
    if body is None:
        return operation()
    return _run_batch(body)


@locking.retrying
def _run_batch(body: Callable[[], Any]) -> Any:
    with operation():
        return body()


# --- nodes -----------------------------------------------------------------------------------


def lookup_node(path: str) -> Node | None:
    """The node at ``path``, or None. Raises :class:`InvalidPath`."""
    path = paths.clean_path(path, allow_root=True)
    return Node.objects.filter(path=path).first()


def get_node(path: str | int) -> Node:
    """The node at ``path`` (or with this id). Raises :class:`NodeNotFound`, :class:`InvalidPath`."""
    if isinstance(path, int) and not isinstance(path, bool):
        node = Node.objects.filter(pk=path).first()
    else:
        node = lookup_node(path)
    if node is None:
        raise NodeNotFound(f"no node at {path!r}")
    return node


def ensure_nodes(
    path: str,
    changes: ChangeSet,
    mode: Mode = Mode.NO_KEY_UPDATE,
    also: Mapping[str, Mode] | None = None,
    *,
    new: bool = False,
) -> dict[str, Node]:
    """Lock the node at ``path`` in ``mode`` and its ancestors in ``KEY_SHARE`` (with the other
    nodes of the plan ``also``), in path order, creating the missing ones of ``path`` and its
    ancestors like ``mkdir -p``. Returns {path: node} of every node locked.

    With ``new``, the node at ``path`` must be created by this call: :class:`NodeExists` is
    raised when it exists, or when a concurrent writer created it first (the insert waited for
    that writer's commit and inserted nothing).

    Two statements when everything exists (one per lock mode); when nodes are missing, one
    insert (``ON CONFLICT DO NOTHING``: a racing put creating the same folder is waited for,
    not failed), the locks of the new rows, and one update linking new rows to new parents.

    Runs inside the operation of ``changes``. A building block of the write path, also used
    by :func:`versioned_items.integrity.repair`; not part of the public API.
    """
    wanted = locking.merge(locking.for_path(path, mode), also or {})
    found = locking.lock(wanted)
    if new and path in found:
        raise NodeExists(f"a node already exists at {path!r}")
    missing = [p for p in paths.ancestor_paths(path) + [path] if p not in found]
    if missing:
        inserted = _insert_nodes(missing, found)
        if new and path not in inserted:
            raise NodeExists(f"a node already exists at {path!r} (created by a concurrent writer)")
        found.update(locking.lock({p: wanted[p] for p in missing}))
        gone = [p for p in missing if p not in found]
        if gone:
            # Another writer inserted one of them (this insert waited for it and skipped it),
            # then a move or purge committed since removed it: start again from a fresh view.
            raise ConcurrentUpdate(f"the folder {gone[0]!r} was created and removed meanwhile")
        orphans = [found[p] for p in missing if found[p].parent_id is None and p != ""]
        for node in orphans:
            node.parent_id = found[paths.parent_path(node.path)].pk
        if orphans:
            Node.objects.bulk_update(orphans, ["parent"])
    changes.remember(*found.values())
    return found


def _insert_nodes(missing: Sequence[str], found: Mapping[str, Node]) -> set[str]:
    """Insert nodes at the paths ``missing`` (parents from ``found`` where they exist, else
    linked later), skipping paths another transaction has inserted (``ON CONFLICT DO NOTHING``
    waits for it); return the paths this statement inserted."""
    table = connection.ops.quote_name(Node._meta.db_table)
    rows = ", ".join(["(%s, %s, %s, %s)"] * len(missing))
    params = []
    for p in missing:
        parent = found.get(paths.parent_path(p)) if p else None
        params += [p, paths.depth(p), parent.pk if parent is not None else None, Versioning.INHERIT]
    sql = (
        f"INSERT INTO {table} (path, depth, parent_id, versioning) VALUES {rows} "
        f"ON CONFLICT (path) DO NOTHING"
    )
    with connection.cursor() as cursor:
        if connection.features.can_return_rows_from_bulk_insert:
            cursor.execute(f"{sql} RETURNING path", params)
            return {row[0] for row in cursor.fetchall()}
        # SQLite before 3.35: no RETURNING, but the database lock serializes writers, so every
        # path missing under it is inserted here.
        cursor.execute(sql, params)
    return set(missing)


def _lock_path(path: str, mode: Mode = Mode.NO_KEY_UPDATE) -> dict[str, Node]:
    """Lock the existing node at ``path`` in ``mode`` and its ancestors in ``KEY_SHARE``; return
    {path: node} with the node's current version loaded. Raises :class:`NodeNotFound`."""
    locked = locking.lock(locking.for_path(path, mode))
    if path not in locked:
        raise NodeNotFound(f"no node at {path!r}")
    _load_current(locked[path])
    return locked


def _lock_node(path: str, mode: Mode = Mode.NO_KEY_UPDATE) -> Node:
    """The node at ``path``, locked (see :func:`_lock_path`), with its current version."""
    return _lock_path(path, mode)[path]


def _load_current(node: Node) -> None:
    """Read the current version of a locked node, by a query of its own: a join in the locking
    query would, on PostgreSQL, return the version row as it was *before* a concurrent writer
    we waited for replaced it (only the locked row is re-read after the wait)."""
    node.current = Version.objects.filter(serial=node.current_id).first() if node.current_id else None


def _lock_version(
    serial: int, changes: ChangeSet, destination: str | None = None
) -> tuple[Version, dict[str, Node]]:
    """Lock for an operation on version ``serial``: its node in ``NO_KEY_UPDATE`` (or, with a
    ``destination`` path, in ``SHARE`` while the destination is locked and created as by
    :func:`ensure_nodes`), then read the version. Returns it (with its node) and the locked
    nodes by path.

    The node is found by the path it had before the locks; if it moved meanwhile, this raises
    :class:`ConcurrentUpdate` and the outermost call starts again. Raises
    :class:`VersionNotFound`.
    """
    serial = clean_serial(serial)
    path = get_version(serial).node.path
    if destination is None:
        locked = _lock_path(path)
    else:
        locked = ensure_nodes(destination, changes, also=locking.for_path(path, Mode.SHARE))
    node = locked.get(path)
    version = Version.objects.filter(serial=serial).first()
    if version is None:
        raise VersionNotFound(f"no version with serial {serial}")
    if node is None or node.pk != version.node_id:
        raise ConcurrentUpdate(f"the node of version {serial} was moved from {path!r} meanwhile")
    version.node = node
    return version, locked


def _version_for_attributes(serial: int) -> Version:
    """Version ``serial`` with its node locked in ``SHARE``, so that it is neither removed nor
    replaced as current while its attributes change. Raises :class:`VersionNotFound`."""
    serial = clean_serial(serial)
    node = locking.lock_node_of_version(serial, Mode.SHARE)
    version = Version.objects.filter(serial=serial).first() if node is not None else None
    if version is None:
        raise VersionNotFound(f"no version with serial {serial}")
    version.node = node
    return version


@locking.retrying
def create_node(path: str, *, versioning: str = Versioning.INHERIT) -> Node:
    """Create the node at ``path`` and any missing parents; return it.

    Raises :class:`NodeExists` if it exists already, also when a concurrent call created it
    first (of two racing calls, exactly one succeeds), :class:`InvalidPath`,
    :class:`InvalidArgument`, :class:`ConcurrentUpdate`.
    """
    path = paths.clean_path(path)
    if versioning not in Versioning.values:
        raise InvalidArgument(f"versioning {versioning!r} is not one of {Versioning.values}")
    with operation() as changes:
        node = ensure_nodes(path, changes, new=True)[path]
        if versioning:
            node.versioning = versioning
            node.save(update_fields=["versioning"])
    return node


@locking.retrying
def set_versioning(path: str | int, policy: str) -> Node:
    """Set the versioning policy of a subtree: ``"auto"`` keeps history, ``"none"`` keeps only the
    current version, ``""`` inherits. Puts that start after it returns follow the new policy.
    Raises :class:`NodeNotFound`, :class:`InvalidArgument`, :class:`ConcurrentUpdate`."""
    policy = clean_versioning(policy)
    with operation():
        node = _lock_node(get_node(path).path)
        Node.objects.filter(pk=node.pk).update(versioning=policy)
    node.versioning = policy
    return node


def children(path: str = "", *, after: str | None = None, limit: int | None = None):
    """The child nodes of ``path``, by path, as a QuerySet (``after`` is an exclusive path
    marker). Raises :class:`NodeNotFound`."""
    node = get_node(path)
    qs = Node.objects.filter(parent=node).select_related("current").order_by("path")
    if after:
        qs = qs.filter(path__gt=after)
    return qs[: clean_limit(limit)] if limit is not None else qs


def count_children(path: str = "") -> int:
    """Number of child nodes of ``path``. Raises :class:`NodeNotFound`."""
    return Node.objects.filter(parent=get_node(path)).count()


@locking.retrying
def remove_node(path: str) -> None:
    """Remove a node that has no children, with all its versions.

    Raises :class:`NodeNotEmpty` when it has children, :class:`NodeNotFound`, :class:`InvalidPath`,
    :class:`ConcurrentUpdate`.
    """
    path = paths.clean_path(path)
    with operation() as changes:
        node = _lock_node(path, Mode.UPDATE)  # no child can be added below it now
        if Node.objects.filter(parent=node).exists():
            raise NodeNotEmpty(f"node {path!r} has children; remove or move them first")
        _remove_versions(Version.objects.filter(node=node), {node.pk: node}, changes)
        Statistics.objects.filter(node=node).delete()
        changes.nodes.add(node.pk)
        node.delete()


@locking.retrying
def move(source: str, destination: str) -> Node:
    """Move (rename) the node at ``source`` and its subtree to ``destination``.

    Paths below are rewritten in one statement, statistics move with the subtree, and every
    moved node and version is reported to search. Missing parents of ``destination`` are
    created. The whole subtree is locked first: writers below ``source`` wait for the move
    (see :mod:`versioned_items.locking` for what they see then). A move writes no version, so
    it takes no change comment (the admin records one in its audit trail). Raises :class:`NodeExists`,
    :class:`NodeNotFound`, :class:`InvalidPath`, :class:`ConcurrentUpdate`.
    """
    source = paths.clean_path(source)
    destination = paths.clean_path(destination)
    if destination == source or destination.startswith(paths.subtree_prefix(source)):
        raise InvalidPath(f"cannot move {source!r} into itself ({destination!r})")
    with operation() as changes:
        wanted = locking.merge(
            locking.for_path(source, Mode.UPDATE), locking.plan(key_share=paths.ancestor_paths(destination))
        )
        node = locking.lock(wanted, subtree=(source, Mode.UPDATE)).get(source)
        if node is None:
            raise NodeNotFound(f"no node at {source!r}")
        if Node.objects.filter(path=destination).exists():
            raise NodeExists(f"a node already exists at {destination!r}")
        parent_path = paths.parent_path(destination)
        new_parent = ensure_nodes(parent_path, changes, Mode.KEY_SHARE)[parent_path]
        subtree = Node.objects.subtree(source)
        moved_versions = Version.objects.filter(node__in=subtree.values("pk"))
        # Statistics leave the old ancestors and reach the new ones.
        now = timezone.now()
        totals = moved_versions.values("cluster").annotate(size=Sum("size"))
        own = dict(Version.objects.filter(node=node).values_list("cluster").annotate(n=Count("serial")))
        for row in totals:
            population = own.get(row["cluster"], 0)
            changes.count(source, row["cluster"], -population, -row["size"], now)
            changes.count(destination, row["cluster"], population, row["size"], now)
        changes.nodes.update(subtree.values_list("pk", flat=True))
        changes.versions.update(moved_versions.values_list("serial", flat=True))
        shift = paths.depth(destination) - paths.depth(source)
        subtree.update(
            path=Concat(Value(destination), Substr("path", len(source) + 1)),
            depth=F("depth") + shift,
        )
        Node.objects.filter(pk=node.pk).update(parent=new_parent)
    return get_node(destination)


# --- writing versions ------------------------------------------------------------------------


def _policy(ancestry: Mapping[str, Node], path: str) -> str:
    """The versioning policy in force at ``path``: the nearest one set on it or an ancestor."""
    for candidate in [path] + paths.ancestor_paths(path)[::-1]:
        node = ancestry.get(candidate)
        if node is not None and node.versioning:
            return node.versioning
    return Versioning.AUTO


def _write(
    path: str,
    changes: ChangeSet,
    *,
    ancestry: Mapping[str, Node] | None = None,
    staged: content_store.Staged | None = None,
    checksum: str = "",
    size: int = 0,
    cluster: int = Cluster.NORMAL,
    user: str = "",
    content_type: str = "",
    source: int | None = None,
    mtime: datetime | None = None,
    comment: str = "",
) -> Version:
    """Make a new current version of ``path`` (creating the node as needed), with the change
    ``comment`` (cleaned by the caller).

    ``ancestry`` is what the caller locked already (see :func:`ensure_nodes`), with the node
    at ``path`` in it; when None, the node and its ancestors are locked (and created) here.
    The previous current version goes to HISTORY if it was NORMAL, or is removed under the
    "none" versioning policy; a previous delete marker stays in DELETED. The content is
    ``staged`` (see :func:`versioned_items.blobs.stage`), or a stored ``checksum`` of ``size``
    bytes, or none (a delete marker).
    """
    if ancestry is None:
        ancestry = ensure_nodes(path, changes)
    node = ancestry[path]
    _load_current(node)
    previous = node.current
    now = timezone.now()
    if mtime is None:
        mtime = now
    elif previous is not None and mtime < previous.mtime:
        raise InvalidArgument(
            f"mtime {mtime.isoformat()} is before the current version's ({previous.mtime.isoformat()})"
        )
    if staged is not None:
        checksum, size = content_store.acquire(staged), staged.size
    elif checksum:
        content_store.acquire_existing({checksum: 1}, sizes={checksum: size})
    version = Version.objects.create(
        node=node,
        size=size,
        source=source,
        mtime=mtime,
        muser=user,
        cluster=cluster,
        content_type=content_type,
        checksum=checksum,
        comment=comment,
    )
    changes.count(path, cluster, 1, size, now)
    changes.versions.add(version.serial)
    changes.nodes.add(node.pk)
    if previous is not None:
        previous.node = node
    if previous is not None and previous.cluster == Cluster.NORMAL:
        if _policy(ancestry, path) == Versioning.NONE:
            _remove_versions(Version.objects.filter(serial=previous.serial), {node.pk: node}, changes)
        else:
            move_to_cluster(previous, Cluster.HISTORY, changes, now)
    elif previous is not None:
        changes.versions.add(previous.serial)  # its validity interval ends here
    Node.objects.filter(pk=node.pk).update(current=version)
    node.current = version
    version.node = node
    return version


def put(
    path: str,
    content: bytes | str | BinaryIO | TextIO | content_store.Staged = b"",
    *,
    user: Any = "",
    content_type: str | None = None,
    attributes: Mapping[str, Any] | None = None,
    domain: str = "",
    mtime: datetime | None = None,
    comment: str = "",
) -> Version:
    """Write ``content`` as the new current (NORMAL) version of ``path``; return it.

    ``content`` is bytes, text (stored as UTF-8), a binary or text file object (read from its
    position to the end, in chunks: never held in memory whole), or content staged earlier with
    :func:`versioned_items.blobs.stage`. It is copied into the storage before the transaction
    starts, so a large file holds no lock while it is copied (and is not copied again when the
    transaction is retried).

    The node and missing parents are created. ``content_type`` defaults to a guess from the
    name and the first bytes (:func:`versioned_items.content_types.guess`). ``attributes`` are
    set on the new version in ``domain``. ``mtime`` (for imports) may not be in the future nor
    before the current version's. ``comment`` is the change comment of the new version (see
    :func:`~versioned_items.validation.clean_comment`).

    Raises :class:`InvalidPath`, :class:`InvalidArgument`, :class:`ContentError` when the
    storage fails (e.g. a full disk), :class:`ConcurrentUpdate`; then nothing is written.
    """
    path = paths.clean_path(path)
    user = clean_user(user)
    mtime = clean_time(mtime, "mtime")
    if content_type is not None:
        content_type = clean_content_type(content_type)
    items = _clean_attributes(attributes or {}, domain)
    comment = clean_comment(comment)
    with content_store.stage(content) as staged:
        if content_type is None:
            complete = len(staged.head) == staged.size
            content_type = content_types.guess(path, staged.head, complete=complete)
        return _put(path, staged, user, content_type, mtime, items, domain, comment)


@locking.retrying
def _put(
    path: str,
    staged: content_store.Staged,
    user: str,
    content_type: str,
    mtime: datetime | None,
    items: Mapping[str, str],
    domain: str,
    comment: str,
) -> Version:
    with operation() as changes:
        version = _write(
            path,
            changes,
            staged=staged,
            user=user,
            content_type=content_type,
            mtime=mtime,
            comment=comment,
        )
        _upsert_attributes(version.serial, items, domain)
    return version


@locking.retrying
def delete(path: str, *, user: Any = "", mtime: datetime | None = None, comment: str = "") -> Version:
    """Write a delete marker (an empty version in DELETED) as the current version of ``path``.

    The item disappears from listings and the latest index; its history stays. ``mtime``
    (for imports) and ``comment`` follow the rules of :func:`put`. Raises :class:`NodeNotFound`,
    :class:`VersionNotFound` when there is nothing to delete, :class:`ConcurrentUpdate`.
    """
    path = paths.clean_path(path)
    user = clean_user(user)
    mtime = clean_time(mtime, "mtime")
    comment = clean_comment(comment)
    with operation() as changes:
        ancestry = _lock_path(path)
        current = ancestry[path].current
        if current is None or current.cluster != Cluster.NORMAL:
            raise VersionNotFound(f"{path!r} has no current version to delete")
        return _write(
            path, changes, ancestry=ancestry, cluster=Cluster.DELETED, user=user, mtime=mtime, comment=comment
        )


def restore(serial: int, *, user: Any = "", comment: str = "") -> Version:
    """Make a copy of the earlier version ``serial`` (content, type, attributes) the current
    version of its node, with ``source`` pointing at it, and the change ``comment`` (the
    original's comment is not copied). Works on deleted items too.

    Raises :class:`VersionNotFound`, :class:`InvalidArgument` for a delete marker,
    :class:`ContentMissing` when its content is gone from the storage, :class:`ConcurrentUpdate`.
    """
    return _copy_version(serial, None, clean_user(user), clean_comment(comment))


@locking.retrying
def undelete(path: str, *, user: Any = "", comment: str = "") -> Version:
    """Restore the newest version of ``path`` that is not a delete marker, with the change
    ``comment``.

    Raises :class:`NodeNotFound`, :class:`VersionNotFound` when there is none,
    :class:`ContentMissing`, :class:`ConcurrentUpdate`.
    """
    path = paths.clean_path(path)
    user = clean_user(user)
    comment = clean_comment(comment)
    with operation() as changes:
        ancestry = _lock_path(path)
        original = (
            Version.objects.filter(node=ancestry[path])
            .exclude(cluster=Cluster.DELETED, checksum="")
            .order_by("-serial")
            .first()
        )
        if original is None:
            raise VersionNotFound(f"{path!r} has no version to restore")
        return _write_copy(original, path, ancestry, user, comment, changes)


def copy(serial: int, destination: str, *, user: Any = "", comment: str = "") -> Version:
    """Copy version ``serial`` (content, type, attributes) to a new current version at
    ``destination``, with the change ``comment``. Raises :class:`VersionNotFound`, :class:`InvalidPath`,
    :class:`ContentMissing`, :class:`ConcurrentUpdate`."""
    return _copy_version(serial, paths.clean_path(destination), clean_user(user), clean_comment(comment))


@locking.retrying
def _copy_version(serial: int, destination: str | None, user: str, comment: str) -> Version:
    """Copy version ``serial`` to ``destination`` (its own node when None): the source node is
    locked in ``SHARE`` (no version of it goes meanwhile), the destination as by a put."""
    with operation() as changes:
        if destination is None:
            original, ancestry = _lock_version(serial, changes)
            destination = original.node.path
        else:
            original, ancestry = _lock_version(serial, changes, destination)
        return _write_copy(original, destination, ancestry, user, comment, changes)


def _write_copy(
    original: Version, path: str, ancestry: Mapping[str, Node], user: str, comment: str, changes: ChangeSet
) -> Version:
    if original.is_delete_marker:
        raise InvalidArgument(f"version {original.serial} is a delete marker; pick an earlier one")
    version = _write(
        path,
        changes,
        ancestry=ancestry,
        checksum=original.checksum,
        size=original.size,
        user=user,
        content_type=original.content_type,
        source=original.serial,
        comment=comment,
    )
    copy_attributes(original.serial, version.serial)
    return version


def move_to_cluster(version: Version, cluster: int, changes: ChangeSet, now: datetime) -> None:
    """Move ``version`` (with its node loaded) to ``cluster``, its statistics with it, and tell
    search, inside the operation of ``changes``. No rules are checked (that is
    :func:`recluster`'s job): the caller has locked the version's node in ``NO_KEY_UPDATE`` or
    stronger (:func:`ensure_nodes`, :func:`versioned_items.locking.lock`) and keeps the
    node's versions whole. A building block of the write path, also used by
    :func:`versioned_items.integrity.repair`; not part of the public API."""
    path = version.node.path
    Version.objects.filter(serial=version.serial).update(cluster=cluster)
    changes.count(path, version.cluster, -1, -version.size, now)
    changes.count(path, cluster, 1, version.size, now)
    changes.versions.add(version.serial)
    changes.nodes.add(version.node_id)
    version.cluster = cluster


@locking.retrying
def recluster(serial: int, cluster: int) -> Version:
    """Move version ``serial`` to another cluster (statistics follow). Returns the version.

    Two rules keep the store meaningful: a delete marker stays in DELETED (elsewhere it would
    look like an empty live file), and only the node's current version may be NORMAL (a node
    has one live version; restore an older one instead). Raises :class:`VersionNotFound`,
    :class:`InvalidArgument` (a bad cluster, or a move the rules forbid), :class:`ConcurrentUpdate`.
    """
    cluster = clean_cluster(cluster)
    with operation() as changes:
        version, _ = _lock_version(serial, changes)
        if version.cluster == cluster:
            return version
        if version.is_delete_marker:
            raise InvalidArgument(f"version {version.serial} is a delete marker; it can only be in DELETED")
        if cluster == Cluster.NORMAL and version.node.current_id != version.serial:
            raise InvalidArgument(
                f"version {version.serial} is not the current version of {version.node.path!r}; "
                f"only the current version can be NORMAL (restore it to make it current)"
            )
        move_to_cluster(version, cluster, changes, timezone.now())
    return version


@locking.retrying
def remove_version(serial: int) -> None:
    """Delete version ``serial`` and its attributes. If it was current, the newest remaining
    version becomes current. Raises :class:`VersionNotFound`, :class:`ConcurrentUpdate`."""
    with operation() as changes:
        version, _ = _lock_version(serial, changes)
        _remove_versions(
            Version.objects.filter(serial=version.serial), {version.node_id: version.node}, changes
        )


def _purge_queryset(path: str, clusters: Iterable[int], before: datetime | None, subtree: bool):
    clusters = sorted({clean_cluster(c, "clusters") for c in clusters})
    before = clean_time(before)
    node = get_node(paths.clean_path(path, allow_root=True))
    qs = Version.objects.filter(cluster__in=clusters)
    qs = qs.filter(node__in=Node.objects.subtree(node.path).values("pk")) if subtree else qs.filter(node=node)
    return qs.filter(mtime__lt=before) if before is not None else qs


def purge_summary(
    path: str,
    *,
    clusters: Iterable[int] = (Cluster.HISTORY,),
    before: datetime | None = None,
    subtree: bool = False,
) -> tuple[int, int]:
    """What :func:`purge` with the same arguments would delete: (versions, bytes).
    Raises like :func:`purge`."""
    totals = _purge_queryset(path, clusters, before, subtree).aggregate(n=Count("serial"), size=Sum("size"))
    return totals["n"], totals["size"] or 0


@locking.retrying
def purge(
    path: str,
    *,
    clusters: Iterable[int] = (Cluster.HISTORY,),
    before: datetime | None = None,
    subtree: bool = False,
) -> list[int]:
    """Delete the versions of ``path`` (and with ``subtree``, of all its descendants) in
    ``clusters`` written before ``before`` (all of them when None). Nodes whose current
    version goes get their newest remaining version as current. Returns the deleted serials:
    exactly the versions this call deleted (a purge racing another one of the same versions
    returns what it deleted itself, perhaps nothing).

    The node and, with ``subtree``, every node below it are locked first; puts of new items
    below run meanwhile, and their versions are left alone. Raises :class:`NodeNotFound`,
    :class:`InvalidArgument`, :class:`ConcurrentUpdate`.
    """
    path = paths.clean_path(path, allow_root=True)
    with operation() as changes:
        locked = locking.lock(locking.for_path(path), subtree=(path, Mode.NO_KEY_UPDATE) if subtree else None)
        if path not in locked:
            raise NodeNotFound(f"no node at {path!r}")
        prefix = paths.subtree_prefix(path)
        nodes = {
            n.pk: n for n in locked.values() if n.path == path or (subtree and n.path.startswith(prefix))
        }
        return _remove_versions(_purge_queryset(path, clusters, before, subtree), nodes, changes)


CHUNK = 500  # ids per IN (...) list, well below every database's parameter limit


def _chunks(items: Sequence, size: int = CHUNK):
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _promote_newest(
    node_ids: list[int], nodes: Mapping[int, Node], changes: ChangeSet, now: datetime
) -> None:
    """Locked nodes that lost their current version fall back to their newest remaining one;
    if that one is in HISTORY it becomes NORMAL again (removing the current version reverts
    to the previous one). A delete marker stays DELETED."""
    newest = Version.objects.filter(node=OuterRef("pk")).order_by("-serial").values("serial")[:1]
    for chunk in _chunks(node_ids):
        Node.objects.filter(pk__in=chunk).update(current=Subquery(newest))
        revived = list(
            Version.objects.filter(
                serial__in=Node.objects.filter(pk__in=chunk).values("current"), cluster=Cluster.HISTORY
            ).values_list("serial", "node_id", "size")
        )
        if revived:
            Version.objects.filter(serial__in=[serial for serial, _, _ in revived]).update(
                cluster=Cluster.NORMAL
            )
        for serial, node_id, size in revived:
            changes.count(nodes[node_id].path, Cluster.HISTORY, -1, -size, now)
            changes.count(nodes[node_id].path, Cluster.NORMAL, 1, size, now)
            changes.versions.add(serial)


def _delete_versions(serials: Sequence[int]) -> list[tuple[int, int, int, int, str]]:
    """Delete these versions; return (serial, node id, cluster, size, checksum) of the rows
    the statement deleted (``DELETE ... RETURNING``), which are all that statistics and
    content references may be corrected for."""
    table = connection.ops.quote_name(Version._meta.db_table)
    where = f"serial IN ({', '.join(['%s'] * len(serials))})"
    columns = "serial, node_id, cluster, size, checksum"
    with connection.cursor() as cursor:
        if connection.features.can_return_rows_from_bulk_insert:
            cursor.execute(f"DELETE FROM {table} WHERE {where} RETURNING {columns}", list(serials))
            return list(cursor.fetchall())
        # SQLite before 3.35: no RETURNING, but the database lock covers the read.
        cursor.execute(f"SELECT {columns} FROM {table} WHERE {where}", list(serials))
        rows = list(cursor.fetchall())
        cursor.execute(f"DELETE FROM {table} WHERE {where}", list(serials))
        return rows


def _remove_versions(qs, nodes: Mapping[int, Node], changes: ChangeSet) -> list[int]:
    """Delete the versions of ``qs`` that belong to ``nodes`` (id -> node, locked by the caller
    in ``NO_KEY_UPDATE`` or stronger, with their paths and current pointers as locked) with
    their attributes; fix statistics, content references, current pointers, and report the
    versions whose validity interval grew. Returns the serials deleted."""
    previous = Version.objects.filter(node=OuterRef("node"), serial__lt=OuterRef("serial"))
    candidates = [
        (serial, previous_serial)
        for serial, node_id, previous_serial in qs.order_by()
        .annotate(previous=Subquery(previous.order_by("-serial").values("serial")[:1]))
        .values_list("serial", "node_id", "previous")
        if node_id in nodes  # a version of a node created since the locks is not ours to touch
    ]
    if not candidates:
        return []
    deleted = []
    for chunk in _chunks([serial for serial, _ in candidates]):
        Attribute.objects.filter(version__in=chunk).delete()
        deleted += _delete_versions(chunk)
    now = timezone.now()
    for _serial, node_id, cluster, size, _checksum in deleted:
        changes.count(nodes[node_id].path, cluster, -1, -size, now)
    content_store.release(Counter(row[4] for row in deleted))
    _promote_newest(
        sorted({row[1] for row in deleted if nodes[row[1]].current_id == row[0]}), nodes, changes, now
    )
    removed = {row[0] for row in deleted}
    changes.removed_versions |= removed
    changes.versions |= {p for serial, p in candidates if serial in removed and p is not None} - removed
    changes.nodes |= {row[1] for row in deleted}
    return sorted(removed)


# --- reading versions ------------------------------------------------------------------------


def versions(path: str):
    """The versions of ``path``, newest first, as a QuerySet. Raises :class:`NodeNotFound`."""
    return Version.objects.filter(node=get_node(path)).select_related("node").order_by("-serial")


def get_version(serial: int, *, lock: bool = False) -> Version:
    """The version with this serial (with its node). With ``lock``, the version row is locked
    for the rest of the transaction. Raises :class:`VersionNotFound`."""
    serial = clean_serial(serial)
    if lock:
        # No join in the locking query: see _lock_node.
        version = Version.objects.select_for_update().filter(serial=serial).first()
        if version is not None:
            version.node = Node.objects.get(pk=version.node_id)
    else:
        version = Version.objects.select_related("node").filter(serial=serial).first()
    if version is None:
        raise VersionNotFound(f"no version with serial {serial}")
    return version


def lookup(path: str, *, before: datetime | None = None, cluster: int | None = None) -> Version | None:
    """The version of ``path`` that is current as of ``before`` (now when None), or None.

    With ``cluster`` None: as of now, the current version if it is NORMAL; as of a past
    time, the version current then unless it is a delete marker (it has since moved to
    HISTORY, but it was the live one). With a ``cluster``: that version only if it is in
    ``cluster`` today. One query. Raises :class:`InvalidPath`, :class:`InvalidArgument`.
    """
    path = paths.clean_path(path)
    before = clean_time(before)
    if cluster is not None:
        cluster = clean_cluster(cluster)
    if before is None:
        qs = Version.objects.filter(node__path=path, node__current=F("serial"))
    else:
        qs = Version.objects.filter(node__path=path, mtime__lt=before).order_by("-serial")
    version = qs.select_related("node").first()
    if version is None:
        return None
    if cluster is not None:
        return version if version.cluster == cluster else None
    if before is None:
        return version if version.cluster == Cluster.NORMAL else None
    return None if version.is_delete_marker else version


def open_content(version: Version | int) -> BinaryIO:
    """The content of a version as a binary file-like object. Raises :class:`VersionNotFound`."""
    if not isinstance(version, Version):
        version = get_version(version)
    return version.open()


# --- attributes ------------------------------------------------------------------------------


def _clean_attributes(items: Mapping[str, Any], domain: str) -> dict[str, str]:
    domain = clean_domain(domain)
    if not isinstance(items, Mapping):
        raise InvalidArgument(f"attributes must be a mapping of key to value, not {type(items).__name__}")
    return {clean_key(k): clean_value(v) for k, v in items.items()}


def _upsert_attributes(serial: int, items: Mapping[str, str], domain: str) -> None:
    if not items:
        return
    Attribute.objects.bulk_create(
        [
            Attribute(version_id=serial, domain=domain, key=k, value=v, value_number=as_number(v))
            for k, v in items.items()
        ],
        update_conflicts=True,
        unique_fields=["version", "domain", "key"],
        update_fields=["value", "value_number"],
    )


def _attributes_changed(version: Version, changes: ChangeSet) -> None:
    changes.versions.add(version.serial)
    if version.node.current_id == version.serial:
        changes.nodes.add(version.node_id)


def get_attributes(serial: int, keys: Iterable[str] | None = None, *, domain: str = "") -> dict[str, str]:
    """The attributes of version ``serial`` in ``domain`` as {key: value}, all of them or only
    ``keys``. Raises :class:`VersionNotFound`."""
    serial = clean_serial(serial)
    qs = Attribute.objects.filter(version_id=serial, domain=domain)
    if keys is not None:
        qs = qs.filter(key__in=[clean_key(k) for k in keys])
    result = dict(qs.order_by("key").values_list("key", "value"))
    if not result and not Version.objects.filter(serial=serial).exists():
        raise VersionNotFound(f"no version with serial {serial}")
    return result


@locking.retrying
def set_attributes(serial: int, items: Mapping[str, Any], *, domain: str = "") -> None:
    """Set (insert or update) attributes of version ``serial`` in ``domain``.
    Raises :class:`VersionNotFound`, :class:`InvalidArgument`, :class:`ConcurrentUpdate`."""
    items = _clean_attributes(items, domain)
    with operation() as changes:
        version = _version_for_attributes(serial)
        _upsert_attributes(version.serial, items, domain)
        _attributes_changed(version, changes)


@locking.retrying
def delete_attributes(serial: int, keys: Iterable[str] | None = None, *, domain: str = "") -> int:
    """Delete all attributes of version ``serial`` in ``domain``, or only ``keys``; return how
    many went. Raises :class:`VersionNotFound`, :class:`ConcurrentUpdate`."""
    with operation() as changes:
        version = _version_for_attributes(serial)
        qs = Attribute.objects.filter(version=version, domain=domain)
        if keys is not None:
            qs = qs.filter(key__in=[clean_key(k) for k in keys])
        deleted, _ = qs.delete()
        if deleted:
            _attributes_changed(version, changes)
    return deleted


@locking.retrying
def copy_attributes(source: int, destination: int, *, domain: str | None = None) -> None:
    """Copy the attributes of version ``source`` (all domains, or one) onto ``destination``,
    overwriting equal keys. Raises :class:`VersionNotFound`, :class:`ConcurrentUpdate`."""
    source = clean_serial(source)
    with operation() as changes:
        target = _version_for_attributes(destination)
        get_version(source)
        qs = Attribute.objects.filter(version_id=source)
        if domain is not None:
            qs = qs.filter(domain=domain)
        rows = [
            Attribute(
                version_id=target.serial,
                domain=a.domain,
                key=a.key,
                value=a.value,
                value_number=a.value_number,
            )
            for a in qs
        ]
        if rows:
            Attribute.objects.bulk_create(
                rows,
                update_conflicts=True,
                unique_fields=["version", "domain", "key"],
                update_fields=["value", "value_number"],
            )
            _attributes_changed(target, changes)


def attribute_domains(serial: int | None = None) -> list[str]:
    """The attribute domains in use, by one version or by all."""
    qs = (
        Attribute.objects.all()
        if serial is None
        else Attribute.objects.filter(version_id=clean_serial(serial))
    )
    return list(qs.order_by("domain").values_list("domain", flat=True).distinct())


def latest_attribute_keys(
    parent: str = "",
    *,
    domain: str = "",
    before: datetime | None = None,
    except_cluster: int = Cluster.DELETED,
    prefixes: Sequence[str] = (),
) -> list[str]:
    """The attribute keys (in ``domain``) used by the latest versions below ``parent``, as of
    ``before``, leaving out versions in ``except_cluster``; optionally only below the path
    ``prefixes``. Raises :class:`NodeNotFound`, :class:`InvalidArgument`."""
    from .listing import latest_versions

    parent = get_node(parent)
    latest = latest_versions(
        before=clean_time(before), except_cluster=clean_cluster(except_cluster, "except_cluster")
    )
    latest = latest.filter(node__in=Node.objects.subtree(parent.path, include_self=False).values("pk"))
    if prefixes:
        q = Q()
        for prefix in prefixes:
            prefix = paths.clean_prefix(prefix)
            q |= Q(node__path__startswith=prefix)
        latest = latest.filter(q)
    keys = Attribute.objects.filter(version__in=latest.values("serial"), domain=domain)
    return list(keys.order_by("key").values_list("key", flat=True).distinct())


# --- statistics ------------------------------------------------------------------------------


@dataclass(frozen=True)
class StatisticsResult:
    """Population (first level), total size (all levels) and last change time."""

    population: int = 0
    size: int = 0
    mtime: datetime | None = None


def get_statistics(path: str = "", cluster: int = Cluster.NORMAL) -> StatisticsResult:
    """The stored statistics of ``cluster`` below ``path``. Raises :class:`NodeNotFound`."""
    cluster = clean_cluster(cluster)
    node = get_node(path)
    row = Statistics.objects.filter(node=node, cluster=cluster).first()
    return StatisticsResult(row.population, row.size, row.mtime) if row else StatisticsResult()


def latest_statistics(
    path: str = "", *, before: datetime | None = None, except_cluster: int = Cluster.DELETED
) -> StatisticsResult:
    """Statistics of the *latest* versions below ``path`` as of ``before``, leaving out those
    in ``except_cluster``: population counts children, size and mtime cover all descendants.
    Computed from the versions (one query). Raises :class:`NodeNotFound`."""
    from .listing import latest_versions

    node = get_node(path)
    latest = latest_versions(
        before=clean_time(before), except_cluster=clean_cluster(except_cluster, "except_cluster")
    )
    latest = latest.filter(node__in=Node.objects.subtree(node.path, include_self=False).values("pk"))
    totals = latest.aggregate(
        population=Count("serial", filter=Q(node__parent=node)), size=Sum("size"), mtime=Max("mtime")
    )
    return StatisticsResult(totals["population"], totals["size"] or 0, totals["mtime"])


@dataclass(frozen=True)
class StatisticsDifference:
    """Stored statistics of one node and cluster that differ from a recomputation."""

    path: str
    cluster: int
    stored: StatisticsResult
    expected: StatisticsResult

    def __str__(self) -> str:
        return (
            f"{self.path or '/'} [{Cluster(self.cluster).label}]: "
            f"stored population={self.stored.population} size={self.stored.size}, "
            f"expected population={self.expected.population} size={self.expected.size}"
        )


def recompute_statistics(*, fix: bool = False) -> list[StatisticsDifference]:
    """Recompute every node's statistics from the versions and return where the stored ones
    differ (population or size, or an mtime older than the newest version below). With
    ``fix``, the stored rows are rewritten to the recomputed values."""
    expected: dict[tuple[str, int], list] = defaultdict(lambda: [0, 0, None])
    per_node = (
        Version.objects.values_list("node__path", "cluster")
        .annotate(n=Count("serial"), size=Sum("size"), mtime=Max("mtime"))
        .order_by()
    )
    for path, cluster, n, size, mtime in per_node:
        for level, ancestor in enumerate(reversed(paths.ancestor_paths(path))):
            entry = expected[(ancestor, cluster)]
            if level == 0:
                entry[0] += n
            entry[1] += size
            entry[2] = mtime if entry[2] is None else max(entry[2], mtime)
    stored = {
        (p, c): (pop, size, mtime, pk)
        for pk, p, c, pop, size, mtime in Statistics.objects.values_list(
            "pk", "node__path", "cluster", "population", "size", "mtime"
        )
    }
    differences = []
    for key in sorted(expected.keys() | stored.keys()):
        population, size, mtime = expected.get(key, (0, 0, None))
        s_pop, s_size, s_mtime, _ = stored.get(key, (0, 0, None, None))
        stale = mtime is not None and (s_mtime is None or s_mtime < mtime)
        if (population, size) != (s_pop, s_size) or stale:
            differences.append(
                StatisticsDifference(
                    key[0],
                    key[1],
                    StatisticsResult(s_pop, s_size, s_mtime),
                    StatisticsResult(population, size, mtime),
                )
            )
    if fix and differences:
        with operation():
            ids = dict(Node.objects.filter(path__in={d.path for d in differences}).values_list("path", "pk"))
            for d in differences:
                if d.path not in ids:
                    continue  # removed since it was read: nothing to store for it
                mtime = max(filter(None, [d.stored.mtime, d.expected.mtime]), default=None)
                Statistics.objects.update_or_create(
                    node_id=ids[d.path],
                    cluster=d.cluster,
                    defaults={"population": d.expected.population, "size": d.expected.size, "mtime": mtime},
                )
    return differences

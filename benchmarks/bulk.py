"""Large corpora written with bulk SQL (10k to 1M nodes in seconds to minutes, not hours).

The service API writes a version in a handful of statements, which is right for a live site but
takes hours for a million versions. :func:`load_tree` writes the same rows the API would write
(nodes with parents and depth, versions, content blobs, exact statistics) straight into the
tables: ``COPY`` on PostgreSQL, ``executemany`` on SQLite, in one transaction. The result is a
valid store: :func:`verify` compares it with a recomputation through the API
(``api.recompute_statistics``), and the smoke run does that on every CI run.

The tree, for ``files`` items below ``root``::

    root/dNNNNN/fNNNNN.txt     files spread over ``dirs`` folders
    root/dNNNNNx.txt           one file next to each 4th folder (objects between the prefixes)

Every file has ``versions`` versions: the newest is current (NORMAL), the others are in
HISTORY. Version ``serial`` has mtime ``EPOCH + serial`` seconds. Contents come from a pool of
``pool`` distinct texts (the same seed gives the same pool), so a million versions need only a
few thousand content files.
"""

import random
from collections import defaultdict
from datetime import timedelta

from .corpus import EPOCH, USERS, SyntheticCorpus


def tree_paths(root: str, files: int, dirs: int) -> list[str]:
    """The file paths of the tree, in creation order."""
    dirs = max(1, min(dirs, files))
    loose = [d for d in range(dirs) if d % 4 == 0][: max(0, files - dirs)]
    paths = [f"{root}/d{d:05d}x.txt" for d in loose]
    for k in range(files - len(paths)):
        paths.append(f"{root}/d{k % dirs:05d}/f{k // dirs:05d}.txt")
    return paths


def load_tree(
    root: str, files: int, *, dirs: int = 2500, versions: int = 1, pool: int = 2000, seed: int = 1
) -> dict:
    """Write the tree described above into an empty store; return its size."""
    from django.db import transaction

    from versioned_items import paths as vpaths
    from versioned_items.models import Blob, Cluster, Node, Statistics, Version

    contents = _content_pool(pool, seed)
    file_paths = tree_paths(root, files, dirs)
    # Nodes: the root, the folders (ancestors of the files), then the files.
    node_ids: dict[str, int] = {}
    node_rows = []

    def add_node(path: str, current=None) -> int:
        pk = len(node_rows) + 1
        parent = node_ids[vpaths.parent_path(path)] if path else None
        node_ids[path] = pk
        node_rows.append([pk, parent, path, vpaths.depth(path), "", current])
        return pk

    for path in file_paths:
        for ancestor in vpaths.ancestor_paths(path):
            if ancestor not in node_ids:
                add_node(ancestor)
    rng = random.Random(f"bulk-{seed}")
    version_rows, refcounts = [], defaultdict(int)
    # (node id, cluster) -> [count, size, mtime] of the node's own versions.
    own: dict[tuple[int, int], list] = {}
    serial = 0
    for path in file_paths:
        pk = add_node(path)
        for v in range(versions):
            serial += 1
            checksum, size = contents[rng.randrange(pool)]
            cluster = Cluster.NORMAL if v == versions - 1 else Cluster.HISTORY
            mtime = EPOCH + timedelta(seconds=serial)
            version_rows.append(
                [
                    serial,
                    pk,
                    size,
                    None,
                    mtime,
                    USERS[serial % len(USERS)],
                    int(cluster),
                    "text/plain",
                    checksum,
                ]
            )
            refcounts[checksum] += 1
            entry = own.setdefault((pk, int(cluster)), [0, 0, mtime])
            entry[0] += 1
            entry[1] += size
            entry[2] = max(entry[2], mtime)
        node_rows[pk - 1][5] = serial
    statistics_rows = _statistics(own, node_rows)
    blob_rows = [[c, size, refcounts[c]] for c, size in dict(contents).items() if refcounts[c]]
    with transaction.atomic():
        _insert(Node, ["id", "parent_id", "path", "depth", "versioning", "current_id"], node_rows)
        _insert(
            Version,
            ["serial", "node_id", "size", "source", "mtime", "muser", "cluster", "content_type", "checksum"],
            version_rows,
        )
        _insert(Blob, ["checksum", "size", "refcount"], blob_rows)
        _insert(Statistics, ["id", "node_id", "cluster", "population", "size", "mtime"], statistics_rows)
    _after_load(Node, Version, Statistics)
    _store_contents(contents, pool, seed)
    return {
        "nodes": len(node_rows),
        "versions": len(version_rows),
        "bytes": sum(row[2] for row in version_rows),
    }


def _content_pool(pool: int, seed: int) -> list[tuple[str, int]]:
    """(checksum, size) of ``pool`` distinct texts."""
    from versioned_items.blobs import checksum_of

    return [(checksum_of(data), len(data)) for data in _pool_texts(pool, seed)]


def _pool_texts(pool: int, seed: int):
    corpus = SyntheticCorpus(1, seed=seed)
    for n in range(pool):
        yield corpus.text(random.Random(f"pool-{seed}-{n}"), 600).encode()


def _store_contents(contents, pool: int, seed: int) -> None:
    from django.core.files.base import ContentFile

    from versioned_items.blobs import content_name, storage

    store = storage()
    for (checksum, _), data in zip(contents, _pool_texts(pool, seed), strict=False):
        name = content_name(checksum)
        if not store.exists(name):
            store.save(name, ContentFile(data))


def _statistics(own: dict, node_rows: list) -> list[list]:
    """Statistics rows as the API keeps them: population on the parent, size and mtime on
    every ancestor."""
    parent_of = {row[0]: row[1] for row in node_rows}
    totals: dict[tuple[int, int], list] = {}
    for (pk, cluster), (count, size, mtime) in own.items():
        ancestor, level = parent_of[pk], 0
        while ancestor is not None:
            entry = totals.setdefault((ancestor, cluster), [0, 0, mtime])
            if level == 0:
                entry[0] += count
            entry[1] += size
            entry[2] = max(entry[2], mtime)
            ancestor, level = parent_of[ancestor], level + 1
    return [
        [n + 1, pk, cluster, pop, size, mtime]
        for n, ((pk, cluster), (pop, size, mtime)) in enumerate(sorted(totals.items()))
    ]


def _insert(model, fields: list[str], rows: list[list], chunk: int = 20000) -> None:
    from django.db import connection

    table = model._meta.db_table
    columns = [
        model._meta.get_field(f.removesuffix("_id") if f.endswith("_id") and f != "id" else f).column
        for f in fields
    ]
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            raw = cursor.cursor
            sql = f'COPY "{table}" ({", ".join(columns)}) FROM STDIN'
            with raw.copy(sql) as copy:
                for row in rows:
                    copy.write_row(row)
        return
    adapt = connection.ops.adapt_datetimefield_value
    placeholders = ", ".join(["%s"] * len(columns))
    sql = f'INSERT INTO "{table}" ({", ".join(columns)}) VALUES ({placeholders})'
    with connection.cursor() as cursor:
        for start in range(0, len(rows), chunk):
            batch = [
                [adapt(v) if hasattr(v, "tzinfo") else v for v in row] for row in rows[start : start + chunk]
            ]
            cursor.executemany(sql, batch)


def _after_load(*models) -> None:
    """Sequences past the explicit ids (PostgreSQL), and fresh planner statistics."""
    from django.core.management.color import no_style
    from django.db import connection

    with connection.cursor() as cursor:
        for sql in connection.ops.sequence_reset_sql(no_style(), list(models)):
            cursor.execute(sql)
        if connection.vendor == "postgresql":
            # What autovacuum would do soon after a load this size.
            cursor.execute("ANALYZE")


def verify() -> list:
    """Differences between the stored statistics and a recomputation (empty when valid)."""
    from versioned_items import api

    return api.recompute_statistics()


__all__ = ["load_tree", "tree_paths", "verify"]

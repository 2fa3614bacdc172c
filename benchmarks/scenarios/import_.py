"""Bulk import of N new versions into both indexes.

The corpus is written through the API (``api.batch`` of 200 puts) while the search apply lock
is held, as when another process is applying: the versions and their outbox entries are in the
database, the indexes are untouched. Then the lock is released and the time until both indexes
hold every document (``wait_for_index``) is the project's figure: group commit drains the outbox
in rounds of up to ``MAX_ROUND_GROWTH * SEARCH_BATCH_SIZE`` entries (``indexing.round_sizes``;
one round at the full size's 11,856 entries), one writer and one commit per index per round.

Baselines, on the same documents:

- raw Whoosh: the app's own prepared documents (texts extracted, untimed), written with one
  writer and one commit into a fresh index of the same schema, once for latest, once for
  history;
- Haystack's stock ``update_index`` on the stock connections (default batch size).

Both write with Whoosh's default writer settings (one process, ``limitmb=128``, one segment
per commit) and commit once per index: the app's writer passes only its lock wait. The raw
figure leaves out what the project's includes besides Whoosh (reading the outbox and the
database, extracting texts, Haystack's ``full_prepare``, deleting the entries).

Targets: project >= 0.9x raw Whoosh's rate, and >= 8x Haystack's. On a machine shared with
other work the wall times vary from run to run; the CPU seconds (of this process, threads
included) beside them vary much less.
"""

import os
import shutil
import time
from contextlib import contextmanager
from types import SimpleNamespace

from django.core.management import call_command
from whoosh import index as windex

from .. import search_corpus as sc
from ..corpus import load, store_size
from ..env import Timer, reset_indexes, reset_store, stock_connections
from ..report import Result, ratio

NEEDS_SEARCH = True


def run(options, result: Result) -> None:
    from versioned_items.search import indexing, locks

    reset_store()
    corpus = sc.make(options)
    writes = list(corpus.writes())
    with locks.apply_lock():
        with Timer() as db, _cpu() as db_cpu:
            load(writes)
        pending = indexing.pending_count()
    with Timer() as project, _cpu() as project_cpu:
        indexing.wait_for_index()
        indexing.flush_background()
    diff = indexing.compare()
    size = store_size()
    n = size["versions"]  # a replayed history may skip deletes of what it never saw
    result.corpus = corpus.describe() | size
    if diff.count:
        result.notes.append(
            f"after the import the indexes differ from the database in {diff.count} documents"
        )
    sc.loaded(options, size | {"load_s": db.seconds + project.seconds})

    raw = _raw_whoosh(options)
    reset_indexes("stock_latest", "stock_history")
    with stock_connections(), Timer() as stock, _cpu() as stock_cpu:
        call_command("update_index", using=["stock_latest", "stock_history"], verbosity=0)
    stock_docs = (sc.stock_doc_count(sc.LATEST), sc.stock_doc_count(sc.HISTORY))
    sc.stock_filled(options)

    docs = (diff.latest.documents, diff.history.documents)
    table = result.table(
        f"bulk import: {n:,} new versions, documents written latest + history",
        "who",
        "documents",
        "seconds",
        "CPU s",
        "versions/s",
        "project/this",
        "by CPU",
    )
    rate = n / project.seconds
    table.add(
        "project: outbox drained by group commit",
        f"{docs[0]:,} + {docs[1]:,}",
        project.seconds,
        project_cpu.seconds,
        rate,
        1.0,
        1.0,
    )
    for who, count, wall, cpu in (
        ("raw Whoosh: one writer, one commit", raw["docs"], raw["seconds"], raw["cpu"]),
        ("Haystack update_index (stock)", stock_docs, stock.seconds, stock_cpu.seconds),
    ):
        table.add(
            who,
            f"{count[0]:,} + {count[1]:,}",
            wall,
            cpu,
            n / wall,
            ratio(rate, n / wall),
            ratio(cpu, project_cpu.seconds),
        )
    table.add(
        "(project: database writes, API)",
        f"{pending:,} outbox entries",
        db.seconds,
        db_cpu.seconds,
        n / db.seconds,
        "",
        "",
    )
    result.target("project vs raw Whoosh (speed)", ratio(rate, n / raw["seconds"]), ">=", 0.9)
    result.target("project vs Haystack update_index (speed)", ratio(rate, n / stock.seconds), ">=", 8)


def _raw_whoosh(options) -> dict:
    """Write the app's documents with plain Whoosh: one writer, one commit, per index."""
    seconds, cpu, counts = 0.0, 0.0, []
    for side in (sc.LATEST, sc.HISTORY):
        backend = sc.app_backend(side)
        docs = sc.whoosh_documents(side)
        folder = f"{backend.path}.raw"
        shutil.rmtree(folder, ignore_errors=True)
        os.makedirs(folder)
        with Timer() as t, _cpu() as c:
            ix = windex.create_in(folder, backend.schema)
            writer = ix.writer()  # Whoosh's defaults, as the app's writer
            for doc in docs:
                writer.add_document(**doc)
            writer.commit()
        seconds += t.seconds
        cpu += c.seconds
        counts.append(ix.doc_count())
        shutil.rmtree(folder, ignore_errors=True)
    return {"seconds": seconds, "cpu": cpu, "docs": tuple(counts)}


@contextmanager
def _cpu():
    """``with _cpu() as c: ...`` then ``c.seconds``: CPU time of this process, threads included."""
    spent = SimpleNamespace(seconds=0.0)
    start = time.process_time()
    try:
        yield spent
    finally:
        spent.seconds = time.process_time() - start

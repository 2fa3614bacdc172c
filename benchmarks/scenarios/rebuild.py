"""Full rebuild of both indexes from the database, on the app's Whoosh engine and on its tantivy
engine, against Haystack's stock ``rebuild_index``.

The app's ``indexing.rebuild(procs=1)`` and ``procs=2`` build into temporary folders and swap
them in; afterwards the indexes are compared with the database (no difference allowed). On the
tantivy engine ``procs`` makes no difference (it indexes with its writer's threads), so it runs
once. Haystack's ``rebuild_index`` (clear, then ``update_index``) runs on the stock connections.
Targets: the Whoosh engine is >= 8x faster than Haystack, for each ``procs``; the tantivy
engine >= 10x faster than the Whoosh engine with ``procs=1`` (issue 13's bulk target, here with
the documents' preparation from the database included).
"""

from django.core.management import call_command

from .. import engines
from .. import search_corpus as sc
from ..env import Timer, reset_indexes, stock_connections
from ..report import Result, ratio

NEEDS_SEARCH = True


def run(options, result: Result) -> None:
    from versioned_items.search import indexing

    info = sc.ensure(options)
    result.corpus = {k: v for k, v in info.items() if k != "load_s"}
    runs = [(engines.WHOOSH, 1), (engines.WHOOSH, 2)]
    if engines.TANTIVY in engines.available():
        runs.append((engines.TANTIVY, 1))
    else:
        result.notes.append(engines.skipped_note())
    rows = []
    for engine, procs in runs:
        with engines.serving(engine):
            with Timer() as t:
                report = indexing.rebuild(procs=procs)
            diff = indexing.compare()
        if diff.count:
            result.notes.append(
                f"after rebuild --procs {procs} on the {engine} the indexes differ from the database "
                f"in {diff.count} documents"
            )
        rows.append((engine, procs, report, t.seconds))
    if engines.TANTIVY in engines.available():
        sc.tantivy_filled(options)  # the rebuild wrote the corpus into the tantivy indexes
    reset_indexes("stock_latest", "stock_history")
    with stock_connections(), Timer() as stock:
        call_command("rebuild_index", interactive=False, using=["stock_latest", "stock_history"], verbosity=0)
    sc.stock_filled(options)
    stock_docs = sc.stock_doc_count(sc.LATEST) + sc.stock_doc_count(sc.HISTORY)
    table = result.table(
        "full rebuild of latest + history",
        "who",
        "documents",
        "seconds",
        "documents/s",
        "Haystack time / this",
        "Whoosh engine --procs 1 time / this",
    )
    whoosh = rows[0][3]
    for engine, procs, report, seconds in rows:
        docs = report.latest + report.history
        name = "project" if engine == engines.WHOOSH else engine
        table.add(
            f"{name} rebuild --procs {procs}",
            docs,
            seconds,
            docs / seconds,
            ratio(stock.seconds, seconds),
            ratio(whoosh, seconds),
        )
        if engine == engines.WHOOSH:
            result.target(
                f"Haystack rebuild_index time / project --procs {procs}",
                ratio(stock.seconds, seconds),
                ">=",
                8,
            )
        else:
            result.target(
                "rebuild: Whoosh engine time / tantivy engine time", ratio(whoosh, seconds), ">=", 10
            )
    table.add(
        "Haystack rebuild_index (stock)", stock_docs, stock.seconds, stock_docs / stock.seconds, 1.0, ""
    )

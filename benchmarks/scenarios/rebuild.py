"""Full rebuild of both indexes from the database, against Haystack's stock ``rebuild_index``.

The project's ``indexing.rebuild(procs=1)`` and ``procs=2`` build into temporary folders and
swap them in; afterwards the indexes are compared with the database (no difference allowed).
Haystack's ``rebuild_index`` (clear, then ``update_index``) runs on the stock connections.
Target: the project is >= 8x faster, for each ``procs``.
"""

from django.core.management import call_command

from .. import search_corpus as sc
from ..env import Timer, reset_indexes, stock_connections
from ..report import Result, ratio

NEEDS_SEARCH = True


def run(options, result: Result) -> None:
    from versioned_items.search import indexing

    info = sc.ensure(options)
    result.corpus = {k: v for k, v in info.items() if k != "load_s"}
    rows = []
    for procs in (1, 2):
        with Timer() as t:
            report = indexing.rebuild(procs=procs)
        diff = indexing.compare()
        if diff.count:
            result.notes.append(
                f"after rebuild --procs {procs} the indexes differ from the database "
                f"in {diff.count} documents"
            )
        rows.append((procs, report, t.seconds))
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
    )
    for procs, report, seconds in rows:
        docs = report.latest + report.history
        table.add(
            f"project rebuild --procs {procs}", docs, seconds, docs / seconds, ratio(stock.seconds, seconds)
        )
        result.target(
            f"Haystack rebuild_index time / project --procs {procs}", ratio(stock.seconds, seconds), ">=", 8
        )
    table.add("Haystack rebuild_index (stock)", stock_docs, stock.seconds, stock_docs / stock.seconds, 1.0)

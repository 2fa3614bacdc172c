"""Search: the first page of 10 with the total, on the latest and on the history index.

Each of the corpus's sample queries (two moderately common words) runs ``repeat`` times per
engine; the best time of each query counts, and the table shows the mean over queries.

- project: ``search(q, page_size=10, highlight=False)`` (and with highlights, for information);
- raw Whoosh: a searcher opened once on the project's index, the query parsed by a plain
  ``QueryParser`` on the document field (``text``), ``search(limit=10)``, ``len()`` for the
  total, stored fields read;
- Haystack: ``SearchQuerySet(using=stock).auto_query(q)``, ``[:10]`` and ``count()``, on the
  stock connection holding the same documents.

Targets per index: project <= 1.5x raw Whoosh's time; Haystack's time >= 10x the project's.
"""

import statistics

from haystack.query import SearchQuerySet
from whoosh import index as windex
from whoosh.qparser import QueryParser

from .. import search_corpus as sc
from ..env import stock_connections
from ..report import Result, ratio
from ..timing import best_of, ms

NEEDS_SEARCH = True


def run(options, result: Result) -> None:
    from versioned_items.search.api import search

    info = sc.ensure(options)
    sc.ensure_stock(options)
    queries = sc.make(options).queries(options.queries)
    result.corpus = {k: v for k, v in info.items() if k != "load_s"}
    table = result.table(
        f"search: first page of 10 with total, mean of {len(queries)} two-word queries "
        f"(best of {options.repeat})",
        "index",
        "project ms",
        "with highlights ms",
        "raw Whoosh ms",
        "Haystack SQS ms",
        "project/raw",
        "Haystack/project",
    )
    for side in (sc.LATEST, sc.HISTORY):
        history = side == sc.HISTORY
        backend = sc.app_backend(side)
        searcher = windex.open_dir(backend.path).searcher()
        parser = QueryParser("text", backend.schema)  # Haystack's document field
        times = {"project": [], "highlight": [], "raw": [], "sqs": []}
        mismatched = 0
        for text in queries:
            t, page = best_of(
                lambda: search(text, history=history, page_size=10, highlight=False), options.repeat
            )
            times["project"].append(t)
            t, _ = best_of(lambda: search(text, history=history, page_size=10), options.repeat)
            times["highlight"].append(t)

            def raw():
                results = searcher.search(parser.parse(text), limit=10)
                return len(results), [hit.fields() for hit in results]

            t, (total, _) = best_of(raw, options.repeat)
            times["raw"].append(t)
            mismatched += total != page.total

            with stock_connections():

                def sqs():
                    found = SearchQuerySet(using=sc.stock_alias(side)).auto_query(text)
                    return list(found[:10]), found.count()

                t, _ = best_of(sqs, options.repeat)
            times["sqs"].append(t)
        searcher.close()
        mean = {k: statistics.fmean(v) for k, v in times.items()}
        table.add(
            side,
            ms(mean["project"]),
            ms(mean["highlight"]),
            ms(mean["raw"]),
            ms(mean["sqs"]),
            ratio(mean["project"], mean["raw"]),
            ratio(mean["sqs"], mean["project"]),
        )
        result.target(
            f"{side}: project time / raw Whoosh time", ratio(mean["project"], mean["raw"]), "<=", 1.5
        )
        result.target(
            f"{side}: Haystack SQS time / project time", ratio(mean["sqs"], mean["project"]), ">=", 10
        )
        if mismatched:
            result.notes.append(
                f"{side}: {mismatched} of {len(queries)} queries gave another total than raw Whoosh "
                "(the project also filters, e.g. leaves out delete markers in history)"
            )

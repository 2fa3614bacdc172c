"""Search: the first page of 10 with the total, on the latest and on the history index, on the
app's Whoosh engine and on its tantivy engine.

Each of the corpus's sample queries (two moderately common words) runs ``repeat`` times per
engine, the engines one after the other query by query (so that a busy moment of the machine
costs all of them alike); the best time of each query counts, and the table shows the mean over
queries.

- the app: ``search(q, page_size=10, highlight=False)`` (and with highlights, for information),
  on each engine's own index of the same documents;
- raw Whoosh: a searcher opened once on the Whoosh engine's index, the query parsed by a plain
  ``QueryParser`` on the document field (``text``), ``search(limit=10)``, ``len()`` for the
  total, stored fields read;
- raw tantivy: the same on the tantivy engine's index with tantivy's own API
  (:class:`benchmarks.engines.RawTantivy`);
- Haystack: ``SearchQuerySet(using=stock).auto_query(q)``, ``[:10]`` and ``count()``, on the
  stock connection holding the same documents.

Targets per index: the Whoosh engine <= 1.5x raw Whoosh's time, Haystack's time >= 10x the
Whoosh engine's; the tantivy engine <= 1.5x raw tantivy's time (issue 13).
"""

import statistics

from haystack.query import SearchQuerySet
from whoosh import index as windex
from whoosh.qparser import QueryParser

from .. import engines
from .. import search_corpus as sc
from ..env import stock_connections
from ..report import Result, ratio
from ..timing import best_of, ms

NEEDS_SEARCH = True


def run(options, result: Result) -> None:
    info = sc.ensure(options)
    sc.ensure_stock(options)
    have = sc.engines_ready(options, result)
    queries = sc.make(options).queries(options.queries)
    result.corpus = {k: v for k, v in info.items() if k != "load_s"}
    table = result.table(
        f"search: first page of 10 with total, mean of {len(queries)} two-word queries "
        f"(best of {options.repeat})",
        "index",
        "engine",
        "app ms",
        "with highlights ms",
        "raw library ms",
        "Haystack SQS ms",
        "app/raw",
        "Haystack/app",
        "Whoosh engine/this",
    )
    for side in (sc.LATEST, sc.HISTORY):
        times, mismatched = _measure(side, queries, have, options.repeat)
        mean = {k: statistics.fmean(v) for k, v in times.items()}
        whoosh = mean[(engines.WHOOSH, "app")]
        for engine in have:
            app, raw = mean[(engine, "app")], mean[(engine, "raw")]
            sqs = mean.get((engine, "sqs"), float("nan"))
            table.add(
                side,
                engine,
                ms(app),
                ms(mean[(engine, "highlight")]),
                ms(raw),
                ms(sqs),
                ratio(app, raw),
                ratio(sqs, app),
                ratio(whoosh, app),
            )
        raw = mean[(engines.WHOOSH, "raw")]
        result.target(f"{side}: project time / raw Whoosh time", ratio(whoosh, raw), "<=", 1.5)
        sqs = mean[(engines.WHOOSH, "sqs")]
        result.target(f"{side}: Haystack SQS time / project time", ratio(sqs, whoosh), ">=", 10)
        if engines.TANTIVY in have:
            app, raw = mean[(engines.TANTIVY, "app")], mean[(engines.TANTIVY, "raw")]
            result.target(f"{side}: tantivy engine time / raw tantivy time", ratio(app, raw), "<=", 1.5)
        for engine, count in mismatched.items():
            if count:
                result.notes.append(
                    f"{side}, {engine}: {count} of {len(queries)} queries gave another total than "
                    "the raw library (the app also filters, e.g. leaves out delete markers in history)"
                )


def _measure(side: str, queries: list[str], have: list[str], repeat: int) -> tuple[dict, dict]:
    """``({(engine, what): [best time per query]}, {engine: queries whose totals differ from
    the raw library's})``; ``what`` is app, highlight, raw or sqs (the Whoosh engine only)."""
    from versioned_items.search.api import search

    history = side == sc.HISTORY
    backend = sc.app_backend(side)
    searcher = windex.open_dir(backend.path).searcher()
    parser = QueryParser("text", backend.schema)  # Haystack's document field
    raw_tantivy = engines.raw_tantivy(side) if engines.TANTIVY in have else None
    times, mismatched = {}, dict.fromkeys(have, 0)

    def measure(engine, what, call):
        t, answer = best_of(call, repeat)
        times.setdefault((engine, what), []).append(t)
        return answer

    def raw_whoosh(text):
        results = searcher.search(parser.parse(text), limit=10)
        return len(results), [hit.fields() for hit in results]

    for text in queries:
        for engine in have:
            with engines.serving(engine):
                page = measure(
                    engine, "app", lambda: search(text, history=history, page_size=10, highlight=False)
                )
                measure(engine, "highlight", lambda: search(text, history=history, page_size=10))
            if engine == engines.WHOOSH:
                total, _ = measure(engine, "raw", lambda: raw_whoosh(text))
            else:
                total = measure(engine, "raw", lambda: raw_tantivy.page(text))
            mismatched[engine] += total != page.total
        with stock_connections():

            def sqs():
                found = SearchQuerySet(using=sc.stock_alias(side)).auto_query(text)
                return list(found[:10]), found.count()

            measure(engines.WHOOSH, "sqs", sqs)
    searcher.close()
    return times, mismatched

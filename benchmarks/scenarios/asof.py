"""Point-in-time search on the history index, against the same query without ``as_of``, on the
app's Whoosh engine, on its tantivy engine, and with raw tantivy.

``as_of=T`` keeps the versions that were current at T, ``mtime < T <= valid_until``. The Whoosh
engine checks that on the matched documents' sortable columns; the tantivy engine compiles it
into two range queries on fast fields, and raw tantivy (:class:`benchmarks.engines.RawTantivy`)
runs the same ranges with tantivy's own API. T is the middle of the corpus's history. The corpus
has ``--asof-size`` versions, 100k in a full run: the cost of the former range filters grew with
the history (21x the plain query at 8k documents, 107x at 200k). The engines alternate query by
query.

Targets: the as-of query takes <= 2x the time of the same history query without it on the
Whoosh engine, and <= 1.2x on the tantivy engine (issue 13).
"""

import copy
import statistics

from django.db.models import Max, Min

from .. import engines
from .. import search_corpus as sc
from ..report import Result, ratio
from ..timing import best_of, ms

NEEDS_SEARCH = True
#: the most time an as-of query may take, in plain queries, on each of the app's engines
THRESHOLDS = {engines.WHOOSH: 2, engines.TANTIVY: 1.2}


def run(options, result: Result) -> None:
    from versioned_items.models import Version
    from versioned_items.search.api import search

    options = copy.copy(options)
    options.size = options.asof_size
    info = sc.ensure(options)
    have = sc.engines_ready(options, result)
    if engines.TANTIVY in have:
        raw = engines.raw_tantivy(sc.HISTORY)
    queries = sc.make(options).queries(options.queries)
    span = Version.objects.aggregate(first=Min("mtime"), last=Max("mtime"))
    moment = span["first"] + (span["last"] - span["first"]) / 2
    result.corpus = {k: v for k, v in info.items() if k != "load_s"} | {"as of": moment.isoformat()}
    times, totals = {}, {}

    def measure(who, kind, call):
        t, total = best_of(call, options.repeat)
        times.setdefault((who, kind), []).append(t)
        totals[(who, kind)] = totals.get((who, kind), 0) + total

    for text in queries:
        for engine in have:
            with engines.serving(engine):
                measure(
                    engine, "plain", lambda: search(text, history=True, page_size=10, highlight=False).total
                )
                measure(
                    engine, "as-of", lambda: search(text, as_of=moment, page_size=10, highlight=False).total
                )
        if engines.TANTIVY in have:
            measure(engines.RAW, "plain", lambda: raw.page(text))
            measure(engines.RAW, "as-of", lambda: raw.page(text, moment))
    table = result.table(
        f"point-in-time search: first page of 10 with total, mean of {len(queries)} queries "
        f"(best of {options.repeat})",
        "who",
        "plain history ms",
        "as of the middle ms",
        "matches (sum: plain, as-of)",
        "as-of/plain",
    )
    for who in have + ([engines.RAW] if engines.TANTIVY in have else []):
        plain = statistics.fmean(times[(who, "plain")])
        as_of = statistics.fmean(times[(who, "as-of")])
        table.add(
            who,
            ms(plain),
            ms(as_of),
            f"{totals[(who, 'plain')]:,}, {totals[(who, 'as-of')]:,}",
            ratio(as_of, plain),
        )
        if who in THRESHOLDS:
            result.target(
                f"{who}: as-of time / plain history time", ratio(as_of, plain), "<=", THRESHOLDS[who]
            )

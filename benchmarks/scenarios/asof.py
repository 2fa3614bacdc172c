"""Point-in-time search on the history index, against the same query without ``as_of``.

``as_of=T`` keeps the versions that were current at T, ``mtime < T <= valid_until`` (checked on
the matched documents' sortable columns). T is the middle of the corpus's history. The corpus
has ``--asof-size`` versions, 100k in a full run: the cost of the former range filters grew with
the history (21x the plain query at 8k documents, 107x at 200k). Target: the as-of query takes
<= 2x the time of the same history query without it."""

import copy
import statistics

from django.db.models import Max, Min

from .. import search_corpus as sc
from ..report import Result, ratio
from ..timing import best_of, ms

NEEDS_SEARCH = True


def run(options, result: Result) -> None:
    from versioned_items.models import Version
    from versioned_items.search.api import search

    options = copy.copy(options)
    options.size = options.asof_size
    info = sc.ensure(options)
    queries = sc.make(options).queries(options.queries)
    span = Version.objects.aggregate(first=Min("mtime"), last=Max("mtime"))
    moment = span["first"] + (span["last"] - span["first"]) / 2
    result.corpus = {k: v for k, v in info.items() if k != "load_s"} | {"as of": moment.isoformat()}
    plain, as_of, totals = [], [], [0, 0]
    for text in queries:
        t, page = best_of(lambda: search(text, history=True, page_size=10, highlight=False), options.repeat)
        plain.append(t)
        totals[0] += page.total
        t, page = best_of(lambda: search(text, as_of=moment, page_size=10, highlight=False), options.repeat)
        as_of.append(t)
        totals[1] += page.total
    table = result.table(
        f"point-in-time search: first page of 10 with total, mean of {len(queries)} queries",
        "query",
        "ms",
        "matches (sum)",
        "as-of/plain",
    )
    a, p = statistics.fmean(as_of), statistics.fmean(plain)
    table.add("history, no as_of", ms(p), totals[0], 1.0)
    table.add("history, as_of middle", ms(a), totals[1], ratio(a, p))
    result.target("as-of time / plain history time", ratio(a, p), "<=", 2)

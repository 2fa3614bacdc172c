"""Search latency as the history grows: p50 and p95 at each size (10k, 100k, 1M versions).

For each size the store is rebuilt with :func:`benchmarks.bulk.load_tree` (four versions per
item: three in HISTORY, the current one NORMAL; contents from a pool of texts of the synthetic
vocabulary), and both indexes are built by ``indexing.rebuild(procs=2)`` (its time is shown).
Then every sample query runs ``repeat`` times as the site runs it: ``search(q, page_size=10)``
with highlights, on the latest and on the history index. No baseline: the figures to read are
how p50 and p95 move with the size.
"""

from .. import bulk
from ..corpus import SyntheticCorpus
from ..env import Timer, reset_store
from ..report import Result
from ..timing import ms, percentile

NEEDS_SEARCH = True
VERSIONS_PER_ITEM = 4


def run(options, result: Result) -> None:
    import time

    from versioned_items.search import indexing
    from versioned_items.search.api import search

    queries = SyntheticCorpus(1, seed=options.seed).queries(options.queries)
    table = result.table(
        f"search latency, page of 10 with total and highlights, {len(queries)} queries x {options.repeat}",
        "versions",
        "items",
        "rebuild s",
        "latest p50 ms",
        "latest p95 ms",
        "history p50 ms",
        "history p95 ms",
    )
    for versions in options.latency_sizes:
        reset_store()
        files = max(1, versions // VERSIONS_PER_ITEM)
        size = bulk.load_tree(
            "lat",
            files,
            dirs=max(1, files // 50),
            versions=VERSIONS_PER_ITEM,
            pool=min(5000, max(100, files // 10)),
            seed=options.seed,
        )
        with Timer() as rebuild:
            indexing.rebuild(procs=2)
        row = [size["versions"], files, rebuild.seconds]
        for history in (False, True):
            search(queries[0], history=history, page_size=10)  # open the searcher
            latencies = []
            for text in queries:
                for _ in range(options.repeat):
                    start = time.perf_counter()
                    search(text, history=history, page_size=10)
                    latencies.append(time.perf_counter() - start)
            row += [ms(percentile(latencies, 50)), ms(percentile(latencies, 95))]
        table.add(*row)
    result.corpus = {
        "sizes": ", ".join(f"{n:,}" for n in options.latency_sizes),
        "versions per item": VERSIONS_PER_ITEM,
    }

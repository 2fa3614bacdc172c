"""Search latency as the history grows: p50 and p95 at each size, on the app's Whoosh engine
and on its tantivy engine.

For each size the store is rebuilt with :func:`benchmarks.bulk.load_tree` (four versions per
item: three in HISTORY, the current one NORMAL; contents from a pool of texts of the synthetic
vocabulary), and each engine's two indexes are built by ``indexing.rebuild(procs=2)`` (its time
is shown; tantivy indexes with its writer's threads whatever ``procs``). Then every sample
query runs ``repeat`` times as the site runs it: ``search(q, page_size=10)`` with highlights,
on the latest and on the history index. No baseline: the figures to read are how p50 and p95
move with the size, and the engines side by side at one size.

The Whoosh engine runs the sizes of ``--latency-sizes`` (10k and 100k in a full run: its
rebuild of the 1M size takes about an hour here), the tantivy engine those of
``--tantivy-latency-sizes`` (10k, 100k and 1M). "size s" is everything one engine's run of a
size costs: the bulk load of the store (once per size, counted for each engine that runs it),
the rebuild and the queries.

Target (issue 13): the 1M-version size runs on the tantivy engine in under 15 minutes.
"""

import time

from .. import bulk, engines
from ..corpus import SyntheticCorpus
from ..env import Timer, reset_store
from ..report import Result
from ..timing import ms, percentile

NEEDS_SEARCH = True
VERSIONS_PER_ITEM = 4
BIG = 1_000_000  # the size whose whole run on tantivy has a target
BIG_SECONDS = 15 * 60


def run(options, result: Result) -> None:
    queries = SyntheticCorpus(1, seed=options.seed).queries(options.queries)
    sizes = {engines.WHOOSH: options.latency_sizes}
    if engines.TANTIVY in engines.available():
        sizes[engines.TANTIVY] = options.tantivy_latency_sizes
    else:
        result.notes.append(engines.skipped_note())
    table = result.table(
        f"search latency, page of 10 with total and highlights, {len(queries)} queries x {options.repeat}",
        "versions",
        "items",
        "engine",
        "load s",
        "rebuild s",
        "size s",
        "latest p50 ms",
        "latest p95 ms",
        "history p50 ms",
        "history p95 ms",
    )
    for versions in sorted({n for ns in sizes.values() for n in ns}):
        size, load = _load(versions, options.seed)
        for engine, ns in sizes.items():
            if versions not in ns:
                continue
            with engines.serving(engine):
                row = _measure(queries, options.repeat)
            seconds = load + row["rebuild"] + row["queries"]
            table.add(
                size["versions"],
                size["files"],
                engine,
                load,
                row["rebuild"],
                seconds,
                *row["latencies"],
            )
            if engine == engines.TANTIVY and versions >= BIG:
                result.target(
                    f"{versions:,} versions on the tantivy engine: load, rebuild and queries",
                    seconds,
                    "<=",
                    BIG_SECONDS,
                    unit=" s",
                )
    result.corpus = {
        engine: ", ".join(f"{n:,}" for n in ns) + " versions" for engine, ns in sizes.items() if ns
    } | {"versions per item": VERSIONS_PER_ITEM}


def _load(versions: int, seed: int) -> tuple[dict, float]:
    """A fresh store of ``versions`` versions (empty indexes); its size and the seconds taken."""
    with Timer() as t:
        reset_store()
        files = max(1, versions // VERSIONS_PER_ITEM)
        size = bulk.load_tree(
            "lat",
            files,
            dirs=max(1, files // 50),
            versions=VERSIONS_PER_ITEM,
            pool=min(5000, max(100, files // 10)),
            seed=seed,
        )
    return size | {"files": files}, t.seconds


def _measure(queries: list[str], repeat: int) -> dict:
    """Rebuild the served engine's indexes, then time the queries on each index."""
    from versioned_items.search import indexing
    from versioned_items.search.api import search

    with Timer() as rebuild:
        indexing.rebuild(procs=2)
    latencies = []
    with Timer() as spent:
        for history in (False, True):
            search(queries[0], history=history, page_size=10)  # open the searcher
            times = []
            for text in queries:
                for _ in range(repeat):
                    start = time.perf_counter()
                    search(text, history=history, page_size=10)
                    times.append(time.perf_counter() - start)
            latencies += [ms(percentile(times, 50)), ms(percentile(times, 95))]
    return {"rebuild": rebuild.seconds, "queries": spent.seconds, "latencies": latencies}

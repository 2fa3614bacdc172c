"""Listing a page of 1,000 with the ``/`` delimiter as the tree grows.

For each size the store is rebuilt with :func:`benchmarks.bulk.load_tree` (2,500 folders, the
files spread over them, a file next to every 4th folder), then the first page and a page from
the middle (by marker) are listed below the tree's root by ``api.list_latest`` and by the port
of the origin's loop. Both must return the same entries; the table shows time per page and
queries per page. Targets: the project's time per page at the largest size is within 1.5x of
the smallest (flat), and its query count is the same at every size.

On PostgreSQL the project's page is also timed with ``SET jit = off``: the listing statement's
cost estimate passes ``jit_above_cost``, and compiling it can take longer than running it.
"""

from contextlib import contextmanager

from django.db import connection

from versioned_items import api

from .. import bulk
from ..baselines.origin_listing import origin_list
from ..env import reset_store
from ..report import Result, ratio
from ..timing import best_of, count_queries, ms

ROOT = "lst"
PAGE = 1000
DIRS = 2500


def run(options, result: Result) -> None:
    sizes = options.listing_sizes
    table = result.table(
        f"listing: page of {PAGE} with delimiter '/' below '{ROOT}' ({DIRS:,} folders)",
        "nodes",
        "page",
        "project ms",
        "project queries",
        "project ms, jit off",
        "origin ms",
        "origin queries",
        "project/origin",
        "same page",
    )
    per_size = {}
    for files in sizes:
        reset_store()
        size = bulk.load_tree(ROOT, files, dirs=DIRS, versions=1, seed=options.seed)
        if files == sizes[0]:
            differences = bulk.verify()
            if differences:
                result.notes.append(f"bulk corpus is not a valid store: {differences[:3]}")
        first = api.list_latest(ROOT, delimiter="/", limit=PAGE)
        pages = {"first": None, "middle": first.next_marker}
        for label, marker in pages.items():
            project_s, _ = best_of(
                lambda: api.list_latest(ROOT, delimiter="/", marker=marker, limit=PAGE),
                repeat=max(10, 3 * options.repeat),
            )
            project_q, page = count_queries(
                lambda: api.list_latest(ROOT, delimiter="/", marker=marker, limit=PAGE)
            )
            no_jit = float("nan")
            if connection.vendor == "postgresql":
                with _jit_off():
                    no_jit, _ = best_of(
                        lambda: api.list_latest(ROOT, delimiter="/", marker=marker, limit=PAGE),
                        repeat=max(10, 3 * options.repeat),
                    )
            origin_s, (origin_page, origin_q) = best_of(
                lambda: origin_list(ROOT, marker=marker, limit=PAGE), repeat=max(1, options.repeat // 2)
            )
            same = (
                [e.path for e in page.objects] == [e.path for e in origin_page.objects]
                and page.prefixes == origin_page.prefixes
                and page.next_marker == origin_page.next_marker
            )
            table.add(
                size["nodes"],
                label,
                ms(project_s),
                project_q,
                ms(no_jit),
                ms(origin_s),
                origin_q,
                ratio(project_s, origin_s),
                "yes" if same else "NO",
            )
            per_size.setdefault(files, {})[label] = (project_s, project_q, size["nodes"], no_jit)
            if not same:
                result.notes.append(f"pages differ at {size['nodes']:,} nodes ({label})")
    result.corpus = {"sizes": ", ".join(f"{n:,}" for n in sizes), "folders": DIRS}
    small, large = per_size[sizes[0]], per_size[sizes[-1]]
    if len(sizes) > 1:
        growth = max(large[k][0] / small[k][0] for k in small)
        result.target(
            f"time per page, {large['first'][2]:,} vs {small['first'][2]:,} nodes", growth, "<=", 1.5
        )
        if connection.vendor == "postgresql":
            growth = max(large[k][3] / small[k][3] for k in small)
            result.target("the same with jit off", growth, "<=", 1.5)
    counts = {q for pages in per_size.values() for (_, q, _, _) in pages.values()}
    result.target("distinct query counts per page across sizes", len(counts), "<=", 1, unit="")


@contextmanager
def _jit_off():
    with connection.cursor() as cursor:
        cursor.execute("SET jit = off")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("RESET jit")

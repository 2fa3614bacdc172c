"""The tantivy engine side by side with the app's Whoosh engine and with raw tantivy.

On the search corpus's history documents (one per version, ``--size`` versions):

- bulk indexing into a fresh index, one writer and one commit:
  - the Whoosh engine and the tantivy engine: ``backend.apply(index, objects)``, which is what
    the outbox applier calls (Haystack's ``full_prepare`` of each object included; the objects
    come with their sources and texts, so no query and no extraction is timed);
  - raw tantivy: the tantivy engine's own documents (prepared untimed), ``Document.from_dict``
    and ``add_document`` into a fresh index of the same schema, one commit;
- search, first page of 10 with the total, two-word queries (both words required), and the
  same queries as of the middle of the history (``mtime < T <= valid_until``):
  - the Whoosh engine: ``search(q, history=True, page_size=10, highlight=False)`` on the app's
    index;
  - the tantivy engine: the same call on the index built above. Until the app's search has its
    tantivy hooks, this goes through Haystack's SearchQuerySet (``query.run_haystack``);
  - raw tantivy: ``Index.parse_query`` (conjunction) on the document field, the same cluster and
    validity filters as range queries on fast fields, ``search(limit=10, count=True)``, stored
    fields of the 10 hits.

Targets (issue 13): tantivy engine >= 10x the Whoosh engine's bulk speed and >= 0.7x raw
tantivy's; first page with total <= 1.5x raw tantivy's time; point-in-time <= 1.2x the plain
query. Skipped, not failed, when tantivy is not installed.

Until ``benchmarks.SCENARIOS`` names it, run it alone with
``python -m benchmarks.scenarios.tantivy [--smoke] [other options of python -m benchmarks]``.
"""

import os
import shutil
import statistics
import sys
from contextlib import contextmanager
from datetime import UTC

from ..report import Result, ratio
from ..timing import best_of, ms

NEEDS_SEARCH = True

WHOOSH_ENGINE = "versioned_items.search.backends.WhooshEngine"
TANTIVY_ENGINE = "versioned_items.search.backends.tantivy.TantivyEngine"


def run(options, result: Result) -> None:
    try:
        import tantivy  # noqa: F401
    except ImportError:
        result.notes.append("skipped: tantivy is not installed (pip install 'versioned-items[tantivy]')")
        return
    from django.conf import settings
    from django.db.models import Max, Min

    from versioned_items.models import Version

    from .. import search_corpus as sc

    info = sc.ensure(options)
    result.corpus = {k: v for k, v in info.items() if k != "load_s"}
    objects = sc.objects(sc.HISTORY)
    work = os.path.join(settings.HAYSTACK_CONNECTIONS["vi_history"]["PATH"] + ".tantivy-bench")
    shutil.rmtree(work, ignore_errors=True)
    try:
        bulk = _bulk(objects, work)
        table = result.table(
            f"bulk indexing: {len(objects):,} history documents, one writer, one commit",
            "who",
            "seconds",
            "documents/s",
            "index MB",
            "tantivy engine/this (speed)",
        )
        rates = {who: len(objects) / row["seconds"] for who, row in bulk.items()}
        for who, row in bulk.items():
            table.add(who, row["seconds"], rates[who], row["mb"], ratio(rates["tantivy engine"], rates[who]))
        result.target(
            "bulk: tantivy engine vs Whoosh engine (speed)",
            ratio(rates["tantivy engine"], rates["Whoosh engine"]),
            ">=",
            10,
        )
        result.target(
            "bulk: tantivy engine vs raw tantivy (speed)",
            ratio(rates["tantivy engine"], rates["raw tantivy"]),
            ">=",
            0.7,
        )

        span = Version.objects.aggregate(first=Min("mtime"), last=Max("mtime"))
        moment = span["first"] + (span["last"] - span["first"]) / 2
        queries = sc.make(options).queries(options.queries)
        times, totals = _queries(queries, moment, os.path.join(work, "tantivy"), options.repeat)
        table = result.table(
            f"search on history: first page of 10 with total, mean of {len(queries)} two-word queries "
            f"(best of {options.repeat}); as of {moment.isoformat()}",
            "who",
            "plain ms",
            "as-of ms",
            "as-of/plain",
            "matches (plain, as-of)",
            "tantivy engine/this (time)",
        )
        mean = {key: statistics.fmean(values) for key, values in times.items()}
        for who in ("Whoosh engine", "tantivy engine", "raw tantivy"):
            plain, as_of = mean[(who, "plain")], mean[(who, "as-of")]
            table.add(
                who,
                ms(plain),
                ms(as_of),
                ratio(as_of, plain),
                f"{totals[(who, 'plain')]:,}, {totals[(who, 'as-of')]:,}",
                ratio(mean[("tantivy engine", "plain")], plain),
            )
        engine_plain = mean[("tantivy engine", "plain")]
        result.target(
            "search: tantivy engine time / raw tantivy time",
            ratio(engine_plain, mean[("raw tantivy", "plain")]),
            "<=",
            1.5,
        )
        result.target(
            "search: tantivy engine as-of time / its plain time",
            ratio(mean[("tantivy engine", "as-of")], engine_plain),
            "<=",
            1.2,
        )
        for kind in ("plain", "as-of"):
            whoosh, engine = totals[("Whoosh engine", kind)], totals[("tantivy engine", kind)]
            if whoosh != engine:
                result.notes.append(
                    f"{kind}: the Whoosh engine found {whoosh:,} matches, the tantivy engine "
                    f"{engine:,} (their text analyzers differ: docs/tantivy.md)"
                )
            if engine != totals[("raw tantivy", kind)]:
                result.notes.append(f"{kind}: the tantivy engine and raw tantivy found different totals")
    finally:
        shutil.rmtree(work, ignore_errors=True)


@contextmanager
def _serving_history(alias: str, engine: str, path: str):
    """The app's history connection is ``alias`` (engine ``engine``, folder ``path``) meanwhile."""
    from django.conf import settings
    from django.test import override_settings
    from haystack import connections

    connections.connections_info[alias] = {"ENGINE": engine, "PATH": path}
    connections.reload(alias)
    try:
        with override_settings(VERSIONED_ITEMS=settings.VERSIONED_ITEMS | {"HISTORY_CONNECTION": alias}):
            yield connections[alias].get_backend()
    finally:
        connections.reload(alias)
        connections.connections_info.pop(alias, None)


def _history_index():
    from versioned_items.search.indexing import history_side

    return history_side().index


def _bulk(objects: list, work: str) -> dict:
    """``{who: {"seconds", "mb"}}`` of writing ``objects`` into fresh indexes."""
    import tantivy

    from ..env import Timer

    found = {}
    for who, alias, engine in (
        ("Whoosh engine", "bench_whoosh", WHOOSH_ENGINE),
        ("tantivy engine", "bench_tantivy", TANTIVY_ENGINE),
    ):
        path = os.path.join(work, alias)
        with _serving_history(alias, engine, path) as backend:
            backend.ensure_index()
            index = _history_index()
            with Timer() as t:
                backend.apply(index, objects)
            found[who] = {"seconds": t.seconds, "mb": _megabytes(path)}
            if who == "tantivy engine":
                docs = [backend.tantivy_document(index.full_prepare(obj)) for obj in objects]
                schema, heap, threads = backend.tantivy_schema, backend.heap_size, backend.threads
        if who == "tantivy engine":
            os.replace(path, os.path.join(work, "tantivy"))  # searched below
    path = os.path.join(work, "raw")
    os.makedirs(path)
    from versioned_items.search.backends import tantivy_fields

    with Timer() as t:
        ix = tantivy.Index(schema, path=path)
        tantivy_fields.register(ix)
        writer = ix.writer(heap_size=heap, num_threads=threads)
        for doc in docs:
            writer.add_document(tantivy.Document.from_dict(doc, schema))
        writer.commit()
        writer.wait_merging_threads()
    found["raw tantivy"] = {"seconds": t.seconds, "mb": _megabytes(path)}
    return found


def _queries(queries: list[str], moment, tantivy_path: str, repeat: int) -> tuple[dict, dict]:
    from versioned_items.search.api import search

    times, totals = {}, {}

    def measure(who, kind, call):
        t, total = best_of(call, repeat)
        times.setdefault((who, kind), []).append(t)
        totals[(who, kind)] = totals.get((who, kind), 0) + total

    def app(text, **kwargs):
        return lambda: search(text, history=True, page_size=10, highlight=False, **kwargs).total

    for text in queries:
        measure("Whoosh engine", "plain", app(text))
        measure("Whoosh engine", "as-of", app(text, as_of=moment))
    with _serving_history("bench_tantivy", TANTIVY_ENGINE, tantivy_path):
        for text in queries:
            measure("tantivy engine", "plain", app(text))
            measure("tantivy engine", "as-of", app(text, as_of=moment))
    raw = _RawTantivy(tantivy_path)
    for text in queries:
        measure("raw tantivy", "plain", lambda: raw.page(text))
        measure("raw tantivy", "as-of", lambda: raw.page(text, moment))
    return times, totals


class _RawTantivy:
    """The history index searched with tantivy's own API: what the engine should cost."""

    def __init__(self, path: str):
        import tantivy

        from versioned_items.search.backends import tantivy_fields

        self.tantivy = tantivy
        self.index = tantivy.Index.open(path)
        tantivy_fields.register(self.index)
        self.schema = self.index.schema
        self.searcher = self.index.searcher()

    def page(self, text: str, moment=None) -> int:
        from whoosh.util.times import datetime_to_long

        from versioned_items.models import Cluster

        t, Q = self.tantivy, self.tantivy.Query
        q = self.index.parse_query(text, ["text"], conjunction_by_default=True)
        deleted = Q.term_query(self.schema, "cluster", int(Cluster.DELETED))
        clauses = [(t.Occur.Must, q), (t.Occur.MustNot, deleted)]
        if moment is not None:
            at = datetime_to_long(moment.astimezone(UTC).replace(tzinfo=None))
            written = Q.range_query(self.schema, "mtime", t.FieldType.Integer, None, at, include_upper=False)
            valid = Q.range_query(self.schema, "valid_until", t.FieldType.Integer, at, None)
            clauses += [(t.Occur.Must, written), (t.Occur.Must, valid)]
        found = self.searcher.search(Q.boolean_query(clauses), 10, count=True)
        for _, address in found.hits:
            self.searcher.doc(address).to_dict()
        return found.count


def _megabytes(path: str) -> float:
    total = 0
    for folder, _, files in os.walk(path):
        total += sum(os.path.getsize(os.path.join(folder, name)) for name in files)
    return total / 1e6


if __name__ == "__main__":
    from benchmarks import SCENARIOS
    from benchmarks.__main__ import main

    SCENARIOS.setdefault("tantivy", "tantivy")
    sys.exit(main(["--scenario", "tantivy", *sys.argv[1:]]))

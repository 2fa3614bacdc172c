"""Bulk indexing: the app's tantivy engine side by side with its Whoosh engine and raw tantivy.

The search corpus's documents (latest and history, ``--size`` versions) are written into fresh
indexes, one writer and one commit per index:

- the Whoosh engine and the tantivy engine: ``backend.apply(index, objects)``, which is what
  the outbox applier and the rebuild call (Haystack's ``full_prepare`` of each object included;
  the objects come with their sources and texts, so no query and no extraction is timed);
- raw tantivy: the tantivy engine's own documents (prepared untimed), ``Document.from_dict`` and
  ``add_document`` into a fresh index of the same schema, with the engine's writer heap and
  threads, one commit.

The search side of issue 13 (first page with total, point-in-time) is measured by the
``search`` and ``asof`` scenarios, on both engines.

Targets (issue 13): the tantivy engine >= 10x the Whoosh engine's bulk speed and >= 0.7x raw
tantivy's. Skipped, not failed, when tantivy is not installed.
"""

import os
import shutil
from contextlib import contextmanager

from .. import engines
from .. import search_corpus as sc
from ..env import Timer
from ..report import Result, ratio

NEEDS_SEARCH = True


def run(options, result: Result) -> None:
    from django.conf import settings

    if engines.TANTIVY not in engines.available():
        result.notes.append(engines.skipped_note())
        return
    info = sc.ensure(options)
    result.corpus = {k: v for k, v in info.items() if k != "load_s"}
    objects = {side: sc.objects(side) for side in (sc.LATEST, sc.HISTORY)}
    work = os.path.join(settings.WORK_DIR, "bulk-bench")
    shutil.rmtree(work, ignore_errors=True)
    try:
        found = _bulk(objects, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    docs = sum(len(v) for v in objects.values())
    table = result.table(
        f"bulk indexing: {len(objects[sc.LATEST]):,} latest + {len(objects[sc.HISTORY]):,} history "
        "documents, one writer and one commit per index",
        "who",
        "seconds",
        "documents/s",
        "index MB",
        "tantivy engine/this (speed)",
    )
    rates = {who: docs / row["seconds"] for who, row in found.items()}
    for who, row in found.items():
        table.add(who, row["seconds"], rates[who], row["mb"], ratio(rates[engines.TANTIVY], rates[who]))
    result.target(
        "bulk: tantivy engine vs Whoosh engine (speed)",
        ratio(rates[engines.TANTIVY], rates[engines.WHOOSH]),
        ">=",
        10,
    )
    result.target(
        "bulk: tantivy engine vs raw tantivy (speed)",
        ratio(rates[engines.TANTIVY], rates[engines.RAW]),
        ">=",
        0.7,
    )


def _bulk(objects: dict, work: str) -> dict:
    """``{who: {"seconds", "mb"}}`` of writing ``objects`` (``{side: [...]}``) into fresh indexes."""
    from django.conf import settings

    found, raw_docs = {}, {}
    for who, engine in ((engines.WHOOSH, settings.APP_ENGINE), (engines.TANTIVY, settings.TANTIVY_ENGINE)):
        folder = os.path.join(work, who.replace(" ", "-"))
        seconds = 0.0
        with _fresh_indexes(engine, folder) as sides:
            for side in sides:
                side.backend.ensure_index()
                with Timer() as t:
                    side.backend.apply(side.index, objects[side.name])
                seconds += t.seconds
                if engine == settings.TANTIVY_ENGINE:
                    backend, index = side.backend, side.index
                    prepared = [backend.tantivy_document(index.full_prepare(o)) for o in objects[side.name]]
                    raw_docs[side.name] = (backend, prepared)
        found[who] = {"seconds": seconds, "mb": _megabytes(folder)}
    folder = os.path.join(work, "raw")
    seconds = sum(
        _raw(backend, docs, os.path.join(folder, name)) for name, (backend, docs) in raw_docs.items()
    )
    found[engines.RAW] = {"seconds": seconds, "mb": _megabytes(folder)}
    return found


def _raw(backend, docs: list[dict], path: str) -> float:
    """Seconds to write ``docs`` with tantivy's own API into a fresh index of ``backend``'s schema."""
    import tantivy

    os.makedirs(path)
    schema = backend.tantivy_schema
    with Timer() as t:
        _, writer = engines.raw_writer(backend, path)
        for doc in docs:
            writer.add_document(tantivy.Document.from_dict(doc, schema))
        writer.commit()
        writer.wait_merging_threads()
    return t.seconds


@contextmanager
def _fresh_indexes(engine: str, folder: str):
    """Meanwhile the app's two indexes are new connections of ``engine`` in ``folder``; yields
    the two sides."""
    from django.conf import settings
    from django.test import override_settings
    from haystack import connections

    from versioned_items.search.indexing import sides

    aliases = {"LATEST_CONNECTION": "bench_latest", "HISTORY_CONNECTION": "bench_history"}
    for alias in aliases.values():
        connections.connections_info[alias] = {"ENGINE": engine, "PATH": os.path.join(folder, alias)}
        connections.reload(alias)
    try:
        with override_settings(VERSIONED_ITEMS=settings.VERSIONED_ITEMS | aliases):
            yield sides()
    finally:
        for alias in aliases.values():
            connections.reload(alias)
            connections.connections_info.pop(alias, None)


def _megabytes(path: str) -> float:
    total = 0
    for folder, _, files in os.walk(path):
        total += sum(os.path.getsize(os.path.join(folder, name)) for name in files)
    return total / 1e6

"""Realtime indexing: single-version transactions, on the app's Whoosh engine and on its
tantivy engine, against Haystack's realtime signal processor.

Saves until visible, one at a time: ``realtime_count`` ``api.put`` calls in this process, each
followed by ``wait_for_index()``, so that every save is searchable before the next starts (a
round of the outbox per save: one writer and one commit per index). The rate is saves over the
whole time. The engines alternate in slices of a tenth of the saves, so that a busy moment of
the machine costs both alike. Raw tantivy is the floor of a save on tantivy: the tantivy
engine's documents of as many versions and their items, each pair written with tantivy's own
API by one long-lived writer per index, one commit per index per save, into fresh indexes of
the same schemas holding the corpus.

Concurrent saves, from 1 and from 4 processes at once: each process runs ``realtime_count``
``api.put`` calls, each its own transaction, on paths of its own and on paths all processes
share (see :func:`benchmarks.worker.realtime`).

- the app, on each engine: the outbox and the background applier (group commit); a process's
  time ends when it has waited for its writes to be searchable (``wait_for_index``).
  Afterwards ``indexing.check`` must find no difference between the indexes and the database.
- Haystack: the realtime signal processor's per-save path (``handle_save`` for every changed
  node and version, one writer and one commit each, see
  :class:`benchmarks.baselines.stock_haystack.ApiRealtimeSignalProcessor`) on the stock
  connections, without the outbox.

The rate is all writes over the slowest process's time. Errors raised to callers and errors
Haystack logged and swallowed are counted. Each engine's indexes catch up with the other's
writes (``update_index``, untimed) before it is measured.

Targets: saves until visible on the tantivy engine >= 3x the Whoosh engine's rate (issue 13);
the Whoosh engine >= 5x Haystack's rate for 1 and 4 processes; no LockError (nor any other
error) in the app's processes, on either engine.
"""

import os
import shutil
import time

from .. import engines
from .. import search_corpus as sc
from ..env import Timer, collect, start_worker
from ..report import Result, ratio

NEEDS_SEARCH = True
STOCK_PROCESSOR = "benchmarks.baselines.stock_haystack.ApiRealtimeSignalProcessor"
SLICES = 10


def run(options, result: Result) -> None:
    info = sc.ensure(options)
    sc.ensure_stock(options)
    have = sc.engines_ready(options, result)
    result.corpus = {k: v for k, v in info.items() if k != "load_s"}
    _one_by_one(options.realtime_count, have, result)
    _concurrent(options.realtime_count, have, result)
    for engine in have:
        _catch_up(engine)


def _catch_up(engine: str) -> None:
    """The indexes of ``engine`` get the writes made while the other engine was served."""
    from versioned_items.search import indexing

    with engines.serving(engine):
        indexing.update_index()


def _one_by_one(count: int, have: list[str], result: Result) -> None:
    """Saves until visible, one at a time, on each engine."""
    from versioned_items import api
    from versioned_items.search.indexing import wait_for_index

    from ..corpus import SyntheticCorpus

    corpus = SyntheticCorpus(50, seed=99)
    for engine in have:
        _catch_up(engine)
    seconds = dict.fromkeys(have, 0.0)
    per_slice = max(1, count // SLICES)
    for start in range(0, count, per_slice):
        for engine in have:
            with engines.serving(engine), Timer() as t:
                for i in range(start, min(count, start + per_slice)):
                    data, ctype = corpus.content(i % 50, i)
                    api.put(f"rt/one/{engine.split()[0]}/f{i % 20}", data, user="one", content_type=ctype)
                    wait_for_index()
            seconds[engine] += t.seconds
    table = result.table(
        f"saves until visible: {count} api.put, each followed by wait_for_index()",
        "engine",
        "saves/s",
        "ms per save",
        "this/Whoosh engine",
    )
    if engines.TANTIVY in have:
        seconds[engines.RAW] = _raw_saves(count)
    rates = {who: count / s for who, s in seconds.items()}
    for who, rate in rates.items():
        table.add(who, rate, 1000 * seconds[who] / count, ratio(rate, rates[engines.WHOOSH]))
    if engines.TANTIVY in have:
        result.target(
            "saves until visible: tantivy engine rate / Whoosh engine rate",
            ratio(rates[engines.TANTIVY], rates[engines.WHOOSH]),
            ">=",
            3,
        )


def _raw_saves(count: int) -> float:
    """Seconds for ``count`` saves with raw tantivy (see above)."""
    import tantivy
    from django.conf import settings

    from versioned_items.search.indexing import sides

    writers, saves = [], []
    with engines.serving(engines.TANTIVY):
        for side in sides():
            backend, index = side.backend, side.index
            objects = sc.objects(side.name)
            docs = [backend.tantivy_document(index.full_prepare(obj)) for obj in objects]
            schema = backend.tantivy_schema
            path = os.path.join(settings.WORK_DIR, f"raw-saves-{side.name}")
            shutil.rmtree(path, ignore_errors=True)
            os.makedirs(path)
            _, writer = engines.raw_writer(backend, path)
            for doc in docs:
                writer.add_document(tantivy.Document.from_dict(doc, schema))
            writer.commit()  # the corpus, untimed
            writers.append((path, writer))
            saves.append([tantivy.Document.from_dict(docs[i % len(docs)], schema) for i in range(count)])
    try:
        with Timer() as t:
            for i in range(count):
                for (_, writer), docs in zip(writers, saves, strict=True):
                    writer.add_document(docs[i])
                    writer.commit()
            for _, writer in writers:
                writer.wait_merging_threads()
    finally:
        for path, _ in writers:
            shutil.rmtree(path, ignore_errors=True)
    return t.seconds


def _concurrent(count: int, have: list[str], result: Result) -> None:
    from django.conf import settings

    from versioned_items.models import Version
    from versioned_items.search import indexing

    table = result.table(
        f"realtime: {count} single-version transactions per process",
        "processes",
        "who",
        "writes/s",
        "seconds",
        "errors to callers",
        "errors logged",
        "index check",
        "this/Haystack",
    )
    for procs in (1, 4):
        rounds = {}
        for engine in have:
            _catch_up(engine)  # and the previous round's stock writes (untimed)
            rounds[engine] = _round(procs, count, settings.WORK_DIR, engines.child_env_of(engine))
            with engines.serving(engine):
                check = indexing.check()
            rounds[engine]["check"] = (
                "0 differences" if check.diff.count == 0 else f"{check.diff.count} differences"
            )
            _report_errors(f"{procs} process(es), {engine}", rounds[engine], check, result)
        before = Version.objects.order_by("-serial").values_list("serial", flat=True).first() or 0
        stock = _round(
            procs,
            count,
            settings.WORK_DIR,
            {"VI_BENCH_STOCK": "1", "VI_BENCH_SIGNAL_PROCESSOR": STOCK_PROCESSOR},
        )
        stock["check"] = f"{_missing_history(before)} versions missing"
        for who, r in [*rounds.items(), ("Haystack realtime", stock)]:
            table.add(
                procs,
                who,
                r["rate"],
                r["seconds"],
                _fmt(r["errors"]),
                _fmt(r["logged"]),
                r["check"],
                ratio(r["rate"], stock["rate"]),
            )
        whoosh = rounds[engines.WHOOSH]
        result.target(
            f"{procs} process(es): project rate / Haystack rate",
            ratio(whoosh["rate"], stock["rate"]),
            ">=",
            5,
        )
        for engine, r in rounds.items():
            name = "project" if engine == engines.WHOOSH else engine
            result.target(f"{procs} process(es): LockErrors in the {name}", _lock_errors(r), "<=", 0, unit="")


def _lock_errors(r: dict) -> int:
    return sum(n for k, n in {**r["errors"], **r["logged"]}.items() if "Lock" in k)


def _report_errors(label: str, r: dict, check, result: Result) -> None:
    """A note with the errors other than LockErrors and the index differences, if any."""
    other = sum(r["errors"].values()) + sum(r["logged"].values()) - _lock_errors(r)
    if not (other or check.diff.count):
        return
    sides = {
        name: {k: sorted(getattr(getattr(check.diff, name), k))[:5] for k in ("missing", "stale", "changed")}
        for name in ("latest", "history")
    }
    result.notes.append(
        f"{label}: errors {r['errors']} {r['logged']}, index differences {check.diff.count}: {sides}"
    )


def _round(procs: int, count: int, workdir, env: dict) -> dict:
    start_file = workdir / f"realtime-start-{time.monotonic_ns()}"
    workers = [start_worker("realtime", w, count, start_file, **env) for w in range(procs)]
    # All start together, once each has set Django up.
    ready = [start_file.with_name(f"{start_file.name}.ready-{w}") for w in range(procs)]
    deadline = time.monotonic() + 120
    while not all(r.exists() for r in ready) and time.monotonic() < deadline:
        if any(w.poll() is not None for w in workers):
            break  # one died: collect() reports it
        time.sleep(0.01)
    start_file.touch()
    answers = collect(workers)
    for f in [start_file, *ready]:
        f.unlink(missing_ok=True)
    seconds = max(a["total_s"] for a in answers)
    merged = {"errors": {}, "logged": {}}
    for a in answers:
        for key in merged:
            for name, n in a[key].items():
                merged[key][name] = merged[key].get(name, 0) + n
    return {"rate": procs * count / seconds, "seconds": seconds, **merged}


def _missing_history(after_serial: int) -> int:
    """Versions written since ``after_serial`` that the stock history index does not hold."""
    from haystack import connections

    from versioned_items.models import Version

    serials = set(Version.objects.filter(serial__gt=after_serial).values_list("serial", flat=True))
    backend = connections["stock_history"].get_backend()
    backend.setup()
    with backend.index.refresh().searcher() as searcher:
        indexed = {
            int(f["django_id"])
            for f in searcher.all_stored_fields()
            if f.get("django_ct") == "versioned_items.version"
        }
    return len(serials - indexed)


def _fmt(counts: dict) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "0"

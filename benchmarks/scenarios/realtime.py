"""Realtime indexing: single-version transactions from 1 and from 4 processes at once.

Each process runs ``realtime_count`` ``api.put`` calls, each its own transaction, on paths of
its own and on paths all processes share (see :func:`benchmarks.worker.realtime`).

- project: the outbox and the background applier (group commit); a process's time ends when
  it has waited for its writes to be searchable (``wait_for_index``). Afterwards
  ``indexing.check`` must find no difference between the indexes and the database.
- Haystack: the realtime signal processor's per-save path (``handle_save`` for every changed
  node and version, one writer and one commit each, see
  :class:`benchmarks.baselines.stock_haystack.ApiRealtimeSignalProcessor`) on the stock
  connections, without the outbox.

The rate is all writes over the slowest process's time. Errors raised to callers and errors
Haystack logged and swallowed are counted. Targets: project >= 5x Haystack's rate for 1 and 4
processes, and no LockError (nor any other error) in the project's processes.
"""

import time

from .. import search_corpus as sc
from ..env import collect, start_worker
from ..report import Result, ratio

NEEDS_SEARCH = True
STOCK_PROCESSOR = "benchmarks.baselines.stock_haystack.ApiRealtimeSignalProcessor"


def run(options, result: Result) -> None:
    from django.conf import settings

    from versioned_items.models import Version
    from versioned_items.search import indexing

    info = sc.ensure(options)
    sc.ensure_stock(options)
    result.corpus = {k: v for k, v in info.items() if k != "load_s"}
    count = options.realtime_count
    table = result.table(
        f"realtime: {count} single-version transactions per process",
        "processes",
        "who",
        "writes/s",
        "seconds",
        "errors to callers",
        "errors logged",
        "index check",
        "project/Haystack",
    )
    for procs in (1, 4):
        indexing.update_index()  # catch up with the previous round's stock writes (untimed)
        project = _round(procs, count, settings.WORK_DIR, stock=False)
        check = indexing.check()
        project["check"] = "0 differences" if check.diff.count == 0 else f"{check.diff.count} differences"
        before = Version.objects.order_by("-serial").values_list("serial", flat=True).first() or 0
        stock = _round(procs, count, settings.WORK_DIR, stock=True)
        stock["check"] = f"{_missing_history(before)} versions missing"
        speedup = ratio(project["rate"], stock["rate"])
        for who, r in (("project", project), ("Haystack realtime", stock)):
            table.add(
                procs,
                who,
                r["rate"],
                r["seconds"],
                _fmt(r["errors"]),
                _fmt(r["logged"]),
                r["check"],
                speedup if who == "project" else "",
            )
        result.target(f"{procs} process(es): project rate / Haystack rate", speedup, ">=", 5)
        lock_errors = sum(n for k, n in {**project["errors"], **project["logged"]}.items() if "Lock" in k)
        result.target(f"{procs} process(es): LockErrors in the project", lock_errors, "<=", 0, unit="")
        other = sum(project["errors"].values()) + sum(project["logged"].values()) - lock_errors
        if other or check.diff.count:
            sides = {
                name: {
                    k: sorted(getattr(getattr(check.diff, name), k))[:5]
                    for k in ("missing", "stale", "changed")
                }
                for name in ("latest", "history")
            }
            result.notes.append(
                f"{procs} process(es): project errors {project['errors']} {project['logged']}, "
                f"index differences {check.diff.count}: {sides}"
            )
    indexing.update_index()


def _round(procs: int, count: int, workdir, *, stock: bool) -> dict:
    start_file = workdir / f"realtime-start-{time.monotonic_ns()}"
    env = {"VI_BENCH_STOCK": "1", "VI_BENCH_SIGNAL_PROCESSOR": STOCK_PROCESSOR} if stock else {}
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

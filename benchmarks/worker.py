"""Code run in child processes: ``python -m benchmarks.worker NAME ARGS``.

Each worker sets Django up from the environment of :func:`benchmarks.env.child_env`, waits
until the start file exists (so that all workers start together), does its work, and prints
one line of JSON.
"""

import json
import logging
import os
import sys
import time


class _ErrorCounter(logging.Handler):
    """Counts log records with an exception, by exception class (Haystack logs and swallows)."""

    def __init__(self):
        super().__init__(logging.ERROR)
        self.counts: dict[str, int] = {}

    def emit(self, record):
        name = record.exc_info[0].__name__ if record.exc_info else "logged error"
        self.counts[name] = self.counts.get(name, 0) + 1


def realtime(worker: str, count: str, start_file: str) -> dict:
    """``count`` single-version transactions (``api.put``) on paths of this worker and shared
    ones; then wait until they are all searchable (the project) or return (the stock
    processor indexes inside each transaction)."""
    from django.conf import settings

    from versioned_items import api

    from .corpus import SyntheticCorpus

    counter = _ErrorCounter()
    for name in ("haystack", "versioned_items", "versioned_items.search"):
        logging.getLogger(name).addHandler(counter)
    if settings.STOCK:
        # The baseline indexes through the processor alone: no outbox.
        from versioned_items.models import Version
        from versioned_items.signals import versions_changed

        versions_changed.disconnect(sender=Version, dispatch_uid="versioned_items_search.outbox")
    corpus = SyntheticCorpus(50, seed=int(worker) + 100)
    errors: dict[str, int] = {}
    open(f"{start_file}.ready-{worker}", "w").close()
    while not os.path.exists(start_file):
        time.sleep(0.005)
    start = time.perf_counter()
    for i in range(int(count)):
        path = f"rt/shared/f{i % 5}" if i % 4 == 0 else f"rt/w{worker}/f{i % 20}"
        data, ctype = corpus.content(i % 50, i)
        try:
            api.put(path, data, user=f"w{worker}", content_type=ctype, attributes={"i": str(i)})
        except Exception as error:  # counted and reported: the parent fails the target
            errors[type(error).__name__] = errors.get(type(error).__name__, 0) + 1
    writes = time.perf_counter() - start
    if not settings.STOCK:
        from versioned_items.search.indexing import flush_background, wait_for_index

        flush_background()
        wait_for_index()
    return {
        "worker": worker,
        "writes_s": writes,
        "total_s": time.perf_counter() - start,
        "errors": errors,
        "logged": counter.counts,
    }


def main() -> None:
    import django

    django.setup()
    name, *args = sys.argv[1:]
    print(json.dumps(globals()[name](*args)))


if __name__ == "__main__":
    main()

"""Code run in child processes by the search tests: ``python -m tests.search_workers NAME ARGS``.

The parent passes its index folder in ``VI_SEARCH_INDEX_DIR``; each worker points both index
connections there, does its work, and prints one line of JSON (``slow_rebuild`` also prints
``progress N`` lines while it works).
"""

import json
import os
import sys
import time
from pathlib import Path


def _setup() -> None:
    import django

    django.setup()
    from tests.search_fixtures import point_connections_at

    point_connections_at(Path(os.environ["VI_SEARCH_INDEX_DIR"]))


def slow_rebuild(batch_size: str) -> dict:
    """A rebuild that reports each batch and takes its time, so the parent can kill it half-way."""
    from versioned_items.search import indexing

    def progress(done, total):
        print(f"progress {done} {total}", flush=True)
        time.sleep(0.2)

    report = indexing.rebuild(batch_size=int(batch_size), progress=progress)
    return {"latest": report.latest, "history": report.history}


def write_mix(worker: str, count: str) -> dict:
    """Write, delete, restore, set attributes and move in a subtree shared with other workers.

    Index changes are applied by this process's background applier (group commit); errors
    reaching a caller, a LockError among them, are reported to the parent."""
    from versioned_items import api

    errors = []
    for i in range(int(count)):
        own, shared = f"mix/w{worker}/f{i % 5}.txt", f"mix/shared/f{i % 3}.txt"
        try:
            version = api.put(own, f"worker{worker} item{i} common".encode(), user=f"w{worker}")
            api.put(shared, f"shared{i} by worker{worker} common".encode(), user=f"w{worker}")
            if i % 4 == 1:
                api.set_attributes(version.serial, {"round": str(i)})
            if i % 5 == 3:
                api.delete(own)
            if i % 7 == 6:
                api.move(f"mix/w{worker}", f"mix/w{worker}-moved{i}")
                api.move(f"mix/w{worker}-moved{i}", f"mix/w{worker}")
        except Exception as error:  # reported to the parent, which fails the test
            errors.append(f"{own}: {type(error).__name__}: {error}")
    return {"worker": worker, "errors": errors}


def main(workers: dict | None = None) -> None:
    """Run the worker function named by argv[1] (from ``workers``, default this module) and print
    its result as JSON: the entry point of every worker module."""
    _setup()
    name, *args = sys.argv[1:]
    print(json.dumps((workers or globals())[name](*args)), flush=True)


if __name__ == "__main__":
    main()

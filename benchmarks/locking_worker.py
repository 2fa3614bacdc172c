"""The child of the locking scenario: ``python -m benchmarks.locking_worker KIND COUNT WORKER``.

Prints one line of JSON: the seconds the work took and how many errors reached the caller
(any exception that is not one of the app's expected refusals counts).
"""

import json
import sys
import time


def _mixed(api, worker: int, count: int) -> int:
    """``count`` mixed writes on paths shared by every worker; returns the foreign errors."""
    from versioned_items.exceptions import VersionedItemsError

    errors = 0
    for i in range(count):
        path = f"mix/shared/f{i % 5}"
        step = (i + worker) % 6
        try:
            if step in (0, 1):
                api.put(path, b"%d:%d" % (worker, i))
            elif step == 2:
                api.delete(path)
            elif step == 3:
                api.undelete(path)
            elif step == 4:
                version = api.lookup(path)
                if version is not None:
                    api.copy(version.serial, f"mix/w{worker}/copy")
            else:
                api.purge("mix/shared", subtree=True)
        except VersionedItemsError as error:
            if type(error).__name__ == "ConcurrentUpdate":
                errors += 1  # retries ran out: counted, as a database error is
        except Exception:  # the old code: database errors reached the caller
            errors += 1
    return errors


def main() -> None:
    import django

    django.setup()
    from versioned_items import api

    kind, count, worker = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    errors = 0
    start = time.perf_counter()
    if kind == "put":
        for i in range(count):
            api.put(f"put/w{worker}/f{i % 10}", b"%d" % i)
    elif kind == "batch":
        for b in range(max(1, count // 100)):
            with api.batch():
                for i in range(100):
                    api.put(f"batch/w{worker}/f{i}", b"%d:%d" % (b, i))
    else:
        errors = _mixed(api, worker, count)
    print(json.dumps({"seconds": time.perf_counter() - start, "errors": errors}))


if __name__ == "__main__":
    main()

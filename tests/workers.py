"""Code run in child processes by the concurrency tests: ``python -m tests.workers NAME ARGS``.

Each worker sets Django up from the environment that ``subprocess_env`` prepared and prints
one line of JSON with what it did, so the parent can check that no error reached a caller.
"""

import json
import sys


def put_many(worker: str, count: str, subtree: str = "conc") -> dict:
    """Write ``count`` versions, half into paths shared with every other worker."""
    from versioned_items import api

    errors = []
    for i in range(int(count)):
        path = f"{subtree}/shared/f{i % 4}" if i % 2 else f"{subtree}/w{worker}/f{i % 3}"
        try:
            api.put(path, f"{worker}:{i}".encode(), user=f"w{worker}", attributes={"i": str(i)})
            if i % 10 == 8:  # own paths only: a shared one may be deleted already
                api.delete(path)
        except Exception as error:  # reported to the parent, which fails the test
            errors.append(f"{path}: {type(error).__name__}: {error}")
    return {"worker": worker, "errors": errors}


def main() -> None:
    import django

    django.setup()
    name, *args = sys.argv[1:]
    print(json.dumps(globals()[name](*args)))


if __name__ == "__main__":
    main()

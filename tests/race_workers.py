"""Steps of the race tests, run in child processes: ``python -m tests.race_workers STEP DIR ARGS``.

A step named ``hold_*`` does its operation inside a transaction, then creates ``DIR/held`` and
waits for ``DIR/release`` before it commits: the parent starts the racing step while the
transaction is open at that known point. Every step prints one line of JSON: its result, or
the class and message of the error its caller saw.
"""

import functools
import json
import sys
import time
from pathlib import Path


def _hold(folder: str) -> None:
    Path(folder, "held").touch()
    while not Path(folder, "release").exists():
        time.sleep(0.01)


def _held(folder: str, call):
    from django.db import transaction

    with transaction.atomic():
        result = call()
        _hold(folder)
    return result


def _crossed_batch(folder: str, me: str, other: str, first: str, second: str, form: str) -> int:
    """A batch that puts ``first``, waits until the other worker has put its first item, then
    puts ``second``: two of them with the items crossed deadlock. Returns how many times the
    body ran."""
    from versioned_items import api

    runs = []

    def body():
        runs.append(1)
        api.put(first, f"{me} first".encode())  # contents of their own: one Blob lock each
        Path(folder, f"first-{me}").touch()
        deadline = time.monotonic() + 60
        while not Path(folder, f"first-{other}").exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        api.put(second, f"{me} second".encode())

    if form == "callable":
        api.batch(body)
    else:
        with api.batch():
            body()
    return len(runs)


def _put_then_put(folder: str, first: str, first_content: str, second: str, second_content: str) -> list[int]:
    """Put ``first``, wait at ``DIR/held`` for ``DIR/release``, then put ``second`` (a holder
    whose locks grow while the racer waits)."""
    from versioned_items import api

    serials = [api.put(first, first_content.encode()).serial]
    _hold(folder)
    return serials + [api.put(second, second_content.encode()).serial]


def _in_batch(call):
    """``call()`` inside ``with api.batch():``, where a collision is not retried but raised."""
    from versioned_items import api

    with api.batch():
        return call()


def _operations():
    from versioned_items import api

    return {
        "purge": lambda path: api.purge(path, subtree=True),
        "purge_in_batch": lambda path: _in_batch(lambda: api.purge(path)),
        "purge_deleted": lambda path: api.purge(path, clusters=[2]),
        "put": lambda path: api.put(path, b"raced").serial,
        "move": lambda source, destination: api.move(source, destination).path,
        "set_attributes": lambda serial: api.set_attributes(int(serial), {"late": "1"}),
        "remove_version": lambda serial: api.remove_version(int(serial)),
        "create_node": lambda path: api.create_node(path).pk,
        "crossed_batch": _crossed_batch,
        "put_then_put": _put_then_put,
    }


def main() -> None:
    import django

    django.setup()
    step, folder, *args = sys.argv[1:]
    name = step.removeprefix("hold_")
    call = _operations()[name]
    if name in ("crossed_batch", "put_then_put"):  # steps that wait at points of their own
        call = functools.partial(call, folder)
    Path(folder, f"started-{step}").touch()
    try:
        result = _held(folder, lambda: call(*args)) if step.startswith("hold_") else call(*args)
        answer = {"result": result}
    except Exception as error:  # the parent asserts that it is one of the app's exceptions
        answer = {"error": f"{type(error).__module__}.{type(error).__name__}", "message": str(error)}
    print(json.dumps(answer))


if __name__ == "__main__":
    main()

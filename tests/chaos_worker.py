"""The chaos test's child processes: ``python -m tests.chaos_worker NAME ARGS``.

``write`` does every kind of write at random on a few folders shared by all workers, until a
deadline, and prints one line of JSON: operations done and errors seen, by kind. An error that
is not one of the app's exceptions is listed in full (``foreign``): the parent fails on it.
``rebuild`` runs ``vi_rebuild_index`` over and over meanwhile.
"""

import os
import random
import signal
import time
from collections import Counter

FOLDERS = [f"chaos/s{i}" for i in range(3)]
CONTENTS = [f"chaos content {i} shared by many items\n".encode() for i in range(6)]


def _path(rng: random.Random) -> str:
    return f"{rng.choice(FOLDERS)}/d{rng.randrange(2)}/f{rng.randrange(4)}.txt"


def _serial(rng: random.Random) -> int:
    from versioned_items.models import Version

    newest = Version.objects.order_by("-serial").values_list("serial", flat=True).first() or 1
    return rng.randint(max(1, newest - 50), newest)


def _operations(rng: random.Random) -> dict:
    from versioned_items import api
    from versioned_items.models import Cluster

    def put():
        api.put(_path(rng), rng.choice(CONTENTS), user="chaos", attributes={"n": str(rng.randrange(9))})

    def batch():
        with api.batch():
            for _ in range(3):
                api.put(_path(rng), rng.choice(CONTENTS))
            api.delete(_path(rng))

    def retried_batch():
        writes = [(_path(rng), rng.choice(CONTENTS)) for _ in range(3)]
        gone = _path(rng)

        def body():  # chosen beforehand: a retry writes the same batch again
            for path, content in writes:
                api.put(path, content)
            api.delete(gone)

        api.batch(body)

    return {
        "put": put,
        "batch": batch,
        "retried_batch": retried_batch,
        "delete": lambda: api.delete(_path(rng)),
        "undelete": lambda: api.undelete(_path(rng)),
        "restore": lambda: api.restore(_serial(rng)),
        "copy": lambda: api.copy(_serial(rng), _path(rng)),
        "move": lambda: api.move(
            f"{rng.choice(FOLDERS)}/d{rng.randrange(2)}", f"{rng.choice(FOLDERS)}/d{rng.randrange(2, 4)}"
        ),
        "move_back": lambda: api.move(
            f"{rng.choice(FOLDERS)}/d{rng.randrange(2, 4)}", f"{rng.choice(FOLDERS)}/d{rng.randrange(2)}"
        ),
        "recluster": lambda: api.recluster(_serial(rng), rng.choice([Cluster.NORMAL, Cluster.HISTORY])),
        "remove_version": lambda: api.remove_version(_serial(rng)),
        "purge_item": lambda: api.purge(_path(rng)),
        "purge_folder": lambda: api.purge(rng.choice(FOLDERS), subtree=True),
        "set_attributes": lambda: api.set_attributes(_serial(rng), {"k": str(rng.random())}),
        "delete_attributes": lambda: api.delete_attributes(_serial(rng)),
    }


def write(worker: str, seconds: str) -> dict:
    """Random writes of every kind until ``seconds`` have passed."""
    from versioned_items.exceptions import VersionedItemsError

    rng = random.Random(int(worker))
    operations = _operations(rng)
    done, errors, foreign = Counter(), Counter(), []
    deadline = time.monotonic() + float(seconds)
    while time.monotonic() < deadline:
        kind = rng.choice(sorted(operations))
        try:
            operations[kind]()
        except VersionedItemsError as error:
            errors[type(error).__name__] += 1
        except Exception as error:  # not one of the app's: the parent fails the test
            errors[type(error).__name__] += 1
            foreign.append(f"{kind}: {type(error).__module__}.{type(error).__name__}: {error}")
        done[kind] += 1
    from versioned_items.search.indexing import flush_background

    flush_background()
    return {"done": done, "errors": errors, "foreign": foreign}


def rebuild(seconds: str) -> dict:
    """``vi_rebuild_index`` again and again until ``seconds`` have passed."""
    from django.core.management import call_command

    done, foreign = 0, []
    deadline = time.monotonic() + float(seconds)
    while time.monotonic() < deadline:
        try:
            call_command("vi_rebuild_index", verbosity=0)
        except Exception as error:  # reported to the parent, which fails the test
            foreign.append(f"rebuild: {type(error).__name__}: {error}")
        done += 1
    return {"done": {"rebuild": done}, "errors": {}, "foreign": foreign}


def _die_on_call(module, name: str, after: int = 1) -> None:
    """Replace ``module.name`` so that the process is killed (SIGKILL) right after its
    ``after``-th call returns: the only way to die at an exact point every time."""
    original, calls = getattr(module, name), []

    def dying(*args, **kwargs):
        result = original(*args, **kwargs)
        calls.append(1)
        if len(calls) >= after:
            os.kill(os.getpid(), signal.SIGKILL)
        return result

    setattr(module, name, dying)


def killed_batch() -> dict:
    """Die inside a batch, after the third of five files was moved into place."""
    from versioned_items import api, blobs

    _die_on_call(blobs, "_move_into_place", after=3)
    with api.batch():
        for i in range(5):
            api.put(f"killed/batch/f{i}.txt", f"batch file {i}".encode())
    return {}


def killed_import(directory: str) -> dict:
    """Die in the middle of ``vi_import`` (batches of 2 files), after the fifth file was moved."""
    from django.core.management import call_command

    from versioned_items import blobs

    _die_on_call(blobs, "_move_into_place", after=5)
    call_command("vi_import", directory, "--under", "killed/import", "--batch-size", "2", verbosity=0)
    return {}


def killed_purge() -> dict:
    """Die right after a purge committed, before the freed content files were deleted."""
    from versioned_items import api, blobs

    for i in range(3):
        api.put(f"killed/purge/f{i}.txt", f"old {i}".encode())
        api.put(f"killed/purge/f{i}.txt", f"new {i}".encode())
    blobs.delete_unreferenced = lambda checksums: os.kill(os.getpid(), signal.SIGKILL)
    api.purge("killed/purge", subtree=True)
    return {}


def killed_content_write() -> dict:
    """Die while the content of a put is being copied into the storage (half of it copied)."""
    from versioned_items import api

    class Stalling:
        def __init__(self):
            self.given = 0

        def read(self, size=-1):
            if self.given >= len(HALF):
                os.kill(os.getpid(), signal.SIGKILL)
            self.given += len(HALF)
            return HALF

    api.put("killed/write.bin", Stalling())
    return {}


HALF = b"half of a large file " * 50_000


def main() -> None:
    from tests import search_workers

    search_workers.main(globals())


if __name__ == "__main__":
    main()

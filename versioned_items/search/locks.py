"""File locks that order index work across threads and processes of one machine.

- The *apply* lock is held by whoever turns outbox entries into index writes, from reading the
  entries until they are deleted. Appliers therefore never interleave: the one that runs later
  reads the database later, so an older state can never overwrite a newer one in the index.
- The *rebuild* lock is held by a rebuild for its whole run. Appliers that see it held keep the
  entries they apply (marked ``applied``) so that the rebuild replays them after its swap.

``flock`` locks belong to the open file, so the kernel releases them when a process dies, even
by SIGKILL: a killed rebuild or applier never leaves a stale lock behind.
"""

import contextlib
import fcntl
import hashlib
import os
import tempfile
import time
from collections.abc import Iterator

from django.conf import settings
from django.db import connections, router

from versioned_items.conf import app_settings
from versioned_items.exceptions import IndexUnavailable


def lock_dir() -> str:
    """The folder of the lock files (``SEARCH_LOCK_DIR``, else beside the latest index)."""
    configured = app_settings.SEARCH_LOCK_DIR
    if configured:
        return str(configured)
    info = getattr(settings, "HAYSTACK_CONNECTIONS", {}).get(app_settings.LATEST_CONNECTION, {})
    if info.get("PATH"):
        return os.path.dirname(os.path.abspath(info["PATH"]))
    return tempfile.gettempdir()


def _lock_path(kind: str) -> str:
    from .models import IndexChange

    # Two sites on one machine share the temp folder: the database name keeps them apart.
    database = connections[router.db_for_write(IndexChange)].settings_dict["NAME"]
    tag = hashlib.sha256(f"{database}|{app_settings.LATEST_CONNECTION}".encode()).hexdigest()[:12]
    folder = lock_dir()
    os.makedirs(folder, exist_ok=True)
    return os.path.join(folder, f".vi-search-{tag}.{kind}.lock")


@contextlib.contextmanager
def _flock(kind: str, *, timeout: float | None, shared: bool = False) -> Iterator[None]:
    mode = fcntl.LOCK_SH if shared else fcntl.LOCK_EX
    fd = os.open(_lock_path(kind), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = None if timeout is None else time.monotonic() + timeout
        delay = 0.001
        while True:
            try:
                fcntl.flock(fd, mode | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if deadline is not None and time.monotonic() >= deadline:
                    raise IndexUnavailable(
                        f"the search index {kind} lock ({_lock_path(kind)}) was not free within "
                        f"{timeout:g} s; another process holds it (a rebuild, or a stuck writer)"
                    ) from None
                time.sleep(delay)
                delay = min(delay * 2, 0.05)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def apply_lock(timeout: float | None = None) -> contextlib.AbstractContextManager[None]:
    """Hold the apply lock; wait at most ``timeout`` seconds (default ``SEARCH_LOCK_TIMEOUT``).

    Raises IndexUnavailable when it cannot be had in time.
    """
    return _flock("apply", timeout=app_settings.SEARCH_LOCK_TIMEOUT if timeout is None else timeout)


def rebuild_lock() -> contextlib.AbstractContextManager[None]:
    """Hold the rebuild lock. Raises IndexUnavailable at once when a rebuild is running."""
    return _flock("rebuild", timeout=0)


def rebuild_running() -> bool:
    """Whether some process holds the rebuild lock right now."""
    try:
        with _flock("rebuild", timeout=0, shared=True):
            return False
    except IndexUnavailable:
        return True

"""The run's environment: work folder, database, Django, child processes, clean slates.

The main process makes a work folder, creates a throw-away database (Django's test-database
machinery: ``test_...``/``vi_bench`` on PostgreSQL, a file in the work folder on SQLite),
migrates it, and removes both at the end. Child processes get the same settings through the
environment (:func:`child_env`).
"""

import os
import shutil
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


class Run:
    """One benchmark run: its work folder and database."""

    def __init__(self, db: str, workdir: str | None = None, keep: bool = False):
        self.db = db
        self.keep = keep
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="vi-bench-")).resolve()
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._old_name = None

    def start(self) -> "Run":
        os.environ["DJANGO_SETTINGS_MODULE"] = "benchmarks.settings"
        os.environ["VI_BENCH_DIR"] = str(self.workdir)
        os.environ["VI_BENCH_DB"] = self.db
        os.environ.pop("VI_BENCH_DB_NAME", None)
        import django
        from django.db import connection

        django.setup()
        self._old_name = connection.settings_dict["NAME"]
        name = connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
        os.environ["VI_BENCH_DB_NAME"] = str(name)
        return self

    def stop(self) -> None:
        from django.conf import settings
        from django.db import connection, connections

        if settings.SEARCH:
            # The applier thread may have a round to go; it must not outlive the database.
            from versioned_items.search.indexing import flush_background

            flush_background(60)
        if self._old_name is not None and not self.keep:
            connections.close_all()
            end_sessions()
            connection.creation.destroy_test_db(self._old_name, verbosity=0)
        if not self.keep:
            shutil.rmtree(self.workdir, ignore_errors=True)


def end_sessions(application_name: str | None = None) -> None:
    """End other sessions on the benchmark database (PostgreSQL only), or only those of one name.

    A child killed at its timeout (the worst-case scenario's "before" runs) leaves its server
    session running the statement it was in: it would load the cases after it, and the database
    cannot be dropped until it ends.
    """
    from django.db import connection

    if connection.vendor != "postgresql":
        return
    sql = (
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
        " WHERE datname = %s AND pid <> pg_backend_pid()"
    )
    params = [connection.settings_dict["NAME"]]
    if application_name is not None:
        sql += " AND application_name = %s"
        params.append(application_name)
    with connection._nodb_cursor() as cursor:
        cursor.execute(sql, params)


def child_env(**extra: str) -> dict[str, str]:
    """The environment of a child process that uses this run's settings and database."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    env.update(extra)
    return env


def start_worker(name: str, *args, **extra_env) -> subprocess.Popen:
    """Start ``python -m benchmarks.worker NAME ARGS`` (it prints one JSON line)."""
    return subprocess.Popen(
        [sys.executable, "-m", "benchmarks.worker", name, *map(str, args)],
        env=child_env(**extra_env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO_ROOT,
    )


def collect(processes: list[subprocess.Popen], timeout: float = 3600) -> list[dict]:
    """Wait for workers and return their JSON answers; raise with their stderr if one failed."""
    import json

    results = []
    for process in processes:
        out, err = process.communicate(timeout=timeout)
        if process.returncode != 0:
            raise RuntimeError(f"benchmark worker failed (exit {process.returncode}):\n{err[-4000:]}")
        results.append(json.loads(out.strip().splitlines()[-1]))
    return results


def reset_store() -> None:
    """Empty the database tables, the content folder and every index (a clean slate)."""
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connections

    from . import search_corpus

    call_command("flush", interactive=False, verbosity=0)
    connections.close_all()
    shutil.rmtree(Path(settings.STORAGES["default"]["OPTIONS"]["location"]), ignore_errors=True)
    reset_indexes()
    search_corpus.forget()  # the search scenarios' corpus is gone with the rest


def reset_indexes(*aliases: str) -> None:
    """Remove the index folders of ``aliases`` (all when none, then create the app's indexes
    empty on each engine) and forget cached backends."""
    from django.conf import settings
    from haystack import connections

    for alias, info in settings.HAYSTACK_CONNECTIONS.items():
        if aliases and alias not in aliases:
            continue
        shutil.rmtree(info["PATH"], ignore_errors=True)
        shutil.rmtree(f"{info['PATH']}.rebuild", ignore_errors=True)
        connections.reload(alias)
    if settings.SEARCH and not aliases:
        from versioned_items.search.indexing import create_indexes

        from . import engines

        for engine in engines.available():
            with engines.serving(engine):
                create_indexes()  # empty indexes, as a new site gets them


@contextmanager
def stock_connections():
    """Point the app's indexes at the connections with Haystack's stock Whoosh engine."""
    from django.test import override_settings

    from .settings import VERSIONED_ITEMS

    with override_settings(
        VERSIONED_ITEMS=VERSIONED_ITEMS
        | {
            "LATEST_CONNECTION": "stock_latest",
            "HISTORY_CONNECTION": "stock_history",
        }
    ):
        yield


class Timer:
    """``with Timer() as t: ...`` then ``t.seconds``."""

    def __enter__(self):
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.start

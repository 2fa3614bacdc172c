"""The engines the search scenarios compare: the app's Whoosh engine, its tantivy engine, and
raw tantivy (tantivy's own API on the tantivy engine's index, what the engine should cost).

Both app engines serve the same SearchIndex classes, model and documents: the Whoosh engine on
the connections ``vi_latest``/``vi_history``, the tantivy engine on ``tv_latest``/``tv_history``
(see :mod:`benchmarks.settings`). :func:`serving` points the app's ``LATEST_CONNECTION`` and
``HISTORY_CONNECTION`` at one pair, so that ``api.search``, the outbox and the maintenance
functions run on that engine; child processes get the same through :func:`child_env_of`.
"""

from contextlib import contextmanager
from datetime import UTC

WHOOSH, TANTIVY = "Whoosh engine", "tantivy engine"
RAW = "raw tantivy"  # the baseline's label in the tables
#: engine -> (latest connection, history connection, VI_BENCH_ENGINE of a child process)
CONNECTIONS = {
    WHOOSH: ("vi_latest", "vi_history", "whoosh"),
    TANTIVY: ("tv_latest", "tv_history", "tantivy"),
}


def available() -> list[str]:
    """The app's engines this run has: the Whoosh engine, and the tantivy engine where tantivy
    is installed."""
    from django.conf import settings

    return [WHOOSH, TANTIVY] if settings.TANTIVY else [WHOOSH]


def skipped_note() -> str:
    return "tantivy engine skipped: tantivy is not installed (pip install 'versioned-items[tantivy]')"


@contextmanager
def serving(engine: str):
    """Meanwhile the app's two indexes are those of ``engine`` (reads, outbox, maintenance)."""
    from django.conf import settings
    from django.test import override_settings

    latest, history, _ = CONNECTIONS[engine]
    with override_settings(
        VERSIONED_ITEMS=settings.VERSIONED_ITEMS
        | {"LATEST_CONNECTION": latest, "HISTORY_CONNECTION": history}
    ):
        yield


def child_env_of(engine: str) -> dict[str, str]:
    """The environment entries that make a child process's app indexes those of ``engine``."""
    return {"VI_BENCH_ENGINE": CONNECTIONS[engine][2]}


def fill(sides_objects: dict) -> None:
    """Write ``{side name: objects}`` into the tantivy engine's fresh indexes, one writer and
    one commit per index (the search scenarios' corpus, as the Whoosh engine holds it)."""
    from versioned_items.search.indexing import sides

    with serving(TANTIVY):
        for side in sides():
            side.backend.ensure_index()
            side.backend.apply(side.index, sides_objects[side.name])


def raw_writer(backend, path: str):
    """A fresh index at ``path`` with the schema of the tantivy engine's ``backend``, and a
    writer with the engine's heap and threads: ``(index, writer)``."""
    import tantivy

    from versioned_items.search.backends import tantivy_fields

    index = tantivy.Index(backend.tantivy_schema, path=path)
    tantivy_fields.register(index)
    return index, index.writer(heap_size=backend.heap_size, num_threads=backend.threads)


class RawTantivy:
    """One index of the tantivy engine searched with tantivy's own API, a searcher reused: the
    query parsed by ``Index.parse_query`` on the document field (both words required), the
    history's filters (no delete markers; as of T, ``mtime < T <= valid_until``) as queries on
    the fast fields, ``search(limit=10, count=True)``, the stored fields of the 10 hits."""

    def __init__(self, path: str, history: bool):
        import tantivy

        from versioned_items.search.backends import tantivy_fields

        self.tantivy = tantivy
        self.history = history
        self.index = tantivy.Index.open(path)
        tantivy_fields.register(self.index)
        self.schema = self.index.schema
        self.searcher = self.index.searcher()

    def page(self, text: str, moment=None) -> int:
        """The total of ``text`` (as of ``moment``); the first page is read and dropped."""
        from whoosh.util.times import datetime_to_long

        from versioned_items.models import Cluster

        t, Q = self.tantivy, self.tantivy.Query
        clauses = [(t.Occur.Must, self.index.parse_query(text, ["text"], conjunction_by_default=True))]
        if self.history:
            deleted = Q.term_query(self.schema, "cluster", int(Cluster.DELETED))
            clauses.append((t.Occur.MustNot, deleted))
        if moment is not None:
            at = datetime_to_long(moment.astimezone(UTC).replace(tzinfo=None))
            written = Q.range_query(self.schema, "mtime", t.FieldType.Integer, None, at, include_upper=False)
            valid = Q.range_query(self.schema, "valid_until", t.FieldType.Integer, at, None)
            clauses += [(t.Occur.Must, written), (t.Occur.Must, valid)]
        found = self.searcher.search(Q.boolean_query(clauses), 10, count=True)
        for _, address in found.hits:
            self.searcher.doc(address).to_dict()
        return found.count


def raw_tantivy(side: str) -> RawTantivy:
    """:class:`RawTantivy` on the tantivy engine's index of ``side`` ("latest" or "history")."""
    from haystack import connections

    latest, history, _ = CONNECTIONS[TANTIVY]
    alias = history if side == "history" else latest
    return RawTantivy(connections[alias].get_backend().path, history=side == "history")

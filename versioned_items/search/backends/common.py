"""What the app's engines share: which backends are the app's own engines (:func:`is_app_engine`),
which connections are the app's own, and how a failed write is let through or logged
(Haystack's ``SILENTLY_FAIL``)."""

import contextlib
from collections.abc import Iterable, Iterator

from haystack.constants import ID
from haystack.exceptions import SkipDocument
from haystack.utils import get_identifier

from versioned_items.conf import app_settings


class AppBackendMixin:
    """Mixed into each engine's ``SearchBackend``, before Haystack's class. The engine defines
    ``engine_document(prepared)`` (a Haystack-prepared document as the engine's field values),
    ``write_documents(docs, delete_ids)`` (one writer, one commit), ``_open(create)``,
    ``_build_schema()`` (kept in ``_schema_fields``) and ``engine_label``.

    What the app's maintenance (``search/sides.py``, ``maintenance.py``, ``compare.py``) calls
    on every app engine, each engine in its own way:

    - ``doc_count()``, ``iter_stored()`` (stored fields of every document),
      ``stored_documents(ids)`` and ``stored_texts(serials, text_keys)`` (texts to reuse);
    - ``building(folder, procs)``: a context manager that makes a new, empty index in
      ``folder`` and gives the block an ``add(prepared)`` function; the index is committed when
      the block ends, and abandoned if it raises;
    - ``swap_in(folder)``: makes the index built in ``folder`` the live one, atomically, under
      the live index's write lock, and removes ``folder``;
    - ``optimize()``, ``clear()``.
    """

    engine_label = "search"

    def serves_app(self) -> bool:
        """Whether this is one of the app's two connections (``LATEST_CONNECTION``,
        ``HISTORY_CONNECTION``), whose indexes get the app's field types and protections: a
        missing index is an error and writes never fail silently."""
        return self.connection_alias in (app_settings.LATEST_CONNECTION, app_settings.HISTORY_CONNECTION)

    def _searchfields(self) -> dict:
        """The connection's Haystack fields, which the schema is built from (Haystack builds a
        new dict whenever its unified index is rebuilt)."""
        from haystack import connections

        return connections[self.connection_alias].get_unified_index().all_searchfields()

    def ensure_index(self) -> None:
        """Create the index if it does not exist yet (an empty one), and open it."""
        if not self.setup_complete:
            self._open(create=True)

    def _ready(self) -> None:
        """Set up on first use, and again when the Haystack indexes (hence the schema) changed."""
        if not self.setup_complete or self._searchfields() is not self._schema_fields:
            self.setup()

    @contextlib.contextmanager
    def _failing(self, action: str, always: bool = False) -> Iterator[None]:
        """Let an error of ``action`` through, or log it when the connection's SILENTLY_FAIL
        says so; never on the app's connections (their outbox retries failed writes)."""
        try:
            yield
        except Exception:
            if always or not self.silently_fail or self.serves_app():
                raise
            self.log.exception("Failed to %s (connection %r)", action, self.connection_alias)

    def apply(self, index, objects: Iterable, delete_ids: Iterable[str] = ()) -> None:
        """Write ``objects`` and remove the documents ``delete_ids``: one writer, one commit.

        ``index`` is the SearchIndex that prepares the objects. Old documents of the written
        objects are replaced; an object whose preparation raises Haystack's SkipDocument is
        left as it is in the index. Raises IndexUnavailable when the index stays locked.
        """
        self._ready()
        docs = {}
        for obj in objects:
            try:
                doc = self.engine_document(index.full_prepare(obj))
            except SkipDocument:
                self.log.debug("Indexing for object `%s` skipped", obj)
                continue
            docs[doc[ID]] = doc  # the same object twice: the last one wins
        self.write_documents(docs.values(), delete_ids)

    def update(self, index, iterable, commit=True):
        with self._failing(f"update the {self.engine_label} index"):
            self.apply(index, iterable)

    def remove(self, obj_or_string, commit=True):
        # Always raises: a remove logged and lost leaves a deleted object findable for good.
        with self._failing("remove a document", always=True):
            self.write_documents([], [get_identifier(obj_or_string)])


def is_app_engine(backend) -> bool:
    """Whether ``backend`` is one of the app's engines (Whoosh or tantivy): batched writes, text
    reuse, the rebuild into a temporary folder with its atomic swap. Any other Haystack backend
    gets Haystack's generic paths."""
    return isinstance(backend, AppBackendMixin)

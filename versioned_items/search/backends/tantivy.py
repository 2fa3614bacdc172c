"""The app's tantivy engine: a Haystack engine on tantivy (Rust), for either connection.

Use it as the ENGINE of a connection, with the folder of its index::

    "ENGINE": "versioned_items.search.backends.tantivy.TantivyEngine",
    "PATH": str(BASE_DIR / "tantivy" / "vi_latest"),

It needs the ``tantivy`` extra (``pip install versioned-items[tantivy]``). What it does as the
app's Whoosh engine does:

- **Schema from the Haystack indexes** (:mod:`.tantivy_fields`), the app's field kinds included.
- **Queries in Whoosh's syntax**: ``SearchQuerySet`` builds the same query strings as for
  Whoosh (:class:`TantivySearchQuery` is Haystack's Whoosh query class); they are parsed by
  Whoosh's parser and compiled into tantivy queries (:mod:`.tantivy_compile`).
- **Batched writes**: an ``update`` is one writer and one commit, old documents deleted by id in
  the same writer.
- **Writers wait for the lock** up to ``SEARCH_LOCK_TIMEOUT``, then raise IndexUnavailable
  (tantivy itself fails at once with ``LockBusy``), and wait for their merges after the commit
  (tantivy merges in the writer's threads: a writer per commit that does not wait leaves the
  segments to pile up).
- **IndexUnavailable** for a missing index on the app's connections (only ``ensure_index()``,
  a clear and a rebuild create one) and for an unreadable one everywhere.
- **A version marker** (``vi_engine.json``) names the tantivy version, the index format and the
  fields an index was built for. An index without it, or built by another tantivy minor version
  or for other fields, raises IndexUnavailable asking for a rebuild: it is never opened. (An
  empty index built for other fields is replaced by an empty one with the current fields.)
- **Searches see the last commit of any process**: the reader is reloaded when ``meta.json``
  (which tantivy replaces atomically at each commit) changed.
- **Exact totals**, paging, sorting on columns, field, date and query facets, ``<mark>``
  highlights with the text HTML-escaped, ``more_like_this``.

- **Atomic swap** of an index rebuilt in another folder (:meth:`TantivySearchBackend.swap_in`).

Not (yet) as Whoosh does: spelling suggestions through Haystack (none), ``optimize``
(tantivy's merge policy merges; there is no forced merge into one segment). See
``docs/tantivy.md``.
"""

import contextlib
import ctypes
import errno
import fcntl
import functools
import html
import json
import logging
import os
import re
import shutil
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime

import tantivy
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils.encoding import force_str
from haystack.backends import BaseEngine, BaseSearchBackend, log_query
from haystack.backends.whoosh_backend import WhooshSearchBackend as HaystackWhooshBackend
from haystack.backends.whoosh_backend import WhooshSearchQuery
from haystack.constants import DJANGO_CT, DJANGO_ID, ID
from haystack.exceptions import SearchBackendError
from haystack.models import SearchResult
from haystack.utils import get_identifier, get_model_ct
from haystack.utils.app_loading import haystack_get_model
from whoosh.qparser import FuzzyTermPlugin, QueryParser
from whoosh.support.relativedelta import relativedelta

from versioned_items.conf import app_settings
from versioned_items.exceptions import IndexUnavailable, InvalidQuery

from . import tantivy_fields as tf
from .common import AppBackendMixin
from .tantivy_compile import Compiler, must
from .tantivy_reader import TantivyReader

MARKER = "vi_engine.json"
# tantivy's writer lock file in an index folder, locked with flock by every writer.
WRITER_LOCK = ".tantivy-writer.lock"
# renameat2(2): the current directory as the base of relative paths; exchange both paths.
_AT_FDCWD = -100
_RENAME_EXCHANGE = 2
ENGINE_NAME = "versioned_items.search.backends.tantivy"

# Writer memory: tantivy needs at least 15 MB per indexing thread.
_MIN_HEAP_PER_THREAD = 15_000_000
# Batches from this many documents up are indexed by WRITER_THREADS threads, smaller ones by one.
BULK_DOCUMENTS = 1000
# Facet values returned per field unless the facet asks for a limit.
FACET_LIMIT = 10_000
# Parsed query strings kept per backend (parsing costs more than a short search).
_PARSED_CACHE = 256


def library_version() -> dict:
    """This process's tantivy: ``{"tantivy": "0.27", "index_format": "7"}`` (the minor version:
    patch releases keep the index format)."""
    match = re.search(r"v(\d+)\.(\d+)\.\d+.*index_format v(\d+)", tantivy.__version__)
    if match is None:
        return {"tantivy": tantivy.__version__, "index_format": "?"}
    return {"tantivy": f"{match[1]}.{match[2]}", "index_format": match[3]}


class TantivySearchBackend(AppBackendMixin, BaseSearchBackend):
    """A Haystack backend on a tantivy index in the folder ``PATH``.

    Connection options besides Haystack's: ``WRITER_HEAP_MB`` (memory of a writer, default
    128) and ``WRITER_THREADS`` (indexing threads, default: the cores, at most 4).
    """

    engine_label = "tantivy"

    # Query strings are Whoosh's syntax (TantivySearchQuery is Haystack's Whoosh query class).
    RESERVED_WORDS = HaystackWhooshBackend.RESERVED_WORDS
    RESERVED_CHARACTERS = HaystackWhooshBackend.RESERVED_CHARACTERS

    def __init__(self, connection_alias, **connection_options):
        super().__init__(connection_alias, **connection_options)
        self.path = connection_options.get("PATH")
        if not self.path:
            raise ImproperlyConfigured(
                f"You must specify a 'PATH' in your settings for connection "
                f"{connection_alias!r} (the folder of its tantivy index)."
            )
        self.threads = int(connection_options.get("WRITER_THREADS") or min(4, os.cpu_count() or 1))
        heap = int(connection_options.get("WRITER_HEAP_MB", 128) * 1_000_000)
        self.heap_size = max(heap, _MIN_HEAP_PER_THREAD * self.threads + 1_000_000)
        self.log = logging.getLogger("haystack")
        self.setup_complete = False
        self.index: tantivy.Index | None = None
        self.content_field_name = ""
        self.specs: dict[str, tf.FieldSpec] = {}
        self._converters: dict = {}
        self._pretokenized: set[str] = set()
        self._stored_lists: list[str] = []
        self.tantivy_schema = None
        self.schema = None  # the Whoosh schema that parses queries (see tantivy_fields)
        self.parser = None
        self._schema_fields = None  # the Haystack fields the schema was built from
        self._seen = None  # the identity of the commit the reader shows
        self._created = None  # the inode of the open index's marker
        self._reload_lock = threading.Lock()
        self._parsed: dict[str, object] = {}

    # --- schema ---

    def build_schema(self, fields):
        """``(content field name, {field: FieldSpec})`` for the Haystack ``fields``."""
        return tf.field_specs(fields)

    def _build_schema(self) -> None:
        """(Re)build the schema and parser when the connection's Haystack fields changed."""
        fields = self._searchfields()
        if fields is self._schema_fields:
            return
        self.content_field_name, self.specs = self.build_schema(fields)
        self.tantivy_schema = tf.tantivy_schema(self.specs)
        self._converters = {name: spec.converter() for name, spec in self.specs.items()}
        # Fields whose values come tokenized (Document.from_dict does not take them).
        self._pretokenized = {name for name, spec in self.specs.items() if spec.kind == "edge_ngram"}
        self._stored_lists = [name for name, spec in self.specs.items() if spec.multivalued and spec.stored]
        # As on the Whoosh engine, the app's own fields with indexed=False (serial, size...)
        # cannot be searched there; other indexes keep Haystack's Whoosh behaviour, which
        # searches numbers and dates whatever indexed says.
        own = self.serves_app()
        unsearchable = {f.index_fieldname for f in fields.values() if own and not f.indexed}
        self.schema = tf.whoosh_schema(self.specs, unsearchable)
        self.parser = QueryParser(self.content_field_name, schema=self.schema)
        self.parser.add_plugins([FuzzyTermPlugin()])
        self._parsed = {}
        self._schema_fields = fields
        self.setup_complete = False  # an open index has the old schema: reopen it

    def marker(self) -> dict:
        """What the version marker of an index of this connection's fields says."""
        self._build_schema()
        return {
            "engine": ENGINE_NAME,
            **library_version(),
            "layout": tf.LAYOUT,
            "fields": tf.fingerprint(self.specs),
        }

    # --- opening ---

    def setup(self):
        """Build the schema and open the index.

        A missing index is created, empty, except on the app's connections: there it raises
        IndexUnavailable (only ``ensure_index()``, a rebuild and :meth:`clear` create one).
        An index that cannot be read, or that another tantivy version or other fields built,
        raises IndexUnavailable.
        """
        self._schema_fields = None
        self._open(create=not self.serves_app())

    def exists(self) -> bool:
        return os.path.exists(os.path.join(self.path, "meta.json"))

    def _open(self, create: bool) -> None:
        self._build_schema()
        if not self.exists() and not self._restore_moved_aside():
            if not create:
                raise IndexUnavailable(
                    f"the search index {self.path!r} (connection {self.connection_alias!r}) does "
                    "not exist; create it with vi_rebuild_index"
                )
            self._create()
            return
        try:
            self._check_marker()
        except _OtherFields:
            if not self._empty():
                raise
            self._create()  # nothing to lose: the empty index takes the fields declared now
            return
        try:
            index = tantivy.Index.open(self.path)
        except Exception as error:  # tantivy reports a damaged index with ValueError and others
            raise self._unreadable(error) from error
        self._use(index)

    def _use(self, index: tantivy.Index) -> None:
        tf.register(index)
        # Reloaded by searcher() when a commit (of any process) replaced meta.json.
        index.config_reader(reload_policy="manual")
        self.index = index
        self._seen = None
        self._created = os.stat(os.path.join(self.path, MARKER)).st_ino
        self.setup_complete = True

    def _check_marker(self) -> None:
        """Raise IndexUnavailable unless the index's version marker is this engine's."""
        try:
            with open(os.path.join(self.path, MARKER)) as f:
                found = json.load(f)
        except FileNotFoundError:
            raise IndexUnavailable(
                f"the search index {self.path!r} (connection {self.connection_alias!r}) has no "
                f"version marker ({MARKER}): another program made it, or its creation was "
                "interrupted; rebuild it with vi_rebuild_index"
            ) from None
        except (OSError, ValueError) as error:
            raise self._unreadable(error) from error
        wanted = self.marker()
        if (found.get("tantivy"), found.get("index_format")) != (wanted["tantivy"], wanted["index_format"]):
            raise IndexUnavailable(
                f"the search index {self.path!r} (connection {self.connection_alias!r}) was built "
                f"by tantivy {found.get('tantivy')} (index format {found.get('index_format')}); this "
                f"process has tantivy {wanted['tantivy']} (index format {wanted['index_format']}): "
                "rebuild it with vi_rebuild_index"
            )
        if found != wanted:
            raise _OtherFields(
                f"the search index {self.path!r} (connection {self.connection_alias!r}) was built "
                "for other fields than the search indexes declare now (or by another version of "
                "versioned_items): rebuild it with vi_rebuild_index"
            )

    def _empty(self) -> bool:
        """Whether the index (made by this tantivy version) holds no document."""
        try:
            return tantivy.Index.open(self.path).searcher().num_docs == 0
        except Exception:  # unreadable: not known to be empty
            return False

    def _create(self) -> None:
        """Make the folder an empty index of this schema, whatever was there."""
        if os.path.isdir(self.path):
            shutil.rmtree(self.path)
        self.setup_complete = False
        index = create_index(self.path, self.tantivy_schema, self.marker())
        self._use(index)

    def _unreadable(self, error) -> IndexUnavailable:
        return IndexUnavailable(
            f"the search index {self.path!r} (connection {self.connection_alias!r}) cannot be "
            f"read ({type(error).__name__}: {error}); rebuild it with vi_rebuild_index"
        )

    # --- values ---

    def tantivy_document(self, prepared: dict) -> dict:
        """A Haystack-prepared document as tantivy field values (``Document.from_dict``'s input)."""
        self._build_schema()
        return self._document(prepared)

    def _document(self, prepared: dict) -> dict:
        converters = self._converters
        doc = {}
        for name, value in prepared.items():
            convert = converters.get(name)
            # No converter: "boost", or a field of a model this connection does not index.
            if convert is not None and value is not None:
                converted = convert(value)
                if converted is not None:
                    doc[name] = converted
        return doc

    engine_document = _document  # what AppBackendMixin.apply writes (the schema is ready)

    def stored_fields(self, document: tantivy.Document) -> dict:
        """A stored tantivy document as ``{field: Python value}`` (an empty list for a stored
        list field with no value, which tantivy does not store)."""
        stored = dict.fromkeys(self._stored_lists, [])
        for name, values in document.to_dict().items():
            spec = self.specs.get(name)
            if spec is not None:
                stored[name] = spec.from_tantivy(values)
        return stored

    def _from_python(self, value):
        """A value as Whoosh's query syntax writes it (used by TantivySearchQuery)."""
        if hasattr(value, "strftime"):
            return tf.naive_utc(value)
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, (list, tuple)):
            return ",".join(force_str(v) for v in value)
        if isinstance(value, (int, float)):
            return value
        return force_str(value)

    # --- writing ---

    def writer(self, threads: int | None = None) -> tantivy.IndexWriter:
        """A writer on the index (with ``threads`` indexing threads, default ``WRITER_THREADS``),
        waiting for the lock while another writer (in any process) has it.

        Raises IndexUnavailable when the lock is not free within ``SEARCH_LOCK_TIMEOUT``.
        """
        self._ready()
        self._restore_moved_aside()  # an open index whose swap by renames was killed
        timeout = app_settings.SEARCH_LOCK_TIMEOUT
        deadline = time.monotonic() + timeout
        delay = 0.005
        while True:
            try:
                return self.index.writer(heap_size=self.heap_size, num_threads=threads or self.threads)
            except ValueError as error:
                if "LockBusy" not in str(error):
                    raise self._unreadable(error) from error
            left = deadline - time.monotonic()
            if left <= 0:
                raise IndexUnavailable(
                    f"the tantivy index {self.path!r} (connection {self.connection_alias!r}) was "
                    f"locked by another writer for more than {timeout:g} s"
                )
            time.sleep(min(delay, left))
            delay = min(delay * 2, 0.1)

    @contextlib.contextmanager
    def writing(self, threads: int | None = None) -> Iterator[tantivy.IndexWriter]:
        """A writer whose work is committed at the end of the block (rolled back if it raises);
        the lock is released and the merges it started are finished before the block returns."""
        with _committed(self.writer(threads)) as writer:
            yield writer
        self._seen = None  # read our own write

    def write_documents(self, docs: Iterable[dict], delete_ids: Iterable[str] = ()) -> None:
        """Replace or add documents ``docs`` (tantivy field values) and remove ``delete_ids``,
        in one commit."""
        docs = list(docs)
        ids = set(delete_ids) | {doc[ID] for doc in docs}
        if not ids:
            return
        # Each indexing thread makes a segment of its own: a small batch gets one thread, so one
        # segment (and the documents keep the order they were given in, which ties follow).
        with self.writing(threads=1 if len(docs) < BULK_DOCUMENTS else None) as writer:
            # A delete applies to what was added before it: delete first, then add.
            for ident in ids:
                writer.delete_documents_by_term(ID, ident)
            for doc in docs:
                writer.add_document(self._as_document(doc))

    def _as_document(self, doc: dict) -> tantivy.Document:
        """The tantivy document of field values ``doc`` (the schema is ready)."""
        pretokenized = self._pretokenized
        if pretokenized and not pretokenized.isdisjoint(doc):
            return _with_tokens(doc, self.tantivy_schema)
        return tantivy.Document.from_dict(doc, self.tantivy_schema)

    def clear(self, models=None, commit=True):
        with self._failing("clear the tantivy index"):
            if not models:
                self.delete_index()
                return
            with self.writing() as writer:
                for model in models:
                    writer.delete_documents_by_term(DJANGO_CT, get_model_ct(model))

    def delete_index(self):
        """Empty the index, atomically and under the write lock; a missing, unreadable or
        outdated index is created anew (this is an explicit request for an empty index)."""
        self._build_schema()
        try:
            self._open(create=True)
        except IndexUnavailable:
            self._create()
            return
        with self.writing() as writer:
            writer.delete_all_documents()

    # --- rebuilding ---

    @contextlib.contextmanager
    def building(self, folder: str, procs: int = 1) -> Iterator[Callable[[dict], None]]:
        """A new, empty index of this connection's fields in ``folder`` (which must not hold one),
        filled through the ``add(prepared)`` given to the block; committed when the block ends,
        rolled back if it raises. Swap it in with :meth:`swap_in`. ``procs`` is for Whoosh:
        tantivy indexes with ``WRITER_THREADS`` threads of this process.

        The live index is not opened: it may be missing or damaged, which a rebuild repairs.
        """
        self._build_schema()
        index = create_index(folder, self.tantivy_schema, self.marker())
        tf.register(index)
        # A new index in a folder of our own: no other writer can hold its lock.
        with _committed(index.writer(heap_size=self.heap_size, num_threads=self.threads)) as writer:
            yield lambda prepared: writer.add_document(self._as_document(self._document(prepared)))

    def swap_in(self, folder: str) -> None:
        """Make the index built in ``folder`` the live index, atomically, and remove ``folder``.

        Under the live index's writer lock (tantivy's own lock file, locked as tantivy locks it,
        so that no writer of any process is in the middle of a commit), the two folders are
        exchanged by one rename (Linux's ``renameat2`` with ``RENAME_EXCHANGE``): readers find
        the old index or the new one at ``PATH``, never a mix and never nothing. Each backend,
        in any process, sees the new version marker at its next search and opens the new index;
        searchers already open keep reading the old one. Killed before the exchange, the live
        index is unchanged; killed after it, the old index is left in ``folder``. Either way the
        next rebuild removes ``folder`` first.

        Where the exchange is not available, the live index is renamed to ``PATH.old``, then
        ``folder`` to ``PATH``: in between there is no index, and a search raises
        IndexUnavailable. Killed in between, the old index stays in ``PATH.old`` until the next
        open, search, writer or swap (of any process) puts it back
        (:meth:`_restore_moved_aside`); killed after, the next swap removes ``PATH.old``.

        Raises IndexUnavailable when the lock is not free within ``SEARCH_LOCK_TIMEOUT``.
        """
        live = os.path.abspath(self.path)
        os.makedirs(os.path.dirname(live), exist_ok=True)
        aside = _moved_aside(live)
        self._restore_moved_aside()
        if not os.path.isdir(live):
            os.rename(folder, live)  # no live index (a rebuild repairs a missing one)
        else:
            with self._writer_lock(live):
                # Left by a swap by renames killed after them (an old index), or in the way of one.
                shutil.rmtree(aside, ignore_errors=True)
                if not _exchange(folder, live):
                    os.rename(live, aside)
                    os.rename(folder, live)
                    folder = aside
        shutil.rmtree(folder, ignore_errors=True)  # the old index
        self.setup_complete = False  # reopened on next use

    def _restore_moved_aside(self) -> bool:
        """Put the live index back from ``PATH.old`` where a swap by two renames was killed
        between them (no index at ``PATH``); True if it did.

        Nothing is done while the swap is still running: it holds the writer lock of the
        index it moved aside. The new index, in the rebuild's folder, is not taken: a later
        rebuild may be filling that folder already.
        """
        live = os.path.abspath(self.path)
        aside = _moved_aside(live)
        if os.path.exists(live) or not os.path.isdir(aside):
            return False
        try:
            with self._writer_lock(aside, timeout=0):
                if os.path.exists(live) or not os.path.isdir(aside):
                    return False  # the swap ended meanwhile
                os.rename(aside, live)
        except (IndexUnavailable, OSError):  # a swap holds it, or it went meanwhile
            return False
        self.log.warning("Put back the search index %r, which an interrupted rebuild had moved aside", live)
        return True

    @contextlib.contextmanager
    def _writer_lock(self, folder: str, timeout: float | None = None) -> Iterator[None]:
        """tantivy's writer lock of the index in ``folder`` (a ``flock`` on its lock file, as
        tantivy takes it), waited for as :meth:`writer` waits for it (or ``timeout`` seconds)."""
        fd = os.open(os.path.join(folder, WRITER_LOCK), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            if timeout is None:
                timeout = app_settings.SEARCH_LOCK_TIMEOUT
            deadline = time.monotonic() + timeout
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise IndexUnavailable(
                            f"the tantivy index {self.path!r} (connection {self.connection_alias!r}) "
                            f"was locked by another writer for more than {timeout:g} s"
                        ) from None
                    time.sleep(0.01)
            yield
        finally:
            os.close(fd)  # releases the lock

    def optimize(self):
        """Commit nothing and wait for the merges tantivy's merge policy starts."""
        with self.writing() as writer:
            writer.garbage_collect_files()

    # --- reading ---

    def searcher(self) -> tantivy.Searcher:
        """A searcher on the last commit (of any process). Raises IndexUnavailable when the index
        is gone or cannot be read."""
        self._ready()
        try:
            identity = self._identity()
        except IndexUnavailable:
            if not self._restore_moved_aside():
                raise
            identity = self._identity()
        if identity[0] != self._created:
            # The folder holds another index now (a clear or a rebuild, in any process, made
            # it): open that one, marker checked, instead of reloading the old one's reader.
            self.setup()
            identity = self._identity()
        if identity != self._seen:
            with self._reload_lock:
                try:
                    self.index.reload()
                except Exception as error:
                    raise self._unreadable(error) from error
                self._seen = identity
        return self.index.searcher()

    def _identity(self) -> tuple:
        """Which index and commit the folder holds: ``(marker's inode, meta.json's inode, mtime,
        size)``. The marker is written once, when an index is created; tantivy writes a new
        ``meta.json`` (a new file, renamed into place) at each commit."""
        try:
            marker = os.stat(os.path.join(self.path, MARKER))
            meta = os.stat(os.path.join(self.path, "meta.json"))
        except FileNotFoundError:
            self.setup_complete = False
            raise IndexUnavailable(
                f"the search index {self.path!r} (connection {self.connection_alias!r}) no longer "
                "exists; create it with vi_rebuild_index"
            ) from None
        return marker.st_ino, meta.st_ino, meta.st_mtime_ns, meta.st_size

    def parse(self, query_string: str):
        """The Whoosh query tree of ``query_string`` (Whoosh's syntax). Raises InvalidQuery."""
        self._ready()
        parsed = self._parsed.get(query_string)
        if parsed is None:
            try:
                parsed = self.parser.parse(query_string)
            except Exception as error:  # Whoosh raises bare Exceptions
                raise InvalidQuery(f"query {query_string!r} could not be read ({error})") from None
            if len(self._parsed) >= _PARSED_CACHE:
                self._parsed.clear()
            self._parsed[query_string] = parsed
        return parsed

    def compile(self, q, searcher=None, handlers: dict | None = None) -> tantivy.Query:
        """The tantivy query for a Whoosh query tree ``q``; ``handlers`` compile node types of the
        caller's own (see :class:`.tantivy_compile.Compiler`). Raises InvalidQuery."""
        self._ready()
        return Compiler(self.tantivy_schema, self.specs, self.schema, searcher, handlers).compile(q)

    def reader(self, searcher=None, scan_limit: int | None = None) -> TantivyReader:
        """A Whoosh-reader view of ``searcher`` (default: a new one on the last commit), for code
        written against Whoosh's reader (see :mod:`.tantivy_reader`)."""
        return TantivyReader(self, searcher or self.searcher(), scan_limit)

    def query(self, query_string: str, searcher=None) -> tantivy.Query:
        return self.compile(self.parse(query_string), searcher)

    @log_query
    def search(
        self,
        query_string,
        sort_by=None,
        start_offset=0,
        end_offset=None,
        fields="",
        highlight=False,
        facets=None,
        date_facets=None,
        query_facets=None,
        narrow_queries=None,
        spelling_query=None,
        within=None,
        dwithin=None,
        distance_point=None,
        models=None,
        limit_to_registered_models=None,
        result_class=None,
        **kwargs,
    ):
        query_string = force_str(query_string)
        if not query_string:
            return {"results": [], "hits": 0}
        searcher = self.searcher()
        matching = self.query(query_string, searcher)
        filters = self._filters(searcher, narrow_queries, models, limit_to_registered_models)
        q = must(matching, *filters)
        hits, total = self._top(searcher, q, sort_by, start_offset, end_offset)
        results, skipped = self._results(
            searcher, hits, result_class, fields, matching if highlight else None, highlight
        )
        facet_counts = {}
        if facets or date_facets or query_facets:
            facet_counts = {
                "fields": self._field_facets(searcher, q, facets or {}),
                "dates": self._date_facets(searcher, q, date_facets or {}),
                "queries": self._query_facets(searcher, q, query_facets or []),
            }
        return {
            "results": results,
            "hits": total - skipped,
            "facets": facet_counts,
            "spelling_suggestion": None,
        }

    def _filters(self, searcher, narrow_queries, models, limit_to_registered) -> list:
        """The narrowing queries and the model restriction, as filters."""
        filters = [self.query(force_str(nq), searcher) for nq in narrow_queries or ()]
        if limit_to_registered is None:
            # The app's connections hold one model each: no registered-models filter.
            limit_to_registered = not self.serves_app() and getattr(
                settings, "HAYSTACK_LIMIT_TO_REGISTERED_MODELS", True
            )
        if models:
            cts = sorted(get_model_ct(model) for model in models)
        elif limit_to_registered:
            cts = self.build_models_list()
        else:
            cts = []
        if cts:
            filters.append(tantivy.Query.term_set_query(self.tantivy_schema, DJANGO_CT, cts))
        return filters

    def _top(self, searcher, q, sort_by, start_offset, end_offset) -> tuple[list, int]:
        """``([(score, address)], total)`` of the page ``start_offset:end_offset`` of ``q``."""
        start = start_offset or 0
        if end_offset is not None and end_offset <= 0:
            end_offset = 1  # as Haystack's Whoosh backend (its calculate_page)
        end = searcher.num_docs if end_offset is None else min(end_offset, searcher.num_docs)
        limit = end - start
        if limit <= 0:  # tantivy's collectors need a limit of at least one
            return [], searcher.search(q, 1, count=True).count
        keys = [(key[1:], True) if key.startswith("-") else (key, False) for key in sort_by or ()]
        for name, _ in keys:
            spec = self.specs.get(name)
            if spec is None or not spec.fast or spec.multivalued:
                raise SearchBackendError(
                    f"cannot sort on {name!r}: sort on a field with one value "
                    "per document that is not the document field"
                )
        if len(keys) > 1:
            return self._sorted_by_many(searcher, q, keys, start, limit)
        options = {}
        if keys:
            name, descending = keys[0]
            order = tantivy.Order.Desc if descending else tantivy.Order.Asc
            options = {"order_by_field": name, "order": order}
        result = searcher.search(q, limit, count=True, offset=start, **options)
        hits = result.hits if not keys else [(0.0, address) for _, address in result.hits]
        return hits, result.count

    def _sorted_by_many(self, searcher, q, keys, start, limit) -> tuple[list, int]:
        """Several sort keys: tantivy sorts on one, so every match is sorted here (costs a stored
        document read per match)."""
        result = searcher.search(q, max(1, searcher.num_docs), count=True)
        rows = [(address, self.stored_fields(searcher.doc(address))) for _, address in result.hits]
        for name, descending in reversed(keys):  # stable sorts, last key first
            rows.sort(key=lambda row: _sort_key(row[1].get(name)), reverse=descending)
        return [(0.0, address) for address, _ in rows[start : start + limit]], result.count

    # --- results ---

    def _results(self, searcher, hits, result_class, fields, highlight_query, highlight) -> tuple[list, int]:
        """SearchResults of ``hits``, and how many hits were left out (their model is not indexed)."""
        from haystack import connections

        unified = connections[self.connection_alias].get_unified_index()
        indexed_models = unified.get_indexed_models()
        result_class = result_class or SearchResult
        marker = self._highlighter(searcher, highlight_query, highlight) if highlight_query else None
        results, skipped = [], 0
        for score, address in hits:
            stored = self.stored_fields(searcher.doc(address))
            app_label, model_name = stored[DJANGO_CT].split(".")
            model = haystack_get_model(app_label, model_name)
            if model is None or model not in indexed_models:
                skipped += 1
                continue
            additional = self._additional_fields(unified.get_index(model), stored, fields)
            if marker is not None:
                additional["highlighted"] = marker(stored)
            results.append(result_class(app_label, model_name, stored[DJANGO_ID], score, **additional))
        return results, skipped

    @staticmethod
    def _additional_fields(index, stored: dict, fields) -> dict:
        additional = {}
        for name, value in stored.items():
            if name in (DJANGO_CT, DJANGO_ID) or (fields and name not in fields):
                continue
            field = index.fields.get(name)
            if field is not None and hasattr(field, "convert") and not field.is_multivalued:
                value = field.convert(value)
            additional[name] = value
        return additional

    def _highlighter(self, searcher, q, options):
        """A function giving ``{field: [snippet]}`` for a hit's stored fields."""
        names = (options.get("fields") if isinstance(options, dict) else None) or [self.content_field_name]
        generators = {}
        for name in names:
            spec = self.specs.get(name)
            if spec is not None and spec.kind in tf.TOKENIZED:
                generator = tantivy.SnippetGenerator.create(searcher, q, self.tantivy_schema, name)
                if isinstance(options, dict) and options.get("max_chars"):
                    generator.set_max_num_chars(int(options["max_chars"]))
                generators[name] = generator

        def mark(stored: dict) -> dict:
            snippets = {}
            for name, generator in generators.items():
                text = self._highlight_source(name, stored)
                if text:
                    snippet = generator.snippet_from_doc(tantivy.Document(**{name: text}))
                    snippets[name] = [render_snippet(snippet)]
            return snippets

        return mark

    def _highlight_source(self, name: str, stored: dict) -> str | None:
        """The text highlighted for field ``name``: its stored value; on the app's connections
        the document field (not stored) is highlighted in the stored ``content``."""
        text = stored.get(name)
        if text is None and self.serves_app() and name == self.content_field_name:
            text = stored.get("content")
        return text

    # --- facets ---

    def _column(self, name: str, what: str) -> tf.FieldSpec:
        spec = self.specs.get(name)
        if spec is None or not spec.fast:
            raise SearchBackendError(
                f"cannot {what} on {name!r}: it is not a field with exact values "
                "(give the Haystack field faceted=True)"
            )
        return spec

    def _field_facets(self, searcher, q, facets: dict) -> dict:
        if not facets:
            return {}
        specs = {name: self._column(name, "facet") for name in facets}
        aggregations = {
            f"f{i}": {"terms": {"field": name, "size": int((facets[name] or {}).get("limit") or FACET_LIMIT)}}
            for i, name in enumerate(facets)
        }
        found = searcher.aggregate(q, aggregations)
        counts = {}
        for i, name in enumerate(facets):
            buckets = found.get(f"f{i}", {}).get("buckets", [])
            pairs = [(specs[name].from_column(b["key"]), b["doc_count"]) for b in buckets]
            counts[name] = sorted(pairs, key=lambda kv: (-kv[1], _sort_key(kv[0])))
        return counts

    def _date_facets(self, searcher, q, date_facets: dict) -> dict:
        """``{field: [(bucket start, count)]}``, each bucket counted by a range query (exact to the
        microsecond, which a float range aggregation is not)."""
        counts = {}
        for name, options in date_facets.items():
            self._column(name, "facet by date")
            step = relativedelta(**{f"{options['gap_by']}s": int(options.get("gap_amount", 1))})
            start, end = tf.naive_utc(options["start_date"]), tf.naive_utc(options["end_date"])
            buckets = []
            while start < end:
                stop = min(start + step, end)
                bucket = self.compile_range(name, start, stop)
                buckets.append((start, searcher.search(must(q, bucket), 1, count=True).count))
                start = stop
            counts[name] = buckets
        return counts

    def compile_range(self, name: str, start: datetime, end: datetime) -> tantivy.Query:
        """``start <= name < end`` on a date field."""
        low, high = (tf.datetime_to_long(tf.naive_utc(v)) for v in (start, end))
        return tantivy.Query.range_query(
            self.tantivy_schema,
            name,
            tantivy.FieldType.Integer,
            low,
            high,
            include_lower=True,
            include_upper=False,
        )

    def _query_facets(self, searcher, q, query_facets: list) -> dict:
        counts = {}
        for name, value in query_facets:
            facet = self.query(f"{name}:({value})", searcher)
            counts[f"{name}:{value}"] = searcher.search(must(q, facet), 1, count=True).count
        return counts

    # --- more like this ---

    def more_like_this(
        self,
        model_instance,
        additional_query_string=None,
        start_offset=0,
        end_offset=None,
        models=None,
        limit_to_registered_models=None,
        result_class=None,
        **kwargs,
    ):
        """Documents whose document field shares the most telling words with the instance's."""
        searcher = self.searcher()
        ident = get_identifier(model_instance)
        own = tantivy.Query.term_query(self.tantivy_schema, ID, ident)
        found = searcher.search(own, 1).hits
        if not found:
            return {"results": [], "hits": 0}
        text = self._highlight_source(self.content_field_name, self.stored_fields(searcher.doc(found[0][1])))
        if not text:
            return {"results": [], "hits": 0}
        similar = tantivy.Query.more_like_this_document_fields_query(
            self.tantivy_schema,
            {self.content_field_name: [text]},
            min_doc_frequency=1,
            min_term_frequency=1,
            max_query_terms=25,
        )
        narrow = None
        if additional_query_string and additional_query_string != "*":
            narrow = {additional_query_string}
        filters = self._filters(searcher, narrow, models, limit_to_registered_models)
        q = tantivy.Query.boolean_query(
            [(tantivy.Occur.Must, must(similar, *filters)), (tantivy.Occur.MustNot, own)]
        )
        hits, total = self._top(searcher, q, None, start_offset, end_offset)
        results, skipped = self._results(searcher, hits, result_class, "", None, False)
        return {"results": results, "hits": total - skipped}

    # --- the app's reads ---

    def iter_stored(self) -> Iterator[dict]:
        """The stored fields of every document."""
        searcher = self.searcher()
        if not searcher.num_docs:
            return
        for _, address in searcher.search(tantivy.Query.all_query(), searcher.num_docs, count=False).hits:
            yield self.stored_fields(searcher.doc(address))

    def stored_documents(self, ids: Iterable[str]) -> dict[str, dict]:
        """``{id: stored fields}`` of the documents among ``ids`` that are in the index."""
        ids = list(ids)
        if not ids:
            return {}
        searcher = self.searcher()
        q = tantivy.Query.term_set_query(self.tantivy_schema, ID, ids)
        found = {}
        for _, address in searcher.search(q, len(ids), count=False).hits:
            fields = self.stored_fields(searcher.doc(address))
            found[fields[ID]] = fields
        return found

    def stored_texts(self, serials, text_keys):
        """Texts this (history) index holds: ``({serial: (text, status)}, {(checksum, type): ...})``,
        as the Whoosh engine's ``stored_texts`` (the indexing code reuses them)."""
        serials, text_keys = list(serials), list(text_keys)
        by_serial, by_key = {}, {}
        if not serials and not text_keys:
            return by_serial, by_key
        searcher = self.searcher()
        Q, schema, should = tantivy.Query, self.tantivy_schema, tantivy.Occur.Should
        clauses = []
        if serials:
            ids = [f"versioned_items.version.{s}" for s in serials]
            clauses.append((should, Q.term_set_query(schema, ID, ids)))
        if text_keys:
            checksums = sorted({checksum for checksum, _ in text_keys})
            clauses.append((should, Q.term_set_query(schema, "checksum", checksums)))
        wanted = set(text_keys)
        for fields in self.reader(searcher).docs_stored(Q.boolean_query(clauses)):
            found = (fields.get("content", ""), fields.get("text_status"))
            content_type = (fields.get("content_type") or "").split(";", 1)[0].strip().lower()
            key = (fields.get("checksum"), content_type)
            by_serial[fields.get("serial")] = found
            if key in wanted:
                by_key[key] = found
        return by_serial, by_key

    def doc_count(self) -> int:
        return self.searcher().num_docs


def _with_tokens(doc: dict, schema) -> tantivy.Document:
    """A tantivy document of ``doc``, whose pre-tokenized values are added apart."""
    tokenized = {k: v for k, v in doc.items() if isinstance(v, tantivy.PreTokenizedString)}
    document = tantivy.Document.from_dict({k: v for k, v in doc.items() if k not in tokenized}, schema)
    for name, value in tokenized.items():
        document.add_pre_tokenized_text(name, value)
    return document


class _OtherFields(IndexUnavailable):
    """The index was built for other fields than the Haystack indexes declare now."""


def create_index(path: str, schema: tantivy.Schema, marker: dict) -> tantivy.Index:
    """A new, empty index of ``schema`` in the folder ``path`` (which must not hold one), with
    its version marker. Killed before the marker is written, the folder is reported as
    needing a rebuild, never opened."""
    os.makedirs(path, exist_ok=True)
    index = tantivy.Index(schema, path=path, reuse=False)
    tmp = os.path.join(path, f".{MARKER}.tmp")
    with open(tmp, "w") as f:
        json.dump(marker, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, os.path.join(path, MARKER))
    return index


def _moved_aside(live: str) -> str:
    """Where a swap by two renames moves the live index ``live`` first."""
    return f"{live}.old"


def _exchange(first: str, second: str) -> bool:
    """Exchange two folders with one atomic rename; False where the system cannot (not Linux,
    or a file system without ``RENAME_EXCHANGE``)."""
    renameat2 = getattr(_libc(), "renameat2", None)
    if renameat2 is None:
        return False
    if renameat2(_AT_FDCWD, os.fsencode(first), _AT_FDCWD, os.fsencode(second), _RENAME_EXCHANGE) == 0:
        return True
    error = ctypes.get_errno()
    if error in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):
        return False
    raise OSError(error, os.strerror(error), second)


@functools.cache
def _libc():
    try:
        return ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None


@contextlib.contextmanager
def _committed(writer) -> Iterator[tantivy.IndexWriter]:
    """``writer`` for a block: committed at its end, rolled back if it raises, and finished
    (merges done, lock released) either way."""
    try:
        yield writer
        writer.commit()
    except BaseException:
        with contextlib.suppress(Exception):
            writer.rollback()
        raise
    finally:
        _finish(writer)


def _finish(writer) -> None:
    """Release a writer's lock, after the merges it started (they run in its threads)."""
    try:
        writer.wait_merging_threads()
    except Exception:  # a failed merge loses nothing: the segments it would merge stay
        logging.getLogger("haystack").exception("A tantivy merge failed")


def render_snippet(snippet) -> str:
    """A tantivy snippet as HTML: its fragment escaped, the matches in ``<mark>``.

    tantivy's own ``to_html`` marks with ``<b>``; its ranges are byte offsets in the fragment.
    """
    data = snippet.fragment().encode()
    parts, position = [], 0
    for match in sorted(snippet.highlighted(), key=lambda r: r.start):
        if match.start < position:
            continue
        parts.append(html.escape(data[position : match.start].decode(errors="replace")))
        parts.append(f"<mark>{html.escape(data[match.start : match.end].decode(errors='replace'))}</mark>")
        position = match.end
    parts.append(html.escape(data[position:].decode(errors="replace")))
    return "".join(parts)


def _sort_key(value):
    """Sorts values of one field with the missing ones first."""
    return (value is not None, value if value is not None else 0)


class TantivySearchQuery(WhooshSearchQuery):
    """Haystack's Whoosh query strings, with dates to the microsecond and in UTC."""

    def _convert_datetime(self, date):
        value = tf.naive_utc(date)
        return force_str(value.strftime("%Y%m%d%H%M%S%f"))


class TantivyEngine(BaseEngine):
    backend = TantivySearchBackend
    query = TantivySearchQuery

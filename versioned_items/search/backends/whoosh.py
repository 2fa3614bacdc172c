"""The app's Whoosh engine: Haystack's Whoosh backend without the costs that profiling found.

Use it as the ENGINE of the two connections::

    "ENGINE": "versioned_items.search.backends.WhooshEngine"

It is a drop-in replacement for ``haystack.backends.whoosh_backend.WhooshEngine`` on any other
connection too: Haystack's own Whoosh test suite passes on it (``scripts/haystack_suite.sh``).
Every deliberate difference is listed in ``docs/haystack.md``; in short:

- **No searcher per document.** Whoosh's ``update_document`` opens a searcher for every
  document (84% of ``update_index``'s time here, growing with the segment count). A batch opens
  one searcher, deletes the old documents of all its ids through it, then adds the new ones,
  all in one writer and one commit.
- **Spelling off** unless the connection sets ``INCLUDE_SPELLING``: Haystack turns it on for the
  document field, which more than halves bulk indexing speed.
- **One searcher per thread, reused** until the index is no longer the one it reads (its table of
  contents names other segments), instead of one per query.
- **Writers wait for the lock** (``SEARCH_LOCK_TIMEOUT``) instead of failing with ``LockError``,
  and a failed ``remove`` raises instead of being logged and lost.
- **Atomic swap** of an index rebuilt elsewhere (:meth:`WhooshSearchBackend.swap_in`).

On the app's own two connections (``LATEST_CONNECTION``, ``HISTORY_CONNECTION``) only:

- **Field types that fit**: exact terms, path words, content types, term lists and numbers are
  sortable columns (see ``search_indexes.py``), not stemmed text. Other connections get
  Haystack's field types, so an index the stock engine built answers the same.
- **No registered-models query.** Haystack runs an extra query matching every document of the
  registered models on each search; these indexes hold one model each.
- **A missing index is an error** (``IndexUnavailable``), not an empty index silently created in
  its place: only ``ensure_index()`` (called after ``migrate``), a rebuild
  and an explicit ``clear_index``/:meth:`~WhooshSearchBackend.delete_index` create one.
- **Writes never fail silently**, whatever ``SILENTLY_FAIL`` says: the outbox keeps a change
  whose write failed and retries it.

An unreadable index raises ``IndexUnavailable`` on every connection.
"""

import contextlib
import os
import re
import shutil
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from typing import TypeVar

from haystack.backends import whoosh_backend
from haystack.constants import DJANGO_CT, DJANGO_ID, ID
from haystack.utils import get_model_ct
from whoosh import fields as wf
from whoosh import index as windex
from whoosh.analysis import LowercaseFilter, RegexTokenizer, StemmingAnalyzer, Token, Tokenizer
from whoosh.filedb.filestore import FileStorage, RamStorage
from whoosh.qparser import FuzzyTermPlugin, QueryParser
from whoosh.query import Or, Term
from whoosh.searching import Searcher
from whoosh.util.filelock import try_for
from whoosh.writing import CLEAR

from versioned_items.conf import app_settings
from versioned_items.exceptions import IndexUnavailable

from .common import AppBackendMixin

# Separates the items of a token list inside one Whoosh value. Control characters are refused
# in paths, and are removed from attribute values before indexing.
SEPARATOR = "\x1f"

# Opening an index or a searcher races with commits that delete old files: tries before giving up.
_OPEN_ATTEMPTS = 10

T = TypeVar("T")


class _ItemTokenizer(Tokenizer):
    """A tokenizer that yields whole items, as given; subclasses say what the items are."""

    def items(self, value: str, mode: str, start_char: int) -> Iterator[tuple[int, str, int, int]]:
        """(position offset, item, start char, end char) for each item of ``value``."""
        raise NotImplementedError

    def __call__(
        self,
        value,
        positions=False,
        chars=False,
        keeporiginal=False,
        removestops=True,
        start_pos=0,
        start_char=0,
        mode="",
        **kwargs,
    ):
        token = Token(positions, chars, removestops=removestops, mode=mode, **kwargs)
        for offset, item, first, last in self.items(value, mode, start_char):
            token.text = item
            token.boost = 1.0
            token.stopped = False
            if keeporiginal:
                token.original = item
            if positions:
                token.pos = start_pos + offset
            if chars:
                token.startchar, token.endchar = first, last
            yield token


class SeparatorTokenizer(_ItemTokenizer):
    """One token per ``SEPARATOR``-separated item, exactly as given."""

    def items(self, value, mode, start_char):
        char = start_char
        for offset, item in enumerate(value.split(SEPARATOR)):
            if item:
                yield offset, item, char, char + len(item)
            char += len(item) + 1


class ContentTypeTokenizer(_ItemTokenizer):
    """``text/plain; charset=x`` gives ``text/plain`` and ``text``; a query gives what it says."""

    def items(self, value, mode, start_char):
        full = value.split(";", 1)[0].strip().lower()
        candidates = [full] if mode == "query" else [full, full.partition("/")[0]]
        for offset, item in enumerate(dict.fromkeys(candidates)):
            if item:
                yield offset, item, start_char, start_char + len(value)


def path_analyzer():
    """Words of a path: ``docs/Q1-report_v2.txt`` -> docs, q1, report, v2, txt."""
    return RegexTokenizer(r"[^\W_]+") | LowercaseFilter()


def _term_list_field(analyzer, stored):
    field = wf.KEYWORD(stored=stored, scorable=True)
    field.analyzer = analyzer
    return field


class WhooshSearchBackend(AppBackendMixin, whoosh_backend.WhooshSearchBackend):
    """Haystack's Whoosh backend with batched writes, reused searchers and waiting writers."""

    engine_label = "Whoosh"

    def __init__(self, connection_alias, **connection_options):
        super().__init__(connection_alias, **connection_options)
        self.schema = None
        self._index = None
        self._schema_fields = None  # the Haystack fields the schema was built from
        self._kinds: dict[str, str] = {}
        # Whoosh searchers are not safe to share between threads (their readers seek and read
        # shared files): each thread gets its own, and its own view of the index during search().
        self._local = threading.local()

    @property
    def index(self):
        """The Whoosh index; inside this thread's ``search()``, a view that hands out the reused
        searcher (Haystack's code reads ``self.index`` for every searcher it opens)."""
        return getattr(self._local, "view", None) or self._index

    @index.setter
    def index(self, value):
        if value is not getattr(self._local, "view", None):  # search()'s `self.index = self.index.refresh()`
            self._index = value

    # --- opening ---

    def setup(self):
        """Build the schema and open the index.

        A missing index is created, empty, as Haystack does, except on the app's connections:
        there it raises IndexUnavailable (only ``ensure_index()``, a rebuild and
        :meth:`delete_index` create one). An unreadable index raises IndexUnavailable.
        """
        self._schema_fields = None  # Haystack's setup() always rebuilds the schema
        self._open(create=not self.serves_app())

    def _open(self, create: bool) -> None:
        self._build_schema()
        storage = self._storage()
        if storage is None or windex.TOC._latest_generation(storage, windex._DEF_INDEX_NAME) < 0:
            if not create:
                raise IndexUnavailable(
                    f"the search index {self.path!r} (connection {self.connection_alias!r}) does "
                    "not exist; create it with vi_rebuild_index"
                )
            self._create_index()
            return
        self.index = self._reading(lambda: storage.open_index(schema=self.schema))
        self.storage = storage
        self.setup_complete = True

    def _storage(self):
        """The index's storage, or None when its folder does not exist."""
        if not self.use_file_storage:
            # Haystack's RAM index: one per thread, shared by the connections of that thread.
            if getattr(whoosh_backend.LOCALS, "RAM_STORE", None) is None:
                whoosh_backend.LOCALS.RAM_STORE = RamStorage()
            return whoosh_backend.LOCALS.RAM_STORE
        return FileStorage(self.path) if os.path.isdir(self.path) else None

    def _create_index(self) -> None:
        """Make the index an empty one with this schema, whatever was there (Whoosh's create)."""
        if self.use_file_storage:
            os.makedirs(self.path, exist_ok=True)
        self.storage = self._storage()
        self.index = self.storage.create_index(self.schema)
        self.setup_complete = True

    def _reading(self, read: Callable[[], T]) -> T:
        """``read()``, tried again when a file it opens is gone: a commit in another thread or
        process deletes the files of the generation it replaces, possibly between our listing
        them and opening them (Whoosh's own ``reader()`` retries the same way). Raises
        IndexUnavailable when the index cannot be read.
        """
        attempt = 1
        while True:
            try:
                return read()
            except FileNotFoundError as error:
                if attempt == _OPEN_ATTEMPTS:
                    raise self._unreadable(error) from error
                attempt += 1
                time.sleep(0.01)
            except Exception as error:
                # Whoosh reports a damaged table of contents with many exception types.
                raise self._unreadable(error) from error

    def _unreadable(self, error) -> IndexUnavailable:
        return IndexUnavailable(
            f"the search index {self.path!r} (connection {self.connection_alias!r}) cannot be "
            f"read ({type(error).__name__}: {error}); rebuild it with vi_rebuild_index"
        )

    def _build_schema(self) -> None:
        """(Re)build the schema and parser when the connection's Haystack fields changed
        (Haystack builds a new field dict whenever its unified index is rebuilt)."""
        fields = self._searchfields()
        if fields is self._schema_fields:
            return
        self.content_field_name, self.schema = self.build_schema(fields)
        self.parser = QueryParser(self.content_field_name, schema=self.schema)
        self.parser.add_plugins([FuzzyTermPlugin])
        self._schema_fields = fields
        self.setup_complete = False  # the open index has the old schema: reopen it

    # --- schema ---

    def build_schema(self, fields):
        """``(content field name, Whoosh schema)`` for the Haystack ``fields``.

        Haystack's field types, with spelling only on request; on the app's connections, the
        app's field kinds (``vi_kind``) and numbers and dates as sortable columns.
        """
        own = self.serves_app()
        ours = {name: f for name, f in fields.items() if own and getattr(f, "vi_kind", None)}
        others = {name: f for name, f in fields.items() if name not in ours}
        content_field_name, schema_fields = (
            "",
            {
                ID: wf.ID(stored=True, unique=True),
                DJANGO_CT: wf.ID(stored=True),
                DJANGO_ID: wf.ID(stored=True),
            },
        )
        if others:
            content_field_name, schema = super().build_schema(others)
            # Without the spelling fields Whoosh added: Schema() adds them again when asked.
            schema_fields = {name: f for name, f in schema.items() if not isinstance(f, wf.SpellField)}
        self._kinds = {}
        if own:
            self._columns(fields, schema_fields)
            for name, field in ours.items():
                self._kinds[name] = field.vi_kind
                schema_fields[name] = self._whoosh_field(field)
                if field.document:
                    content_field_name = name
        for name, field in schema_fields.items():
            # Spelling costs more than half of bulk indexing speed; only on request.
            if isinstance(field, wf.FieldType):
                field.spelling = self.include_spelling and name == content_field_name
        return content_field_name, wf.Schema(**schema_fields)

    @staticmethod
    def _columns(fields, schema_fields) -> None:
        """Numbers and dates of the app's documents are sorted and faceted on: columns."""
        for name, field in fields.items():
            if field.field_type not in ("integer", "datetime") or name not in schema_fields:
                continue
            if not field.indexed:
                schema_fields[name] = wf.STORED()
            elif field.field_type == "integer":
                schema_fields[name] = wf.NUMERIC(int, bits=64, stored=field.stored, sortable=True)
            else:
                schema_fields[name] = wf.DATETIME(stored=field.stored, sortable=True)

    def _whoosh_field(self, field):
        kind, stored, boost = field.vi_kind, field.stored, field.boost
        if kind == "content":
            return wf.TEXT(analyzer=StemmingAnalyzer(), stored=stored, field_boost=boost)
        if kind == "exact":
            return wf.ID(stored=stored, sortable=getattr(field, "vi_sortable", False), field_boost=boost)
        if kind == "path":
            return wf.TEXT(analyzer=path_analyzer(), stored=stored, field_boost=boost)
        if kind == "content_type":
            return _term_list_field(ContentTypeTokenizer(), stored)
        if kind == "tokens":
            return _term_list_field(SeparatorTokenizer(), stored)
        if kind == "stored":
            return wf.STORED()
        raise ValueError(f"unknown vi_kind {kind!r} of field {field.index_fieldname!r}")

    # --- values ---

    def _from_python(self, value):
        if isinstance(value, datetime) and value.tzinfo is not None:
            # Whoosh compares naive datetimes: store UTC.
            return value.astimezone(UTC).replace(tzinfo=None)
        return super()._from_python(value)

    def whoosh_document(self, prepared: dict) -> dict:
        """A Haystack-prepared document as Whoosh field values."""
        self._build_schema()  # the field kinds come from the schema
        doc = {}
        for name, value in prepared.items():
            if value is None or name == "boost":
                continue
            kind = self._kinds.get(name)
            if kind == "tokens":
                doc[name] = SEPARATOR.join(_clean_token(v) for v in value)
            elif kind is not None:
                doc[name] = str(value)
            else:
                doc[name] = self._from_python(value)
        return doc

    # --- writing ---

    engine_document = whoosh_document  # what AppBackendMixin.apply writes

    def writer(self, index=None, **kwargs):
        """A writer on ``index`` (default: the live one), waiting for the lock if another has it.

        Raises IndexUnavailable when the lock is not free within ``SEARCH_LOCK_TIMEOUT``.
        """
        if index is None:
            self._ready()
            index = self._index
        timeout = app_settings.SEARCH_LOCK_TIMEOUT
        try:
            return index.writer(timeout=timeout, delay=0.01, **kwargs)
        except windex.LockError:
            raise IndexUnavailable(
                f"the Whoosh index {self.path!r} (connection {self.connection_alias!r}) was "
                f"locked by another writer for more than {timeout:g} s"
            ) from None
        except Exception as error:
            raise self._unreadable(error) from error

    def write_documents(self, docs: Iterable[dict], delete_ids: Iterable[str] = ()) -> None:
        """Replace or add Whoosh documents ``docs`` and remove ``delete_ids``, in one commit."""
        docs = list(docs)
        ids = set(delete_ids) | {doc[ID] for doc in docs}
        if not ids:
            return
        writer = self.writer()
        try:
            # One searcher for the whole batch, not one per document as update_document does;
            # a term lookup first, since most ids of an import are new.
            with writer.searcher() as searcher:
                reader = searcher.reader()
                for ident in ids:
                    if (ID, ident) in reader:
                        for docnum in searcher.docs_for_query(Term(ID, ident), for_deletion=True):
                            writer.delete_document(docnum)
            for doc in docs:
                writer.add_document(**doc)
        except BaseException:
            writer.cancel()
            raise
        _commit(writer)

    def clear(self, models=None, commit=True):
        with self._failing("clear the Whoosh index"):
            if not models:
                self.delete_index()
                return
            writer = self.writer()
            try:
                for model in models:
                    writer.delete_by_term(DJANGO_CT, get_model_ct(model))
            except BaseException:
                writer.cancel()
                raise
            _commit(writer)

    def delete_index(self):
        """Empty the index, atomically and under the write lock; a missing or unreadable index is
        created anew (this is an explicit request for an empty index). The backend stays usable.
        """
        self._build_schema()
        try:
            self._open(create=True)
        except IndexUnavailable:  # unreadable
            self._create_index()
            return
        # CLEAR: the commit's table of contents lists only the (empty) new segment.
        _commit(self.writer(), mergetype=CLEAR)

    def optimize(self):
        _commit(self.writer(), optimize=True)

    # --- reading ---

    def searcher(self):
        """This thread's searcher, reopened when the index is no longer the one it reads.

        The index is identified by its table of contents (generation and segment ids), so that
        an index re-created at the same path and generation is noticed. Raises IndexUnavailable
        when the index cannot be read.
        """
        self._ready()
        return self._reading(self._current_searcher)

    def _current_searcher(self):
        toc = self._index._read_toc()
        identity = (toc.generation, tuple(segment.segment_id() for segment in toc.segments))
        held = getattr(self._local, "searcher", None)
        if held is None or held[1] != identity:
            reader = windex.FileIndex._reader(self.storage, self.schema, toc.segments, toc.generation)
            held = self._local.searcher = (Searcher(reader, fromindex=self._index), identity)
        return held[0]

    @contextlib.contextmanager
    def _search_view(self) -> Iterator[None]:
        """Within the block, ``self.index`` (in this thread) hands out the reused searcher."""
        self._ready()
        outer = getattr(self._local, "view", None)
        self._local.view = outer or _SearchView(self)
        try:
            yield
        finally:
            self._local.view = outer

    def search(self, query_string, **kwargs):
        if self.serves_app():
            # Never add the registered-models query: this connection holds one model.
            kwargs.setdefault("limit_to_registered_models", False)
        with self._search_view():
            return super().search(query_string, **kwargs)

    def more_like_this(self, model_instance, *args, **kwargs):
        with self._search_view():
            return super().more_like_this(model_instance, *args, **kwargs)

    def doc_count(self) -> int:
        """The number of documents. Raises IndexUnavailable when the index cannot be read."""
        return self.searcher().doc_count()

    def iter_stored(self) -> Iterator[dict]:
        """The stored fields of every document, in index order."""
        yield from self.searcher().all_stored_fields()

    def stored_documents(self, ids: Iterable[str]) -> dict[str, dict]:
        """``{id: stored fields}`` of the documents among ``ids`` that are in the index."""
        ids = list(ids)
        if not ids:
            return {}
        searcher = self.searcher()
        found = {}
        for docnum in searcher.docs_for_query(Or([Term(ID, i) for i in ids])):
            fields = searcher.stored_fields(docnum)
            found[fields[ID]] = fields
        return found

    def stored_texts(self, serials, text_keys):
        """Texts this (history) index holds: ``({serial: (text, status)}, {(checksum, type): ...})``."""
        serials, text_keys = list(serials), list(text_keys)
        searcher = self.searcher()
        reader = searcher.reader()
        wanted_terms = [(ID, f"versioned_items.version.{s}") for s in serials]
        wanted_terms += [("checksum", checksum) for checksum, _ in text_keys]
        # Only the terms the index has: an Or of thousands of absent terms (the new versions
        # of an import) cost more than extracting their texts.
        terms = [Term(*term) for term in wanted_terms if term in reader]
        by_serial, by_key = {}, {}
        if not terms:
            return by_serial, by_key
        wanted = set(text_keys)
        for docnum in searcher.docs_for_query(Or(terms)):
            fields = searcher.stored_fields(docnum)
            found = (fields.get("content", ""), fields.get("text_status"))
            key = (fields.get("checksum"), fields.get("content_type", "").split(";", 1)[0].strip().lower())
            by_serial[fields.get("serial")] = found
            if key in wanted:
                by_key[key] = found
        return by_serial, by_key

    # --- rebuilding ---

    def create_index_in(self, folder: str):
        """A new, empty Whoosh index with this connection's schema in ``folder``."""
        self._build_schema()  # the live index need not be readable: it may be what is rebuilt
        os.makedirs(folder, exist_ok=True)
        return FileStorage(folder).create_index(self.schema)

    @contextlib.contextmanager
    def building(self, folder: str, procs: int = 1) -> Iterator[Callable[[dict], None]]:
        """A new index in ``folder``, filled through the ``add(prepared)`` given to the block
        (``procs`` > 1: Whoosh indexes in that many processes); committed when the block ends,
        cancelled if it raises. Swap it in with :meth:`swap_in`."""
        writer_args = {"procs": procs, "multisegment": True, "limitmb": 128} if procs > 1 else {}
        writer = self.writer(self.create_index_in(folder), **writer_args)
        try:
            yield lambda prepared: writer.add_document(**self.whoosh_document(prepared))
        except BaseException:
            writer.cancel()
            raise
        _commit(writer)

    def swap_in(self, folder: str) -> None:
        """Make the index built in ``folder`` the live index, atomically, and remove ``folder``.

        Under the live index's write lock, the new segment files are moved next to the live
        ones, then a new table of contents that lists only them is written. That one write,
        which Whoosh makes atomic by renaming a temporary file, is the swap: readers see the old
        index or the new one, never a mix. The old segments are deleted afterwards. Killed
        before the table of contents is written, the live index is unchanged (the moved files
        are unreferenced and removed at its next commit).
        """
        new_index = FileStorage(folder).open_index(schema=self.schema)
        new_toc = new_index._read_toc()
        new_index.close()
        # The live index is not opened: it may be missing or damaged, which a rebuild repairs.
        os.makedirs(self.path, exist_ok=True)
        live = FileStorage(self.path)
        name = windex._DEF_INDEX_NAME
        lock = live.lock(f"{name}_WRITELOCK")  # the lock every Whoosh writer of this index takes
        timeout = app_settings.SEARCH_LOCK_TIMEOUT
        if not try_for(lock.acquire, timeout=timeout, delay=0.01):
            raise IndexUnavailable(
                f"the Whoosh index {self.path!r} stayed locked for more than {timeout:g} s"
            )
        try:
            pattern = windex.TOC._segment_pattern(name)
            for filename in os.listdir(folder):
                if pattern.match(filename):
                    os.replace(os.path.join(folder, filename), os.path.join(self.path, filename))
            generation = windex.TOC._latest_generation(live, name) + 1
            windex.TOC(self.schema, new_toc.segments, generation).write(live, name)
            # Still under the lock, so no other writer's fresh files are taken for leftovers.
            windex.clean_files(live, name, generation, new_toc.segments)
        finally:
            lock.release()
        shutil.rmtree(folder, ignore_errors=True)
        self._local.searcher = None
        self.setup_complete = False  # reopened on next use


def _commit(writer, **options) -> None:
    """Commit ``writer``; if the commit fails, cancel it so its write lock is released (a
    failed commit would otherwise keep the lock, and every later writer would time out)."""
    try:
        writer.commit(**options)
    except BaseException:
        with contextlib.suppress(Exception):
            writer.cancel()
        raise


def _clean_token(value) -> str:
    return re.sub(r"[\x00-\x1f]", " ", str(value))


class _SearchView:
    """Stands in for the Whoosh index during Haystack's ``search``: hands out the thread's reused
    searcher (whose ``close`` does nothing) instead of opening one per query."""

    def __init__(self, backend):
        self._backend = backend

    def refresh(self):
        return self

    def doc_count(self):
        return self._backend.searcher().doc_count()

    def searcher(self, **kwargs):
        return _Unclosable(self._backend.searcher())

    def reader(self, **kwargs):
        return self._backend.searcher().reader()

    def __getattr__(self, name):
        return getattr(self._backend._index, name)


class _Unclosable:
    def __init__(self, searcher):
        self._searcher = searcher

    def close(self):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        pass

    def __getattr__(self, name):
        return getattr(self._searcher, name)


class WhooshEngine(whoosh_backend.WhooshEngine):
    backend = WhooshSearchBackend

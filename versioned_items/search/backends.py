"""The app's Whoosh engine: Haystack's Whoosh backend without the costs that profiling found.

Use it as the ENGINE of the two connections::

    "ENGINE": "versioned_items.search.backends.WhooshEngine"

What differs from ``haystack.backends.whoosh_backend``, and why:

- **No searcher per document.** Whoosh's ``update_document`` opens a searcher for every
  document (84% of ``update_index``'s time here, growing with the segment count). A batch opens
  one searcher, deletes the old documents of all its ids through it, then adds the new ones,
  all in one writer and one commit.
- **Spelling off** unless the connection sets ``INCLUDE_SPELLING``: Haystack turns it on for the
  document field, which more than halves bulk indexing speed.
- **No registered-models query.** Haystack runs an extra query matching every document of the
  registered models on each search; the indexes here hold one model each.
- **One searcher, reused** until the index changes (checked by generation, a directory
  listing), instead of one per query.
- **Writers wait for the lock.** Concurrent writers wait (``SEARCH_LOCK_TIMEOUT``) instead of
  failing with ``LockError``, and a failed ``remove`` raises instead of being logged and lost.
- **Field types that fit**: exact terms, path words, content types, term lists and numbers are
  sortable columns (see ``search_indexes.py``), not stemmed text.
- **Atomic swap** of an index rebuilt elsewhere (:meth:`WhooshSearchBackend.swap_in`).
- **A missing or unreadable index is an error** (``IndexUnavailable``), not an empty index
  silently created in its place: only :meth:`WhooshSearchBackend.ensure_index` (called after
  ``migrate``) and a rebuild create one.
"""

import contextlib
import os
import re
import shutil
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime

from haystack.backends import whoosh_backend
from haystack.constants import DJANGO_CT, DJANGO_ID, ID
from haystack.utils import get_identifier
from whoosh import fields as wf
from whoosh import index as windex
from whoosh.analysis import LowercaseFilter, RegexTokenizer, StemmingAnalyzer, Token, Tokenizer
from whoosh.filedb.filestore import FileStorage
from whoosh.qparser import FuzzyTermPlugin, QueryParser
from whoosh.query import Every, Or, Term
from whoosh.util.filelock import try_for

from versioned_items.conf import app_settings
from versioned_items.exceptions import IndexUnavailable

# Separates the items of a token list inside one Whoosh value. Control characters are refused
# in paths, and are removed from attribute values before indexing.
SEPARATOR = "\x1f"


class _ItemTokenizer(Tokenizer):
    """A tokenizer that yields whole items, as given; subclasses say what the items are."""

    def items(self, value: str, mode: str, start_char: int) -> Iterator[tuple[int, str, int, int]]:
        """(position offset, item, start char, end char) for each item of ``value``."""
        raise NotImplementedError

    def __call__(self, value, positions=False, chars=False, keeporiginal=False,
                 removestops=True, start_pos=0, start_char=0, mode="", **kwargs):
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


class WhooshSearchBackend(whoosh_backend.WhooshSearchBackend):
    """Haystack's Whoosh backend with batched writes, a reused searcher and waiting writers."""

    def __init__(self, connection_alias, **connection_options):
        super().__init__(connection_alias, **connection_options)
        # A remove that fails must raise, never be logged and dropped.
        self.silently_fail = False
        self._searcher = None
        self._kinds: dict[str, str] = {}

    # --- opening ---

    def setup(self):
        """Open the index; raise IndexUnavailable when it is missing or unreadable."""
        self._open(create=False)

    def ensure_index(self) -> None:
        """Create the index if it does not exist yet (an empty one), and open it."""
        if not self.setup_complete:
            self._open(create=True)

    def _open(self, create: bool) -> None:
        self._build_schema()
        if not self.use_file_storage:
            super().setup()  # a RAM index: nothing to lose, Haystack's way
            return
        storage = FileStorage(self.path) if os.path.isdir(self.path) else None
        exists = storage is not None and windex.TOC._latest_generation(storage, windex._DEF_INDEX_NAME) >= 0
        if not exists:
            if not create:
                raise IndexUnavailable(
                    f"the search index {self.path!r} (connection {self.connection_alias!r}) does "
                    "not exist; create it with vi_rebuild_index"
                )
            os.makedirs(self.path, exist_ok=True)
            self.storage = FileStorage(self.path)
            self.index = self.storage.create_index(self.schema)
        else:
            self.storage = storage
            try:
                self.index = storage.open_index(schema=self.schema)
            except Exception as error:
                # Whoosh reports a damaged table of contents with many exception types.
                raise self._unreadable(error) from error
        self.setup_complete = True

    def _unreadable(self, error) -> IndexUnavailable:
        return IndexUnavailable(
            f"the search index {self.path!r} (connection {self.connection_alias!r}) cannot be "
            f"read ({type(error).__name__}: {error}); rebuild it with vi_rebuild_index"
        )

    def _build_schema(self) -> None:
        if getattr(self, "schema", None) is not None:
            return
        from haystack import connections

        fields = connections[self.connection_alias].get_unified_index().all_searchfields()
        self.content_field_name, self.schema = self.build_schema(fields)
        self.parser = QueryParser(self.content_field_name, schema=self.schema)
        self.parser.add_plugins([FuzzyTermPlugin])

    # --- schema ---

    def build_schema(self, fields):
        ours = {name: f for name, f in fields.items() if getattr(f, "vi_kind", None)}
        others = {name: f for name, f in fields.items() if name not in ours}
        content_field_name, schema = super().build_schema(others) if others else ("", None)
        schema_fields = dict(schema.items()) if schema else {
            ID: wf.ID(stored=True, unique=True),
            DJANGO_CT: wf.ID(stored=True),
            DJANGO_ID: wf.ID(stored=True),
        }
        for name, field in fields.items():
            if field.field_type in ("integer", "datetime") and name in schema_fields:
                # Numbers and dates of the app's documents are sorted and faceted on: columns.
                if not field.indexed:
                    schema_fields[name] = wf.STORED()
                elif field.field_type == "integer":
                    schema_fields[name] = wf.NUMERIC(int, bits=64, stored=field.stored, sortable=True)
                else:
                    schema_fields[name] = wf.DATETIME(stored=field.stored, sortable=True)
        self._kinds = {}
        for name, field in ours.items():
            self._kinds[name] = field.vi_kind
            schema_fields[name] = self._whoosh_field(field)
            if field.document:
                content_field_name = name
        for name, field in schema_fields.items():
            # Spelling costs more than half of bulk indexing speed; only on request.
            if getattr(field, "spelling", False) and not (self.include_spelling and name == content_field_name):
                field.spelling = False
        return content_field_name, wf.Schema(**schema_fields)

    def _whoosh_field(self, field):
        kind, stored, boost = field.vi_kind, field.stored, field.boost
        if kind == "content":
            return wf.TEXT(analyzer=StemmingAnalyzer(), stored=stored, field_boost=boost,
                           spelling=self.include_spelling)
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

    def writer(self, index=None, **kwargs):
        """A writer on ``index`` (default: the live one), waiting for the lock if another has it.

        Raises IndexUnavailable when the lock is not free within ``SEARCH_LOCK_TIMEOUT``.
        """
        if index is None:
            if not self.setup_complete:
                self.setup()
            index = self.index
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

    def apply(self, index, objects: Iterable, delete_ids: Iterable[str] = ()) -> None:
        """Write ``objects`` and remove the documents ``delete_ids``: one writer, one commit.

        ``index`` is the SearchIndex that prepares the objects. Old documents of the written
        objects are replaced. Raises IndexUnavailable when the index stays locked.
        """
        docs = {}
        for obj in objects:
            doc = self.whoosh_document(index.full_prepare(obj))
            docs[doc[ID]] = doc  # the same object twice: the last one wins
        self.write_documents(docs.values(), delete_ids)

    def write_documents(self, docs: Iterable[dict], delete_ids: Iterable[str] = ()) -> None:
        """Replace or add Whoosh documents ``docs`` and remove ``delete_ids``, in one commit."""
        docs = list(docs)
        ids = set(delete_ids) | {doc[ID] for doc in docs}
        if not ids:
            return
        writer = self.writer()
        try:
            # One searcher for the whole batch, not one per document as update_document does.
            with writer.searcher() as searcher:
                for ident in ids:
                    for docnum in searcher.docs_for_query(Term(ID, ident), for_deletion=True):
                        writer.delete_document(docnum)
            for doc in docs:
                writer.add_document(**doc)
        except BaseException:
            writer.cancel()
            raise
        _commit(writer)

    def update(self, index, iterable, commit=True):
        self.apply(index, iterable)

    def remove(self, obj_or_string, commit=True):
        self.write_documents([], [get_identifier(obj_or_string)])

    def clear(self, models=None, commit=True):
        from haystack.utils import get_model_ct

        writer = self.writer()
        try:
            if models:
                for model in models:
                    writer.delete_by_term(DJANGO_CT, get_model_ct(model))
            else:
                writer.delete_by_query(Every())
        except BaseException:
            writer.cancel()
            raise
        _commit(writer)

    def optimize(self):
        _commit(self.writer(), optimize=True)

    # --- reading ---

    def searcher(self):
        """The backend's searcher, refreshed when the index changed since it was opened."""
        if not self.setup_complete:
            self.setup()
        try:
            if self._searcher is None:
                self._searcher = self.index.searcher()
            elif not self._searcher.up_to_date():
                self._searcher = self._searcher.refresh()
        except Exception as error:
            self._searcher = None
            raise self._unreadable(error) from error
        return self._searcher

    def search(self, query_string, **kwargs):
        # Never add the registered-models query: this connection holds one model.
        kwargs.setdefault("limit_to_registered_models", False)
        if not self.setup_complete:
            self.setup()
        live = self.index
        self.index = _ReusedSearcherIndex(self, live)
        try:
            return super().search(query_string, **kwargs)
        finally:
            self.index = live

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
        terms = [Term(ID, f"versioned_items.version.{s}") for s in serials]
        terms += [Term("checksum", checksum) for checksum, _ in text_keys]
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
            raise IndexUnavailable(f"the Whoosh index {self.path!r} stayed locked for more than {timeout:g} s")
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
        self._searcher = None
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


class _ReusedSearcherIndex:
    """Stands in for the Whoosh index during Haystack's ``search``: hands out the reused
    searcher (whose ``close`` does nothing) instead of opening one per query."""

    def __init__(self, backend, index):
        self._backend = backend
        self._index = index

    def refresh(self):
        return self

    def doc_count(self):
        return self._backend.searcher().doc_count()

    def searcher(self, **kwargs):
        return _Unclosable(self._backend.searcher())

    def __getattr__(self, name):
        return getattr(self._index, name)


class _Unclosable:
    def __init__(self, searcher):
        self._searcher = searcher

    def close(self):
        pass

    def __getattr__(self, name):
        return getattr(self._searcher, name)


class WhooshEngine(whoosh_backend.WhooshEngine):
    backend = WhooshSearchBackend

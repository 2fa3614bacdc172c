"""The two Haystack indexes: latest (one document per live node) and history (one per version).

Both documents have the same fields; the router (``routers.py``) sends each model to its own
connection. The fields are Haystack's standard types, so any Haystack backend can hold them.
Fields marked with a ``vi_kind`` get a better Whoosh field from the app's engine
(``backends.py``): exact terms, path tokens, content-type tokens, token lists.

Fields:

========================  ====================================================================
``text``                  what a query without field names searches: the extracted content, the
                          path's words and the attributes, and in the history index the change
                          comment (stemmed; the document field; not stored)
``content``               the extracted content (stored only: highlights, reuse, dumps)
``path``, ``name``        the path and its last segment, split into words
``path_exact``            the path as one term (for lookups and sorting)
``parent``                the parent's path, exact
``ancestors``             every ancestor's path, exact: ``under=P`` is one term query
``content_type``          searchable by full type (``text/plain``) and major type (``text``)
``content_type_exact``    the full type, for facets
``muser``, ``checksum``   exact
``mtime``, ``valid_until`` validity interval (``valid_until`` is 9999-12-31 while open)
``size``, ``serial``,     numbers; ``node`` is the node id, ``cluster`` 0 normal, 1 history,
``node``, ``cluster``     2 deleted
``attrs``                 ``domain.key=value`` and ``domain.key`` terms (lower-cased)
``attributes``            the attributes as JSON (stored only)
``text_status``           ``ok``, ``truncated``, ``failed``, ``unsupported`` or ``empty``
``comment``               the version's change comment (stemmed, stored): ``comment:typo``
========================  ====================================================================

A field added here changes the index schema: existing indexes must be rebuilt
(``vi_rebuild_index``; docs/search.md, "Changing the fields").
"""

import re
from datetime import UTC, datetime

from haystack import indexes

from versioned_items.conf import app_settings
from versioned_items.models import Node, Version

from .documents import attribute_name, source_for
from .extractors import base_type

# The words of a path: docs/Q1-report_v2.txt -> docs, Q1, report, v2, txt.
PATH_WORDS = re.compile(r"[^\W_]+")

# valid_until of a document that is still valid: a real date, so that "valid at T" is a range.
OPEN_END = datetime(9999, 12, 31, tzinfo=UTC)


class ExactField(indexes.CharField):
    """A string indexed as one term (Whoosh ``ID``)."""

    vi_kind = "exact"

    def __init__(self, sortable: bool = False, **kwargs):
        self.vi_sortable = sortable
        super().__init__(**kwargs)


class PathField(indexes.CharField):
    """A path (or a name) split into lower-cased words at ``/``, ``.``, ``-``, ``_``..."""

    vi_kind = "path"


class ContentTypeField(indexes.CharField):
    """A content type, found by its full type and by its major type."""

    vi_kind = "content_type"


class ContentField(indexes.CharField):
    """Extracted text: stemmed, stored for highlighting and for reuse."""

    vi_kind = "content"


class TokenListField(indexes.MultiValueField):
    """A list of exact terms (Whoosh: one term per item, whatever characters it holds)."""

    vi_kind = "tokens"


class StoredField(indexes.CharField):
    """A string that is stored with the document and not searchable."""

    vi_kind = "stored"

    def __init__(self, **kwargs):
        kwargs.setdefault("indexed", False)
        super().__init__(**kwargs)


def ancestor_paths(path: str) -> list[str]:
    """The paths of a node's ancestors, root (``""``) excluded: ``a/b/c`` -> ``["a", "a/b"]``."""
    parts = path.split("/")
    return ["/".join(parts[:i]) for i in range(1, len(parts))]


def attribute_terms(domain: str, key: str, value: str) -> list[str]:
    """The ``attrs`` terms of one attribute: ``name=value`` and ``name``, lower-cased."""
    name = attribute_name(domain, key).lower()
    return [f"{name}={value.lower()}", name]


def as_utc(value: datetime | None) -> datetime | None:
    return value.astimezone(UTC) if value is not None else None


class VersionDocument(indexes.SearchIndex):
    """The fields shared by both indexes; the model instance carries a DocumentSource."""

    text = ContentField(document=True, stored=False)
    content = StoredField()
    path = PathField()
    path_exact = ExactField(sortable=True)
    name = PathField()
    parent = ExactField()
    ancestors = TokenListField(stored=False)
    content_type = ContentTypeField()
    content_type_exact = ExactField(sortable=True, stored=False)
    muser = ExactField(sortable=True)
    checksum = ExactField()
    mtime = indexes.DateTimeField()
    valid_until = indexes.DateTimeField()
    size = indexes.IntegerField()
    serial = indexes.IntegerField(indexed=False)
    node = indexes.IntegerField(indexed=False)
    cluster = indexes.IntegerField()
    attrs = TokenListField(stored=False)
    attributes = StoredField()
    text_status = ExactField()
    comment = ContentField()

    # The connection setting this index belongs to (see index_queryset).
    connection_setting = ""

    def connection_alias(self) -> str:
        return getattr(app_settings, self.connection_setting)

    def update_object(self, instance, using=None, **kwargs):
        # Haystack's signal processors write to every connection a router names, the default
        # one included: this model's documents belong on its own connection only.
        if using in (None, self.connection_alias()):
            super().update_object(instance, using=using, **kwargs)

    def remove_object(self, instance, using=None, **kwargs):
        if using in (None, self.connection_alias()):
            super().remove_object(instance, using=using, **kwargs)

    def full_prepare(self, obj, with_string_facet=True):
        # Load the source once for all fields; the prepare_* methods read it from here.
        self._source = source_for(obj)
        try:
            return super().full_prepare(obj, with_string_facet=with_string_facet)
        finally:
            self._source = None

    def prepare_text(self, obj):
        # One field for all default searches: a query costs what it costs on the content alone.
        source = self._source
        words = " ".join(PATH_WORDS.findall(source.path))
        attributes = " ".join(f"{attribute_name(d, k)} {v}" for d, k, v in source.attributes)
        return f"{words}\n{attributes}\n{source.text}"

    def prepare_content(self, obj):
        return self._source.text

    def prepare_path(self, obj):
        return self._source.path

    prepare_path_exact = prepare_path

    def prepare_name(self, obj):
        return self._source.path.rpartition("/")[2]

    def prepare_parent(self, obj):
        return self._source.path.rpartition("/")[0]

    def prepare_ancestors(self, obj):
        return ancestor_paths(self._source.path)

    def prepare_content_type(self, obj):
        return self._source.version.content_type or ""

    def prepare_content_type_exact(self, obj):
        return base_type(self._source.version.content_type or "")

    def prepare_muser(self, obj):
        return self._source.version.muser or ""

    def prepare_checksum(self, obj):
        return self._source.version.checksum or ""

    def prepare_mtime(self, obj):
        return as_utc(self._source.version.mtime)

    def prepare_valid_until(self, obj):
        return as_utc(self._source.valid_until) or OPEN_END

    def prepare_size(self, obj):
        return self._source.version.size

    def prepare_serial(self, obj):
        return self._source.version.serial

    def prepare_node(self, obj):
        return self._source.version.node_id

    def prepare_cluster(self, obj):
        return int(self._source.version.cluster)

    def prepare_attrs(self, obj):
        return [term for attr in self._source.attributes for term in attribute_terms(*attr)]

    def prepare_attributes(self, obj):
        return self._source.attributes_json()

    def prepare_text_status(self, obj):
        return self._source.text_status

    def prepare_comment(self, obj):
        return self._source.version.comment or ""


class LatestIndex(VersionDocument, indexes.Indexable):
    """One document per node whose current version is NORMAL; the document id is the node's."""

    connection_setting = "LATEST_CONNECTION"

    def get_model(self):
        return Node

    def index_queryset(self, using=None):
        # Haystack's own update_index walks every connection: give this model's documents to
        # the latest connection only.
        if using is not None and using != self.connection_alias():
            return Node.objects.none()
        return Node.objects.live()


class HistoryIndex(VersionDocument, indexes.Indexable):
    """One document per version, in every cluster; the document id is the version's serial."""

    connection_setting = "HISTORY_CONNECTION"

    def get_model(self):
        return Version

    def index_queryset(self, using=None):
        if using is not None and using != self.connection_alias():
            return Version.objects.none()
        return Version.objects.all()

    def prepare_text(self, obj):
        # A history is searched for why things changed ("fix typo"), as a wiki's edit summaries
        # are; the latest index leaves the comment out of its default text, so that a word in
        # the last change's comment does not make an item match what it is about.
        return f"{super().prepare_text(obj)}\n{self._source.version.comment or ''}"

"""The search API: one function, :func:`search`, and the page of results it returns.

::

    from versioned_items.search.api import search

    page = search("budget report", under="docs", sort="-mtime")
    page.total                      # every match, not just this page
    for hit in page:
        hit.path, hit.serial, hit.fields["muser"], hit.highlights.get("text")
    page.hits[0].version            # the Version, loaded on demand (one query)

    # What matched under docs as of March 1st, in every version that was live then:
    search("budget", under="docs", as_of=datetime(2025, 3, 1, tzinfo=UTC))

    # The recycle bin: delete markers carry the text of what they deleted.
    search("budget", history=True, cluster=Cluster.DELETED)

Searches read the indexes, which follow the database with a small lag (see
:mod:`versioned_items.search.indexing`); call ``wait_for_index()`` first to read your own
writes.
"""

import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from typing import Any

from django.utils.safestring import SafeString, mark_safe
from haystack import connections

from versioned_items import grants, paths
from versioned_items.conf import app_settings
from versioned_items.exceptions import InvalidArgument
from versioned_items.models import Node, Version
from versioned_items.validation import clean_cluster, clean_range, clean_size_range, clean_time, to_utc

from . import query as q
from .indexing import wait_for_index  # noqa: F401  (re-exported: read your own writes)

SORTS = ("relevance", "mtime", "-mtime", "path", "-path", "size", "-size")
MAX_PAGE_SIZE = 1000


@dataclass
class Hit:
    """One search result, from the index alone: no database query until ``version`` or ``node``.

    ``fields`` holds the stored fields: ``path``, ``name``, ``parent``, ``content_type``,
    ``muser``, ``mtime``, ``valid_until`` (None while still valid), ``size``, ``serial``,
    ``node``, ``cluster``, ``checksum``, ``attributes`` (a dict), ``text_status`` and ``comment``
    (the version's change comment).
    ``highlights`` maps ``"text"`` and ``"path"`` to HTML snippets in which everything is
    escaped except the ``<mark>`` elements around matched words.
    """

    path: str
    serial: int
    node_id: int
    score: float | None
    fields: dict[str, Any]
    highlights: dict[str, SafeString] = field(default_factory=dict)

    @cached_property
    def version(self) -> Version | None:
        """The Version (with its node), or None if it is gone since it was indexed."""
        return Version.objects.select_related("node").filter(serial=self.serial).first()

    @cached_property
    def node(self) -> Node | None:
        """The Node, or None if it is gone since it was indexed."""
        return Node.objects.filter(pk=self.node_id).first()


@dataclass
class SearchPage:
    """One page of results, the total number of matches, facet counts if asked for, and a
    spelling suggestion.

    ``facets`` (with ``facets=True``): ``{"muser": [(value, count), ...], "content_type": [...],
    "cluster": [...], "attributes": {name: [(value, count), ...]}}``, most frequent first,
    counted over all matches.

    ``suggestion``: the query text with its unknown words replaced by the index's closest
    ones (``"budgte"`` -> ``"budget"``), or None when there is nothing better to offer.
    """

    hits: list[Hit]
    total: int
    page: int
    page_size: int
    facets: dict[str, Any] = field(default_factory=dict)
    suggestion: str | None = None

    def __iter__(self) -> Iterator[Hit]:
        return iter(self.hits)

    def __len__(self) -> int:
        return len(self.hits)

    @property
    def num_pages(self) -> int:
        return max(1, -(-self.total // self.page_size))

    @property
    def has_next(self) -> bool:
        return self.page < self.num_pages

    def load_versions(self) -> dict[int, Version]:
        """Load the Version of every hit in one query; returns ``{serial: Version}``."""
        found = Version.objects.select_related("node").in_bulk([hit.serial for hit in self.hits])
        for hit in self.hits:
            hit.__dict__["version"] = found.get(hit.serial)
        return found


def search(
    text: str = "",
    *,
    history: bool = False,
    as_of: datetime | None = None,
    include_deleted: bool = False,
    cluster: int | None = None,
    under: str | None = None,
    content_type: str | None = None,
    muser: str | Iterable[str] | None = None,
    mtime_range: tuple[datetime | None, datetime | None] | None = None,
    size_range: tuple[int | None, int | None] | None = None,
    attributes: Mapping[str, str | None] | None = None,
    sort: str = "relevance",
    page: int = 1,
    page_size: int = 20,
    highlight: bool = True,
    facets: bool = False,
    suggest: bool | None = None,
    user: Any = None,
) -> SearchPage:
    """Search the latest index (one document per live item) or the history index.

    - ``text``: Whoosh query syntax over path, name, content and attributes; ``field:value``
      for one field (``muser:alice``, ``content_type:text``, ``path_exact:docs/a.txt``,
      ``mtime:[20250101 TO 20250301]``), and ``key:value`` or ``domain.key:value`` for an
      attribute. Empty or ``*``: everything.
    - ``history``: search every version instead of the latest ones. ``as_of`` (aware
      datetime, implies ``history``): the versions that were current at that time, the same
      ones ``api.lookup(path, before=as_of)`` gives. ``include_deleted`` adds the DELETED
      cluster (delete markers, which carry the text of what they deleted); ``cluster`` keeps
      one cluster only.
    - Filters: ``under`` (a subtree: the node's descendants), ``content_type`` (``text`` or
      ``text/plain``), ``muser`` (one or several), ``mtime_range`` (``start <= mtime < end``),
      ``size_range`` (inclusive), ``attributes`` (``{"key" or "domain.key": value}``; a value
      of None means "has the key"; values compare case-insensitively).
    - ``sort``: ``relevance`` or ``mtime``, ``path``, ``size`` (``-`` for descending).
    - ``page`` (from 1) and ``page_size`` (1 to 1000); ``highlight`` for snippets; ``facets``
      for counts by muser, content type, cluster and the ``FACET_ATTRIBUTES`` keys.
    - ``suggest``: compute a spelling suggestion (``SearchPage.suggestion``) always (True),
      never (False), or only when fewer than ``query.FEW_HITS`` (5) documents match (None, the
      default), which is when it helps; it costs a term lookup per word, more for unknown words.
    - ``user``: search as this user (``request.user``): only the items and versions their
      grants let them read (:mod:`versioned_items.grants`), with totals, facets and
      suggestions counted over those alone. The filter is part of the index query (a term per
      readable folder on the indexed ancestor paths), so every page is full when enough
      readable documents match. None (the default) searches everything, for code that decides
      itself who sees the results.

    The work of a search is bounded (see the limits in ``docs/limits.md``): text longer than
    ``SEARCH_MAX_QUERY_CHARS`` or ``SEARCH_MAX_QUERY_WORDS``, and a wildcard, prefix or range
    term matching more than ``SEARCH_MAX_EXPANSION`` index terms, raise InvalidQuery.

    Returns a :class:`SearchPage`. Raises InvalidQuery for malformed or too costly query text,
    InvalidArgument or InvalidPath for a bad argument, IndexUnavailable when the index
    cannot be read.
    """
    request = _request(
        text,
        history=history,
        as_of=as_of,
        include_deleted=include_deleted,
        cluster=cluster,
        under=under,
        content_type=content_type,
        muser=muser,
        mtime_range=mtime_range,
        size_range=size_range,
        attributes=attributes,
        sort=sort,
        page=page,
        page_size=page_size,
        highlight=highlight,
        facets=facets,
        suggest=suggest,
        user=user,
    )
    alias = app_settings.HISTORY_CONNECTION if request.history else app_settings.LATEST_CONNECTION
    backend = connections[alias].get_backend()
    from .backends import WhooshSearchBackend

    if isinstance(backend, WhooshSearchBackend):
        raw = q.run_whoosh(backend, request)
    elif getattr(backend, "engine_label", None) == "tantivy":
        from .tantivy_search import run_tantivy  # imports tantivy: only for a TantivySearchBackend

        raw = run_tantivy(backend, request)
    else:
        raw = q.run_haystack(alias, Version if request.history else Node, request)
    return SearchPage(
        hits=[_hit(r) for r in raw.hits],
        total=raw.total,
        page=request.page,
        page_size=request.page_size,
        facets=raw.facets,
        suggestion=raw.suggestion,
    )


def _request(
    text,
    *,
    history,
    as_of,
    include_deleted,
    cluster,
    under,
    content_type,
    muser,
    mtime_range,
    size_range,
    attributes,
    sort,
    page,
    page_size,
    highlight,
    facets,
    suggest,
    user,
) -> q.SearchRequest:
    if not isinstance(text, str):
        raise InvalidArgument(f"query text must be a string, not {type(text).__name__}: {text!r}")
    q.check_size(text)
    as_of = to_utc(clean_time(as_of, "as_of"), "as_of")
    if cluster is not None:
        cluster = int(clean_cluster(cluster))
    if under is not None:
        under = paths.clean_path(under, allow_root=True) or None
    if sort not in SORTS:
        raise InvalidArgument(f"sort {sort!r} is not one of {', '.join(SORTS)}")
    for name, value, low in (("page", page, 1), ("page_size", page_size, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise InvalidArgument(f"{name} {value!r} must be a whole number of at least {low}")
    if page_size > MAX_PAGE_SIZE:
        raise InvalidArgument(f"page_size {page_size} is larger than {MAX_PAGE_SIZE}")
    musers = (muser,) if isinstance(muser, str) else tuple(muser or ())
    readable = None if user is None else grants.readable_paths(user)
    return q.SearchRequest(
        query=text,
        history=bool(history or as_of or include_deleted or cluster is not None),
        as_of=as_of,
        include_deleted=bool(include_deleted),
        cluster=cluster,
        under=under,
        content_type=content_type or None,
        musers=musers,
        mtime_range=clean_range(mtime_range, "mtime_range", datetime),
        size_range=clean_size_range(size_range),
        attributes=tuple((str(k), None if v is None else str(v)) for k, v in (attributes or {}).items()),
        sort=sort,
        page=page,
        page_size=page_size,
        highlight=bool(highlight),
        facets=tuple(app_settings.FACET_ATTRIBUTES),
        want_facets=bool(facets),
        suggest=None if suggest is None else bool(suggest),
        readable=None if readable is None else tuple(readable),
    )


def _hit(raw: q.RawHit) -> Hit:
    stored = dict(raw.fields)
    fields = {
        "path": stored.get("path_exact", stored.get("path", "")),
        "name": stored.get("name", ""),
        "parent": stored.get("parent", ""),
        "content_type": stored.get("content_type", ""),
        "muser": stored.get("muser", ""),
        "mtime": _aware(stored.get("mtime")),
        "valid_until": _aware(q.open_end_to_none(stored.get("valid_until"))),
        "size": stored.get("size"),
        "serial": stored.get("serial"),
        "node": stored.get("node"),
        "cluster": stored.get("cluster"),
        "checksum": stored.get("checksum", ""),
        "attributes": json.loads(stored.get("attributes") or "{}"),
        "text_status": stored.get("text_status", ""),
        "comment": stored.get("comment", ""),
    }
    return Hit(
        path=fields["path"],
        serial=int(fields["serial"]),
        node_id=int(fields["node"]),
        score=raw.score,
        fields=fields,
        # Whoosh's HtmlFormatter escapes the text around the marks.
        highlights={name: mark_safe(snippet) for name, snippet in raw.highlights.items()},
    )


def _aware(value):
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value

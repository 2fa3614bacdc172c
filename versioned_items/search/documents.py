"""What an index document is made of, loaded from the database in batches.

A :class:`DocumentSource` holds everything one document needs: the version with its node, the
version's attributes, the end of its validity interval and its extracted text. The indexing
library loads sources for many objects with a constant number of queries, attaches each to its
model instance, and the search indexes (``search_indexes.py``) read the fields from it. Haystack's
own commands, which hand the indexes bare model instances, get a source loaded on the spot.

Text is extracted at most once per distinct content: sources in one batch share the text of
equal contents, and text that the history index already holds is reused rather than extracted
again (this is how a previous version is promoted into the latest index without re-reading its
content).
"""

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime

from django.db.models import OuterRef, Subquery

from versioned_items.blobs import open_content
from versioned_items.models import Attribute, Node, Version

from . import extractors

# The attribute that carries a DocumentSource on a Node or Version instance.
SOURCE_ATTR = "_vi_document_source"


@dataclass
class DocumentSource:
    """The data of one index document (latest or history)."""

    version: object  # a Version, with its node loaded
    attributes: list[tuple[str, str, str]] = field(default_factory=list)  # (domain, key, value)
    valid_until: datetime | None = None  # None: still valid
    text: str = ""
    text_status: str | None = None  # None until fill_texts() ran
    # The content the text comes from: the version's own, except for a delete marker, whose
    # document carries the text of the version it deleted (a searchable recycle bin).
    text_checksum: str = ""
    text_content_type: str = ""

    def __post_init__(self):
        if not self.text_checksum:
            self.text_checksum = self.version.checksum
            self.text_content_type = self.version.content_type

    @property
    def path(self) -> str:
        return self.version.node.path

    def text_key(self) -> tuple[str, str] | None:
        """What makes two versions' texts equal: content checksum and content type."""
        if not self.text_checksum:
            return None
        return (self.text_checksum, extractors.base_type(self.text_content_type))

    def attributes_json(self) -> str:
        """The attributes as stored in the index: ``{"domain.key" or "key": value}``, sorted."""
        return json.dumps({attribute_name(d, k): v for d, k, v in sorted(self.attributes)}, sort_keys=True)


def attribute_name(domain: str, key: str) -> str:
    """How an attribute is named in queries and results: ``domain.key``, or ``key`` without domain."""
    return f"{domain}.{key}" if domain else key


# A text the index already holds: (text, text_status), by serial and by text key.
StoredTexts = tuple[dict[int, tuple[str, str]], dict[tuple[str, str], tuple[str, str]]]
TextLookup = Callable[[Iterable[int], Iterable[tuple[str, str]]], StoredTexts]


def load_latest(node_ids: Iterable[int]) -> dict[int, object]:
    """The nodes among ``node_ids`` that have a live version, each with its source attached.

    Returns ``{node_id: Node}``; nodes that are gone or whose current version is not NORMAL are
    missing from it (their latest documents must be removed). Runs two queries.
    """
    nodes = list(Node.objects.live().filter(id__in=list(node_ids)).select_related("current"))
    sources = []
    for node in nodes:
        version = node.current
        version.node = node  # the path is the node's, and saves a query per document
        source = DocumentSource(version=version)
        setattr(node, SOURCE_ATTR, source)
        sources.append(source)
    _load_attributes(sources)
    return {node.id: node for node in nodes}


def history_queryset():
    """Versions with their node and the end of their validity interval (``valid_until``)."""
    # valid_until is the mtime of the next version of the same node: the one that replaced it.
    next_mtime = (
        Version.objects.filter(node_id=OuterRef("node_id"), serial__gt=OuterRef("serial"))
        .order_by("serial")
        .values("mtime")[:1]
    )
    return Version.objects.select_related("node").annotate(vi_valid_until=Subquery(next_mtime))


def load_history(serials: Iterable[int]) -> dict[int, object]:
    """The versions among ``serials`` that exist, each with its source attached.

    Returns ``{serial: Version}``; serials that are gone are missing from it. Runs two queries.
    """
    versions = list(history_queryset().filter(serial__in=list(serials)))
    attach_history_sources(versions)
    return {version.serial: version for version in versions}


def attach_history_sources(versions: list) -> list[DocumentSource]:
    """Attach a source to each version of ``history_queryset()``.

    Loads the attributes (one query) and, when there are delete markers, the contents they
    deleted (one more query).
    """
    sources = []
    for version in versions:
        source = DocumentSource(version=version, valid_until=version.vi_valid_until)
        setattr(version, SOURCE_ATTR, source)
        sources.append(source)
    _load_attributes(sources)
    _load_deleted_contents([s for s in sources if s.version.is_delete_marker])
    return sources


def _load_deleted_contents(markers: list[DocumentSource]) -> None:
    if not markers:
        return
    previous = Version.objects.filter(node_id=OuterRef("node_id"), serial__lt=OuterRef("serial")).order_by(
        "-serial"
    )
    rows = (
        Version.objects.filter(serial__in=[m.version.serial for m in markers])
        .annotate(
            deleted_checksum=Subquery(previous.values("checksum")[:1]),
            deleted_type=Subquery(previous.values("content_type")[:1]),
        )
        .values_list("serial", "deleted_checksum", "deleted_type")
    )
    found = {serial: (checksum or "", ctype or "") for serial, checksum, ctype in rows}
    for marker in markers:
        marker.text_checksum, marker.text_content_type = found.get(marker.version.serial, ("", ""))


def _load_attributes(sources: list[DocumentSource]) -> None:
    by_serial: dict[int, list[DocumentSource]] = {}
    for source in sources:
        by_serial.setdefault(source.version.serial, []).append(source)
    if not by_serial:
        return
    rows = Attribute.objects.filter(version_id__in=list(by_serial)).values_list(
        "version_id", "domain", "key", "value"
    )
    for serial, domain, key, value in rows:
        for source in by_serial[serial]:
            source.attributes.append((domain, key, value))


def fill_texts(sources: Iterable[DocumentSource], lookup: TextLookup | None = None) -> None:
    """Give every source its text, extracting each distinct content at most once.

    ``lookup`` finds texts the index already holds (by serial, and by checksum and content
    type); those are reused. Texts whose earlier extraction failed are extracted again.
    """
    pending = [source for source in sources if source.text_status is None]
    by_serial, by_key = (
        lookup(
            {s.version.serial for s in pending},
            {key for s in pending if (key := s.text_key())},
        )
        if lookup and pending
        else ({}, {})
    )
    memo: dict[tuple[str, str], extractors.Extraction] = {}
    for source in pending:
        key = source.text_key()
        if key is None:
            # No content: a delete marker, or a version written without content.
            source.text, source.text_status = "", extractors.EMPTY
            continue
        known = by_serial.get(source.version.serial) or by_key.get(key)
        if known and known[1] != extractors.FAILED:
            source.text, source.text_status = known
            continue
        if key not in memo:
            memo[key] = extract_text(source)
        source.text, source.text_status = memo[key].text, memo[key].status


def extract_text(source: DocumentSource) -> extractors.Extraction:
    """Extract the text of a source's content (see :func:`extractors.extract`)."""
    version = source.version
    return extractors.extract(
        lambda: open_content(source.text_checksum),
        source.text_content_type or "",
        label=f"{version.node.path!r} serial {version.serial}",
    )


def source_for(instance) -> DocumentSource:
    """The source attached to a Node or Version, loading it (and its text) when there is none."""
    source = getattr(instance, SOURCE_ATTR, None)
    if source is None:
        if isinstance(instance, Node):
            loaded = load_latest([instance.pk]).get(instance.pk)
        else:
            loaded = load_history([instance.pk]).get(instance.pk)
        if loaded is None:
            raise LookupError(f"{instance!r} has no document to index")
        source = getattr(loaded, SOURCE_ATTR)
        setattr(instance, SOURCE_ATTR, source)
    if source.text_status is None:
        fill_texts([source])
    return source

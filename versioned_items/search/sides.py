"""The two indexes (:class:`Side`: latest and history), writing their documents, and
:func:`reconcile`, which makes the documents of some nodes and versions match the database."""

import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from haystack import connections
from haystack.utils import get_model_ct

from versioned_items.conf import app_settings
from versioned_items.models import Node, Version

from . import documents
from .backends.common import is_app_engine
from .documents import SOURCE_ATTR
from .models import IndexChange

logger = logging.getLogger("versioned_items.search")

Progress = Callable[[int, int], None]  # (done, total)


# --- the two indexes -------------------------------------------------------------------------


@dataclass
class Side:
    """One of the two indexes: its name, Haystack connection, SearchIndex and backend."""

    name: str  # "latest" or "history"
    alias: str
    model: type

    @property
    def backend(self):
        return connections[self.alias].get_backend()

    @property
    def index(self):
        return connections[self.alias].get_unified_index().get_index(self.model)

    @property
    def outbox_kind(self) -> int:
        """The kind of the outbox entries for this index."""
        return IndexChange.Kind.LATEST if self.name == "latest" else IndexChange.Kind.HISTORY

    def identifier(self, pk) -> str:
        """Haystack's document id of the object with primary key ``pk``."""
        return f"{get_model_ct(self.model)}.{pk}"

    @property
    def app_engine(self) -> bool:
        """Whether the backend is one of the app's engines, Whoosh or tantivy (batched writes,
        text reuse, the rebuild with its atomic swap); see ``backends.common.is_app_engine``."""
        return is_app_engine(self.backend)


def latest_side() -> Side:
    return Side("latest", app_settings.LATEST_CONNECTION, Node)


def history_side() -> Side:
    return Side("history", app_settings.HISTORY_CONNECTION, Version)


def sides() -> tuple[Side, Side]:
    return latest_side(), history_side()


def create_indexes() -> None:
    """Create the indexes that do not exist yet, empty (run after ``migrate``).

    Raises IndexUnavailable when an existing index cannot be read.
    """
    for side in sides():
        if side.app_engine:
            side.backend.ensure_index()


def write(side: Side, objects: list, delete_pks: Iterable = ()) -> None:
    """Write ``objects`` (with sources attached) and remove ``delete_pks``: one commit if possible."""
    delete_ids = [side.identifier(pk) for pk in delete_pks]
    backend = side.backend
    if side.app_engine:
        backend.apply(side.index, objects, delete_ids)
        return
    # Any other Haystack backend: its own update and remove.
    if objects:
        backend.update(side.index, objects)
    for ident in delete_ids:
        backend.remove(ident)


def _text_lookup(history: Side):
    """Find texts the history index already holds (the app's engines only)."""
    return history.backend.stored_texts if history.app_engine else None


# --- reconciling objects ---------------------------------------------------------------------


def reconcile(node_ids: Iterable[int] = (), serials: Iterable[int] = ()) -> None:
    """Make the index documents of these nodes (latest) and versions (history) match the database.

    Documents are written for what exists and removed for what does not. Texts already in
    the history index are reused. Four to five queries, plus the content reads of new texts.
    Raises IndexUnavailable when an index stays locked.
    """
    node_ids, serials = set(node_ids), set(serials)
    latest, history = sides()
    nodes = documents.load_latest(node_ids) if node_ids else {}
    versions = documents.load_history(serials) if serials else {}
    sources = [getattr(obj, SOURCE_ATTR) for obj in [*nodes.values(), *versions.values()]]
    documents.fill_texts(sources, lookup=_text_lookup(history))
    if serials:
        write(history, list(versions.values()), serials - versions.keys())
    if node_ids:
        write(latest, list(nodes.values()), node_ids - nodes.keys())


def document_count(side: Side) -> int:
    """The number of documents in one index. Raises IndexUnavailable when it cannot be read."""
    if side.app_engine:
        return side.backend.doc_count()
    from haystack.query import SearchQuerySet

    return SearchQuerySet(using=side.alias).models(side.model).count()


def stored_documents(side: Side) -> Iterator[dict]:
    if side.app_engine:
        yield from side.backend.iter_stored()
        return
    from haystack.query import SearchQuerySet

    for result in SearchQuerySet(using=side.alias).models(side.model).all():
        fields = result.get_additional_fields()
        fields["id"] = f"{result.app_label}.{result.model_name}.{result.pk}"
        yield fields

"""The corpus shared by the search scenarios, and the documents the baselines get.

``import`` loads it (and times that); ``search``, ``asof`` and ``rebuild`` reuse what is in
the database when it is the same corpus, and load it otherwise. The stock connections are
filled once per corpus, by ``update_index`` when the import scenario ran, or else by
:func:`benchmarks.baselines.stock_haystack.fill_quickly` (same documents, faster). The tantivy
engine's connections are filled once per corpus too (:func:`ensure_tantivy`).
"""

from haystack import connections

from .corpus import load, make_corpus, store_size
from .env import Timer, reset_store, stock_connections

_state: dict = {"key": None, "stock": None, "tantivy": None}

LATEST, HISTORY = "latest", "history"


def corpus_key(options) -> tuple:
    return (options.size, options.seed, options.git, options.dir)


def make(options):
    """The corpus of the search scenarios: ``size`` writes over ``0.6 * size`` items."""
    return make_corpus(options, nodes=max(1, int(options.size * 0.6)), versions=options.size)


def loaded(options, info: dict) -> None:
    """Record that the database and the app's indexes hold the corpus of ``options``."""
    _state.update(key=corpus_key(options), info=info, stock=None, tantivy=None)


def forget() -> None:
    """Record that the database and the indexes no longer hold a corpus (after a reset)."""
    _state.update(key=None, info=None, stock=None, tantivy=None)


def stock_filled(options) -> None:
    _state["stock"] = corpus_key(options)


def ensure(options) -> dict:
    """Load the corpus (through the API) and index it, unless that is done; return its size."""
    from versioned_items.search.indexing import flush_background, wait_for_index

    if _state["key"] == corpus_key(options):
        return _state["info"]
    reset_store()
    corpus = make(options)
    with Timer() as t:
        load(corpus.writes())
        wait_for_index()
        flush_background()
    info = store_size() | {"load_s": t.seconds}
    loaded(options, info)
    return info


def ensure_stock(options) -> None:
    """Fill the stock connections with the corpus's documents, unless that is done."""
    from .baselines.stock_haystack import fill_quickly
    from .env import reset_indexes

    if _state["stock"] == corpus_key(options):
        return
    reset_indexes("stock_latest", "stock_history")
    with stock_connections():
        fill_quickly("stock_latest", objects(LATEST))
        fill_quickly("stock_history", objects(HISTORY))
    stock_filled(options)


def ensure_tantivy(options) -> None:
    """Write the corpus's documents into the tantivy engine's indexes, unless that is done
    (the corpus must be loaded: :func:`ensure`)."""
    from . import engines

    if _state["tantivy"] == corpus_key(options):
        return
    engines.fill({LATEST: objects(LATEST), HISTORY: objects(HISTORY)})
    tantivy_filled(options)


def engines_ready(options, result) -> list[str]:
    """The app's engines this run has (:func:`benchmarks.engines.available`), the tantivy
    engine's indexes holding the corpus (:func:`ensure_tantivy`); without tantivy, a note in
    ``result`` says its rows are left out. The corpus must be loaded (:func:`ensure`)."""
    from . import engines

    have = engines.available()
    if engines.TANTIVY in have:
        ensure_tantivy(options)
    else:
        result.notes.append(engines.skipped_note())
    return have


def tantivy_filled(options) -> None:
    _state["tantivy"] = corpus_key(options)


def objects(side: str, batch: int = 500) -> list:
    """Every Node (latest) or Version (history) that has a document, with sources and texts
    attached in batches (so preparing a document costs no query)."""
    from versioned_items.models import Node, Version
    from versioned_items.search import documents
    from versioned_items.search.documents import SOURCE_ATTR, fill_texts

    if side == LATEST:
        ids = list(Node.objects.live().order_by("pk").values_list("pk", flat=True))
        load = documents.load_latest
    else:
        ids = list(Version.objects.order_by("serial").values_list("serial", flat=True))
        load = documents.load_history
    result = []
    for start in range(0, len(ids), batch):
        found = load(ids[start : start + batch])
        fill_texts([getattr(obj, SOURCE_ATTR) for obj in found.values()])
        result += [found[i] for i in ids[start : start + batch] if i in found]
    return result


def whoosh_documents(side: str) -> list[dict]:
    """The app's documents of one side, as the Whoosh field values its engine writes."""
    from versioned_items.search.indexing import history_side, latest_side

    s = latest_side() if side == LATEST else history_side()
    backend, index = s.backend, s.index
    backend.setup()
    return [backend.whoosh_document(index.full_prepare(obj)) for obj in objects(side)]


def app_backend(side: str):
    from versioned_items.search.indexing import history_side, latest_side

    backend = (latest_side() if side == LATEST else history_side()).backend
    backend.setup()
    return backend


def stock_alias(side: str) -> str:
    return "stock_latest" if side == LATEST else "stock_history"


def stock_doc_count(side: str) -> int:
    backend = connections[stock_alias(side)].get_backend()
    backend.setup()
    return backend.index.refresh().doc_count()

"""One process, eight threads searching at once while an index writer commits: every search gives
what it gives when run alone, and none fails.

Haystack keeps one backend per thread; the app's engine keeps one reused searcher per thread
(Whoosh searchers read shared files with seek-then-read, so they must not be shared)."""

import re
import threading
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.contrib.auth.models import User
from django.db import connections as db_connections
from django.test import Client
from haystack.query import SearchQuerySet

from versioned_items import api
from versioned_items.search import indexing
from versioned_items.search.api import search

from ..search_fixtures import indexed

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

THREADS = 8
ROUNDS = 6  # each query this many times, all at once


def put_corpus() -> None:
    for i in range(24):
        words = " ".join(["alpha"] * (1 + i % 3) + (["beta"] if i % 2 else ["gamma"]))
        api.put(f"docs/item-{i:02}.txt", f"{words} item{i}".encode())
        if i % 4 == 0:
            api.put(f"docs/item-{i:02}.txt", f"{words} revised item{i}".encode())
    indexed()


# Each query answers with the paths it found, in order, and its total. Relevance-ranked queries
# answer with a sorted list: the writer's documents change the scores' length normalization.
QUERIES = {
    "api alpha by path": lambda: _page(search("alpha", sort="path", page_size=50)),
    "api beta newest first": lambda: _page(search("beta", sort="-path", page_size=5)),
    "api revised in history": lambda: _page(search("revised", history=True, sort="path", page_size=50)),
    "api gamma by relevance": lambda: _page(search("gamma", page_size=50), ranked=True),
    "api below docs, page 2": lambda: _page(search("alpha", under="docs", sort="path", page=2, page_size=7)),
    "sqs auto_query": lambda: sorted(
        r.path_exact for r in SearchQuerySet(using="vi_latest").auto_query("beta")
    ),
    "sqs filter and order": lambda: [
        r.path_exact for r in SearchQuerySet(using="vi_latest").filter(text="alpha").order_by("path_exact")
    ],
    "sqs history count": lambda: SearchQuerySet(using="vi_history").filter(text="revised").count(),
}


def _page(page, ranked=False):
    paths = [hit.path for hit in page.hits]
    return (sorted(paths) if ranked else paths), page.total


def write_until(stop: threading.Event, wrote_once: threading.Event) -> int:
    """Commit documents that no query matches to the latest index until ``stop``; the number of
    commits. ``wrote_once`` is set after the first (or when it fails)."""
    backend = indexing.latest_side().backend
    commits = 0
    try:
        while not stop.is_set():
            docs = [
                {
                    "id": f"filler.doc.{commits}.{n}",
                    "django_ct": "filler.doc",
                    "django_id": str(n),
                    "text": f"filler words {n}",
                }
                for n in range(20)
            ]
            backend.write_documents(docs, delete_ids=[f"filler.doc.{commits - 1}.0"])
            commits += 1
            wrote_once.set()
    finally:
        wrote_once.set()
        db_connections.close_all()
    return commits


def _in_thread(query):
    try:
        return query()
    finally:
        db_connections.close_all()  # this thread's database connections


def run_concurrently(calls):
    """Results of ``calls`` (callables), run on THREADS threads while a writer commits."""
    stop, wrote_once = threading.Event(), threading.Event()
    with ThreadPoolExecutor(1) as writer:
        writing = writer.submit(write_until, stop, wrote_once)
        wrote_once.wait()
        try:
            with ThreadPoolExecutor(THREADS) as pool:
                results = list(pool.map(_in_thread, calls))
        finally:
            stop.set()
        assert writing.result() >= 1  # raises the writer's error, if any
    return results


def test_threads_search_as_a_single_thread_does(search_index):
    put_corpus()
    serial = {name: query() for name, query in QUERIES.items()}
    assert serial["api alpha by path"][1] == 24 and serial["sqs history count"] == 6
    names = [name for name in QUERIES for _ in range(ROUNDS)]
    results = run_concurrently([QUERIES[name] for name in names])
    assert [(name, result) for name, result in zip(names, results, strict=True)] == [
        (name, serial[name]) for name in names
    ]


HIT_PATH = re.compile(r"docs/item-\d\d\.txt")


def test_a_threaded_wsgi_server_answers_concurrent_searches_alike(search_index, live_server):
    put_corpus()
    client = Client()
    client.force_login(User.objects.create_user("reader"))
    cookie = f"sessionid={client.cookies['sessionid'].value}"
    # Queries with fewer hits than a page: which hits make the first page depends on the ranking.
    urls = [f"{live_server.url}/search/?q={q}" for q in ("alpha+beta", "gamma", "revised", "item7", "item1*")]

    def fetch(url):
        request = urllib.request.Request(url, headers={"Cookie": cookie})
        with urllib.request.urlopen(request, timeout=60) as response:
            assert response.status == 200
            # The page ranks by relevance, which the writer's documents shift: compare the hits.
            return sorted(set(HIT_PATH.findall(response.read().decode())))

    serial = {url: fetch(url) for url in urls}
    assert all(serial.values())
    calls = [(lambda url=url: fetch(url)) for url in urls for _ in range(ROUNDS)]
    results = run_concurrently(calls)
    assert results == [serial[url] for url in urls for _ in range(ROUNDS)]

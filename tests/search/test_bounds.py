"""The limits on the work of one request (docs/limits.md): each is a setting, each is counted
(terms read and expanded, suggestion candidates, diff comparisons, filter terms), and a request
over one fails with an error naming the limit instead of running for minutes."""

import itertools
import string

import pytest
from django.test import override_settings
from django.urls import reverse
from django.utils.html import escape
from haystack import connections

from versioned_items import api, attribute_filters, diffs
from versioned_items.conf import app_settings
from versioned_items.exceptions import InvalidFilter, InvalidQuery
from versioned_items.search import query
from versioned_items.search.api import search

from ..search_fixtures import indexed

pytestmark = [pytest.mark.django_db, pytest.mark.whoosh_only]  # the Whoosh engine, its searcher and reader

# A vocabulary of distinct words, all starting with "b" and all holding an "a".
WORDS = [
    "b" + "".join(letters) + "a" for letters in itertools.product(string.ascii_lowercase[:20], repeat=3)
][:3000]
LIMITS = {"SEARCH_MAX_EXPANSION": 100, "SEARCH_MAX_TERMS_SCANNED": 1000, "SUGGEST_BUDGET": 500}


def limits(**values):
    """override_settings of the app's settings with the test's small limits and ``values``."""
    return override_settings(VERSIONED_ITEMS={**app_settings_dict(), **LIMITS, **values})


def app_settings_dict() -> dict:
    from django.conf import settings

    return dict(getattr(settings, "VERSIONED_ITEMS", {}) or {})


@pytest.fixture
def vocabulary(search_index):
    """One document holding every word of WORDS; returns the latest index's searcher."""
    api.put("words/all.txt", " ".join(WORDS).encode(), user="ann")
    api.put("words/note.txt", b"a short note about the budget", user="ann")
    indexed()
    return connections[app_settings.LATEST_CONNECTION].get_backend().searcher()


def expand(text: str, searcher) -> query.Work:
    """Bound the expansions of ``text`` as a search does; return the work counted."""
    work = query.Work()
    query.bound_expansions(query.parse(text, searcher.schema), searcher.reader(), work)
    return work


# --- wildcard, prefix and range expansion --------------------------------------------------


@pytest.mark.parametrize("text", ["*a*", "b*", "*e* OR *i* OR *o*", "text:[a TO z]"])
def test_an_expansion_stops_at_its_limit(vocabulary, text):
    with limits(), pytest.raises(InvalidQuery) as error:
        expand(text, vocabulary)
    assert "more than 100 words of the index (setting SEARCH_MAX_EXPANSION)" in str(error.value)
    with limits():
        work = query.Work()
        with pytest.raises(InvalidQuery):
            query.bound_expansions(query.parse(text, vocabulary.schema), vocabulary.reader(), work)
    # One term matched the limit and no more, having read at most the terms between its matches.
    assert work.terms_expanded == 0  # counted only for terms that were searched
    assert work.terms_scanned <= LIMITS["SEARCH_MAX_TERMS_SCANNED"]


def test_a_leading_wildcard_reads_at_most_the_scan_limit(vocabulary):
    """``*zq*`` matches nothing but reads the whole vocabulary to find that out: bounded."""
    work = query.Work()
    with limits(), pytest.raises(InvalidQuery) as error:
        query.bound_expansions(query.parse("*zq*", vocabulary.schema), vocabulary.reader(), work)
    assert str(error.value).startswith("the term '*zq*' needs more than 1,000 words of the index to be read")
    assert "SEARCH_MAX_TERMS_SCANNED" in str(error.value)
    assert work.terms_scanned == LIMITS["SEARCH_MAX_TERMS_SCANNED"]


def test_an_expansion_within_the_limits_is_searched_once(vocabulary):
    with limits():
        work = expand("bbb*", vocabulary)
        raw = query.run_whoosh(
            connections[app_settings.LATEST_CONNECTION].get_backend(),
            query.SearchRequest(query="bbb*", suggest=False),
        )
    matches = [w for w in WORDS if w.startswith("bbb")]
    assert work.terms_expanded == len(matches) and work.terms_scanned == len(matches)
    assert raw.total == 1 and raw.work.terms_expanded == len(matches)
    assert "<mark>" in raw.hits[0].highlights["text"]


def test_the_error_names_the_term_as_typed(vocabulary):
    with limits(), pytest.raises(InvalidQuery) as error:
        search("note OR b*", suggest=False)
    assert str(error.value).startswith("the term 'b*' matches more than 100 words")
    for n in range(101):
        api.put(f"colors/{n}.txt", b"colors", attributes={"color": f"b{n}"})
    indexed()
    with limits(), pytest.raises(InvalidQuery) as error:
        search("Color:B*", suggest=False)
    assert str(error.value).startswith("the term 'color:b*' matches more than 100 words")


def test_limits_follow_the_settings(vocabulary):
    with limits(SEARCH_MAX_EXPANSION=5000, SEARCH_MAX_TERMS_SCANNED=10_000):
        assert search("*a*", suggest=False).total == 2  # "a short note" has the word "a"


# --- query size ------------------------------------------------------------------------------


def test_query_text_has_a_length_limit(search_index):
    with pytest.raises(InvalidQuery) as error:
        search("x" * 1001)
    assert str(error.value) == (
        "the query has 1,001 characters; the limit is 1,000 (setting SEARCH_MAX_QUERY_CHARS): shorten it"
    )
    with limits(SEARCH_MAX_QUERY_CHARS=10), pytest.raises(InvalidQuery, match="limit is 10 "):
        search("budget report")


def test_query_text_has_a_word_limit(search_index):
    search(" AND ".join(["w"] * 50))  # 50 words: operators do not count
    with pytest.raises(InvalidQuery) as error:
        search(" ".join(["w"] * 51))
    assert "51 words; the limit is 50 (setting SEARCH_MAX_QUERY_WORDS)" in str(error.value)


# --- spelling suggestions --------------------------------------------------------------------


@pytest.mark.parametrize("word", ["b" * 1000, "bq" * 1000, "b" * 5000, "漢字" * 200])
def test_a_long_word_gets_no_suggestion_and_costs_nothing(vocabulary, word):
    with limits(SEARCH_MAX_QUERY_CHARS=10_000):
        work = query.Work()
        assert query.suggest(vocabulary, vocabulary.schema, word, work) is None
    assert work.suggestion_candidates == 0


@pytest.mark.parametrize("word", ["bqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq", "漢字" * 20, "bzzzz"])
def test_a_suggestion_tries_at_most_its_budget(vocabulary, word):
    assert len(word) <= app_settings.SUGGEST_MAX_WORD_CHARS
    with limits():
        work = query.Work()
        query.suggest(vocabulary, vocabulary.schema, f"{word} {word}x", work)
    assert work.suggestion_candidates == LIMITS["SUGGEST_BUDGET"]


def test_a_suggestion_within_the_budget_is_found(vocabulary):
    with limits(SUGGEST_BUDGET=50_000):
        work = query.Work()
        assert query.suggest(vocabulary, vocabulary.schema, "budgte", work) == "budget"
    assert 0 < work.suggestion_candidates < 50_000


def test_the_search_reports_the_suggestion_work(vocabulary):
    with limits():
        raw = query.run_whoosh(
            connections[app_settings.LATEST_CONNECTION].get_backend(),
            query.SearchRequest(query="bzzzzz", suggest=True, highlight=False),
        )
    assert raw.work.suggestion_candidates == LIMITS["SUGGEST_BUDGET"]


# --- what the site shows ---------------------------------------------------------------------


@pytest.fixture
def reader(client, django_user_model):
    client.force_login(django_user_model.objects.create_user("reader"))
    return client


def search_page(client, **params):
    return client.get(reverse("versioned_items:search"), params)


def test_the_search_field_has_the_length_limit(reader, search_index):
    page = search_page(reader)
    assert 'maxlength="1000"' in page.content.decode()
    with limits(SEARCH_MAX_QUERY_CHARS=20):
        assert 'maxlength="20"' in search_page(reader).content.decode()
        response = search_page(reader, q="x" * 21)
    assert response.status_code == 400
    assert "The query has 21 characters; the limit is 20: shorten it." in response.content.decode()


@pytest.mark.parametrize(
    "q, message",
    [
        ("*a*", "matches more than 100 words of the index (setting SEARCH_MAX_EXPANSION)"),
        ("*zq*", "needs more than 1,000 words of the index to be read"),
        (" ".join(["w"] * 51), "the limit is 50 (setting SEARCH_MAX_QUERY_WORDS)"),
        ("mtime:notadate", "mtime takes a date (UTC) such as 2025, 2025-03 or 2025-03-01"),
    ],
)
def test_a_query_over_a_limit_is_a_400_with_the_limit(reader, vocabulary, q, message):
    with limits():
        response = search_page(reader, q=q)
    assert response.status_code == 400
    assert escape(message) in response.content.decode()


# --- diffs -----------------------------------------------------------------------------------


def few_distinct(count: int, seed: str) -> bytes:
    return "\n".join(f"line {(n * 7 + len(seed)) % 5}" for n in range(count)).encode()


def test_a_diff_counts_its_comparisons_and_stops_at_the_budget():
    old, new = few_distinct(4000, "a").decode().splitlines(), few_distinct(4000, "bb").decode().splitlines()
    with limits(DIFF_MAX_COST=100_000):
        matcher = diffs.BudgetedMatcher(old, new, app_settings.DIFF_MAX_COST)
        with pytest.raises(diffs.TooCostly):
            matcher.get_opcodes()
    assert matcher.cost <= 100_000 + len(old) * (len(new) + 1)  # the refused call never ran
    small = diffs.BudgetedMatcher(old[:50], new[:50], 100_000)
    small.get_opcodes()
    assert 0 < small.cost <= 100_000


def test_a_costly_diff_is_too_large_to_compare_on_the_site_and_in_the_admin(reader, admin_client):
    old = api.put("big.txt", few_distinct(40_000, "a"))
    new = api.put("big.txt", few_distinct(40_000, "bb"))
    diff = diffs.diff_versions(old, new)
    assert not diff.comparable and diff.reason.startswith(
        "The versions are too large to compare: 40,000 and 40,000 lines, 5 of them distinct"
    )
    assert "more than 5,000,000 line comparisons (setting DIFF_MAX_COST)" in diff.reason
    for client, url in (
        (reader, reverse("versioned_items:diff")),
        (admin_client, reverse("admin:versioned_items_version_diff")),
    ):
        response = client.get(url, {"old": old.serial, "new": new.serial})
        assert response.status_code == 200
        assert "too large to compare: 40,000 and 40,000 lines" in response.content.decode()


def test_an_ordinary_diff_is_within_the_budget():
    old = api.put("doc.txt", "\n".join(f"line {n}" for n in range(40_000)).encode())
    new = api.put(
        "doc.txt", "\n".join(f"line {n}" if n != 20_000 else "changed" for n in range(40_000)).encode()
    )
    diff = diffs.diff_versions(old, new)
    assert diff.comparable and (diff.added, diff.removed) == (1, 1)


# --- attribute filters -----------------------------------------------------------------------


def test_a_filter_has_a_maximum_number_of_terms(reader):
    api.put("docs/a.txt", b"a", attributes={"k0": "1"})
    at_limit = ", ".join(f"!k{n}" for n in range(1, 51))
    assert [
        e.path for e in api.list_latest(filter="k0=1, " + ", ".join(f"!k{n}" for n in range(1, 50))).objects
    ] == ["docs/a.txt"]
    assert len(attribute_filters.parse_filter(at_limit)) == 50
    with pytest.raises(InvalidFilter) as error:
        api.list_latest(filter=", ".join(f"k{n}=1" for n in range(500)))
    assert str(error.value) == (
        "the filter has 500 terms; the limit is 50 (setting FILTER_MAX_TERMS): "
        "filter on fewer attributes at once"
    )
    response = reader.get(
        reverse("versioned_items:browse"), {"filter": ", ".join(f"k{n}" for n in range(51))}
    )
    assert response.status_code == 400
    assert "the filter has 51 terms; the limit is 50" in response.content.decode()
    with limits(FILTER_MAX_TERMS=2), pytest.raises(InvalidFilter, match="the limit is 2 "):
        attribute_filters.parse_filter("a, b, c")


# --- paging past the end ---------------------------------------------------------------------


def test_a_search_page_past_the_end_is_a_404_on_the_site_and_in_the_admin(reader, admin_client, search_index):
    for n in range(3):
        api.put(f"docs/{n}.txt", b"budget")
    indexed()
    assert search_page(reader, q="budget", page=1).status_code == 200
    for client, url in (
        (reader, reverse("versioned_items:search")),
        (admin_client, reverse("admin:versioned_items_node_search")),
    ):
        response = client.get(url, {"q": "budget", "page": 9999})
        assert response.status_code == 404
        assert "There is no page 9999: the results have 1 page(s)." in response.content.decode()


@pytest.mark.parametrize("model", ["node", "version"])
def test_an_admin_list_page_past_the_end_is_a_404(admin_client, model):
    api.put("docs/a.txt", b"a")
    url = reverse(f"admin:versioned_items_{model}_changelist")
    assert admin_client.get(url, {"p": 1}).status_code == 200
    assert admin_client.get(url, {"p": 9999}).status_code == 404


def test_an_attribute_facet_counts_at_most_its_limit_of_values(search_index):
    # 300 values of one attribute; "v000" on 5 items, "v001" on 4, "v002" on 3, the rest on 1.
    extra = {0: 4, 1: 3, 2: 2}
    for value in range(300):
        for copy in range(1 + extra.get(value, 0)):
            api.put(f"facets/{value}-{copy}.txt", b"common word", attributes={"lang": f"v{value:03}"})
    indexed()
    backend = connections[app_settings.LATEST_CONNECTION].get_backend()
    request = query.SearchRequest(query="common", suggest=False, facets=("lang",), want_facets=True)
    with limits(FACET_MAX_VALUES=3):
        raw = query.run_whoosh(backend, request)
    assert raw.work.facet_values == 3  # one query each over the matches, not 300
    assert raw.facets["attributes"]["lang"] == [("v000", 5), ("v001", 4), ("v002", 3)]
    assert raw.work.terms_scanned == LIMITS["SEARCH_MAX_EXPANSION"]  # values read, at most
    assert raw.total == 300 + 4 + 3 + 2

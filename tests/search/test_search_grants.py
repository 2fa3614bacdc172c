"""Search as a user (``search(..., user=)``): only what their grants let them read, with full
pages, exact totals, and facets and suggestions that reveal nothing else."""

import os
import random
from collections import Counter
from unittest import mock

import pytest
from django.contrib.auth.models import AnonymousUser, Group
from django.core.management import call_command
from django.db import transaction
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from versioned_items import api, grants
from versioned_items.search import indexing, query
from versioned_items.search.api import search

from ..search_fixtures import found, indexed

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_default_access")]


@pytest.fixture(autouse=True)
def _index(search_index):
    return search_index


@pytest.fixture
def no_default_access(settings):
    settings.VERSIONED_ITEMS = {**getattr(settings, "VERSIONED_ITEMS", {}), "DEFAULT_ACCESS": ""}


@pytest.fixture
def tree():
    with api.batch():
        api.put("team/alpha/plan.txt", b"common budget confidential plan", user="ann")
        api.put("team/alpha/notes.txt", b"common budget notes", user="ann")
        api.put("team/alphabet.txt", b"common budget letters", user="bob")
        api.put("team/beta/plan.txt", b"common budget confederate plan", user="bob")
        api.put("memo.txt", b"common memo", user="cid")
    indexed()


@pytest.fixture
def reader(django_user_model):
    user = django_user_model.objects.create_user("reader")
    api.grant("team/beta", user=user)
    return user


def test_a_reader_finds_only_what_lies_below_their_grants(tree, reader):
    assert found("budget", user=reader) == ["team/beta/plan.txt"]
    assert len(found("budget")) == 4


def test_a_grant_on_an_item_covers_that_item_only(tree, reader):
    api.grant("team/alpha/notes.txt", user=reader)
    assert sorted(found("common", user=reader)) == ["team/alpha/notes.txt", "team/beta/plan.txt"]


def test_a_grant_on_a_folder_does_not_cover_its_namesakes(tree, django_user_model):
    user = django_user_model.objects.create_user("al")
    api.grant("team/alpha", user=user)
    assert sorted(found("common", user=user)) == ["team/alpha/notes.txt", "team/alpha/plan.txt"]


def test_group_grants_count_and_changes_need_no_reindexing(tree, reader):
    group = Group.objects.create(name="memo-readers")
    reader.groups.add(group)
    api.grant("memo.txt", group=group)
    assert sorted(found("common", user=reader)) == ["memo.txt", "team/beta/plan.txt"]
    api.revoke("team/beta", user=reader)
    assert found("common", user=reader) == ["memo.txt"]


def test_nobody_anonymous_and_superusers(tree, django_user_model):
    nobody = django_user_model.objects.create_user("nobody")
    boss = django_user_model.objects.create_superuser("boss")
    for user in (nobody, AnonymousUser()):
        page = search("common", user=user, facets=True, suggest=True)
        assert (page.hits, page.total, page.suggestion) == ([], 0, None)
        assert page.facets["muser"] == []
    assert search("common", user=boss).total == 5


def test_default_access_read_and_model_permissions_read_everything(tree, django_user_model, settings):
    nobody = django_user_model.objects.create_user("nobody")
    settings.VERSIONED_ITEMS = {**settings.VERSIONED_ITEMS, "DEFAULT_ACCESS": "read"}
    assert search("common", user=nobody).total == 5


def test_history_and_as_of_are_filtered_too(tree, reader):
    moment = timezone.now()
    api.put("team/beta/plan.txt", b"common budget second", user="bob")
    api.put("team/alpha/plan.txt", b"common budget second", user="ann")
    indexed()
    history = search("common", history=True, user=reader)
    assert {(hit.path, hit.serial) for hit in history} == {
        (v.node.path, v.serial) for v in api.versions("team/beta/plan.txt")
    }
    as_of = search("common", as_of=moment, user=reader)
    assert [hit.path for hit in as_of] == ["team/beta/plan.txt"]
    assert as_of.hits[0].serial == api.versions("team/beta/plan.txt").last().serial


def test_the_recycle_bin_is_filtered(tree, reader):
    api.delete("team/alpha/notes.txt")
    api.delete("team/beta/plan.txt")
    indexed()
    deleted = search("common", history=True, cluster=2, user=reader)
    assert [hit.path for hit in deleted] == ["team/beta/plan.txt"]


def test_facets_count_only_readable_documents(tree, reader):
    page = search("common", user=reader, facets=True)
    assert page.facets["muser"] == [("bob", 1)]
    assert dict(search("common", facets=True).facets["muser"]) == {"ann": 2, "bob": 2, "cid": 1}


@pytest.mark.parametrize("terms", [1000, 0], ids=["terms", "documents"])
def test_suggestions_come_from_readable_documents_only(tree, reader, django_user_model, monkeypatch, terms):
    monkeypatch.setattr(query, "READABLE_TERMS", terms)
    # "confidentail" is one transposition from a word only team/alpha has.
    assert search("confidentail", suggest=True).suggestion == "confidential"
    assert search("confidentail", user=reader, suggest=True).suggestion != "confidential"
    # A word that only unreadable documents have is unknown to the reader: it is corrected
    # like any unknown word, to a word the reader's documents have, or not at all.
    page = search("confidential", user=reader, suggest=True)
    assert page.total == 0
    assert page.suggestion in (None, "confederate")
    alpha = django_user_model.objects.create_user("alpha")
    api.grant("team/alpha", user=alpha)
    assert search("confidentail", user=alpha, suggest=True).suggestion == "confidential"
    assert search("confidential", user=alpha, suggest=True).suggestion is None


@pytest.mark.parametrize("terms", [1000, 0], ids=["terms", "documents"])
def test_a_page_is_full_whatever_lies_between_the_readable_documents(django_user_model, monkeypatch, terms):
    monkeypatch.setattr(query, "READABLE_TERMS", terms)
    with api.batch():
        for i in range(30):
            api.put(f"mixed/{i:02d}/open.txt" if i % 3 == 0 else f"mixed/{i:02d}/shut.txt", b"word")
    indexed()
    user = django_user_model.objects.create_user("some")
    for i in range(0, 30, 3):
        api.grant(f"mixed/{i:02d}", user=user)
    first = search("word", user=user, sort="path", page_size=4)
    assert (len(first), first.total, first.num_pages) == (4, 10, 3)
    last = search("word", user=user, sort="path", page_size=4, page=3)
    assert [hit.path for hit in last] == ["mixed/24/open.txt", "mixed/27/open.txt"]


def test_the_filter_is_one_term_per_readable_path_whatever_the_grants_cover(tree, django_user_model):
    user = django_user_model.objects.create_user("many")
    for path in ("team", "team/alpha", "team/beta/plan.txt", "memo.txt"):
        api.grant(path, user=user)
    assert grants.readable_paths(user) == ["memo.txt", "team"]
    assert search("common", user=user).total == 5


def test_a_change_of_grants_shows_at_once_where_the_readable_documents_are_kept(tree, reader, monkeypatch):
    monkeypatch.setattr(query, "READABLE_TERMS", 0)
    api.grant("team/alpha/notes.txt", user=reader)
    assert sorted(found("common", user=reader)) == ["team/alpha/notes.txt", "team/beta/plan.txt"]
    api.revoke("team/beta", user=reader)  # the index and its reader stay as they are
    assert found("common", user=reader) == ["team/alpha/notes.txt"]


# --- what a search with many grants costs ----------------------------------------------------


@pytest.fixture
def many(django_user_model):
    """A reader of 200 items (each its own grant) among 250, and the raw search for them."""
    with api.batch():
        for i in range(250):
            api.put(f"many/{i:03d}.txt", b"quarterly report" if i % 5 else b"quarterly summary")
    indexed()
    user = django_user_model.objects.create_user("many")
    for i in range(200):
        api.grant(f"many/{i:03d}.txt", user=user)
    return user


def raw(text: str, user, **options) -> query.RawResults:
    """The engine's results for ``text`` searched as ``user``, with the Work they cost."""
    from django.conf import settings
    from haystack import connections

    from versioned_items.conf import app_settings

    backend = connections[app_settings.LATEST_CONNECTION].get_backend()
    readable = grants.readable_paths(user)
    request = query.SearchRequest(query=text, highlight=False, readable=tuple(readable), **options)
    if settings.ENGINE == "tantivy":
        from versioned_items.search.tantivy_search import run_tantivy

        return run_tantivy(backend, request)
    return query.run_whoosh(backend, request)


@pytest.mark.whoosh_only
def test_the_readable_documents_are_read_once_per_reader_and_grant_set(many, django_user_model):
    assert len(grants.readable_paths(many)) > query.READABLE_TERMS
    first = raw("quarterly", many)
    assert first.total == 200
    # One posting list per readable item (its path; an item has no descendants) and segment
    # that has it, not a check of every document.
    segments = len(backend_reader().leaf_readers())
    assert 200 <= first.work.readable_postings <= 200 * segments
    again = raw("quarterly", many, suggest=True)
    assert (again.total, again.work.readable_postings) == (200, 0)
    other = django_user_model.objects.create_user("other")
    for i in range(10):
        api.grant(f"many/{i:03d}.txt", user=other)
    assert 10 <= raw("quarterly", other).work.readable_postings <= 10 * segments  # another grant set


def backend_reader():
    from haystack import connections

    from versioned_items.conf import app_settings

    return connections[app_settings.LATEST_CONNECTION].get_backend().searcher().reader()


def test_a_readers_suggestion_checks_few_candidates_and_no_word_the_search_matched(many):
    # The words every match has are known: nothing to look up, however few the hits.
    matched = raw("quarterly summary", many, suggest=True)
    assert (matched.total, matched.suggestion) == (40, None)
    assert (matched.work.suggestion_candidates, matched.work.suggestion_checks) == (0, 0)
    # A typo: its one-edit neighbours are looked up in the index's vocabulary (far within the
    # budget), then each word and the best candidate are looked for in the readable documents,
    # one query each.
    typo = raw("quartelry summary", many)
    assert (typo.total, typo.suggestion) == (0, "quarterly summary")
    assert 0 < typo.work.suggestion_candidates < 2_000
    assert typo.work.suggestion_checks == 3


def test_a_readers_suggestion_checks_at_most_the_best_few_candidates(many):
    with api.batch():
        for i in range(200, 250):  # unreadable: many close words the reader's documents lack
            api.put(
                f"many/{i:03d}.txt", " ".join(f"quarterl{c}" for c in "abcdefghijklmnopqrstuvwxz").encode()
            )
    indexed()
    page = raw("quarterlx", many)
    assert page.total == 0
    assert page.work.suggestion_checks <= 1 + query.CHECKED_CANDIDATES


def test_vi_search_as_a_user(tree, reader, capsys):
    call_command("vi_search", "common", "--user", "reader", verbosity=1)
    out = capsys.readouterr().out
    assert "team/beta/plan.txt" in out and "1 matches" in out
    assert "memo.txt" not in out


def test_vi_search_with_an_unknown_user_says_so(tree):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="there is no user named 'ghost'"):
        call_command("vi_search", "common", "--user", "ghost")


# --- random trees ----------------------------------------------------------------------------

SEGMENTS = ["a", "b", "a-", "a.b", "é"]
item_paths = st.lists(st.sampled_from(SEGMENTS), min_size=1, max_size=3).map("/".join)
USERS = ["u0", "u1", "u2"]
GROUPS = ["g0", "g1"]
LEVELS = list(grants.LEVELS)


@st.composite
def worlds(draw):
    """Items (some deleted), group memberships, and grants on the nodes the items make."""
    items = draw(st.lists(item_paths, min_size=1, max_size=8, unique=True))
    deleted = draw(st.lists(st.sampled_from(items), max_size=2, unique=True))
    nodes = sorted({""} | {"/".join(p.split("/")[:i]) for p in items for i in range(1, p.count("/") + 2)})
    members = {u: draw(st.lists(st.sampled_from(GROUPS), max_size=2, unique=True)) for u in USERS}
    principals = st.sampled_from([("user", u) for u in USERS] + [("group", g) for g in GROUPS])
    given = draw(st.lists(st.tuples(st.sampled_from(nodes), principals, st.sampled_from(LEVELS)), max_size=5))
    return items, deleted, members, given


def may_read(path, user, members, given_grants) -> bool:
    mine = {("user", user)} | {("group", g) for g in members[user]}
    covering = {"", *("/".join(path.split("/")[:i]) for i in range(1, path.count("/") + 2))}
    return any(node in covering and principal in mine for node, principal, _ in given_grants)


def every_page(page_size, **kwargs):
    """All pages of a search sorted by path: [[(path, serial), ...], ...], and the totals seen."""
    pages, totals, number = [], set(), 1
    while True:
        page = search("*", sort="path", page=number, page_size=page_size, **kwargs)
        pages.append([(hit.path, hit.serial) for hit in page])
        totals.add(page.total)
        if not page.has_next:
            return pages, totals
        number += 1


def muser_of(path: str) -> str:
    return "m" + path.split("/")[0].replace(".", "").replace("-", "")


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(world=worlds(), page_size=st.integers(1, 3), as_documents=st.booleans())
def test_random_searches_reveal_nothing_outside_the_grants_and_are_full(
    django_user_model, world, page_size, as_documents
):
    items, deleted, members, given_grants = world
    # Hypothesis seeds the random module the same way for each example, and Whoosh names its
    # segments with it: without this, an example's segment takes an earlier one's file name.
    random.seed(os.urandom(16))
    with transaction.atomic():
        with api.batch():
            for path in items:
                api.put(path, f"first {path}".encode(), user=muser_of(path))
        moment = timezone.now()
        with api.batch():
            for path in items:
                api.put(path, f"second {path}".encode(), user=muser_of(path))
            for path in deleted:
                api.delete(path, user=muser_of(path))
        groups = {name: Group.objects.create(name=name) for name in GROUPS}
        users = {name: django_user_model.objects.create_user(name) for name in USERS}
        for name, joined in members.items():
            users[name].groups.set([groups[g] for g in joined])
        for node, (kind, name), level in given_grants:
            api.grant(node, **{kind: name}, level=level)
        indexing.wait_for_index()
        searches = {
            "latest": ({}, lambda p: p not in deleted, 1),
            "history": ({"history": True}, lambda p: True, 2),
            "as of": ({"as_of": moment}, lambda p: True, 1),
            "recycle bin": ({"history": True, "cluster": 2}, lambda p: p in deleted, 1),
        }
        terms = mock.patch.object(query, "READABLE_TERMS", 0 if as_documents else 1000)
        for kind, (options, present, per_item) in searches.items():
            everything, _ = every_page(1000, **options)
            for name, user in users.items():
                with terms:
                    readable = [p for p in items if present(p) and may_read(p, name, members, given_grants)]
                    pages, totals = every_page(page_size, user=user, **options)
                    shown = [hit for page in pages for hit in page]
                    expected = [hit for hit in everything[0] if hit[0] in readable]
                    assert shown == expected, (kind, name)
                    assert len(shown) == per_item * len(readable), (kind, name)
                    assert totals == {len(shown)}, (kind, name)
                    assert all(len(page) == page_size for page in pages[:-1]), (kind, name)
                    facets = search("*", user=user, facets=True, **options).facets
                    assert dict(facets["muser"]) == dict(Counter(muser_of(p) for p, _ in shown)), (kind, name)
        transaction.set_rollback(True)
    # The rolled-back writes are still in the indexes: take them out for the next example.
    indexing.update_index()
    assert indexed() == ([], [])


# --- the pages -------------------------------------------------------------------------------


def test_the_site_search_page_shows_a_reader_full_pages_of_their_folder(client, django_user_model):
    from django.urls import reverse

    with api.batch():
        for i in range(25):
            api.put(f"open/{i:02d}.txt", b"report")
            api.put(f"shut/{i:02d}.txt", b"report")
    indexed()
    reader = django_user_model.objects.create_user("reader")
    api.grant("open", user=reader)
    client.force_login(reader)
    response = client.get(reverse("versioned_items:search"), {"q": "report"})
    assert response.status_code == 200
    results = response.context["results"]
    assert (len(results), results.total) == (20, 25)
    assert all(hit.path.startswith("open/") for hit in results)
    assert b"shut/" not in response.content
    second = client.get(reverse("versioned_items:search"), {"q": "report", "page": "2"})
    shown = [hit.path for hit in results] + [hit.path for hit in second.context["results"]]
    assert sorted(shown) == [f"open/{i:02d}.txt" for i in range(25)]


def test_the_admin_search_of_a_staff_user_with_view_node_only_shows_their_grants(client, django_user_model):
    from django.contrib.auth.models import Permission
    from django.urls import reverse

    tree_paths = ("team/alpha/plan.txt", "team/beta/plan.txt")
    for path in tree_paths:
        api.put(path, b"common plan")
    indexed()
    staff = django_user_model.objects.create_user("staff", is_staff=True)
    staff.user_permissions.set(Permission.objects.filter(codename="view_node"))
    client.force_login(staff)
    url = reverse("admin:versioned_items_node_search")
    assert client.get(url, {"q": "common"}).context["results"].total == 0
    api.grant("team/beta", user=staff)
    response = client.get(url, {"q": "common"})
    assert [hit.path for hit in response.context["results"]] == ["team/beta/plan.txt"]
    assert b"team/alpha" not in response.content


@pytest.mark.parametrize("count", [1, 200])
def test_a_search_costs_the_same_queries_for_1_or_200_grants(
    count, django_user_model, django_assert_num_queries
):
    with api.batch():
        for i in range(200):
            api.put(f"many/{i:03d}.txt", b"report")
    indexed()
    user = django_user_model.objects.create_user("reader")
    for i in range(count):
        api.grant(f"many/{i:03d}.txt", user=user)
    user = django_user_model.objects.get(pk=user.pk)  # no permission cache
    # The model permissions (two queries), the grants' paths (one); the hits need none.
    with django_assert_num_queries(3):
        page = search("report", user=user, page_size=10, facets=True)
    assert (len(page), page.total) == (min(10, count), count)

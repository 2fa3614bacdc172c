"""Permissions inside the query: search and a listing page for users with 1, 10 and 200 grants,
against the same call for a superuser (who reads everything, so no filter is added).

The search corpus is loaded (``--size`` writes); each user's grants go on nodes spread over it:
its second-level folders (about 50 items each) when there are enough, else items, every k-th
so that they are spread over the whole tree. In one run, each call is made for every user in
turn:

- search: each of the corpus's sample queries, the first page of 10 with the total, on the
  latest index (``search(q, user=u, page_size=10, highlight=False)``);
- listing: the first page of 1,000 below the corpus root, no delimiter
  (``api.list_latest(root, limit=1000, user=u)``), and its query count.

The filter is part of the index query and of the listing's SQL (path ranges, or past
``grants.MAX_RANGE_TERMS`` prefixes grouped by length). On the Whoosh engine it is the user's
readable documents (``query.Readable``), read from two posting lists per readable path the
first time a searcher meets the user's grant set and then kept: the timed searches (best of
``--repeat``) find them kept, the "first search" column times the search that reads them (the
first query, once per user, after the superuser's search has opened the searcher). Every search
of a user also loads their grants (``grants.readable_paths``, one query): the "grants lookup"
column times that part alone. Target (issue 12): at 200 grants, each is at most 1.5x the
superuser's time. The users see fewer items than the superuser; the columns show how many, so
the ratio is read with that in mind. A search with fewer than 5 hits also computes a spelling
suggestion (``suggest=None``, the default), from the user's readable documents only, and a user
who reads little gets few hits: the "no suggestion" columns time ``suggest=False``, the
filter's own cost.
"""

import statistics

from django.contrib.auth import get_user_model

from versioned_items import api, grants
from versioned_items.models import Grant, Node

from .. import search_corpus as sc
from ..report import Result, ratio
from ..timing import best_of, count_queries, ms

NEEDS_SEARCH = True
GRANT_COUNTS = (1, 10, 200)
PAGE = 1000


def targets(root: str, count: int) -> list[str]:
    """``count`` node paths spread over the corpus: its second-level folders (about 50 items
    each) while they are at least twice ``count``, else items, every k-th."""
    below = Node.objects.filter(path__startswith=f"{root}/").order_by("path")
    folders = list(below.filter(depth=3).values_list("path", flat=True))
    if 2 * count > len(folders):
        folders = list(below.live().values_list("path", flat=True))
    step = max(1, len(folders) // count)
    return folders[::step][:count]


def run(options, result: Result) -> None:
    from versioned_items.search.api import search

    info = sc.ensure(options)
    corpus = sc.make(options)
    queries = corpus.queries(options.queries)
    root = corpus.root
    users = get_user_model().objects
    users.filter(username__startswith="bench-").delete()
    boss = users.create_superuser("bench-boss")
    readers = {}
    for count in GRANT_COUNTS:
        user = users.create_user(f"bench-{count}")
        for path in targets(root, count):
            api.grant(path, user=user)
        readers[count] = users.get(pk=user.pk)
    result.corpus = {k: v for k, v in info.items() if k != "load_s"}
    table = result.table(
        f"permissions in the query: search (page of 10 + total, mean of {len(queries)} queries) and "
        f"a listing page of {PAGE}, per user, best of {options.repeat}",
        "user",
        "grants",
        "readable paths",
        "search ms",
        "search total (sum)",
        "search/superuser",
        "no suggestion ms",
        "no suggestion/superuser",
        "first search ms",
        "grants lookup ms",
        "listing ms",
        "listing entries",
        "listing queries",
        "listing/superuser",
    )
    people = [("superuser", boss)] + [(f"{n} grants", readers[n]) for n in GRANT_COUNTS]
    first_s = {}
    for label, user in people:  # the superuser's opens the searcher; each user's reads their filter
        first_s[label], _ = best_of(lambda: search(queries[0], page_size=10, highlight=False, user=user), 1)
    search_s = {label: [] for label, _ in people}
    plain_s = {label: [] for label, _ in people}
    totals = dict.fromkeys(search_s, 0)
    for text in queries:  # each query for every user in turn, so load hits them alike
        for label, user in people:
            t, page = best_of(lambda: search(text, page_size=10, highlight=False, user=user), options.repeat)
            search_s[label].append(t)
            totals[label] += page.total
            t, _ = best_of(
                lambda: search(text, page_size=10, highlight=False, suggest=False, user=user), options.repeat
            )
            plain_s[label].append(t)
    list_s, listings = {label: [] for label, _ in people}, {}
    for _ in range(options.repeat):
        for label, user in people:
            t, listings[label] = best_of(lambda: api.list_latest(root, limit=PAGE, user=user), 1)
            list_s[label].append(t)
    rows = {
        label: (statistics.fmean(search_s[label]), min(list_s[label]), statistics.fmean(plain_s[label]))
        for label, _ in people
    }
    for label, user in people:
        list_q, _ = count_queries(lambda: api.list_latest(root, limit=PAGE, user=user))
        readable = grants.readable_paths(user)
        lookup_s, _ = best_of(lambda: grants.readable_paths(user), options.repeat)
        table.add(
            label,
            Grant.objects.filter(user=user).count(),
            "all" if readable is None else len(readable),
            ms(rows[label][0]),
            totals[label],
            ratio(rows[label][0], rows["superuser"][0]),
            ms(rows[label][2]),
            ratio(rows[label][2], rows["superuser"][2]),
            ms(first_s[label]),
            ms(lookup_s),
            ms(rows[label][1]),
            len(listings[label].objects),
            list_q,
            ratio(rows[label][1], rows["superuser"][1]),
        )
    top = f"{GRANT_COUNTS[-1]} grants"
    result.target(f"search, {top} / superuser", ratio(rows[top][0], rows["superuser"][0]), "<=", 1.5)
    result.target(
        f"search without suggestions, {top} / superuser", ratio(rows[top][2], rows["superuser"][2]), "<=", 1.5
    )
    result.target(f"listing page, {top} / superuser", ratio(rows[top][1], rows["superuser"][1]), "<=", 1.5)
    users.filter(username__startswith="bench-").delete()

"""Bad input, generated (hypothesis): every rejection is the app's own error, and changes nothing.

Random paths (unicode, NUL and other control characters, surrogates, overlong, ``..``), filter
expressions, search queries, as-of times and limits are thrown at the service API, the search
API and the management commands. Each call either succeeds or raises a
:class:`~versioned_items.exceptions.VersionedItemsError` (a command: ``CommandError``); after a
rejected call the database and both indexes are exactly as before. The site's views get the
same treatment in ``test_site_bad_input`` below: a 400 with a message, never a 500.

Example counts are capped (``EXAMPLES``) so the module stays within seconds; set
``VI_HYPOTHESIS_EXAMPLES`` for a deeper run.
"""

import os
import random
from datetime import UTC, datetime, timedelta, timezone

import pytest
from django.core.management import CommandError, call_command
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from versioned_items import api
from versioned_items.exceptions import VersionedItemsError
from versioned_items.search import indexing
from versioned_items.search.api import search

from ..helpers import snapshot

EXAMPLES = int(os.environ.get("VI_HYPOTHESIS_EXAMPLES", "40"))
bounded = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=EXAMPLES <= 100,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# --- strategies -----------------------------------------------------------------------------

NASTY = [
    "",
    "/",
    "//",
    ".",
    "..",
    "a/..",
    "../a",
    "a/./b",
    "a//b",
    "a/",
    "/a/",
    "a\x00b",
    "\x00",
    "a\nb",
    "tab\there",
    "\x7f",
    "\u0085next-line",
    "\ud800",
    "a/\udfff",
    "x" * 1025,
    "é" * 600,
    "😀/" * 300 + "z",
    " ",
    " /a",
    "a/ /b",
    "NUL\x00/b",
    "%00",
    "..%2f",
    "a\\b",
    "'; DROP TABLE versioned_items_node; --",
    "\u202eevil",
    "\ufeffbom",
]
SEGMENTS = st.one_of(
    st.sampled_from(["", ".", "..", "a", "é", "😀", " ", "\t", "\x00", "\x1f", "%", "'", '"', "*"]),
    st.text(max_size=8),
)
paths = st.one_of(
    st.sampled_from(NASTY),
    st.text(max_size=40),
    st.lists(SEGMENTS, min_size=1, max_size=6).map("/".join),
    st.integers(-3, 3),
    st.none(),
    st.binary(max_size=5),
    st.floats(allow_nan=True),
)
filters = st.one_of(
    st.text(alphabet='ab=!<>,"\\ 1.-\x00\n', max_size=20),
    st.sampled_from(
        [
            "",
            ",",
            "a,",
            "!",
            "!a",
            "a=",
            "a==b",
            'a="x',
            'a="x"y',
            "a<=b,c>=1e999",
            "a=1e400",
            "a=nan",
            "a=-0",
            "a !~ b",
            "=b",
            "a\x00=b",
        ]
    ),
    st.integers(),
    st.none(),
)
queries = st.one_of(
    st.text(alphabet='ab AND OR NOT TO()[]{}":*?~^+-\\/\x00', max_size=30),
    st.sampled_from(
        [
            "(",
            ")",
            '"',
            "[a TO",
            "a:",
            ":a",
            "AND",
            "a OR",
            "NOT",
            "*",
            "**",
            "?",
            "path:",
            "mtime:[x TO y]",
            "size:[9 TO 1]",
            "mtime:[20300101 TO]",
            "color:[a TO b]",
            "a~",
            "a^x",
            "x" * 5000,
            "\x00",
            "/",
            "\\",
        ]
    ),
    st.text(max_size=30),
)
times = st.one_of(
    st.none(),
    st.datetimes(timezones=st.sampled_from([None, UTC])),
    st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(UTC)),
    st.sampled_from(
        [
            datetime.min,
            datetime.max,
            datetime.max.replace(tzinfo=UTC),
            datetime.min.replace(tzinfo=UTC),
            # before the year 1 once in UTC: overflowed in Django's conversion
            datetime.min.replace(tzinfo=timezone(timedelta(hours=14))),
            datetime.max.replace(tzinfo=timezone(timedelta(hours=-14))),
        ]
    ),
    st.integers(),
    st.text(max_size=5),
)
limits = st.one_of(
    st.integers(-(10**9), 10**9),
    st.sampled_from([0, 1, 10_000, 10_001, True, False]),
    st.floats(allow_nan=True),
    st.text(max_size=4),
    st.none(),
)


# --- the property ---------------------------------------------------------------------------


def state():
    """The database and both indexes."""
    return snapshot(), list(indexing.dump()), list(indexing.dump(history=True))


def fresh_random():
    # Hypothesis resets Python's global random generator for every example; Whoosh names new
    # segments with it, and the same name twice makes a commit fail. Reseed from the OS.
    random.seed()


def rejects_cleanly(call):
    """Run ``call``: it may succeed, or raise the app's error and leave everything as it was."""
    fresh_random()
    before = state()
    try:
        call()
    except VersionedItemsError as error:
        assert str(error), "an error without a message"
        assert state() == before, f"a rejected call changed something ({type(error).__name__}: {error})"
        return False
    return True


@pytest.fixture
def store(search_index):
    """A small store, indexed, that the calls below run against (SEARCH_SYNC is on)."""
    api.put("docs/readme.txt", b"hello world", attributes={"n": "5", "tag": "x"})
    api.put("docs/guide/intro.md", b"# intro\nhello guide")
    api.put("docs/readme.txt", b"hello again")
    api.delete("docs/guide/intro.md")
    indexing.wait_for_index()
    return search_index


pytestmark = [pytest.mark.django_db(transaction=True)]


# --- the service API -------------------------------------------------------------------------


@bounded
@given(path=paths)
def test_put_and_read_paths(store, path):
    rejects_cleanly(lambda: api.put(path, b"content"))
    rejects_cleanly(lambda: api.lookup(path))
    rejects_cleanly(lambda: api.get_node(path))
    rejects_cleanly(lambda: api.versions(path).count())
    rejects_cleanly(lambda: api.create_node(path))


@bounded
@given(source=paths, destination=paths)
def test_move_delete_remove(store, source, destination):
    rejects_cleanly(lambda: api.move(source, destination))
    rejects_cleanly(lambda: api.delete(source))
    rejects_cleanly(lambda: api.remove_node(destination))


@bounded
@given(
    parent=paths,
    prefix=paths,
    delimiter=st.one_of(st.none(), st.text(max_size=20), st.integers()),
    marker=st.one_of(st.none(), paths),
    limit=limits,
    expression=filters,
    before=times,
    size_range=st.one_of(st.none(), st.tuples(limits, limits), st.integers(), st.text(max_size=3)),
)
def test_list_latest(store, parent, prefix, delimiter, marker, limit, expression, before, size_range):
    rejects_cleanly(
        lambda: api.list_latest(
            parent,
            prefix=prefix,
            delimiter=delimiter,
            marker=marker,
            limit=limit,
            filter=expression,
            before=before,
            size_range=size_range,
        )
    )


@bounded
@given(
    path=paths,
    before=times,
    clusters=st.one_of(st.lists(st.integers(-2, 4), max_size=3), st.text(max_size=3)),
)
def test_points_in_time_and_purge(store, path, before, clusters):
    rejects_cleanly(lambda: api.lookup(path, before=before))
    rejects_cleanly(lambda: api.latest_statistics(path, before=before))
    rejects_cleanly(lambda: api.purge_summary(path, clusters=clusters, before=before, subtree=True))
    rejects_cleanly(lambda: api.purge(path, clusters=clusters, before=before, subtree=True))


@bounded
@given(
    serial=st.one_of(
        st.integers(-5, 10**20),
        st.sampled_from([2**63 - 1, 2**63, 2**64]),
        st.text(max_size=3),
        st.none(),
        st.booleans(),
    ),
    key=st.one_of(st.text(max_size=300), st.none(), st.integers()),
    value=st.one_of(st.text(max_size=20), st.integers(), st.none()),
)
def test_attributes_and_versions(store, serial, key, value):
    rejects_cleanly(lambda: api.set_attributes(serial, {key: value}))
    rejects_cleanly(lambda: api.get_attributes(serial, [key]))
    rejects_cleanly(lambda: api.delete_attributes(serial, [key]))
    rejects_cleanly(lambda: api.restore(serial))
    rejects_cleanly(lambda: api.recluster(serial, value))


# --- search ----------------------------------------------------------------------------------


@bounded
@given(
    text=queries,
    as_of=times,
    under=st.one_of(st.none(), paths),
    page=limits,
    page_size=limits,
    sort=st.one_of(st.sampled_from(["relevance", "-mtime", "size", "bogus", "", "--size"]), st.integers()),
)
def test_search(store, text, as_of, under, page, page_size, sort):
    rejects_cleanly(lambda: search(text, as_of=as_of, under=under, page=page, page_size=page_size, sort=sort))


@bounded
@given(
    history=st.booleans(),
    size_range=st.one_of(st.none(), st.tuples(limits, limits), st.text(max_size=3)),
    mtime_range=st.one_of(st.none(), st.tuples(times, times), st.integers()),
    attributes=st.one_of(
        st.none(),
        st.dictionaries(st.text(max_size=10), st.one_of(st.none(), st.text(max_size=10)), max_size=3),
    ),
    content_type=st.one_of(st.none(), st.text(max_size=20)),
    muser=st.one_of(st.none(), st.text(max_size=10), st.lists(st.text(max_size=5), max_size=3)),
    cluster=st.one_of(st.none(), st.integers(-3, 5), st.text(max_size=2)),
)
def test_search_filters(store, history, size_range, mtime_range, attributes, content_type, muser, cluster):
    rejects_cleanly(
        lambda: search(
            "hello",
            history=history,
            size_range=size_range,
            mtime_range=mtime_range,
            attributes=attributes,
            content_type=content_type,
            muser=muser,
            cluster=cluster,
        )
    )


# --- commands --------------------------------------------------------------------------------


def command_rejects_cleanly(*args):
    """A command run with ``args`` succeeds or raises CommandError, and a failure changes nothing."""
    fresh_random()
    before = state()
    try:
        call_command(*args, verbosity=0)
    except CommandError as error:
        assert str(error)
        assert state() == before, f"a failed command changed something: {error}"


def _text_args(values):
    return st.one_of(st.sampled_from(values), st.text(max_size=20).filter(lambda s: "\x00" not in s))


@bounded
@given(
    text=queries.filter(lambda s: isinstance(s, str) and "\x00" not in s),
    as_of=_text_args(
        [
            "2024-01-01",
            "2024-13-01",
            "9999-12-31T23:59:59",
            "0001-01-01T00:00+14:00",
            "tomorrow",
            "",
            "2024-01-01T00:00:00-23:59",
        ]
    ),
    under=_text_args(["docs", "..", "a//b", "", "/"]),
    limit=_text_args(["0", "-1", "10", "1000000", "x", "1e3"]),
)
def test_vi_search_command(store, text, as_of, under, limit):
    command_rejects_cleanly("vi_search", text, "--as-of", as_of, "--under", under, "--limit", limit, "--json")


@bounded
@given(under=_text_args(["..", "a/../b", "", "/", "x" * 1100]), batch=_text_args(["0", "-5", "1", "x"]))
def test_vi_import_command(store, tmp_path_factory, under, batch):
    folder = tmp_path_factory.mktemp("import")
    (folder / "a.txt").write_text("imported text")
    command_rejects_cleanly("vi_import", str(folder), "--under", under, "--batch-size", batch)
    command_rejects_cleanly("vi_import", str(folder / "missing"), "--under", "ok")


@pytest.mark.parametrize(
    "args",
    [
        ("vi_rebuild_index", "--procs", "0"),
        ("vi_rebuild_index", "--batch-size", "-1"),
        ("vi_rebuild_index", "--procs", "x"),
        ("vi_dump_index", "--bogus"),
        ("vi_search",),
        ("vi_check", "extra"),
        ("vi_update_index", "--dry-run", "--nope"),
    ],
)
def test_commands_refuse_bad_arguments(store, args):
    command_rejects_cleanly(*args)


# --- the site --------------------------------------------------------------------------------

site_parameters = st.fixed_dictionaries(
    {},
    optional={
        "q": st.text(max_size=20),
        "as_of": st.text(max_size=25),
        "before": st.text(max_size=25),
        "marker": st.text(max_size=20),
        "limit": st.text(max_size=6),
        "page": st.text(max_size=6),
        "filter": st.text(max_size=20),
        "under": st.text(max_size=20),
        "history": st.text(max_size=3),
        "sort": st.text(max_size=6),
        "a": st.text(max_size=8),
        "b": st.text(max_size=8),
        "serial": st.text(max_size=6),
        "v": st.text(max_size=6),
    },
)
site_paths = st.one_of(
    st.sampled_from(["", "docs", "docs/readme.txt", "..", "a/../b", "%2e%2e/x", "x" * 1100, "%00", "é/ü"]),
    st.text(alphabet="ab/.%é😀 ", max_size=15),
)


@pytest.fixture
def site(store, client, django_user_model):
    user = django_user_model.objects.create_user("visitor", password="pw")
    client.force_login(user)
    return client


def _site_urls():
    from django.urls import NoReverseMatch, reverse

    names = []
    for name, kwargs in [
        ("home", {}),
        ("browse", {}),
        ("browse", {"prefix": "docs"}),
        ("item", {"path": "docs/readme.txt"}),
        ("diff", {}),
        ("search", {}),
    ]:
        try:
            names.append((name, reverse(f"versioned_items:{name}", kwargs=kwargs)))
        except NoReverseMatch:
            continue
    return names


@bounded
@given(params=site_parameters, path=site_paths)
def test_site_bad_input(site, params, path):
    from urllib.parse import quote

    urls = [url for _, url in _site_urls()]
    if not urls:
        pytest.skip("the site's views are not installed")
    urls += [f"/browse/{quote(path)}", f"/item/{quote(path)}"]
    params = {k: v.replace("\x00", "") for k, v in params.items()}
    for url in urls:
        fresh_random()
        before = state()
        response = site.get(url, params)
        assert response.status_code < 500, (url, params, response.status_code)
        assert response.status_code in (200, 302, 400, 404), (url, params, response.status_code)
        if response.status_code == 400:
            assert response.content.strip(), "a 400 without a message"
        assert state() == before, (url, params)

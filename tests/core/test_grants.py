"""versioned_items.grants: grants on paths, effective levels, and the listing's filter in SQL."""

from unittest import mock

import pytest
from django.contrib.auth.models import AnonymousUser, Group, Permission
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from versioned_items import api, grants
from versioned_items import listing as listing_module
from versioned_items.exceptions import InvalidArgument, InvalidPath, NodeNotFound
from versioned_items.models import Grant
from versioned_items.signals import versions_changed

from ..helpers import snapshot

ITEMS = [
    "projects/alpha/a.txt",
    "projects/alpha/sub/b.txt",
    "projects/alphabet.txt",
    "projects/beta/c.txt",
    "notes.md",
]


@pytest.fixture
def tree():
    with api.batch():
        for path in ITEMS:
            api.put(path, path.encode())


@pytest.fixture
def make_user(django_user_model):
    def make(name, *permissions, **fields):
        user = django_user_model.objects.create_user(name, **fields)
        user.user_permissions.set(Permission.objects.filter(codename__in=permissions))
        return django_user_model.objects.get(pk=user.pk)  # no permission cache yet

    return make


@pytest.fixture
def ann(make_user):
    return make_user("ann")


@pytest.fixture
def no_default_access(settings):
    settings.VERSIONED_ITEMS = {**getattr(settings, "VERSIONED_ITEMS", {}), "DEFAULT_ACCESS": ""}


pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_default_access")]


def readable(user, paths=ITEMS):
    return [path for path in paths if api.can(user, path)]


# --- grant, revoke, grants -------------------------------------------------------------------


def test_grant_covers_the_subtree_and_nothing_beside_it(tree, ann):
    assert readable(ann) == []
    created = api.grant("projects/alpha", user=ann)
    assert (created.node.path, created.user, created.level) == ("projects/alpha", ann, "read")
    assert readable(ann) == ["projects/alpha/a.txt", "projects/alpha/sub/b.txt"]
    assert api.can(ann, "projects/alpha") and not api.can(ann, "projects")
    assert api.can(ann, "projects/alpha/not-yet-written.txt")  # a path need not exist


def test_grants_lists_what_applies_with_inherited_ones_marked(tree, ann):
    team = Group.objects.create(name="team")
    api.grant("", group=team, level="read")
    api.grant("projects/alpha", user=ann, level="write")
    api.grant("projects/alpha/sub", user="ann", level="manage")
    applied = api.grants("projects/alpha/sub/b.txt")
    assert [(g.node.path, g.user, g.group, g.level, g.inherited) for g in applied] == [
        ("", None, team, "read", True),
        ("projects/alpha", ann, None, "write", True),
        ("projects/alpha/sub", ann, None, "manage", True),
    ]
    at_folder = api.grants("projects/alpha")
    assert [(g.node.path, g.inherited) for g in at_folder] == [("", True), ("projects/alpha", False)]
    assert api.grants("projects/beta") == [applied[0]]


def test_granting_again_changes_the_level_and_revoke_removes_it(tree, ann):
    api.grant("projects/alpha", user=ann, level="read")
    api.grant("projects/alpha", user=ann, level="manage")
    assert Grant.objects.get().level == "manage"
    assert api.revoke("projects/alpha", user=ann) is True
    assert api.revoke("projects/alpha", user=ann) is False
    assert not Grant.objects.exists() and not api.can(ann, "projects/alpha/a.txt")


def test_revoke_leaves_the_grants_on_ancestors(tree, ann):
    api.grant("projects", user=ann)
    api.grant("projects/alpha", user=ann, level="write")
    api.revoke("projects/alpha", user=ann)
    assert api.can(ann, "projects/alpha/a.txt") and not api.can(ann, "projects/alpha/a.txt", "write")


def test_grant_changes_write_nothing_else(tree, ann):
    before = snapshot()
    sent = []
    versions_changed.connect(sent.append, weak=False, dispatch_uid="test-grants")
    try:
        api.grant("projects/alpha", user=ann, level="write")
        api.grant("projects/alpha", user=ann, level="read")
        api.revoke("projects/alpha", user=ann)
    finally:
        versions_changed.disconnect(dispatch_uid="test-grants")
    assert snapshot() == before and sent == []


@pytest.mark.parametrize(
    "path, kwargs, error, message",
    [
        ("projects/alpha", {}, InvalidArgument, "either user= or group="),
        ("projects/alpha", {"user": "ann", "group": "team"}, InvalidArgument, "not both"),
        ("projects/alpha", {"user": "ann", "level": "admin"}, InvalidArgument, "'admin' is not one of"),
        ("projects/alpha", {"user": "nobody"}, InvalidArgument, "no user named 'nobody'"),
        ("projects/alpha", {"group": "nobody"}, InvalidArgument, "no group named 'nobody'"),
        ("projects/alpha", {"user": "a\x00b"}, InvalidArgument, "control character"),
        ("projects/alpha", {"user": AnonymousUser()}, InvalidArgument, "not a saved user"),
        ("projects/gamma", {"user": "ann"}, NodeNotFound, "no node at 'projects/gamma'"),
        ("projects//alpha", {"user": "ann"}, InvalidPath, "empty"),
    ],
)
def test_bad_grants_are_refused_naming_the_value(tree, ann, path, kwargs, error, message):
    with pytest.raises(error, match=message):
        api.grant(path, **kwargs)
    assert not Grant.objects.exists()


def test_can_refuses_a_bad_level(ann):
    with pytest.raises(InvalidArgument, match="'owner' is not one of 'read', 'write', 'manage'"):
        api.can(ann, "x", "owner")


# --- levels, groups, site-wide levels --------------------------------------------------------


def test_levels_are_ordered(tree, ann):
    api.grant("projects/alpha", user=ann, level="write")
    path = "projects/alpha/a.txt"
    assert [api.can(ann, path, level) for level in grants.LEVELS] == [True, True, False]
    api.grant("projects/alpha", user=ann, level="manage")
    assert [api.can(ann, path, level) for level in grants.LEVELS] == [True, True, True]


def test_group_grants_reach_members_and_add_to_their_own(tree, ann, make_user):
    team = Group.objects.create(name="team")
    ann.groups.add(team)
    outsider = make_user("bob")
    api.grant("projects", group=team, level="read")
    api.grant("projects/alpha/sub", user=ann, level="write")
    assert api.can(ann, "projects/beta/c.txt") and not api.can(outsider, "projects/beta/c.txt")
    assert grants.level_at(ann, "projects/alpha/sub/b.txt") == "write"
    assert grants.level_at(ann, "projects/alpha/a.txt") == "read"
    assert grants.level_at(ann, "notes.md") == ""


def test_superuser_can_everything_without_a_grant(tree, django_user_model):
    boss = django_user_model.objects.create_superuser("boss")
    assert all(api.can(boss, "notes.md", level) for level in grants.LEVELS)


def test_anonymous_and_inactive_users_can_nothing(tree, make_user):
    sleeper = make_user("sleeper", "view_version", is_active=False)
    api.grant("", user=sleeper, level="manage")
    for user in (AnonymousUser(), sleeper, None):
        assert not api.can(user, "notes.md")
    assert grants.readable_q(AnonymousUser()) == grants.NOTHING


@pytest.mark.parametrize(
    "permission, level",
    [
        ("view_version", "read"),
        ("change_version", "write"),
        ("restore_version", "manage"),
        ("purge_version", "manage"),
        ("view_node", ""),  # the admin's list of nodes shows no content
    ],
)
def test_model_permissions_are_site_wide_grants(tree, make_user, permission, level):
    user = make_user("holder", permission)
    assert grants.site_level(user) == level
    assert [api.can(user, "notes.md", each) for each in grants.LEVELS] == [
        grants.rank(each) <= grants.rank(level) for each in grants.LEVELS
    ]


def test_model_permissions_of_a_group_count_too(tree, make_user):
    readers = Group.objects.create(name="readers")
    readers.permissions.add(Permission.objects.get(codename="view_version"))
    user = make_user("member")
    user.groups.add(readers)
    assert api.can(user, "projects/beta/c.txt") and not api.can(user, "projects/beta/c.txt", "write")


def test_default_access_read_lets_every_logged_in_user_read(tree, ann, settings):
    settings.VERSIONED_ITEMS = {"DEFAULT_ACCESS": "read"}
    assert api.can(ann, "notes.md") and not api.can(ann, "notes.md", "write")
    assert not api.can(AnonymousUser(), "notes.md")
    api.grant("projects/alpha", user=ann, level="write")
    assert api.can(ann, "projects/alpha/a.txt", "write") and api.can(ann, "projects/beta/c.txt")


def test_default_access_must_be_empty_or_read(ann, settings):
    settings.VERSIONED_ITEMS = {"DEFAULT_ACCESS": "write"}
    with pytest.raises(ImproperlyConfigured, match="DEFAULT_ACCESS'] is 'write'; use '' .* or 'read'"):
        api.can(ann, "notes.md")


# --- grants follow their nodes ---------------------------------------------------------------


def test_a_moved_subtree_keeps_its_grants(tree, ann):
    api.grant("projects/alpha", user=ann)
    api.move("projects/alpha", "archive/alpha")
    assert api.can(ann, "archive/alpha/sub/b.txt")
    assert not api.can(ann, "projects/alpha/a.txt")
    assert [g.node.path for g in api.grants("archive/alpha")] == ["archive/alpha"]


def test_removing_a_node_removes_its_grants(ann):
    api.create_node("empty")
    api.grant("empty", user=ann)
    api.remove_node("empty")
    assert not Grant.objects.exists()


def test_deleting_a_user_or_group_removes_their_grants(tree, ann):
    team = Group.objects.create(name="team")
    api.grant("projects", user=ann)
    api.grant("projects", group=team)
    ann.delete()
    team.delete()
    assert not Grant.objects.exists()


# --- the readable condition and the listing --------------------------------------------------


def test_covering_paths_drops_what_another_grant_covers():
    assert grants.covering_paths({"a", "a/b", "a-b", "a-b/c", "b/c", "b"}) == ["a", "a-b", "b"]
    assert grants.covering_paths({"", "a"}) == [""]
    assert grants.covering_paths(set()) == []


def test_listing_shows_only_readable_entries_and_their_folders(tree, ann):
    api.grant("projects/alpha", user=ann)
    assert api.list_latest(delimiter="/", user=ann).prefixes == ["projects/"]
    assert api.list_latest(delimiter="/", user=ann).objects == []
    level = api.list_latest("projects", delimiter="/", user=ann)
    assert level.prefixes == ["projects/alpha/"] and level.objects == []
    flat = api.list_latest(user=ann)
    assert [e.path for e in flat.objects] == ["projects/alpha/a.txt", "projects/alpha/sub/b.txt"]
    grouped = api.list_latest("projects", delimiter="a", user=ann)
    assert grouped.prefixes == ["projects/a"] and grouped.objects == []
    assert [e.path for e in api.list_latest().objects] == sorted(ITEMS)  # user=None: no filter


def test_listing_for_nobody_is_empty(tree, ann):
    for user in (ann, AnonymousUser()):
        assert api.list_latest(delimiter="/", user=user).prefixes == []
        assert api.list_latest(user=user, properties=True).objects == []


def test_a_page_is_full_whatever_lies_between_the_readable_entries(ann):
    with api.batch():
        for i in range(30):
            api.put(f"mixed/{i:02}/secret.txt", b"s")
            api.put(f"mixed/{i:02}/x.txt" if i % 3 else f"mixed/{i:02}/open/x.txt", b"o")
    for i in range(0, 30, 3):
        api.grant(f"mixed/{i:02}/open", user=ann)
    page = api.list_latest("mixed", limit=4, user=ann)
    assert [e.path for e in page.objects] == [f"mixed/{i:02}/open/x.txt" for i in (0, 3, 6, 9)]
    second = api.list_latest("mixed", limit=4, user=ann, marker=page.next_marker)
    assert [e.path for e in second.objects] == [f"mixed/{i:02}/open/x.txt" for i in (12, 15, 18, 21)]
    folders = api.list_latest("mixed", delimiter="/", limit=4, user=ann)
    assert folders.prefixes == ["mixed/00/", "mixed/03/", "mixed/06/", "mixed/09/"]


@pytest.mark.parametrize("count", [1, 200])
def test_a_listing_page_costs_the_same_queries_for_1_or_200_grants(
    make_user, django_assert_num_queries, count
):
    with api.batch():
        for i in range(count):
            api.put(f"team/{i:03}/doc.txt", b"d")
            api.put(f"team/{i:03}-hidden/doc.txt", b"h")
    user = make_user(f"holder{count}")
    group = Group.objects.create(name="holders")
    user.groups.add(group)
    for i in range(count):
        api.grant(f"team/{i:03}", **({"user": user} if i % 2 else {"group": group}))
    assert (count > grants.MAX_RANGE_TERMS) == (count == 200)  # both forms of the condition
    # the parent node, the user's and their groups' model permissions, the grants' paths, the page
    with django_assert_num_queries(5):
        page = api.list_latest("team", delimiter="/", limit=50, user=user)
    assert page.prefixes == [f"team/{i:03}/" for i in range(min(count, 50))]
    with django_assert_num_queries(3):  # the permissions are cached on the user object now
        flat = api.list_latest("team", limit=50, user=user)
    assert [e.path for e in flat.objects] == [f"team/{i:03}/doc.txt" for i in range(min(count, 50))]


def test_a_reader_of_everything_adds_no_query(tree, make_user, django_assert_num_queries, settings):
    boss = make_user("boss", is_superuser=True)
    with django_assert_num_queries(2):
        assert len(api.list_latest(user=boss).objects) == len(ITEMS)
    settings.VERSIONED_ITEMS = {"DEFAULT_ACCESS": "read"}
    anyone = make_user("anyone")
    with django_assert_num_queries(2):
        assert len(api.list_latest(user=anyone).objects) == len(ITEMS)


# --- random trees ----------------------------------------------------------------------------

SEGMENTS = ["a", "b", "a-", "a.b", "B", "é"]
item_paths = st.lists(st.sampled_from(SEGMENTS), min_size=1, max_size=3).map("/".join)
USERS = ["u0", "u1", "u2"]
GROUPS = ["g0", "g1"]


@st.composite
def worlds(draw):
    """Items (some deleted), group memberships, and grants on the nodes the items make."""
    items = draw(st.lists(item_paths, min_size=1, max_size=10, unique=True))
    deleted = draw(st.lists(st.sampled_from(items), max_size=2, unique=True))
    nodes = sorted({""} | {"/".join(p.split("/")[:i]) for p in items for i in range(1, p.count("/") + 2)})
    members = {u: draw(st.lists(st.sampled_from(GROUPS), max_size=2, unique=True)) for u in USERS}
    principals = st.sampled_from([("user", u) for u in USERS] + [("group", g) for g in GROUPS])
    given_grants = draw(
        st.lists(st.tuples(st.sampled_from(nodes), principals, st.sampled_from(grants.LEVELS)), max_size=6)
    )
    return items, deleted, members, given_grants


def expected_readable(path, user, members, given_grants):
    mine = {("user", user)} | {("group", g) for g in members[user]}
    covering = {"", *("/".join(path.split("/")[:i]) for i in range(1, path.count("/") + 2))}
    return any(node in covering and principal in mine for node, principal, _ in given_grants)


def walk(limit, **kwargs):
    """Every page's entries, ("object", path) and ("prefix", prefix), each page in tree order."""
    pages, marker = [], None
    while True:
        page = api.list_latest(marker=marker, limit=limit, **kwargs)
        entries = [("object", e.path) for e in page.objects] + [("prefix", p) for p in page.prefixes]
        entries.sort(key=lambda entry: (entry[1].rstrip("/"), entry[0] == "prefix"))
        pages.append(entries)
        if page.next_marker is None:
            return pages
        marker = page.next_marker


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    world=worlds(),
    limit=st.integers(1, 3),
    length_form=st.booleans(),
    listing=st.sampled_from(
        [
            {},
            {"delimiter": "/"},
            {"parent": "a", "delimiter": "/"},
            {"delimiter": "-"},
            {"prefix": "a"},
            {"parent": "a"},
            {"prefix": "a-"},
        ]
    ),
)
def test_random_pages_reveal_nothing_outside_the_grants_and_are_full(
    django_user_model, world, limit, length_form, listing
):
    items, deleted, members, given_grants = world
    with transaction.atomic():
        with api.batch():
            for path in items:
                api.put(path, path.encode())
            for path in deleted:
                api.delete(path)
        groups = {name: Group.objects.create(name=name) for name in GROUPS}
        users = {name: django_user_model.objects.create_user(name) for name in USERS}
        for name, joined in members.items():
            users[name].groups.set([groups[g] for g in joined])
        for node, (kind, name), level in given_grants:
            api.grant(node, **{kind: name}, level=level)
        if api.lookup_node(listing.get("parent", "")) is None:
            transaction.set_rollback(True)
            return
        everything = [entry for page in walk(1000, **listing) for entry in page]
        # length_form: the conditions past the limits (the length groups; a flat page's last
        # union arm sharing one range), else one range per readable folder.
        with (
            mock.patch.object(grants, "MAX_RANGE_TERMS", 0 if length_form else 50),
            mock.patch.object(listing_module, "MAX_MERGED_RANGES", 1 if length_form else 400),
        ):
            for name, user in users.items():
                live = [p for p in items if p not in deleted]

                def allowed(entry, name=name, live=live):
                    kind, text = entry
                    if kind == "prefix":  # shown when something readable lies in it
                        return any(
                            p.startswith(text) and expected_readable(p, name, members, given_grants)
                            for p in live
                        )
                    return expected_readable(text, name, members, given_grants)

                pages = walk(limit, user=user, **listing)
                shown = [entry for page in pages for entry in page]
                assert shown == [entry for entry in everything if allowed(entry)], name
                assert all(len(page) == limit for page in pages[:-1]), name
        transaction.set_rollback(True)

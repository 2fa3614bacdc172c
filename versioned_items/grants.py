"""Who may read and change what: grants of a level on a path, to a user or a group.

Levels are ordered ``read`` < ``write`` < ``manage``; each includes the ones below it. A grant on
a node covers the node and its subtree. A user's level at a path is the highest of:

- ``manage`` for a superuser;
- the site-wide levels of Django's model permissions: ``versioned_items.view_version`` is
  ``read`` everywhere, ``change_version`` ``write``, ``restore_version`` or ``purge_version``
  ``manage`` (so sites that gave those permissions keep working);
- ``DEFAULT_ACCESS`` (``""`` or ``"read"``) for every logged-in user;
- the grants to the user, and to the groups they belong to, on the path and its ancestors.

Anonymous and inactive users have no level anywhere. :func:`readable_q` is the condition a
query adds to keep only the paths a user may read, so that a listing filters inside its SQL and
a page is full whenever enough readable items exist.

Changing grants writes grant rows and nothing else: no version, statistics or index entry
depends on them, so a change is seen by the next query and never needs reindexing.
"""

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction
from django.db.models import Case, Exists, F, OuterRef, Q, Value, When
from django.db.models.functions import Length, Substr
from django.db.models.lookups import Exact, In

from . import paths
from .conf import app_settings
from .exceptions import InvalidArgument, NodeNotFound
from .models import Grant, Node
from .validation import clean_level, clean_text

Level = Grant.Level
#: The levels, lowest first.
LEVELS: tuple[str, ...] = tuple(Level.values)
#: The values ``DEFAULT_ACCESS`` accepts.
DEFAULT_ACCESS_CHOICES = ("", Level.READ.value)
#: Model permission -> the level it gives everywhere, highest first.
MODEL_PERMISSIONS: tuple[tuple[str, str], ...] = (
    ("versioned_items.restore_version", Level.MANAGE),
    ("versioned_items.purge_version", Level.MANAGE),
    ("versioned_items.change_version", Level.WRITE),
    ("versioned_items.view_version", Level.READ),
)
#: Most readable paths :func:`readable_q` writes out as path ranges (see there); above it the
#: paths are grouped by length. Read at call time, so tests may lower it.
MAX_RANGE_TERMS = 10

#: A condition no row matches (Django answers it without running the query).
NOTHING = Q(pk__in=[])


def rank(level: str) -> int:
    """0 for no level (``""``), then 1, 2, 3 for read, write, manage."""
    return LEVELS.index(level) + 1 if level else 0


def default_access() -> str:
    """The ``DEFAULT_ACCESS`` setting. Raises ImproperlyConfigured when it is not ``""`` or ``"read"``."""
    value = app_settings.DEFAULT_ACCESS
    if value not in DEFAULT_ACCESS_CHOICES:
        raise ImproperlyConfigured(
            f"VERSIONED_ITEMS['DEFAULT_ACCESS'] is {value!r}; use '' (nothing) or 'read'"
        )
    return str(value)


# --- changing grants -------------------------------------------------------------------------


def user_named(name: str) -> Any:
    """The user whose user name (``USERNAME_FIELD``) is ``name``. Raises :class:`InvalidArgument`."""
    model = get_user_model()
    name = clean_text(name, "user name", required=True)
    user = model.objects.filter(**{model.USERNAME_FIELD: name}).first()
    if user is None:
        raise InvalidArgument(f"there is no user named {name!r}")
    return user


def _principal(user: Any, group: Any) -> dict:
    """``{"user": ...}`` or ``{"group": ...}`` from a user or group object, or a user or group name."""
    if (user is None) == (group is None):
        raise InvalidArgument("give either user= or group=, not both and not neither")
    if user is not None:
        if isinstance(user, str):
            user = user_named(user)
        elif getattr(user, "pk", None) is None or not getattr(user, "is_authenticated", False):
            raise InvalidArgument(f"user {user!r} is not a saved user")
        return {"user": user}
    if isinstance(group, str):
        name = clean_text(group, "group name", required=True)
        group = Group.objects.filter(name=name).first()
        if group is None:
            raise InvalidArgument(f"there is no group named {name!r}")
    elif not isinstance(group, Group) or group.pk is None:
        raise InvalidArgument(f"group {group!r} is not a saved group")
    return {"group": group}


def grant(path: str, *, user: Any = None, group: Any = None, level: str = Level.READ) -> Grant:
    """Give ``user`` or ``group`` (an object or its name) ``level`` on ``path`` and its subtree;
    an existing grant of the same user or group on the same path gets the new level.

    Returns the grant. Raises :class:`NodeNotFound` when nothing is stored at ``path`` (grants
    go on existing nodes, so they move with them), :class:`InvalidPath`,
    :class:`InvalidArgument` (a bad level, both or neither of user and group, an unknown name).
    """
    path = paths.clean_path(path, allow_root=True)
    level = clean_level(level)
    principal = _principal(user, group)
    with transaction.atomic():
        node = Node.objects.filter(path=path).first()
        if node is None:
            raise NodeNotFound(f"no node at {path!r}; grants go on stored items and folders")
        found, _ = Grant.objects.update_or_create(node=node, **principal, defaults={"level": level})
    return found


def revoke(path: str, *, user: Any = None, group: Any = None) -> bool:
    """Remove the grant of ``user`` or ``group`` on ``path`` itself (grants on ancestors stay).

    Returns whether there was one. Raises :class:`InvalidPath`, :class:`InvalidArgument`.
    """
    path = paths.clean_path(path, allow_root=True)
    principal = _principal(user, group)
    deleted, _ = Grant.objects.filter(node__path=path, **principal).delete()
    return bool(deleted)


def grants(path: str) -> list[Grant]:
    """The grants that apply at ``path``: on the path itself and on its ancestors, root first,
    each with ``inherited`` set (True when it is on an ancestor). One query; ``path`` need not
    exist (the grants an item written there would have). Raises :class:`InvalidPath`."""
    path = paths.clean_path(path, allow_root=True)
    rows = (
        Grant.objects.filter(node__path__in=[*paths.ancestor_paths(path), path])
        .select_related("node", "user", "group")
        .annotate(inherited=Case(When(node__path=path, then=Value(False)), default=Value(True)))
        .order_by("node__depth", F("user_id").asc(nulls_last=True), "group_id", "pk")
    )
    return list(rows)


# --- effective levels ------------------------------------------------------------------------


def _active(user: Any) -> bool:
    return bool(user is not None and user.is_authenticated and user.is_active)


def site_level(user: Any) -> str:
    """The level ``user`` has everywhere, whatever the grants: from being a superuser, the model
    permissions and ``DEFAULT_ACCESS`` (``""``: none)."""
    if not _active(user):
        return ""
    if user.is_superuser:
        return Level.MANAGE
    for permission, level in MODEL_PERMISSIONS:
        if user.has_perm(permission):
            return max(level, default_access(), key=rank)
    return default_access()


def principal_q(user: Any, prefix: str = "") -> Q:
    """Grants to ``user`` or to one of their groups (``prefix`` leads to the grant model)."""
    q = Q(**{f"{prefix}user": user})
    if hasattr(user, "groups"):
        q |= Q(**{f"{prefix}group__in": user.groups.values("pk")})
    return q


def granted_level(user: Any, path: str) -> str:
    """The highest level the grants of ``user`` and their groups give at ``path`` (on it or an
    ancestor), leaving out model permissions and ``DEFAULT_ACCESS``; ``""`` when none. One query."""
    if not _active(user):
        return ""
    path = paths.clean_path(path, allow_root=True)
    levels = (
        Grant.objects.filter(principal_q(user), node__path__in=[*paths.ancestor_paths(path), path])
        .values_list("level", flat=True)
        .distinct()
    )
    return max(levels, key=rank, default="")


def level_at(user: Any, path: str) -> str:
    """The level ``user`` has at ``path`` (``""``: none). Raises :class:`InvalidPath`."""
    site = site_level(user)
    if site == Level.MANAGE:
        return site
    return max(site, granted_level(user, path), key=rank)


def can(user: Any, path: str, level: str = Level.READ) -> bool:
    """Whether ``user`` has at least ``level`` at ``path`` (which need not exist).

    Asks no query for a superuser, none when ``DEFAULT_ACCESS`` covers ``level``, at most
    two for the model permissions (cached on the user object) and one for the grants.
    Raises :class:`InvalidPath`, :class:`InvalidArgument` (a bad level).
    """
    wanted = rank(clean_level(level))
    path = paths.clean_path(path, allow_root=True)
    if not _active(user):
        return False
    return _site_reaches(user, wanted) or rank(granted_level(user, path)) >= wanted


def _site_reaches(user: Any, wanted: int) -> bool:
    """Whether an active ``user`` has the level of rank ``wanted`` everywhere, asking the
    cheapest first: superuser status and ``DEFAULT_ACCESS`` need no query."""
    return user.is_superuser or rank(default_access()) >= wanted or rank(site_level(user)) >= wanted


# --- filtering queries -----------------------------------------------------------------------


def covering_paths(granted: set[str]) -> list[str]:
    """The paths of ``granted`` that no other one covers (``a/b`` is covered by ``a``), sorted."""
    if "" in granted:
        return [""]
    separator = paths.SEPARATOR
    kept = []
    for path in sorted(granted):
        # the ancestors are the path up to each separator (a few slices, no list of them)
        end = path.find(separator)
        while end != -1 and path[:end] not in granted:
            end = path.find(separator, end + 1)
        if end == -1:
            kept.append(path)
    return kept


def readable_paths(user: Any) -> list[str] | None:
    """The paths whose subtrees ``user`` may read, none covering another, sorted; ``None``
    when they may read everything, ``[]`` when nothing.

    The same answer :func:`readable_q` filters with, for filters that are not SQL (the search
    indexes keep each document's ancestor paths, so a search keeps the documents at or below
    these paths). Queries as :func:`readable_q` does: none, two cached ones for the model
    permissions, and one for the grants.
    """
    folders = _readable(user, children=False)
    return None if folders is None else [path for path, _ in folders]


def readable_folders(user: Any) -> list[tuple[str, bool]] | None:
    """:func:`readable_paths` as ``(path, has_children)`` pairs, in the same one query (an
    ``EXISTS`` per grant), for a listing that reads a path's subtree only where there is one."""
    return _readable(user, children=True)


def _readable(user: Any, children: bool) -> list[tuple[str, bool]] | None:
    if not _active(user):
        return []
    if _site_reaches(user, rank(Level.READ)):
        return None
    rows = Grant.objects.filter(principal_q(user))
    if children:
        below = Node.objects.filter(parent=OuterRef("node"))
        granted = dict(rows.annotate(has_children=Exists(below)).values_list("node__path", "has_children"))
    else:
        granted = dict.fromkeys(rows.values_list("node__path", flat=True), False)
    folders = covering_paths(set(granted))
    return None if folders == [""] else [(path, granted[path]) for path in folders]


def readable_q(user: Any, field: str = "path") -> Q:
    """The condition on a path ``field`` (``"path"`` on nodes, ``"node__path"`` on versions)
    that keeps the paths ``user`` may read, for the query's ``filter()``.

    Always a constant number of queries, whatever the number of grants: none when the user
    reads everything (superuser, a model permission, ``DEFAULT_ACCESS = "read"``) or nothing
    (anonymous, inactive); else the model permissions (two queries, cached on the user
    object) and one query that loads the paths of the user's grants (:func:`readable_paths`).
    Up to :data:`MAX_RANGE_TERMS` readable paths become an ``OR`` of path ranges, which the
    path index serves. Beyond that a row would be compared with every range, so the paths are
    grouped by length instead: a row is readable when its first ``n`` characters are one of
    the readable paths of length ``n`` (an ``IN`` list) and end there or at a separator. A
    row then costs one lookup per distinct length, however many grants there are.
    """
    return paths_q(readable_paths(user), field)


def paths_q(folders: list[str] | None, field: str = "path") -> Q:
    """The condition of :func:`readable_q` from a list of :func:`readable_paths` (``None``: every
    path, ``[]``: none), for a caller that has the list already. Asks no query."""
    if folders is None:
        return Q()
    if not folders:
        return NOTHING
    if len(folders) <= MAX_RANGE_TERMS:
        q = Q()
        for folder in folders:
            q |= paths.subtree_q(field, folder)
        return q
    by_length: dict[int, list[str]] = {}
    for folder in folders:
        by_length.setdefault(len(folder), []).append(folder)
    q = Q()
    for length, group in sorted(by_length.items()):
        at_a_boundary = Exact(Length(field), length) | Exact(
            Substr(field, length + 1, 1), Value(paths.SEPARATOR)
        )
        q |= Q(In(Substr(field, 1, length), group)) & Q(at_a_boundary)
    return q

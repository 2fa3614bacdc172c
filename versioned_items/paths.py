"""Path rules: validation, the ancestors of a path, and prefix ranges.

A path is a ``/``-separated string of non-empty segments, without a leading or trailing
``/``: ``docs/guide/intro.txt``. One leading ``/`` is accepted and dropped, so ``/docs`` and
``docs`` are the same node. The root node has the empty path ``""``.

Paths compare in code point order on every database (see :class:`versioned_items.models.CodePointCharField`),
which is what makes a prefix a contiguous range ``[prefix, next_prefix(prefix))`` served by the
path index.
"""

from django.db.models import Q

from .exceptions import InvalidPath
from .validation import control_character, describe

SEPARATOR = "/"
#: The character after the separator: every path of the subtree of ``p`` sorts below ``p + AFTER_SEPARATOR``.
AFTER_SEPARATOR = chr(ord(SEPARATOR) + 1)
#: Longest path accepted, in UTF-8 bytes (the same limit as S3 keys; fits a B-tree index entry).
MAX_PATH_BYTES = 1024


def clean_path(path: str, *, allow_root: bool = False) -> str:
    """Return the canonical form of ``path``.

    Raises :class:`InvalidPath` naming the problem when the path is not a string, is empty
    (unless ``allow_root``), is longer than :data:`MAX_PATH_BYTES`, contains a control
    character, or has an empty, ``.`` or ``..`` segment.
    """
    if not isinstance(path, str):
        raise InvalidPath(f"path must be a string, not {type(path).__name__}: {path!r}")
    if path.startswith(SEPARATOR):
        path = path[1:]
    if not path:
        if allow_root:
            return ""
        raise InvalidPath("path is empty; give a path such as 'docs/readme.txt'")
    char = control_character(path)
    if char is not None:
        raise InvalidPath(
            f"path {path!r} contains the control character {describe(char)}; "
            "paths may contain any printable character"
        )
    if len(path.encode("utf-8")) > MAX_PATH_BYTES:
        raise InvalidPath(
            f"path {path[:40]!r}... is {len(path.encode('utf-8'))} bytes long; "
            f"the limit is {MAX_PATH_BYTES} bytes (UTF-8)"
        )
    for segment in path.split(SEPARATOR):
        if segment in ("", ".", ".."):
            raise InvalidPath(
                f"path {path!r} has an empty, '.' or '..' segment ({segment!r}); "
                "segments are separated by single '/' and there is no leading or trailing '/'"
            )
    return path


def clean_prefix(prefix: str) -> str:
    """Return ``prefix`` checked like a path, but it may be empty or end with ``/``.

    Raises :class:`InvalidPath`.
    """
    if not isinstance(prefix, str):
        raise InvalidPath(f"prefix must be a string, not {type(prefix).__name__}: {prefix!r}")
    if prefix.startswith(SEPARATOR):
        prefix = prefix[1:]
    body = prefix[:-1] if prefix.endswith(SEPARATOR) else prefix
    if body:
        clean_path(body)
    elif prefix:
        raise InvalidPath(f"prefix {prefix!r} is only a separator")
    return prefix


def parent_path(path: str) -> str | None:
    """The parent's path (``""`` for a top-level path), or None for the root."""
    if path == "":
        return None
    head, _, _ = path.rpartition(SEPARATOR)
    return head


def ancestor_paths(path: str) -> list[str]:
    """The paths of all ancestors, root first, without ``path`` itself."""
    if path == "":
        return []
    parts = path.split(SEPARATOR)
    return [""] + [SEPARATOR.join(parts[:i]) for i in range(1, len(parts))]


def depth(path: str) -> int:
    """Number of segments: 0 for the root, 1 for ``docs``, 2 for ``docs/a``."""
    return 0 if path == "" else path.count(SEPARATOR) + 1


def name(path: str) -> str:
    """The last segment."""
    return path.rpartition(SEPARATOR)[2]


def subtree_prefix(path: str) -> str:
    """The prefix shared by all descendants of ``path`` (``""`` for the root)."""
    return path + SEPARATOR if path else ""


def next_prefix(prefix: str) -> str | None:
    """The smallest string greater than every string that starts with ``prefix``.

    None when there is no such bound (empty prefix). Surrogate code points are skipped,
    since no database stores them.
    """
    while prefix:
        last = ord(prefix[-1])
        if last < 0x10FFFF:
            following = last + 1
            if 0xD800 <= following <= 0xDFFF:
                following = 0xE000
            return prefix[:-1] + chr(following)
        prefix = prefix[:-1]
    return None


def prefix_q(field: str, prefix: str) -> Q:
    """The ``Q`` of values of ``field`` that start with ``prefix``, as one range
    ``[prefix, next_prefix(prefix))`` that a path index serves (everything for ``""``)."""
    q = Q(**{f"{field}__gte": prefix}) if prefix else Q()
    upper = next_prefix(prefix)
    return q & Q(**{f"{field}__lt": upper}) if upper is not None else q


def subtree_q(field: str, path: str, *, include_self: bool = True) -> Q:
    """The ``Q`` of the node at ``path`` (if ``include_self``) and its descendants, by ``field``."""
    prefix = subtree_prefix(path)
    if not prefix:
        return Q() if include_self else ~Q(**{field: ""})
    q = prefix_q(field, prefix)
    return q | Q(**{field: path}) if include_self else q

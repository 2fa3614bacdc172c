"""The one vocabulary of input rules. Every layer (the API, the forms of the admin and the site,
the search app, the commands) checks what it is given with these functions, so that one rule
has one definition and one message.

Each ``clean_*`` function returns the cleaned value or raises an
:class:`~versioned_items.exceptions.InvalidInput` subclass whose message names the bad value in
the caller's terms. Forms turn that message into a field error (``versioned_items.forms``),
commands into ``CommandError``.

Control characters
------------------
A *control character* is a code point of Unicode category ``Cc`` (C0 and C1 controls, DEL) or
``Cs`` (a lone surrogate, which cannot be stored as UTF-8): :func:`control_character`. The
other members of category C are allowed, since real names and texts carry them: format
characters (``Cf``: the zero-width joiner inside emoji, right-to-left marks), private-use and
unassigned code points. Where a rule says otherwise it passes ``allowed``: attribute filters
allow a tab, attribute values (multi-line text) allow tab, newline and carriage return.

This module imports no model, so that :mod:`versioned_items.paths` and
:mod:`versioned_items.models` can use it.
"""

import unicodedata
from datetime import UTC, datetime
from typing import Any

from django.utils import timezone

from .exceptions import InvalidArgument, InvalidInput

#: The Unicode categories of a control character (see the module's docstring).
CONTROL_CATEGORIES = frozenset({"Cc", "Cs"})
#: Longest user name (the length of ``Version.muser``).
MAX_USER_LENGTH = 150
#: Longest attribute key and domain, and content type.
MAX_NAME_LENGTH = 255
#: Largest page of a listing.
MAX_LIMIT = 10_000
#: Characters that multi-line text (attribute values) may contain although they are controls.
LINE_BREAKS_AND_TABS = "\t\n\r"
#: Longest change comment of a version, in characters: an edit summary or a commit message,
#: not a document (``Version.comment`` is a text column; this keeps every history row short).
MAX_COMMENT_LENGTH = 2000


def control_character(text: str, allowed: str = "") -> str | None:
    """The first control character of ``text`` that is not in ``allowed``, or None."""
    for char in text:
        if char not in allowed and unicodedata.category(char) in CONTROL_CATEGORIES:
            return char
    return None


#: Names of the control characters people meet most.
CONTROL_NAMES = {0x00: "NUL", 0x09: "TAB", 0x0A: "LF", 0x0D: "CR", 0x1B: "ESC", 0x7F: "DEL"}


def describe(char: str) -> str:
    """A code point as people look it up: ``U+0007``, ``U+0000 (NUL)``, ``U+D800 (a lone surrogate)``."""
    code = ord(char)
    name = CONTROL_NAMES.get(code) or ("a lone surrogate" if 0xD800 <= code <= 0xDFFF else "")
    return f"U+{code:04X} ({name})" if name else f"U+{code:04X}"


def clean_text(
    value: Any,
    what: str,
    *,
    max_length: int | None = None,
    required: bool = False,
    allowed: str = "",
    error: type[InvalidInput] = InvalidArgument,
) -> str:
    """A string with no control character (but ``allowed``), at most ``max_length`` characters,
    not empty if ``required``. ``what`` names it in the message ("attribute key")."""
    if not isinstance(value, str):
        raise error(f"{what} must be a string, not {type(value).__name__}: {value!r}")
    if required and not value:
        raise error(f"{what} is empty")
    if max_length is not None and len(value) > max_length:
        raise error(f"{what} {value[:40]!r}... has {len(value):,} characters; the limit is {max_length:,}")
    char = control_character(value, allowed)
    if char is not None:
        raise error(f"{what} {value[:40]!r} contains the control character {describe(char)}")
    return value


def clean_user(user: Any) -> str:
    """Who made a change: a user object (its user name; anonymous is ``""``), a name, or None."""
    if user is None:
        return ""
    if hasattr(user, "get_username"):
        user = user.get_username() if user.is_authenticated else ""
    return clean_text(str(user), "user", max_length=MAX_USER_LENGTH)


def clean_key(key: Any, what: str = "attribute key") -> str:
    return clean_text(key, what, max_length=MAX_NAME_LENGTH, required=True)


def clean_domain(domain: Any) -> str:
    """An attribute domain (a key's namespace; ``""`` is the default one)."""
    return clean_text(domain, "attribute domain", max_length=MAX_NAME_LENGTH)


def clean_value(value: Any) -> str:
    """An attribute value: any text, multi-line included (str() of anything else)."""
    if not isinstance(value, str):
        value = str(value)
    return clean_text(value, "attribute value", allowed=LINE_BREAKS_AND_TABS)


def clean_comment(comment: Any) -> str:
    """A version's change comment: text of at most :data:`MAX_COMMENT_LENGTH` characters,
    several lines allowed (tab, LF, CR), no other control character; None is ``""``.
    Leading and trailing white space is dropped, so a comment of blanks is no comment."""
    if comment is None:
        return ""
    if isinstance(comment, str):
        comment = comment.strip()
    return clean_text(comment, "comment", max_length=MAX_COMMENT_LENGTH, allowed=LINE_BREAKS_AND_TABS)


def clean_content_type(value: Any) -> str:
    """A content type such as ``text/plain; charset=utf-8`` (``""``: unknown)."""
    return clean_text(str(value), "content type", max_length=MAX_NAME_LENGTH)


def clean_marker(marker: Any, what: str = "marker") -> str | None:
    """A paging marker (the last path of the previous page): printable text; empty or None
    means the first page."""
    if marker is None:
        return None
    return clean_text(marker, what) or None


def clean_delimiter(delimiter: Any) -> str | None:
    if delimiter in (None, ""):
        return None
    return clean_text(delimiter, "delimiter", max_length=16)


def clean_filter_text(expression: str, error: type[InvalidInput]) -> str:
    """An attribute filter expression's characters (a tab separates like a space)."""
    return clean_text(expression, "filter", allowed="\t", error=error)


# --- times -----------------------------------------------------------------------------------


def to_utc(moment: datetime | None, name: str) -> datetime | None:
    """An aware ``moment`` in UTC; InvalidArgument when that falls outside the years 1 to 9999
    (``0001-01-01T00:00+14:00`` is before the year 1 in UTC)."""
    if moment is None:
        return None
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise InvalidArgument(f"{name} {moment.isoformat()} is out of range once converted to UTC") from None


def make_aware(moment: datetime) -> datetime:
    """A time as people type it: without an offset it is in the current time zone."""
    return timezone.make_aware(moment) if timezone.is_naive(moment) else moment


def clean_time(value: Any, name: str = "before") -> datetime | None:
    """A point in time up to now: an aware datetime, in the range of the database."""
    if value is None:
        return None
    if not isinstance(value, datetime):
        raise InvalidArgument(f"{name} must be a datetime, not {type(value).__name__}: {value!r}")
    if timezone.is_naive(value):
        raise InvalidArgument(f"{name} {value.isoformat()} has no time zone; give an aware datetime")
    to_utc(value, name)
    if value > timezone.now():
        raise InvalidArgument(f"{name} {value.isoformat()} is in the future")
    return value


# --- numbers and ranges ----------------------------------------------------------------------


def clean_range(value: Any, name: str, kind: type, *, minimum=None) -> tuple:
    """An inclusive pair ``(low, high)`` of ``kind`` values, either None for an open end; times
    must be aware and come back in UTC; ``minimum`` bounds both ends."""
    if value is None:
        return (None, None)
    try:
        low, high = value
    except (TypeError, ValueError):
        raise InvalidArgument(
            f"{name} {value!r} must be a pair (low, high); use None for an open end"
        ) from None
    for end in (low, high):
        if end is None:
            continue
        if not isinstance(end, kind) or isinstance(end, bool):
            raise InvalidArgument(f"{name} {value!r} must hold {kind.__name__} values or None")
        if kind is datetime and timezone.is_naive(end):
            raise InvalidArgument(f"{name} {value!r} needs aware datetimes")
        if minimum is not None and end < minimum:
            raise InvalidArgument(f"{name} {value!r}: the bounds are at least {minimum} (or None)")
    if kind is datetime:
        low, high = to_utc(low, name), to_utc(high, name)
    if low is not None and high is not None and high < low:
        raise InvalidArgument(f"{name} {value!r} ends before it starts: low is greater than high")
    return (low, high)


def clean_size_range(size_range: Any) -> tuple[int | None, int | None]:
    return clean_range(size_range, "size_range", int, minimum=0)


def clean_limit(limit: Any) -> int:
    if isinstance(limit, bool) or not isinstance(limit, int) or not 0 <= limit <= MAX_LIMIT:
        raise InvalidArgument(f"limit {limit!r} must be a whole number from 0 to {MAX_LIMIT}")
    return limit


def clean_serial(serial: Any) -> int:
    """A version serial, or a Version (its serial)."""
    if hasattr(serial, "serial") and not isinstance(serial, int | str):
        serial = serial.serial
    if isinstance(serial, bool) or not isinstance(serial, int) or not 0 < serial < 2**63:
        raise InvalidArgument(f"serial {serial!r} must be a positive integer below 2**63")
    return serial


# --- choices of the models -------------------------------------------------------------------


def clean_cluster(cluster: Any, name: str = "cluster"):
    """A :class:`~versioned_items.models.Cluster` (or its value)."""
    from .models import Cluster

    try:
        return Cluster(cluster)
    except ValueError:
        choices = ", ".join(f"{c.value} ({c.label})" for c in Cluster)
        raise InvalidArgument(f"{name} {cluster!r} is not one of {choices}") from None


def clean_versioning(policy: Any) -> str:
    """A versioning policy: ``"auto"``, ``"none"`` or ``""`` (inherit)."""
    from .models import Versioning

    if policy not in Versioning.values:
        raise InvalidArgument(f"versioning {policy!r} is not one of {Versioning.values}")
    return policy


def clean_level(level: Any, what: str = "level") -> str:
    """A grant's level: ``"read"``, ``"write"`` or ``"manage"``. Raises :class:`InvalidArgument`."""
    from .models import Grant

    if level not in Grant.Level.values:
        choices = ", ".join(map(repr, Grant.Level.values))
        raise InvalidArgument(f"{what} {level!r} is not one of {choices}")
    return str(level)

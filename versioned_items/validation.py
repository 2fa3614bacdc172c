"""Argument checks shared by the API: each returns the cleaned value or raises an
:class:`~versioned_items.exceptions.InvalidInput` subclass whose message names the bad value."""

from datetime import UTC, datetime
from typing import Any

from django.utils import timezone

from .exceptions import InvalidArgument
from .models import Cluster, Version

MAX_LIMIT = 10_000
MAX_USER_LENGTH = Version._meta.get_field("muser").max_length


def clean_user(user: Any) -> str:
    if user is None:
        return ""
    if hasattr(user, "get_username"):
        user = user.get_username() if user.is_authenticated else ""
    user = str(user)
    if len(user) > MAX_USER_LENGTH or any(ord(c) < 32 for c in user):
        raise InvalidArgument(
            f"user {user[:40]!r} must be at most {MAX_USER_LENGTH} printable characters"
        )
    return user


def clean_time(value: datetime | None, name: str = "before") -> datetime | None:
    """Check a point in time: aware, and not in the future."""
    if value is None:
        return None
    if not isinstance(value, datetime):
        raise InvalidArgument(f"{name} must be a datetime, not {type(value).__name__}: {value!r}")
    if timezone.is_naive(value):
        raise InvalidArgument(f"{name} {value.isoformat()} has no time zone; give an aware datetime")
    try:
        value.astimezone(UTC)  # e.g. 0001-01-01T00:00+14:00 is before the year 1 in UTC
    except OverflowError:
        raise InvalidArgument(f"{name} {value.isoformat()} is out of range once converted to UTC") from None
    if value > timezone.now():
        raise InvalidArgument(f"{name} {value.isoformat()} is in the future")
    return value


def clean_cluster(cluster: Any, name: str = "cluster") -> Cluster:
    try:
        return Cluster(cluster)
    except ValueError:
        choices = ", ".join(f"{c.value} ({c.label})" for c in Cluster)
        raise InvalidArgument(f"{name} {cluster!r} is not one of {choices}") from None


def clean_serial(serial: Any) -> int:
    if isinstance(serial, Version):
        return serial.serial
    if isinstance(serial, bool) or not isinstance(serial, int) or not 0 < serial < 2**63:
        raise InvalidArgument(f"serial {serial!r} must be a positive integer below 2**63")
    return serial


def clean_key(key: Any, what: str = "attribute key") -> str:
    if not isinstance(key, str) or not key or len(key) > 255 or any(ord(c) < 32 for c in key):
        raise InvalidArgument(f"{what} {key!r} must be 1 to 255 printable characters")
    return key


def clean_value(value: Any) -> str:
    if not isinstance(value, str):
        value = str(value)
    if "\x00" in value:
        raise InvalidArgument(f"attribute value {value[:40]!r} contains a NUL character")
    return value


def clean_limit(limit) -> int:
    if isinstance(limit, bool) or not isinstance(limit, int) or not 0 <= limit <= MAX_LIMIT:
        raise InvalidArgument(f"limit {limit!r} must be a whole number from 0 to {MAX_LIMIT}")
    return limit


def clean_size_range(size_range) -> tuple[int | None, int | None]:
    if size_range is None:
        return None, None
    try:
        low, high = size_range
    except (TypeError, ValueError):
        raise InvalidArgument(f"size_range {size_range!r} must be a pair (min, max)") from None
    for bound in (low, high):
        if bound is not None and (isinstance(bound, bool) or not isinstance(bound, int) or bound < 0):
            raise InvalidArgument(f"size_range {size_range!r}: bounds are whole numbers >= 0 or None")
    if low is not None and high is not None and low > high:
        raise InvalidArgument(f"size_range {size_range!r}: min is greater than max")
    return low, high


def clean_delimiter(delimiter) -> str | None:
    if delimiter in (None, ""):
        return None
    if not isinstance(delimiter, str) or len(delimiter) > 16 or any(ord(c) < 32 for c in delimiter):
        raise InvalidArgument(f"delimiter {delimiter!r} must be 1 to 16 printable characters")
    return delimiter

"""What the admin and the site both show: a diff of two versions, a version's content as a
download, the notice for content gone from the storage, and query strings for paging links.

Each is written once here; ``versioned_items.admin`` and ``versioned_items.site`` render them in
their own templates.
"""

from django.http import FileResponse
from django.utils.translation import gettext as _

from .diffs import Diff, diff_versions
from .exceptions import ContentMissing
from .models import Version


class PageError(Exception):
    """What a page shows instead of its content: a message in the user's terms and an HTTP status."""

    def __init__(self, message: str, status: int):
        super().__init__(message)
        self.message, self.status = message, status


def content_missing_message() -> str:
    """What a page says when a version's content file is gone from the storage."""
    return _(
        "The content of this version is missing from the storage. An administrator can list "
        "the versions affected with the vi_check command."
    )


def content_response(version: Version) -> FileResponse:
    """The content of a version as a download; never shown inline, since it may be active HTML.

    Raises :class:`PageError` (404) when the version has no content or its file is missing."""
    if version.is_delete_marker:
        raise PageError(_("Version #%(serial)s has no content.") % {"serial": version.serial}, 404)
    try:
        stream = version.open()
    except ContentMissing:
        raise PageError(content_missing_message(), 404) from None
    response = FileResponse(
        stream,
        as_attachment=True,
        filename=version.node.name or "content",
        content_type=version.content_type or "application/octet-stream",
    )
    response["X-Content-Type-Options"] = "nosniff"
    return response


def compare(old: int, new: int) -> Diff:
    """The diff of two versions given by serial (a valid ``CompareForm``'s values).

    Raises :class:`PageError`: 404 for a serial that names no version or content that is
    missing; the diff itself says when the versions are too large to compare."""
    found = Version.objects.select_related("node").in_bulk([old, new])
    for serial in (old, new):
        if serial not in found:
            raise PageError(_("There is no version #%(serial)s.") % {"serial": serial}, 404)
    try:
        return diff_versions(found[old], found[new])
    except ContentMissing:
        raise PageError(content_missing_message(), 404) from None


def query_string(request, **changes) -> str:
    """The current query string with some parameters replaced (None removes one)."""
    params = request.GET.copy()
    for key, value in changes.items():
        params.pop(key, None)
        if value is not None:
            params[key] = value
    return params.urlencode()


def page_links(request, page: int, has_next: bool) -> dict:
    """``previous_url`` and ``next_url`` of a numbered page (None at either end)."""
    return {
        "previous_url": f"?{query_string(request, page=str(page - 1))}" if page > 1 else None,
        "next_url": f"?{query_string(request, page=str(page + 1))}" if has_next else None,
    }

"""The site's pages (included with ``path("", include("versioned_items.site.urls"))``): browse
a folder, read an item and its history, compare two versions, download content, and restore a
version. The search app adds its search page (:mod:`versioned_items.extensions`).

Every page needs a logged-in user, and shows only what :mod:`versioned_items.grants` lets
them read: a path or version they may not read is a 404, as if it did not exist; an action on
a readable item that they may not do is a 403. A view parses its input with :mod:`versioned_items.site.forms`,
calls the library, and renders: input that cannot be used is shown on the page with HTTP 400,
a path or version that does not exist with 404.
"""

from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import F, Window
from django.db.models.functions import RowNumber
from django.http import HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from .. import api, grants, pages, paths, permissions, validation
from ..conf import app_settings
from ..diffs import read_text
from ..exceptions import ContentMissing, InvalidInput, NotFound, VersionedItemsError
from ..forms import CompareForm, first_error, format_time
from ..models import Cluster, Node, Statistics, Version
from ..pages import query_string
from . import forms

#: Bytes of an item's text shown on its page.
PREVIEW_BYTES = 256 * 1024
#: Versions per page of an item's history.
HISTORY_PAGE_SIZE = 50
#: Versions listed under each item when browse shows versions; the rest are on the item's page.
VERSIONS_PER_ITEM = 5


def error_page(request, message: str, *, status: int = 400):
    """A friendly page for input that cannot be used (400), a missing object (404) or a
    missing permission (403)."""
    return render(request, "versioned_items/error.html", {"message": message}, status=status)


def item_url(path: str) -> str:
    return reverse("versioned_items:item", args=[path])


def browse_url(prefix: str) -> str:
    return reverse("versioned_items:browse", args=[prefix]) if prefix else reverse("versioned_items:browse")


def crumbs(path: str) -> list[tuple[str, str]]:
    """(name, folder prefix) for each folder above ``path`` (a prefix or an item path)."""
    parts = path.split(paths.SEPARATOR)[:-1]
    return [(name, paths.SEPARATOR.join(parts[: i + 1]) + paths.SEPARATOR) for i, name in enumerate(parts)]


@login_required
def home(request):
    return HttpResponseRedirect(reverse("versioned_items:browse"))


@login_required
def browse(request, prefix: str = ""):
    """A folder: the latest versions below a prefix, S3 style, paged by marker."""
    form = forms.BrowseForm({**request.GET.dict(), "prefix": prefix})
    context = {"form": form, "prefix": prefix, "crumbs": crumbs(prefix)}
    if not form.is_valid():
        return render(request, "versioned_items/browse.html", context, status=400)
    try:
        listing = api.list_latest(**form.listing_arguments(), properties=True, user=request.user)
    except NotFound:
        listing = api.ListResult()  # nothing stored yet
    except InvalidInput as error:
        form.add_error(None, str(error))
        return render(request, "versioned_items/browse.html", context, status=400)
    try:
        trail = page_trail(request)
    except InvalidInput as error:
        form.add_error(None, str(error))
        return render(request, "versioned_items/browse.html", context, status=400)
    folder = prefix[: prefix.rfind(paths.SEPARATOR) + 1]
    keep = query_string(request, marker=None, trail=None)
    rows = listing_rows(listing, prefix, keep=keep, before=request.GET.get("before", ""))
    if not form.cleaned_data["before"]:  # statistics are of now, not of an earlier time
        add_folder_statistics(rows, request.user)
    if form.cleaned_data["versions"]:
        add_versions(rows, VERSIONS_PER_ITEM)
    sort = form.cleaned_data["sort"] or "name"
    rows = sorted_rows(rows, sort)
    level = grants.level_at(request.user, folder.rstrip(paths.SEPARATOR))
    marker = form.cleaned_data["marker"]
    context.update(
        listing=listing,
        rows=rows,
        counts={
            "folders": len(listing.prefixes),
            "items": len(listing.objects),
        },
        sort=sort,
        sort_urls={
            key: f"?{query_string(request, sort=toggled(sort, key))}" for key in ("name", "size", "mtime")
        },
        next_url=trail_url(request, listing.next_marker, [*trail, marker or ""])
        if listing.next_marker
        else None,
        previous_url=trail_url(request, trail[-1] or None, trail[:-1]) if trail else None,
        first_url=f"?{query_string(request, marker=None, trail=None)}" if marker else None,
        versions_url=f"?{query_string(request, versions=None if form.cleaned_data['versions'] else 'on')}",
        folder=folder.rstrip(paths.SEPARATOR),
        comment_max=validation.MAX_COMMENT_LENGTH,
        can_write=grants.rank(level) >= grants.rank(grants.Level.WRITE),
    )
    return render(request, "versioned_items/browse.html", context)


#: Markers of the pages before this one kept in a browse link (for "Previous page"); older ones
#: are dropped, and "First page" still leads back.
MAX_TRAIL = 20


def page_trail(request) -> list[str]:
    """The markers of the pages before this one (``trail``; ``""`` for the first page), at most
    MAX_TRAIL. Raises InvalidInput for a marker that is not one."""
    return [validation.clean_marker(m, "trail") or "" for m in request.GET.getlist("trail")][-MAX_TRAIL:]


def trail_url(request, marker: str | None, trail: list[str]) -> str:
    """The browse page at ``marker`` whose earlier pages are ``trail``."""
    params = request.GET.copy()
    params.pop("marker", None)
    if marker:
        params["marker"] = marker
    params.setlist("trail", trail[-MAX_TRAIL:])
    return f"?{params.urlencode()}"


def toggled(current: str, key: str) -> str:
    """The sort a column's header link asks for: ``key``, or ``-key`` when already by ``key``."""
    return f"-{key}" if current == key else key


def sorted_rows(rows: list[dict], sort: str) -> list[dict]:
    """The page's rows, folders first, each group in ``sort`` order (``size``, ``mtime``, with a
    ``-`` for descending; rows without a value last). By name they are in the listing's order
    already; size and time sort this page only (the listing pages by name)."""
    key, reverse = sort.lstrip("-"), sort.startswith("-")
    if key == "name":
        return rows[::-1] if reverse else rows
    ordered = []
    for kind in ("folder", "item"):
        group = [row for row in rows if row["kind"] == kind]
        known = [row for row in group if row.get(key) is not None]
        known.sort(key=lambda row: row[key], reverse=reverse)
        ordered += known + [row for row in group if row.get(key) is None]
    return ordered


def add_folder_statistics(rows: list[dict], user) -> None:
    """Give each folder row the statistics of its node (``children``: the items directly in it;
    ``size`` and the last change, ``mtime``, of everything below), when ``user`` may read the
    whole folder; a folder shown because something readable lies deeper keeps its totals to
    itself. One query, plus the user's grants (:func:`versioned_items.grants.readable_paths`)."""
    folders = {row["path"]: row for row in rows if row["kind"] == "folder"}
    if not folders:
        return
    readable = grants.readable_paths(user)
    if readable is not None:
        granted = set(readable)
        folders = {
            p: row
            for p, row in folders.items()
            if p in granted or not granted.isdisjoint(paths.ancestor_paths(p))
        }
    found = Statistics.objects.filter(node__path__in=list(folders), cluster=Cluster.NORMAL)
    for path, population, size, mtime in found.values_list("node__path", "population", "size", "mtime"):
        folders[path].update(children=population, size=size, mtime=mtime)


def add_versions(rows: list[dict], per_item: int) -> None:
    """Give each item row its newest ``per_item`` versions (``versions``) and whether it has
    more (``more_versions``): one query for the page, whatever the items' histories."""
    node_ids = [row["version"].node_id for row in rows if row["kind"] == "item" and row["version"]]
    newest = Window(RowNumber(), partition_by=[F("node_id")], order_by=F("serial").desc())
    found: dict[int, list[Version]] = {}
    versions = Version.objects.filter(node_id__in=node_ids).annotate(row=newest).filter(row__lte=per_item + 1)
    for version in versions.order_by("node_id", "-serial"):
        found.setdefault(version.node_id, []).append(version)
    for row in rows:
        if row["kind"] == "item" and row["version"]:
            history = found.get(row["version"].node_id, [])
            row["versions"], row["more_versions"] = history[:per_item], len(history) > per_item


def listing_rows(listing: api.ListResult, prefix: str, *, keep: str, before: str) -> list[dict]:
    """The rows of a folder page: folders first, then items, named relative to the folder.
    Folder links keep the page's options (``keep``), item links its as-of time."""
    folder = prefix[: prefix.rfind(paths.SEPARATOR) + 1]
    as_of = f"?{urlencode({'before': before})}" if before else ""
    keep = f"?{keep}" if keep else ""
    rows = [
        {
            "kind": "folder",
            "name": p[len(folder) :],
            "path": p.rstrip(paths.SEPARATOR),
            "url": browse_url(p) + keep,
        }
        for p in listing.prefixes
    ]
    rows += [
        {
            "kind": "item",
            "name": e.path[len(folder) :],
            "url": item_url(e.path) + as_of,
            "version": e.version,
            "size": e.version and e.version.size,
            "mtime": e.version and e.version.mtime,
        }
        for e in listing.objects
    ]
    return rows


@login_required
def item(request, path: str):
    """An item: one version's content and attributes, and the item's history."""
    form = forms.ItemForm(request.GET)
    try:
        node = Node.objects.select_related("current").filter(path=paths.clean_path(path)).first()
    except InvalidInput as error:
        return error_page(request, str(error))
    if node is None or not grants.can(request.user, node.path):  # unreadable: as if missing
        return error_page(request, _("Nothing is stored at %(path)r.") % {"path": path}, status=404)
    if node.current_id is None:
        return HttpResponseRedirect(browse_url(paths.subtree_prefix(node.path)))
    if not form.is_valid():
        return render(
            request,
            "versioned_items/item.html",
            {"form": form, "node": node, "crumbs": crumbs(node.path)},
            status=400,
        )
    version, notice = shown_version(node, form.cleaned_data)
    if version is None and form.cleaned_data["version"]:
        return error_page(request, notice, status=404)
    history = Version.objects.filter(node=node).order_by("-serial")
    if form.cleaned_data["older"]:
        history = history.filter(serial__lt=form.cleaned_data["older"])
    history = list(history[: HISTORY_PAGE_SIZE + 1])
    shown = version is not None and not version.is_delete_marker
    try:
        text = read_text(version, PREVIEW_BYTES) if shown else None
    except ContentMissing:
        text, missing = None, pages.content_missing_message()  # the version and its history still show
    else:
        missing = ""
    context = {
        "form": form,
        "node": node,
        "crumbs": crumbs(node.path),
        "version": version,
        "notice": notice,
        "text": text,
        "content_missing": missing,
        "attributes": list(version.attributes.order_by("domain", "key")) if version else [],
        # each row with the version before it (the next row), for its diff link
        "history": list(zip(history[:HISTORY_PAGE_SIZE], history[1:] + [None], strict=False)),
        "older_url": (
            f"?{query_string(request, older=history[HISTORY_PAGE_SIZE - 1].serial)}"
            if len(history) > HISTORY_PAGE_SIZE
            else None
        ),
        "can_restore": permissions.can_restore(request.user, node.path),
        **write_flags(request.user, node, version, text),
    }
    return render(request, "versioned_items/item.html", context)


def write_flags(user, node: Node, version: Version | None, text) -> dict:
    """Which write links an item page shows (:mod:`versioned_items.site.writes` checks again)."""
    level = grants.level_at(user, node.path)
    can_write = grants.rank(level) >= grants.rank(grants.Level.WRITE)
    live = node.current.cluster == Cluster.NORMAL
    current = version is not None and version.serial == node.current_id
    return {
        "can_write": can_write,
        "can_manage": level == grants.Level.MANAGE,
        "is_live": live,
        # the preview read the text already; the edit page checks it again in full
        "editable": can_write
        and live
        and current
        and text is not None
        and not text.truncated
        and version.size <= app_settings.EDIT_MAX_BYTES,
    }


def shown_version(node: Node, data: dict) -> tuple[Version | None, str]:
    """The version an item page shows (asked by serial, as of a time, or the current one),
    and a notice to show with it."""
    if data["version"]:
        version = Version.objects.filter(node=node, serial=data["version"]).first()
        return version, "" if version else _("%(path)s has no version #%(serial)s.") % {
            "path": node.path,
            "serial": data["version"],
        }
    if data["before"]:
        version = api.lookup(node.path, before=data["before"])
        when = format_time(data["before"])
        return version, _("As of %(time)s.") % {"time": when} if version else _(
            "%(path)s did not exist as of %(time)s."
        ) % {"path": node.path, "time": when}
    if node.current.is_delete_marker:
        return node.current, _("This item is deleted. Its history is below.")
    return node.current, ""


@login_required
def diff(request):
    """The line-by-line difference between two versions."""
    form = CompareForm(request.GET)
    if not form.is_valid():
        return error_page(request, first_error(form))
    for serial in (form.cleaned_data["old"], form.cleaned_data["new"]):
        if not _readable_version(request.user, serial):
            return error_page(request, _("There is no version #%(serial)s.") % {"serial": serial}, status=404)
    try:
        diff = pages.compare(form.cleaned_data["old"], form.cleaned_data["new"])
    except pages.PageError as error:
        return error_page(request, error.message, status=error.status)
    return render(request, "versioned_items/diff.html", {"diff": diff, "crumbs": crumbs(diff.new.node.path)})


def _readable_version(user, serial: int) -> bool:
    """Whether version ``serial`` exists and ``user`` may read it (a missing one and an
    unreadable one look the same, so a page never tells that a hidden path exists)."""
    path = Version.objects.filter(serial=serial).values_list("node__path", flat=True).first()
    return path is not None and grants.can(user, path)


@login_required
def content(request, serial: int):
    """A version's content, as a download."""
    version = Version.objects.select_related("node").filter(serial=serial).first()
    if version is None or not grants.can(request.user, version.node.path):
        return error_page(request, _("There is no version #%(serial)s.") % {"serial": serial}, status=404)
    try:
        return pages.content_response(version)
    except pages.PageError as error:
        return error_page(request, error.message, status=error.status)


@login_required
@require_http_methods(["GET", "POST"])
def restore(request, serial: int):
    """Restore an earlier version: a confirmation page, then :func:`versioned_items.api.restore`."""
    version = Version.objects.select_related("node").filter(serial=serial).first()
    if version is None or not grants.can(request.user, version.node.path):
        return error_page(request, _("There is no version #%(serial)s.") % {"serial": serial}, status=404)
    if not permissions.can_restore(request.user, version.node.path):
        return error_page(request, _("You may not restore versions."), status=403)
    if version.is_delete_marker:
        return error_page(
            request,
            _("Version #%(serial)s is a delete marker; pick an earlier version.") % {"serial": serial},
        )
    if request.method == "POST":
        try:
            restored = api.restore(serial, user=request.user)
        except VersionedItemsError as error:
            return error_page(request, str(error))
        messages.success(
            request,
            _("Version #%(old)s is current again, as version #%(new)s.")
            % {"old": serial, "new": restored.serial},
        )
        return HttpResponseRedirect(item_url(version.node.path))
    return render(
        request, "versioned_items/restore.html", {"version": version, "crumbs": crumbs(version.node.path)}
    )

"""The site's pages (included with ``path("", include("versioned_items.urls"))``): browse a
folder, read an item and its history, compare two versions, download content, restore a
version, and search.

Every page needs a logged-in user. A view parses its input with :mod:`versioned_items.forms`,
calls the library, and renders: input that cannot be used is shown on the page with HTTP 400,
a path or version that does not exist with 404.
"""

from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from . import api, forms, paths, permissions
from .diffs import diff_versions, read_text
from .exceptions import ContentMissing, IndexUnavailable, InvalidInput, NotFound, VersionedItemsError
from .models import Node, Version

#: Bytes of an item's text shown on its page.
PREVIEW_BYTES = 256 * 1024
#: Versions per page of an item's history.
HISTORY_PAGE_SIZE = 50
#: Hits per page of search results.
SEARCH_PAGE_SIZE = 20


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


def query_string(request, **changes) -> str:
    """The current query string with some parameters replaced (None removes one)."""
    params = request.GET.copy()
    for key, value in changes.items():
        params.pop(key, None)
        if value is not None:
            params[key] = value
    return params.urlencode()


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
        listing = api.list_latest(**form.listing_arguments(), properties=True)
    except NotFound:
        listing = api.ListResult()  # nothing stored yet
    except InvalidInput as error:
        form.add_error(None, str(error))
        return render(request, "versioned_items/browse.html", context, status=400)
    context.update(
        listing=listing,
        rows=listing_rows(listing, prefix, keep=query_string(request, marker=None),
                          before=request.GET.get("before", "")),
        next_url=f"?{query_string(request, marker=listing.next_marker)}" if listing.next_marker else None,
        first_url=f"?{query_string(request, marker=None)}" if form.cleaned_data["marker"] else None,
    )
    return render(request, "versioned_items/browse.html", context)


def listing_rows(listing: api.ListResult, prefix: str, *, keep: str, before: str) -> list[dict]:
    """The rows of a folder page: folders first, then items, named relative to the folder.
    Folder links keep the page's options (``keep``), item links its as-of time."""
    folder = prefix[: prefix.rfind(paths.SEPARATOR) + 1]
    as_of = f"?{urlencode({'before': before})}" if before else ""
    keep = f"?{keep}" if keep else ""
    rows = [{"kind": "folder", "name": p[len(folder):], "url": browse_url(p) + keep} for p in listing.prefixes]
    rows += [{"kind": "item", "name": e.path[len(folder):], "url": item_url(e.path) + as_of, "version": e.version}
             for e in listing.objects]
    return rows


@login_required
def item(request, path: str):
    """An item: one version's content and attributes, and the item's history."""
    form = forms.ItemForm(request.GET)
    try:
        node = Node.objects.select_related("current").filter(path=paths.clean_path(path)).first()
    except InvalidInput as error:
        return error_page(request, str(error))
    if node is None:
        return error_page(request, _("Nothing is stored at %(path)r.") % {"path": path}, status=404)
    if node.current_id is None:
        return HttpResponseRedirect(browse_url(paths.subtree_prefix(node.path)))
    if not form.is_valid():
        return render(request, "versioned_items/item.html", {"form": form, "node": node, "crumbs": crumbs(node.path)},
                      status=400)
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
        text, missing = None, content_missing_message()  # the version and its history still show
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
        "history": list(zip(history[:HISTORY_PAGE_SIZE], history[1:] + [None])),
        "older_url": (f"?{query_string(request, older=history[HISTORY_PAGE_SIZE - 1].serial)}"
                      if len(history) > HISTORY_PAGE_SIZE else None),
        "can_restore": permissions.can_restore(request.user),
    }
    return render(request, "versioned_items/item.html", context)


def shown_version(node: Node, data: dict) -> tuple[Version | None, str]:
    """The version an item page shows (asked by serial, as of a time, or the current one),
    and a notice to show with it."""
    if data["version"]:
        version = Version.objects.filter(node=node, serial=data["version"]).first()
        return version, "" if version else _("%(path)s has no version #%(serial)s.") % {
            "path": node.path, "serial": data["version"]}
    if data["before"]:
        version = api.lookup(node.path, before=data["before"])
        when = forms.format_time(data["before"])
        return version, _("As of %(time)s.") % {"time": when} if version else _(
            "%(path)s did not exist as of %(time)s.") % {"path": node.path, "time": when}
    if node.current.is_delete_marker:
        return node.current, _("This item is deleted. Its history is below.")
    return node.current, ""


@login_required
def diff(request):
    """The line-by-line difference between two versions."""
    form = forms.CompareForm(request.GET)
    if not form.is_valid():
        return error_page(request, forms.first_error(form))
    old, new = form.cleaned_data["old"], form.cleaned_data["new"]
    found = Version.objects.select_related("node").in_bulk([old, new])
    for serial in (old, new):
        if serial not in found:
            return error_page(request, _("There is no version #%(serial)s.") % {"serial": serial}, status=404)
    try:
        context = {"diff": diff_versions(found[old], found[new]), "crumbs": crumbs(found[new].node.path)}
    except ContentMissing:
        return error_page(request, content_missing_message(), status=404)
    return render(request, "versioned_items/diff.html", context)


@login_required
def content(request, serial: int):
    """A version's content, as a download."""
    version = Version.objects.select_related("node").filter(serial=serial).first()
    if version is None or version.is_delete_marker:
        return error_page(request, _("Version #%(serial)s has no content.") % {"serial": serial}, status=404)
    try:
        return content_response(version)
    except ContentMissing:
        return error_page(request, content_missing_message(), status=404)


def content_missing_message() -> str:
    """What a page says when a version's content file is gone from the storage. Shared with
    the admin."""
    return _("The content of this version is missing from the storage. An administrator can list "
             "the versions affected with the vi_check command.")


def content_response(version: Version) -> FileResponse:
    """The content of a version as a download; never shown inline, since it may be active
    HTML. Shared with the admin."""
    response = FileResponse(version.open(), as_attachment=True, filename=version.node.name or "content",
                            content_type=version.content_type or "application/octet-stream")
    response["X-Content-Type-Options"] = "nosniff"
    return response


@login_required
@require_http_methods(["GET", "POST"])
def restore(request, serial: int):
    """Restore an earlier version: a confirmation page, then :func:`versioned_items.api.restore`."""
    version = Version.objects.select_related("node").filter(serial=serial).first()
    if version is None:
        return error_page(request, _("There is no version #%(serial)s.") % {"serial": serial}, status=404)
    if not permissions.can_restore(request.user):
        return error_page(request, _("You may not restore versions."), status=403)
    if version.is_delete_marker:
        return error_page(request, _("Version #%(serial)s is a delete marker; pick an earlier version.") % {
            "serial": serial})
    if request.method == "POST":
        try:
            restored = api.restore(serial, user=request.user)
        except VersionedItemsError as error:
            return error_page(request, str(error))
        messages.success(request, _("Version #%(old)s is current again, as version #%(new)s.") % {
            "old": serial, "new": restored.serial})
        return HttpResponseRedirect(item_url(version.node.path))
    return render(request, "versioned_items/restore.html", {"version": version, "crumbs": crumbs(version.node.path)})


def run_search(form: forms.SearchForm, *, page_size: int = SEARCH_PAGE_SIZE, **options):
    """Search with a valid form's arguments: ``(page, None)``, or ``(None, status)`` with the
    error added to the form (400 for bad input, 404 for a page past the last one, 503 when the
    index cannot be read). Shared with the admin's search."""
    from .search.api import search

    try:
        results = search(**form.search_arguments(), page_size=page_size, **options)
        if results.total and results.page > results.num_pages:
            # Like Django's paginator (and the admin's lists): a page past the end is a 404. A
            # search that matches nothing keeps its page, to show its spelling suggestion.
            form.add_error(None, _("There is no page %(page)s: the results have %(pages)s page(s).") % {
                "page": results.page, "pages": results.num_pages})
            return None, 404
        return results, None
    except InvalidInput as error:
        form.add_error(None, str(error))
        return None, 400
    except IndexUnavailable as error:
        form.add_error(None, _("Search is not available right now: %(error)s") % {"error": error})
        return None, 503


@login_required
def search(request):
    """Full-text search: latest items or every version, as of a time, below a folder, with
    facets and highlighted snippets."""
    form = forms.SearchForm(request.GET if "q" in request.GET else None)
    context = {"form": form}
    if not form.is_bound:
        return render(request, "versioned_items/search.html", context)
    if not form.is_valid():
        return render(request, "versioned_items/search.html", context, status=400)
    results, status = run_search(form, facets=True)
    if results is None:
        return render(request, "versioned_items/search.html", context, status=status)
    context.update(results=results, facets=facet_links(request, results.facets),
                   **page_links(request, results.page, results.has_next),
                   suggestion_url=suggestion_url(request, results.suggestion))
    return render(request, "versioned_items/search.html", context)


def suggestion_url(request, suggestion: str | None) -> str | None:
    """The same search with the spelling suggestion as its query text, from the first page.
    Shared with the admin's search."""
    return f"?{query_string(request, q=suggestion, page=None)}" if suggestion else None


def facet_links(request, facets: dict) -> list[tuple[str, list[dict]]]:
    """The facets of a search as (title, [{value, count, url, selected}]): a link adds the
    value to the search, or removes it when it is already chosen."""
    groups = [(_("Modified by"), "muser", facets.get("muser", [])),
              (_("Content type"), "content_type", facets.get("content_type", []))]
    groups += [(name, "attr", [(f"{name}={value}", count) for value, count in values])
               for name, values in (facets.get("attributes") or {}).items()]
    result = []
    for title, param, values in groups:
        chosen = request.GET.get(param, "")
        links = [{"value": value.partition("=")[2] if param == "attr" else value, "count": count,
                  "selected": value == chosen,
                  "url": "?" + query_string(request, page=None, **{param: None if value == chosen else value})}
                 for value, count in values if value != ""]
        if links:
            result.append((title, links))
    return result


def page_links(request, page: int, has_next: bool) -> dict:
    return {
        "previous_url": f"?{query_string(request, page=str(page - 1))}" if page > 1 else None,
        "next_url": f"?{query_string(request, page=str(page + 1))}" if has_next else None,
    }

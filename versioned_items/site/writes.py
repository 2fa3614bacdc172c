"""The site's writes, for users whose grants allow them (:mod:`versioned_items.grants`):
upload files into a folder, create a folder, upload a new version of an item, edit a text
item, delete (to the recycle bin), rename or move, copy; the recycle bin of a folder, with
undelete and purge.

``write`` at a path lets a user put, delete, move it (and at the destination too) and copy
into it, and undelete there; ``manage`` lets them purge. A path the user may not read is a
404, as on every site page; a readable one they may not change is a 403.

Every write is a POST with Django's CSRF check, validated by the forms of
:mod:`versioned_items.forms` (the admin's too), and runs through :mod:`versioned_items.api`
inside one :func:`~versioned_items.api.batch`: all or nothing. Delete, move and purge ask on
a page of their own first. A form that does not validate, or a write the library refuses,
shows its message on the page with HTTP 400, and nothing is written.

The views that take uploads, :func:`upload` and :func:`new_version`, are decorated with
:func:`versioned_items.uploads.limited`: files stream to temporary files and stop at
``UPLOAD_MAX_BYTES``.
"""

import functools

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_http_methods, require_POST

from .. import api, grants, pages, paths, uploads
from ..exceptions import (
    ConcurrentUpdate,
    ContentError,
    ContentMissing,
    InvalidInput,
    NodeExists,
    NodeNotEmpty,
    NotFound,
    VersionedItemsError,
)
from ..forms import (
    CommentForm,
    DestinationForm,
    EditTextForm,
    NewFolderForm,
    NewVersionForm,
    UploadFilesForm,
    editable_text,
    existing_targets,
    first_error,
)
from ..models import Cluster, Node, Version
from . import forms
from .views import browse_url, crumbs, error_page, item_url

Level = grants.Level
#: Deleted items per page of the recycle bin.
BIN_PAGE_SIZE = 50
#: Most items one delete or copy of a folder covers; a larger folder is done in parts.
MAX_ITEMS = 500


class Refused(Exception):
    """A write page cannot be shown: the response to send instead (a 400, 403 or 404 page)."""

    def __init__(self, response):
        super().__init__()
        self.response = response


def refusals(view):
    """Turn :class:`Refused` raised by a write view into its response."""

    @functools.wraps(view)
    def wrapped(request, *args, **kwargs):
        try:
            return view(request, *args, **kwargs)
        except Refused as refused:
            return refused.response

    return wrapped


# --- who may write where ---------------------------------------------------------------------


def clean(request, path: str, *, allow_root: bool = False) -> str:
    """``path`` from the URL in canonical form; :class:`Refused` (400) when it cannot be one."""
    try:
        return paths.clean_path(path.strip(paths.SEPARATOR), allow_root=allow_root)
    except InvalidInput as error:
        raise Refused(error_page(request, str(error))) from None


def require(request, path: str, level: str) -> None:
    """Go on only if ``request.user`` has ``level`` at ``path``: else :class:`Refused` with a
    404 when they may not even read it (as if missing), a 403 when they may read it."""
    have = grants.level_at(request.user, path)
    if grants.rank(have) >= grants.rank(level):
        return
    if not have:
        raise Refused(error_page(request, missing_message(path), status=404))
    raise Refused(error_page(request, _("You may not change %(path)s.") % {"path": path or "/"}, status=403))


def missing_message(path: str) -> str:
    return _("Nothing is stored at %(path)r.") % {"path": path}


def page_node(request, path: str, level: str, *, allow_root: bool = False) -> Node:
    """The node at ``path`` (with its current version) that ``request.user`` may change at
    ``level``; :class:`Refused` (400, 403, 404) otherwise."""
    path = clean(request, path, allow_root=allow_root)
    require(request, path, level)
    node = Node.objects.select_related("current").filter(path=path).first()
    if node is None:
        raise Refused(error_page(request, missing_message(path), status=404))
    return node


def is_deleted(node: Node) -> bool:
    """Whether ``node`` is in the recycle bin (its current version is a delete marker)."""
    return node.current is not None and node.current.is_delete_marker


def may_write_to(request, form, path: str) -> bool:
    """Whether the user may write at a destination ``path``; else an error on ``form``, whose
    page then answers 403."""
    if grants.can(request.user, path, Level.WRITE):
        return True
    form.add_error(None, _("You may not write at %(path)s.") % {"path": path or "/"})
    form.forbidden = True
    return False


# --- running a write -------------------------------------------------------------------------


def user_message(error: VersionedItemsError) -> str:
    """What a person is told when the library refuses a write."""
    if isinstance(error, NodeExists):
        detail = _("that path is taken (%(error)s); pick another name") % {"error": error}
    elif isinstance(error, NodeNotEmpty):
        detail = _("it still holds items (%(error)s)") % {"error": error}
    elif isinstance(error, InvalidInput):
        detail = _("the path or value cannot be used (%(error)s)") % {"error": error}
    elif isinstance(error, NotFound):
        detail = _("it is not there any more (%(error)s); reload the page") % {"error": error}
    elif isinstance(error, ConcurrentUpdate):
        detail = _("someone changed the same items at the same moment; try again")
    elif isinstance(error, ContentMissing):
        detail = pages.content_missing_message()
    elif isinstance(error, ContentError):
        detail = _("the storage failed (%(error)s); try again later") % {"error": error}
    else:
        detail = str(error)
    return _("Nothing was changed: %(detail)s.") % {"detail": detail}


def write(form, operation) -> str | None:
    """Run ``operation()`` (API writes) in one batch; return its success message, or None with
    the library's error, in the user's terms, added to ``form``."""
    try:
        with api.batch():
            return operation()
    except VersionedItemsError as error:
        form.add_error(None, user_message(error))
        return None


def done(request, message: str, url: str):
    messages.success(request, message)
    return HttpResponseRedirect(url)


def form_page(request, template: str, context: dict, *forms):
    """A write page; HTTP 400 when one of its ``forms`` was posted and has errors, 403 when
    the error is a destination the user may not write at."""
    if any(getattr(f, "forbidden", False) for f in forms):
        status = 403
    else:
        status = 400 if any(f.is_bound and f.errors for f in forms) else 200
    return render(request, f"versioned_items/{template}", context, status=status)


def page_url(node_path: str, is_folder: bool) -> str:
    return browse_url(paths.subtree_prefix(node_path)) if is_folder else item_url(node_path)


# --- upload files into a folder, new folder --------------------------------------------------


def add_page(request, folder: str, upload=None, new_folder=None):
    """The page of a folder's "Add": upload files, or create a folder."""
    upload = upload or UploadFilesForm(initial={"folder": folder})
    new_folder = new_folder or NewFolderForm(initial={"path": paths.subtree_prefix(folder)})
    context = {
        "folder": folder,
        "crumbs": crumbs(paths.subtree_prefix(folder)),
        "upload_form": upload,
        "folder_form": new_folder,
        "cancel_url": browse_url(paths.subtree_prefix(folder)),
    }
    return form_page(request, "add.html", context, upload, new_folder)


def bound_to_folder(request, folder: str):
    """The POST data with the folder of the URL (a posted ``folder`` is ignored)."""
    data = request.POST.copy()
    data["folder"] = folder
    return data


@uploads.limited
@login_required
@require_http_methods(["GET", "POST"])
@refusals
def upload(request, folder: str = ""):
    """Upload one or more files into ``folder`` (``write`` there), each a new version of
    ``folder/name``, with one change comment. Takes uploads."""
    folder = clean(request, folder, allow_root=True)
    require(request, folder, Level.WRITE)
    if request.method != "POST":
        return add_page(request, folder)
    form = UploadFilesForm(bound_to_folder(request, folder), request.FILES)
    if form.is_valid():
        message = write(form, lambda: upload_files(request.user, form.cleaned_data))
        if message:
            return done(request, message, browse_url(paths.subtree_prefix(folder)))
    return add_page(request, folder, upload=form)


def upload_files(user, data: dict) -> str:
    """Put each of a valid :class:`UploadFilesForm`'s files. Raises :class:`NodeExists` when
    the folder is an item or a file would take a folder's name."""
    existing_targets(data)
    for target, uploaded in data["targets"]:
        api.put(target, uploaded, user=user, comment=data["comment"])
    n = len(data["targets"])
    return ngettext("Uploaded %(n)d file.", "Uploaded %(n)d files.", n) % {"n": n}


@login_required
@require_http_methods(["GET", "POST"])
@refusals
def new_folder(request, folder: str = ""):
    """Create a folder (``write`` at its path), by default in ``folder``."""
    folder = clean(request, folder, allow_root=True)
    require(request, folder, Level.WRITE)
    if request.method != "POST":
        return add_page(request, folder)
    form = NewFolderForm(request.POST)
    if form.is_valid() and may_write_to(request, form, form.cleaned_data["path"]):
        target = form.cleaned_data["path"]
        message = write(form, lambda: create_folder(target))
        if message:
            return done(request, message, browse_url(paths.subtree_prefix(target)))
    return add_page(request, folder, new_folder=form)


def create_folder(path: str) -> str:
    api.create_node(path)
    return _("Created the folder %(path)s.") % {"path": path}


# --- an item: new version, edit text ---------------------------------------------------------


def item_context(node: Node, **context) -> dict:
    return {"node": node, "crumbs": crumbs(node.path), "cancel_url": item_url(node.path), **context}


@uploads.limited
@login_required
@require_http_methods(["GET", "POST"])
@refusals
def new_version(request, path: str):
    """Upload a new version of an item (``write``), with a change comment. Takes uploads."""
    node = page_node(request, path, Level.WRITE)
    if not node.is_item:
        return error_page(request, _("%(path)s has no current version.") % {"path": node.path})
    form = NewVersionForm(request.POST, request.FILES) if request.method == "POST" else NewVersionForm()
    if form.is_bound and form.is_valid():
        data = form.cleaned_data

        def operation():
            version = api.put(node.path, data["file"], user=request.user, comment=data["comment"])
            return _("Uploaded version #%(serial)s of %(path)s (%(size)s bytes).") % {
                "serial": version.serial,
                "path": node.path,
                "size": version.size,
            }

        message = write(form, operation)
        if message:
            return done(request, message, item_url(node.path))
    return form_page(request, "new_version.html", item_context(node, form=form), form)


@login_required
@require_http_methods(["GET", "POST"])
@refusals
def edit(request, path: str):
    """Edit a text item (``write``) in a textarea; the new version keeps its content type."""
    node = page_node(request, path, Level.WRITE)
    original, problem = editable_text(node.current)
    if problem:
        return error_page(request, problem)
    if request.method != "POST":
        form = EditTextForm(initial={"text": original, "base": node.current_id})
    else:
        form = EditTextForm(request.POST, current=node.current, original=original)
        if form.is_valid():
            data = form.cleaned_data

            def operation():
                version = api.put(
                    node.path,
                    data["text"],
                    user=request.user,
                    content_type=node.current.content_type,
                    comment=data["comment"],
                )
                return _("Saved %(path)s as version #%(serial)s.") % {
                    "path": node.path,
                    "serial": version.serial,
                }

            message = write(form, operation)
            if message:
                return done(request, message, item_url(node.path))
    context = item_context(node, form=form, content_type=node.current.content_type)
    return form_page(request, "edit.html", context, form)


# --- delete, move, copy ----------------------------------------------------------------------


def live_items(node: Node) -> list[Node]:
    """The live items a delete or copy of ``node`` covers (itself, or those below a folder), at most
    :data:`MAX_ITEMS` + 1."""
    if node.is_item:
        return [node]
    below = Node.objects.subtree(node.path, include_self=False).live().select_related("current")
    return list(below.order_by("path")[: MAX_ITEMS + 1])


def covered_items(request, node: Node, nothing: str) -> list[Node]:
    """:func:`live_items`, or :class:`Refused` (400) when there are none (``nothing`` says so)
    or more than :data:`MAX_ITEMS`."""
    items = live_items(node)
    if not items:
        raise Refused(error_page(request, nothing % {"path": node.path}))
    if len(items) > MAX_ITEMS:
        message = _("%(path)s holds more than %(n)d items; take its folders one by one.")
        raise Refused(error_page(request, message % {"path": node.path, "n": MAX_ITEMS}))
    return items


@login_required
@require_http_methods(["GET", "POST"])
@refusals
def delete(request, path: str):
    """Delete an item, or the items below a folder (``write``), to the recycle bin: a
    confirmation page, then a delete marker for each."""
    node = page_node(request, path, Level.WRITE)
    items = covered_items(request, node, _("%(path)s holds no item to delete."))
    back = page_url(node.path, not node.is_item)
    form = CommentForm(request.POST if request.method == "POST" else None)
    if form.is_bound and form.is_valid():
        comment = form.cleaned_data["comment"]

        def operation():
            for item in items:
                api.delete(item.path, user=request.user, comment=comment)
            n = len(items)
            return ngettext(
                "Deleted %(n)d item; the recycle bin can bring it back.",
                "Deleted %(n)d items; the recycle bin can bring them back.",
                n,
            ) % {"n": n}

        message = write(form, operation)
        if message:
            parent = paths.parent_path(node.path) or ""
            return done(request, message, browse_url(paths.subtree_prefix(parent)))
    context = item_context(node, form=form, items=items, cancel_url=back)
    return form_page(request, "delete.html", context, form)


@login_required
@require_http_methods(["GET", "POST"])
@refusals
def move(request, path: str):
    """Rename or move a node with its subtree (``write`` at both paths): the new path, a
    confirmation page, then :func:`versioned_items.api.move`."""
    node = page_node(request, path, Level.WRITE)
    is_folder = not node.is_item and not is_deleted(node)
    bound = request.method == "POST"
    form = DestinationForm(request.POST if bound else None, initial={"destination": node.path})
    context = item_context(node, form=form, is_folder=is_folder, cancel_url=page_url(node.path, is_folder))
    if not bound or not form.is_valid() or not may_write_to(request, form, form.cleaned_data["destination"]):
        return form_page(request, "move.html", context, form)
    target = form.cleaned_data["destination"]
    if "confirm" not in request.POST:
        below = Node.objects.subtree(node.path, include_self=False).count()
        return form_page(request, "move.html", {**context, "confirm": True, "target": target, "below": below})
    message = write(form, lambda: move_node(node.path, target))
    if message:
        return done(request, message, page_url(target, is_folder))
    return form_page(request, "move.html", context, form)


def move_node(source: str, target: str) -> str:
    api.move(source, target)
    return _("Moved %(old)s to %(new)s.") % {"old": source, "new": target}


@login_required
@require_http_methods(["GET", "POST"])
@refusals
def copy(request, path: str):
    """Copy an item's current version, or those of the items below a folder, to a path
    (``write`` there); an item already at a new path gets the copy as a new version."""
    node = page_node(request, path, Level.READ)
    items = covered_items(request, node, _("%(path)s holds no item to copy."))
    bound = request.method == "POST"
    form = DestinationForm(request.POST if bound else None, initial={"destination": node.path})
    if bound and form.is_valid() and may_write_to(request, form, form.cleaned_data["destination"]):
        data = form.cleaned_data
        copies = [(item, data["destination"] + item.path[len(node.path) :]) for item in items]
        into = None if node.is_item else data["destination"]
        message = write(form, lambda: copy_items(request.user, copies, data["comment"], into=into))
        if message:
            return done(request, message, page_url(data["destination"], not node.is_item))
    context = item_context(node, form=form, items=items, is_folder=not node.is_item)
    return form_page(request, "copy.html", context, form)


def copy_items(user, copies: list[tuple[Node, str]], comment: str, *, into: str | None = None) -> str:
    """Copy each item's current version to its new path (below the folder ``into`` for a
    folder's copy). Raises :class:`NodeExists` when a new path is a folder, or ``into`` an item."""
    if into is not None and Node.objects.filter(path=into, current__cluster=Cluster.NORMAL).exists():
        raise NodeExists(f"{into!r} is an item, not a folder")
    targets = [target for _item, target in copies]
    taken = Node.objects.filter(path__in=targets, current__isnull=True).values_list("path", flat=True).first()
    if taken is not None:
        raise NodeExists(f"{taken!r} is a folder; give the full path of the copy")
    for item, target in copies:
        version = api.copy(item.current_id, target, user=user, comment=comment)
    if len(copies) == 1:
        return _("Copied %(path)s to %(target)s as version #%(serial)s.") % {
            "path": copies[0][0].path,
            "target": copies[0][1],
            "serial": version.serial,
        }
    n = len(copies)
    return ngettext("Copied %(n)d item.", "Copied %(n)d items.", n) % {"n": n}


# --- the recycle bin -------------------------------------------------------------------------


@login_required
@refusals
def recycle_bin(request, folder: str = ""):
    """The deleted items below ``folder`` (those the user may read), in path order, paged by
    marker, with undelete for writers and purge for managers."""
    folder = clean(request, folder, allow_root=True)
    level = grants.level_at(request.user, folder)
    form = forms.BinForm(request.GET)
    if not form.is_valid():
        return error_page(request, first_error(form))
    marker = form.cleaned_data["marker"]
    try:
        listing = api.list_deleted(folder, marker=marker, limit=BIN_PAGE_SIZE, user=request.user)
    except NotFound:
        listing = api.ListResult()
    prefix = paths.subtree_prefix(folder)
    context = {
        "folder": folder,
        "crumbs": crumbs(prefix),
        "rows": [(entry.path[len(prefix) :], entry) for entry in listing.objects],
        "next_url": f"?{pages.query_string(request, marker=listing.next_marker)}"
        if listing.truncated
        else None,
        "first_url": f"?{pages.query_string(request, marker=None)}" if marker else None,
        # A grant below the folder may allow more on some rows; their buttons then show on
        # the item's own page. One level for the page keeps its queries constant.
        "can_write": grants.rank(level) >= grants.rank(Level.WRITE),
        "can_manage": level == Level.MANAGE,
        "browse_url": browse_url(prefix),
    }
    return render(request, "versioned_items/bin.html", context)


def bin_url(path: str) -> str:
    parent = paths.parent_path(path) or ""
    return reverse("versioned_items:bin", args=[parent]) if parent else reverse("versioned_items:bin")


@login_required
@require_POST
@refusals
def undelete(request, path: str):
    """Bring a deleted item back (``write``): its newest version that is not a delete marker
    becomes current again."""
    node = page_node(request, path, Level.WRITE)
    form = CommentForm(request.POST)
    if not is_deleted(node):
        form.add_error(None, _("%(path)s is not deleted.") % {"path": node.path})
    elif form.is_valid():
        comment = form.cleaned_data["comment"]

        def operation():
            version = api.undelete(node.path, user=request.user, comment=comment)
            return _("%(path)s is back, as version #%(serial)s.") % {
                "path": node.path,
                "serial": version.serial,
            }

        message = write(form, operation)
        if message:
            return done(request, message, item_url(node.path))
    return error_page(request, " ".join(e for errors in form.errors.values() for e in errors))


@login_required
@require_http_methods(["GET", "POST"])
@refusals
def purge(request, path: str):
    """Remove a deleted item for good (``manage``): a confirmation page, then all its
    versions go, and the node too when nothing lies below it."""
    node = page_node(request, path, Level.MANAGE)
    if not is_deleted(node):
        return error_page(
            request, _("Only deleted items can be purged; %(path)s is not.") % {"path": node.path}
        )
    versions = Version.objects.filter(node=node).count()
    form = CommentForm(request.POST if request.method == "POST" else None)
    if form.is_bound and form.is_valid():
        message = write(form, lambda: purge_item(node.path))
        if message:
            return done(request, message, bin_url(node.path))
    context = item_context(node, form=form, versions=versions, cancel_url=bin_url(node.path))
    return form_page(request, "purge.html", context, form)


def purge_item(path: str) -> str:
    removed = api.purge(path, clusters=[Cluster.HISTORY, Cluster.DELETED])
    if not Node.objects.filter(parent__path=path).exists():
        api.remove_node(path)
    n = len(removed)
    return ngettext(
        "Purged %(path)s: %(n)d version is gone for good.",
        "Purged %(path)s: %(n)d versions are gone for good.",
        n,
    ) % {"path": path, "n": n}

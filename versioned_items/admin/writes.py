"""The node admin's writes: "Add" (upload files into a folder, or create a folder), and on a
node's page or as list actions: upload a new version, edit a text item, delete, rename or
move, copy, set the versioning policy.

Every write is a POST with Django's CSRF check, goes through :mod:`versioned_items.api` inside
one :func:`~versioned_items.api.batch` (all or nothing) with its :mod:`audit` entries, and
is confirmed on a page of its own where it destroys or rewrites (delete, move, copy). A form
that does not validate, or a write the library refuses, shows the error on the same page
with HTTP 400, and nothing is written.

Who may write is decided in one place, :meth:`NodeWrites.can_write`: Django's model
permission on nodes for the kind of write (``add_node``, ``change_node``, ``delete_node``; see
docs/admin-and-site.md) to reach the page, and the ``write`` level of
:mod:`versioned_items.grants` at each path written (docs/permissions.md).
"""

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect, QueryDict
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.decorators import method_decorator
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from .. import api, grants, paths, permissions, uploads
from ..exceptions import VersionedItemsError
from ..forms import (
    CommentForm,
    DestinationForm,
    EditTextForm,
    FolderDestinationForm,
    NewFolderForm,
    NewVersionForm,
    UploadFilesForm,
    editable_text,
    existing_targets,
    joined,
)
from ..models import Node, Versioning
from . import audit
from .base import MAX_SELECTED, node_url, object_pk, outermost, per_request
from .forms import VersioningForm


class NodeWrites:
    """The write pages and actions of :class:`~versioned_items.admin.NodeAdmin`."""

    #: The model permission (of this app) each kind of write needs.
    WRITE_PERMISSIONS = {"add": "add_node", "change": "change_node", "delete": "delete_node"}
    write_form_template = "admin/versioned_items/node/form.html"

    # --- who may write -----------------------------------------------------------------------

    def can_write(self, request, kind: str, path: str | None = None) -> bool:
        """Whether ``request.user`` may make writes of ``kind`` ("add": new items, folders and
        copies; "change": new versions, edits, moves, the versioning policy; "delete": delete
        markers) at ``path``: the model permission of ``kind`` and the ``write`` level at
        ``path``. With ``path=None`` (a page or an action that writes at paths it learns
        later, each checked then) only the model permission. The one place the admin decides it."""
        permission = f"{self.opts.app_label}.{self.WRITE_PERMISSIONS[kind]}"
        if not permissions.allowed(request.user, permission):
            return False
        if path is None:
            return True
        return per_request(
            request, ("write", path), lambda: grants.can(request.user, path, grants.Level.WRITE)
        )

    def has_add_permission(self, request):
        return self.can_write(request, "add")

    def has_change_permission(self, request, obj=None):
        return self.can_write(request, "change", obj.path if obj is not None else None)

    def has_delete_permission(self, request, obj=None):
        return self.can_write(request, "delete", obj.path if obj is not None else None)

    def get_actions(self, request, action_location=None):
        # Django 6.1 passes where the actions are shown; 5.2 has no such parameter.
        where = () if action_location is None else (action_location,)
        actions = super().get_actions(request, *where)
        actions.pop("delete_selected", None)  # Django's would delete rows; ours writes markers
        return actions

    def write_urls(self):
        view = self.admin_site.admin_view
        return [
            path("<vi_id:node_id>/upload/", view(self.upload_view), name="versioned_items_node_upload"),
            path("<vi_id:node_id>/edit/", view(self.edit_view), name="versioned_items_node_edit"),
            path("<vi_id:node_id>/move/", view(self.move_view), name="versioned_items_node_move"),
            path("<vi_id:node_id>/copy/", view(self.copy_view), name="versioned_items_node_copy"),
            path(
                "<vi_id:node_id>/versioning/",
                view(self.versioning_view),
                name="versioned_items_node_versioning",
            ),
        ]

    # --- shared steps ------------------------------------------------------------------------

    def write(self, request, form, operation) -> str | None:
        """Run ``operation()`` (API writes and their audit entries) in one transaction; return
        its success message, or None with the library's error added to ``form``."""
        try:
            with api.batch():
                return operation()
        except VersionedItemsError as error:
            form.add_error(None, _("Nothing was changed: %(error)s") % {"error": error})
            return None

    def done(self, request, message: str, url: str):
        self.message_user(request, message, messages.SUCCESS)
        return HttpResponseRedirect(url)

    def form_page(self, request, title, panels, *, node=None, status=200, **context):
        """A page of one or more forms: ``panels`` are dicts of form, button, name, heading."""
        status = 400 if any(p["form"].is_bound and p["form"].errors for p in panels) else status
        context = self.page_context(
            request,
            title,
            node=node,
            panels=panels,
            cancel_url=node_url(node.pk) if node else reverse("admin:versioned_items_node_changelist"),
            **context,
        )
        return TemplateResponse(request, self.write_form_template, context, status=status)

    def page_node(self, request, node_id, kind: str, *, here: bool = True):
        """The node of a write page (with its current version), or the response that replaces
        the page: 404 when there is none or the user may not read it, 403 without the
        permission for ``kind`` (at the node, or with ``here=False`` only the model permission:
        a copy reads the node and writes elsewhere, checked there)."""
        node = self.get_queryset(request).select_related("current").filter(pk=node_id).first()
        if node is None:
            return None, self.error_response(
                request, _("There is no node with the id %(id)r.") % {"id": node_id}, status=404
            )
        if not self.can_write(request, kind, node.path if here else None):
            raise PermissionDenied
        return node, None

    def live_items(self, request, nodes) -> list[tuple[Node, list[Node]]] | None:
        """For each selected node, the live items it stands for: itself when it is an item,
        else the items below it. None (with a message) past :data:`MAX_SELECTED` in all."""
        plan, total = [], 0
        for node in nodes:
            if node.is_item:
                items = [node]
            else:
                below = Node.objects.subtree(node.path, include_self=False).live()
                items = list(below.select_related("current").order_by("path")[: MAX_SELECTED + 1])
            total += len(items)
            if total > MAX_SELECTED:
                message = _("This covers more than %(n)d items; select fewer.") % {"n": MAX_SELECTED}
                self.message_user(request, message, messages.ERROR)
                return None
            plan.append((node, items))
        return plan

    # --- Add: upload files into a folder, or create a folder ---------------------------------

    def default_folder(self, request) -> str:
        """The folder the Add page starts with: ``?folder=``, else the list's ``under`` filter."""
        if "folder" in request.GET:
            value = request.GET["folder"]
        else:
            value = QueryDict(request.GET.get("_changelist_filters", "")).get("under", "")
        try:
            return paths.clean_path(value.strip().strip("/"), allow_root=True)
        except VersionedItemsError:
            return ""

    @method_decorator(uploads.limited)
    def add_view(self, request, form_url="", extra_context=None):
        if not self.has_add_permission(request):
            raise PermissionDenied
        folder = self.default_folder(request)
        upload = UploadFilesForm(prefix="upload", initial={"folder": folder})
        new_folder = NewFolderForm(prefix="folder", initial={"path": paths.subtree_prefix(folder)})
        if request.method == "POST" and "_upload" in request.POST:
            upload = UploadFilesForm(request.POST, request.FILES, prefix="upload")
            if upload.is_valid():
                message = self.write(request, upload, lambda: self.upload_files(request, upload.cleaned_data))
                if message:
                    return self.done(request, message, self.folder_url(upload.cleaned_data["folder"]))
        elif request.method == "POST" and "_folder" in request.POST:
            new_folder = NewFolderForm(request.POST, prefix="folder")
            if new_folder.is_valid():
                target = new_folder.cleaned_data["path"]
                message = self.write(request, new_folder, lambda: self.create_folder(request, target))
                if message:
                    return self.done(request, message, self.folder_url(target))
        panels = [
            {"form": upload, "name": "_upload", "button": _("Upload"), "heading": _("Upload files")},
            {"form": new_folder, "name": "_folder", "button": _("Create folder"), "heading": _("New folder")},
        ]
        return self.form_page(request, _("Add files or a folder"), panels)

    def folder_url(self, folder: str) -> str:
        node = Node.objects.filter(path=folder).only("pk").first()
        return node_url(node.pk) if node else reverse("admin:versioned_items_node_changelist")

    def upload_files(self, request, data) -> str:
        existing = existing_targets(data)
        for target, upload in data["targets"]:
            if not self.can_write(request, "add", target):
                raise PermissionDenied
            node = existing.get(target)
            version = api.put(target, upload, user=request.user, comment=data["comment"])
            flag = audit.CHANGE if node is not None else audit.ADDITION
            message = _("Uploaded %(path)s as version #%(serial)s (%(size)s bytes).") % {
                "path": target,
                "serial": version.serial,
                "size": version.size,
            }
            audit.log(request, flag, version.node, message, data["comment"])
        n = len(data["targets"])
        return ngettext("Uploaded %(n)d file.", "Uploaded %(n)d files.", n) % {"n": n}

    def create_folder(self, request, target: str) -> str:
        if not self.can_write(request, "add", target):
            raise PermissionDenied
        node = api.create_node(target)
        audit.log(request, audit.ADDITION, node, _("Created the folder %(path)s.") % {"path": target})
        return _("Created the folder %(path)s.") % {"path": target}

    # --- a node's page: new version, text edit, versioning policy ----------------------------

    @method_decorator(uploads.limited)
    def upload_view(self, request, node_id):
        node, refusal = self.page_node(request, node_id, "change")
        if refusal:
            return refusal
        if node.current_id is None:
            return self.error_response(
                request,
                _("%(path)s is a folder; add files to it instead.") % {"path": node},
                back=node_url(node.pk),
            )
        form = NewVersionForm(request.POST, request.FILES) if request.method == "POST" else NewVersionForm()
        if form.is_bound and form.is_valid():
            data = form.cleaned_data

            def operation():
                version = api.put(node.path, data["file"], user=request.user, comment=data["comment"])
                message = _("Uploaded version #%(serial)s of %(path)s (%(size)s bytes).") % {
                    "serial": version.serial,
                    "path": node.path,
                    "size": version.size,
                }
                audit.log(request, audit.CHANGE, node, message, data["comment"])
                return message

            message = self.write(request, form, operation)
            if message:
                return self.done(request, message, node_url(node.pk))
        panel = {"form": form, "name": "_upload", "button": _("Upload")}
        return self.form_page(
            request, _("Upload a new version"), [panel], node=node, policy=self.policy_note(node)
        )

    def policy_note(self, node: Node) -> str:
        """A warning for pages that write a new version where no history is kept."""
        chain = [node, *Node.objects.ancestors_of(node.path).order_by("-depth")]
        policy = next((n.versioning for n in chain if n.versioning), Versioning.AUTO)
        if policy == Versioning.NONE:
            return _("This item keeps no history: the new version replaces the current one for good.")
        return ""

    def edit_view(self, request, node_id):
        node, refusal = self.page_node(request, node_id, "change")
        if refusal:
            return refusal
        original, problem = editable_text(node.current if node.is_item else None)
        if problem:
            return self.error_response(request, problem, back=node_url(node.pk))
        if request.method != "POST":
            form = EditTextForm(initial={"text": original, "base": node.current_id})
        else:
            form = EditTextForm(request.POST, current=node.current, original=original)
            if form.is_valid():
                message = self.save_text(request, node, form)
                if message:
                    return self.done(request, message, node_url(node.pk))
        panel = {"form": form, "name": "_save", "button": _("Save")}
        context = {"policy": self.policy_note(node), "content_type": node.current.content_type}
        return self.form_page(
            request, _("Edit %(name)s") % {"name": node.name}, [panel], node=node, **context
        )

    def save_text(self, request, node: Node, form) -> str | None:
        """Write a valid :class:`EditTextForm`'s text (line ends kept, outdated and unchanged
        edits refused by the form) as a new version with the item's content type."""
        data = form.cleaned_data
        text = data["text"]

        def operation():
            version = api.put(
                node.path,
                text,
                user=request.user,
                content_type=node.current.content_type,
                comment=data["comment"],
            )
            message = _("Edited %(path)s: version #%(serial)s (from #%(base)s).") % {
                "path": node.path,
                "serial": version.serial,
                "base": data["base"],
            }
            audit.log(request, audit.CHANGE, node, message, data["comment"])
            return message

        return self.write(request, form, operation)

    def versioning_view(self, request, node_id):
        node, refusal = self.page_node(request, node_id, "change")
        if refusal:
            return refusal
        form = VersioningForm(
            request.POST if request.method == "POST" else None, initial={"versioning": node.versioning}
        )
        if form.is_bound and form.is_valid():
            policy = form.cleaned_data["versioning"]

            def operation():
                before = node.get_versioning_display()
                api.set_versioning(node.path, policy)
                node.versioning = policy
                message = _("Set the versioning of %(path)s to '%(policy)s' (was '%(before)s').") % {
                    "path": node,
                    "policy": node.get_versioning_display(),
                    "before": before,
                }
                audit.log(request, audit.CHANGE, node, message)
                return message

            message = self.write(request, form, operation)
            if message:
                return self.done(request, message, node_url(node.pk))
        panel = {"form": form, "name": "_save", "button": _("Save")}
        return self.form_page(request, _("Versioning of %(path)s") % {"path": node}, [panel], node=node)

    # --- delete: delete markers, undone by undelete ------------------------------------------

    @admin.action(
        description=gettext_lazy("Delete selected items (undelete stays possible)"), permissions=["delete"]
    )
    def delete_items(self, request, queryset):
        nodes = self.selection(request, queryset.select_related("current"))
        if nodes is None:
            return None
        plan = self.live_items(request, outermost(nodes))
        if plan is None:
            return None
        items = [item for _, found in plan for item in found]
        if not items:
            self.message_user(
                request, _("None of the selected nodes is or holds a live item."), messages.WARNING
            )
            return None
        form = CommentForm(request.POST if self.confirmed(request) else None)
        if form.is_bound and form.is_valid():
            comment = form.cleaned_data["comment"]

            def operation():
                for item in items:
                    if not self.can_write(request, "delete", item.path):
                        raise PermissionDenied
                    marker = api.delete(item.path, user=request.user, comment=comment)
                    message = _("Deleted %(path)s: delete marker #%(serial)s.") % {
                        "path": item.path,
                        "serial": marker.serial,
                    }
                    audit.log(request, audit.DELETION, item, message, comment)
                n = len(items)
                return ngettext(
                    "Deleted %(n)d item; undelete brings it back.",
                    "Deleted %(n)d items; undelete brings them back.",
                    n,
                ) % {"n": n}

            message = self.write(request, form, operation)
            if message:
                self.message_user(request, message, messages.SUCCESS)
                return None
        return self.confirm(
            request,
            nodes,
            title=_("Delete items"),
            items=[(item.path, _("version #%(serial)s") % {"serial": item.current_id}) for item in items],
            question=_(
                "Each of these items gets a delete marker: it leaves listings and search, its "
                "history stays, and undelete brings it back."
            ),
            button=_("Yes, delete"),
            form=form,
            final=True,
            status=400 if form.is_bound else 200,
        )

    def delete_view(self, request, object_id, extra_context=None):
        pk = object_pk(object_id)
        if pk is None:
            return self.error_response(
                request, _("There is no node with the id %(id)r.") % {"id": object_id}, status=404
            )
        return self.object_action(request, pk, self.delete_items, self.has_delete_permission)

    # --- move (rename) and copy --------------------------------------------------------------

    @admin.action(description=gettext_lazy("Move selected to a folder"), permissions=["change"])
    def move_items(self, request, queryset):
        return self.move(request, queryset, FolderDestinationForm, "folder")

    def move_view(self, request, node_id):
        node, refusal = self.page_node(request, node_id, "change")
        if refusal:
            return refusal
        queryset = self.get_queryset(request).filter(pk=node.pk)
        return self.move(request, queryset, DestinationForm, "destination") or HttpResponseRedirect(
            node_url(node.pk)
        )

    def destinations(self, nodes, form) -> list[tuple[Node, str]]:
        """Where each node goes: the form's full path (one node), or into the form's folder."""
        data = form.cleaned_data
        if "destination" in data:
            return [(nodes[0], data["destination"])]
        return [(node, joined(data["folder"], node.name)) for node in nodes]

    def move(self, request, queryset, form_class, field: str):
        nodes = self.selection(request, queryset.select_related("current"))
        if nodes is None:
            return None
        nodes = outermost(nodes)
        if any(node.path == "" for node in nodes):
            self.message_user(request, _("The root cannot be moved."), messages.ERROR)
            return None
        initial = {"destination": nodes[0].path} if field == "destination" else {}
        form = form_class(request.POST if field in request.POST else None, initial=initial)
        if not form.is_bound or not form.is_valid():
            return self.ask(
                request, nodes, form, _("Move or rename"), _("Move these nodes (with everything below):")
            )
        moves = self.destinations(nodes, form)
        comment = form.cleaned_data["comment"]
        if self.confirmed(request):

            def operation():
                for node, target in moves:
                    if not (
                        self.can_write(request, "change", node.path)
                        and self.can_write(request, "change", target)
                    ):
                        raise PermissionDenied
                    moved = api.move(node.path, target)
                    message = _("Moved %(old)s to %(new)s, with everything below it.") % {
                        "old": node.path,
                        "new": target,
                    }
                    audit.log(request, audit.CHANGE, moved, message, comment)
                n = len(moves)
                return ngettext("Moved %(n)d node.", "Moved %(n)d nodes.", n) % {"n": n}

            message = self.write(request, form, operation)
            if message:
                self.message_user(request, message, messages.SUCCESS)
                return HttpResponseRedirect(node_url(nodes[0].pk)) if field == "destination" else None
            return self.ask(
                request, nodes, form, _("Move or rename"), _("Move these nodes (with everything below):")
            )
        return self.confirm(
            request,
            nodes,
            title=_("Move or rename"),
            items=[(node.path, _("becomes %(path)s") % {"path": target}) for node, target in moves],
            question=_("These nodes and everything below them get new paths; links to the old paths break:"),
            button=_("Yes, move"),
            form=form,
            step="confirm",
        )

    def ask(self, request, nodes, form, title, question):
        return self.confirm(
            request,
            nodes,
            title=title,
            form=form,
            items=[(node.path or "/", "") for node in nodes],
            question=question,
            button=_("Show what will change"),
            step="ask",
            status=400 if form.is_bound else 200,
        )

    @admin.action(description=gettext_lazy("Copy selected to a folder"), permissions=["add"])
    def copy_items(self, request, queryset):
        return self.copy(request, queryset, FolderDestinationForm, "folder")

    def copy_view(self, request, node_id):
        node, refusal = self.page_node(request, node_id, "add", here=False)
        if refusal:
            return refusal
        queryset = self.get_queryset(request).filter(pk=node.pk)
        return self.copy(request, queryset, DestinationForm, "destination") or HttpResponseRedirect(
            node_url(node.pk)
        )

    def copy(self, request, queryset, form_class, field: str):
        nodes = self.selection(request, queryset.select_related("current"))
        if nodes is None:
            return None
        nodes = outermost(nodes)
        plan = self.live_items(request, nodes)
        if plan is None:
            return None
        if not any(items for _, items in plan):
            self.message_user(
                request, _("None of the selected nodes is or holds a live item."), messages.WARNING
            )
            return None
        initial = {"destination": nodes[0].path} if field == "destination" else {}
        form = form_class(request.POST if field in request.POST else None, initial=initial)
        title, question = _("Copy"), _("Copy the current versions of these nodes (and of the items below):")
        if not form.is_bound or not form.is_valid():
            return self.ask(request, nodes, form, title, question)
        copies = []
        for (node, target), (_node, items) in zip(self.destinations(nodes, form), plan, strict=True):
            copies += [(item, target + item.path[len(node.path) :]) for item in items]
        comment = form.cleaned_data["comment"]
        if self.confirmed(request):
            message = self.write(request, form, lambda: self.run_copies(request, copies, comment))
            if message:
                self.message_user(request, message, messages.SUCCESS)
                return HttpResponseRedirect(node_url(nodes[0].pk)) if field == "destination" else None
            return self.ask(request, nodes, form, title, question)
        existing = set(
            Node.objects.filter(path__in=[t for _, t in copies], current__isnull=False).values_list(
                "path", flat=True
            )
        )
        items = [
            (
                item.path,
                (
                    _("to %(path)s, a new version of the item there")
                    if target in existing
                    else _("to %(path)s")
                )
                % {"path": target},
            )
            for item, target in copies
        ]
        return self.confirm(
            request,
            nodes,
            title=title,
            items=items,
            question=_(
                "Each item's current version is copied; an item already at the new path gets "
                "it as a new version:"
            ),
            button=_("Yes, copy"),
            form=form,
            step="confirm",
        )

    def run_copies(self, request, copies, comment) -> str:
        for item, target in copies:
            if not self.can_write(request, "add", target):
                raise PermissionDenied
            new = not Node.objects.filter(path=target, current__isnull=False).exists()
            version = api.copy(item.current_id, target, user=request.user, comment=comment)
            message = _("Copied %(path)s #%(source)s to %(target)s as version #%(serial)s.") % {
                "path": item.path,
                "source": item.current_id,
                "target": target,
                "serial": version.serial,
            }
            audit.log(request, audit.ADDITION if new else audit.CHANGE, version.node, message, comment)
        n = len(copies)
        return ngettext("Copied %(n)d item.", "Copied %(n)d items.", n) % {"n": n}

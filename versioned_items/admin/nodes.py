"""The node admin: the tree's list, a node's page (children, statistics, history, grants),
undelete and purge. Optional apps add pages to it through :mod:`versioned_items.extensions`.

The list and the pages show only the nodes the user may read (:mod:`.base`); a node's children,
statistics and versions are below it, so readable with it."""

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import BooleanField, Case, OuterRef, Subquery, Value, When
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.http import urlencode
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from .. import api, extensions, paths
from ..forms import first_error, format_time
from ..models import Cluster, Node, Statistics, Version
from ..templatetags.vi_paths import breakable
from . import audit
from .base import ReadOnlyTreeAdmin, counted, node_url, object_pk, outermost, short_time, site_url
from .filters import ClusterFilter, ContentTypeFilter, SubtreeFilter, UserFilter
from .forms import NodePageForm, PurgeForm
from .grants import NodeGrants
from .writes import NodeWrites

#: Children and versions shown per page on a node's page.
NODE_PAGE_SIZE = 100


@admin.register(Node)
class NodeAdmin(NodeGrants, NodeWrites, ReadOnlyTreeAdmin):
    version_prefix = "current__"
    path_field = "path"
    list_display = ("path_link", "status", "size", "modified", "muser", "content_type")
    list_display_links = None  # path_link is the link
    list_select_related = ("current",)
    list_filter = (
        ClusterFilter,
        ContentTypeFilter,
        UserFilter,
        ("current__mtime", admin.DateFieldListFilter),
        SubtreeFilter,
    )
    sortable_by = ("path_link",)
    actions = ["delete_items", "move_items", "copy_items", "undelete_selected", "purge_selected"]

    @admin.display(description=_("path"), ordering="path")
    def path_link(self, node):
        folder = "/" if node.path and not node.current_id else ""
        return format_html('<a href="{}">{}</a>{}', node_url(node.pk), breakable(node.path or "/"), folder)

    @admin.display(description=_("status"))
    def status(self, node):
        return node.current.get_cluster_display() if node.current else _("folder")

    @admin.display(description=_("size"))
    def size(self, node):
        return node.current.size if node.current else ""

    @admin.display(description=_("modified"))
    def modified(self, node):
        return short_time(node.current.mtime) if node.current else ""

    @admin.display(description=_("by"))
    def muser(self, node):
        return node.current.muser if node.current else ""

    @admin.display(description=_("content type"))
    def content_type(self, node):
        return node.current.content_type if node.current else ""

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("<vi_id:node_id>/undelete/", view(self.undelete_view), name="versioned_items_node_undelete"),
            path("<vi_id:node_id>/purge/", view(self.purge_view), name="versioned_items_node_purge"),
            *self.grant_urls(),
            *self.write_urls(),
            *extensions.node_admin_urlpatterns(self),
        ] + super().get_urls()

    def changelist_view(self, request, extra_context=None):
        under = request.GET.get("under", "").strip().strip("/")
        add_url = reverse("admin:versioned_items_node_add") + (
            f"?{urlencode({'folder': under})}" if under else ""
        )
        extra = {"extension_tools": extensions.list_tools(request), "add_url": add_url}
        return super().changelist_view(request, {**(extra_context or {}), **extra})

    # The node's page: breadcrumbs, children, statistics, current version and history.

    def change_view(self, request, object_id, form_url="", extra_context=None):
        node = self.get_object(request, object_id)
        if node is None:
            return self.error_response(
                request,
                _("There is no node with the id %(id)r.") % {"id": object_id},
                status=404,
                back=reverse("admin:versioned_items_node_changelist"),
            )
        if not self.has_view_or_change_permission(request, node):
            raise PermissionDenied
        form = NodePageForm(request.GET)
        if not form.is_valid():
            return self.error_response(request, first_error(form), back=node_url(node.pk))
        context = self.page_context(
            request, node.path or "/", node=node, **self.node_page(request, node, form)
        )
        return TemplateResponse(request, "admin/versioned_items/node/node.html", context)

    def get_object(self, request, object_id, from_field=None):
        pk = object_pk(object_id)
        return self.get_queryset(request).select_related("current").filter(pk=pk).first() if pk else None

    def ancestors(self, request, node: Node) -> list[Node]:
        """The node's ancestors, root first, each with ``readable``: whether the user may open
        it (the breadcrumbs link only those; a grant on a folder does not reach its parent)."""
        ancestors = Node.objects.ancestors_of(node.path).order_by("depth")
        condition = self.readable_q(request)
        if condition:
            readable = Case(
                When(condition, then=Value(True)), default=Value(False), output_field=BooleanField()
            )
        else:  # the user reads everything
            readable = Value(True, output_field=BooleanField())
        return list(ancestors.annotate(readable=readable))

    def node_page(self, request, node: Node, form) -> dict:
        after, older = form.cleaned_data["after"], form.cleaned_data["older"]
        # The children are one depth inside the node's path range: the (depth, path) index
        # serves them in order, however many there are.
        children = (
            Node.objects.subtree(node.path, include_self=False)
            .filter(depth=node.depth + 1)
            .select_related("current")
            .order_by("path")
        )
        if after:
            children = children.filter(path__gt=after)
        children = list(children[: NODE_PAGE_SIZE + 1])
        versions = Version.objects.filter(node=node).order_by("-serial").prefetch_related("attributes")
        if older:
            versions = versions.filter(serial__lt=older)
        versions = list(versions[: NODE_PAGE_SIZE + 1])
        return {
            "ancestors": self.ancestors(request, node),
            "children": children[:NODE_PAGE_SIZE],
            "children_next": children[NODE_PAGE_SIZE - 1].path if len(children) > NODE_PAGE_SIZE else None,
            "statistics": list(Statistics.objects.filter(node=node).order_by("cluster")),
            "versions": versions[:NODE_PAGE_SIZE],
            "versions_next": versions[NODE_PAGE_SIZE - 1].serial if len(versions) > NODE_PAGE_SIZE else None,
            "paged": bool(after or older),
            "can_restore": self.has_restore_permission(request, node.path),
            "can_undelete": self.has_undelete_permission(request, node.path),
            "can_purge": self.has_purge_permission(request, node.path),
            "can_add": self.can_write(request, "add", node.path),
            "can_copy": self.can_write(request, "add"),  # from here; the destination is checked
            "can_change": self.can_write(request, "change", node.path),
            "can_delete": self.can_write(request, "delete", node.path),
            "is_item": node.is_item,
            "editable": node.is_item and looks_like_text(node.current),
            "site_url": (
                site_url("item", node.path)
                if node.current_id
                else site_url("browse", paths.subtree_prefix(node.path))
            ),
            "extension_tools": extensions.node_tools(request, node),
            **self.grants_context(request, node),
        }

    # Undelete: the newest version that is not a delete marker becomes current again.

    def has_undelete_permission(self, request, path: str | None = None):
        """Undelete writes a new current version: ``manage`` (who may restore) or a writer's
        change (the ``write`` level includes undelete, docs/permissions.md) at ``path``."""
        return self.has_restore_permission(request, path) or self.can_write(request, "change", path)

    @admin.action(description=_("Undelete selected items"), permissions=["undelete"])
    def undelete_selected(self, request, queryset):
        restorable = (
            Version.objects.filter(node=OuterRef("pk"))
            .exclude(cluster=Cluster.DELETED, checksum="")
            .order_by("-serial")
            .values("serial")[:1]
        )
        nodes = self.selection(
            request,
            queryset.filter(current__cluster=Cluster.DELETED)
            .select_related("current")
            .annotate(restorable=Subquery(restorable)),
        )
        if nodes is None:
            return None
        nodes = [node for node in nodes if node.restorable]
        if any(not self.has_undelete_permission(request, node.path) for node in nodes):
            raise PermissionDenied
        if not nodes:
            self.message_user(
                request,
                _("None of the selected items is deleted with a version to restore."),
                messages.WARNING,
            )
            return None
        if self.confirmed(request):
            self.run(
                request,
                lambda: [self.undelete(request, n) for n in nodes],
                counted("Undeleted %(n)d item.", "Undeleted %(n)d items."),
            )
            return None
        items = [
            (node.path, _("version #%(serial)s becomes current again") % {"serial": node.restorable})
            for node in nodes
        ]
        return self.confirm(
            request,
            nodes,
            title=_("Undelete items"),
            items=items,
            button=_("Yes, undelete"),
            question=_(
                "These deleted items come back, each with its newest version that is not a delete marker:"
            ),
        )

    def undelete(self, request, node):
        version = api.undelete(node.path, user=request.user)
        message = _("Undeleted %(path)s: version #%(serial)s is a copy of #%(source)s.") % {
            "path": node.path,
            "serial": version.serial,
            "source": version.source,
        }
        audit.log(request, audit.CHANGE, node, message)
        return version

    def undelete_view(self, request, node_id):
        return self.object_action(
            request,
            node_id,
            self.undelete_selected,
            lambda r, node: self.has_undelete_permission(r, node.path),
        )

    def object_action(self, request, node_id, action, allowed):
        """An action on one node, from its page, if ``allowed(request, node)``; back to the
        page when done. 404 for a node that does not exist or that the user may not read."""
        queryset = self.get_queryset(request).filter(pk=node_id)
        node = queryset.only("pk", "path").first()
        if node is None:
            return self.error_response(
                request, _("There is no node with the id %(id)r.") % {"id": node_id}, status=404
            )
        if not allowed(request, node):
            raise PermissionDenied
        return action(request, queryset) or HttpResponseRedirect(node_url(node_id))

    # Purge: old versions of whole subtrees, written before a date.

    @admin.action(description=_("Purge old history of selected subtrees"), permissions=["purge"])
    def purge_selected(self, request, queryset):
        nodes = self.selection(request, queryset)
        if nodes is None:
            return None
        nodes = outermost(nodes)
        if any(not self.has_purge_permission(request, node.path) for node in nodes):
            raise PermissionDenied
        form = PurgeForm(request.POST if "before" in request.POST else None)
        if not form.is_bound or not form.is_valid():
            return self.confirm(
                request,
                nodes,
                title=_("Purge old history"),
                form=form,
                button=_("Show what will go"),
                items=[(node.path or "/", "") for node in nodes],
                step="ask",
                question=_("Purge versions below these nodes (and of the nodes themselves):"),
                status=400 if form.is_bound else 200,
            )
        arguments = form.purge_arguments()
        if self.confirmed(request):
            self.run(
                request,
                lambda: sum((self.purge(request, n, arguments) for n in nodes), []),
                counted("Purged %(n)d version.", "Purged %(n)d versions."),
            )
            return None
        summaries = [(node, *api.purge_summary(node.path, **arguments)) for node in nodes]
        total = (sum(s[1] for s in summaries), sum(s[2] for s in summaries))
        items = [
            (
                node.path or "/",
                ngettext("%(n)s version, %(size)s bytes", "%(n)s versions, %(size)s bytes", n)
                % {"n": n, "size": size},
            )
            for node, n, size in summaries
        ]
        return self.confirm(
            request,
            nodes,
            title=_("Purge old history"),
            form=form,
            items=items,
            step="confirm",
            button=_("Yes, purge"),
            total=total,
            before=format_time(arguments["before"]),
            question=_("These versions will be deleted for good:"),
        )

    def purge(self, request, node, arguments) -> list[int]:
        removed = api.purge(node.path, **arguments)
        if removed:
            message = ngettext(
                "Purged %(n)d version below %(path)s written before %(before)s: %(serials)s.",
                "Purged %(n)d versions below %(path)s written before %(before)s: %(serials)s.",
                len(removed),
            ) % {
                "n": len(removed),
                "path": node.path or "/",
                "before": format_time(arguments["before"]),
                "serials": audit.serials(removed),
            }
            audit.log(request, audit.CHANGE, node, message)
        return removed

    def purge_view(self, request, node_id):
        return self.object_action(
            request, node_id, self.purge_selected, lambda r, node: self.has_purge_permission(r, node.path)
        )


#: Content types besides text/* that the "Edit text" link is offered for (the edit page
#: itself decides by the content: valid UTF-8 without NUL).
TEXT_TYPES = ("application/json", "application/xml", "application/javascript", "application/x-sh")


def looks_like_text(version) -> bool:
    """Whether a version's content type says text, so its page offers "Edit text" (decided
    without reading the content: the node page's queries stay as they are)."""
    content_type = (version.content_type or "").split(";")[0].strip()
    return content_type.startswith("text/") or content_type in TEXT_TYPES or content_type.endswith("+xml")

"""What the node and version admins share: lists without counts, confirmation pages for
actions, error pages, the operations run all or nothing through :func:`versioned_items.api.batch`,
and the rows a user may read.

Reading follows :mod:`versioned_items.grants`: every queryset of these admins keeps only the
paths the user may read (inside the SQL, so a list's page is full whenever enough readable rows
exist), so a page, a download or a history of a path the user may not read is a 404, as if it
did not exist. Django's ``view`` permissions are still needed to reach the pages at all.
"""

from collections.abc import Callable, Hashable

from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.admin.views.main import ERROR_FLAG
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, reverse
from django.utils.formats import date_format
from django.utils.timezone import localtime
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from .. import api, grants, paths, permissions
from ..exceptions import VersionedItemsError
from ..forms import MAX_ID
from .changelist import CountLimitPaginator, FastChangeList

#: Objects an action handles at once.
MAX_SELECTED = 500


class ReadOnlyTreeAdmin(admin.ModelAdmin):
    """Lists and pages for nodes and versions; changes only through the API's operations."""

    paginator = CountLimitPaginator
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER  # facet counts would count the whole table
    list_per_page = 100
    list_max_show_all = 100

    class Media:
        css = {"all": ["versioned_items/admin.css"]}

    def get_changelist(self, request, **kwargs):
        return FastChangeList

    def changelist_view(self, request, extra_context=None):
        if ERROR_FLAG in request.GET:
            # Django redirects here when a filter value in the address cannot be used.
            return self.error_response(
                request,
                _("Some filter values in the address are not valid."),
                back=reverse(f"admin:{self.opts.app_label}_{self.opts.model_name}_changelist"),
            )
        return super().changelist_view(request, extra_context)

    def has_add_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    # Restore and purge are both the manage level (versioned_items.permissions), so they share
    # one answer per path and request; a node's page asks both, and the grant form's question.

    def has_restore_permission(self, request, path: str | None = None):
        """Whether the user may restore at ``path`` (None: somewhere; the rows are checked later)."""
        return per_request(request, ("manage", path), lambda: permissions.can_restore(request.user, path))

    def has_purge_permission(self, request, path: str | None = None):
        """Whether the user may purge below ``path`` (None: somewhere; the rows are checked later)."""
        return per_request(request, ("manage", path), lambda: permissions.can_purge(request.user, path))

    # --- what the user may read ------------------------------------------------------------

    #: The field of the model that holds the path ("path" on nodes, "node__path" on versions).
    path_field = "path"

    def get_queryset(self, request):
        return super().get_queryset(request).filter(self.readable_q(request))

    def readable_q(self, request):
        """:func:`versioned_items.grants.readable_q` for the user on this model's path field,
        computed once per request (it loads the user's grants), however many querysets ask."""
        field = self.path_field
        return per_request(request, ("readable", field), lambda: grants.readable_q(request.user, field))

    def history_view(self, request, object_id, extra_context=None):
        # Django redirects to the admin's index for an object it cannot find; a path the user
        # may not read must look like one that does not exist, a 404 like the object's page.
        if self.get_object(request, object_id) is None:
            return self.error_response(
                request,
                _("There is no %(name)s with the id %(id)r.")
                % {"name": self.opts.verbose_name, "id": object_id},
                status=404,
            )
        return super().history_view(request, object_id, extra_context)

    def page_context(self, request, title, **context):
        return {**self.admin_site.each_context(request), "opts": self.opts, "title": title, **context}

    def error_response(self, request, message, *, status=400, back=None):
        """A friendly page for input that cannot be used (HTTP 400) or objects that are gone (404)."""
        context = self.page_context(request, _("Cannot show this page"), message=message, back=back)
        return TemplateResponse(request, "admin/versioned_items/error.html", context, status=status)

    def confirm(self, request, queryset, *, title, items, question, button, form=None, status=200, **context):
        """The confirmation page of an action: what will happen, and a button that posts it."""
        context = self.page_context(
            request,
            title,
            items=items,
            question=question,
            button=button,
            form=form,
            action=request.POST.get("action", ""),
            selected=[obj.pk for obj in queryset],
            action_checkbox_name=ACTION_CHECKBOX_NAME,
            cancel_url=self.cancel_url(queryset),
            **context,
        )
        return TemplateResponse(request, "admin/versioned_items/confirm.html", context, status=status)

    def selection(self, request, queryset) -> list | None:
        """The objects an action works on, or None (with a message) when more than
        :data:`MAX_SELECTED` are selected: an action never quietly does only part of the job."""
        objects = list(queryset[: MAX_SELECTED + 1])
        if len(objects) > MAX_SELECTED:
            message = _(
                "Select at most %(n)d objects for this action; narrow the list with the filters, or "
                "purge a whole subtree from its node's page."
            ) % {"n": MAX_SELECTED}
            self.message_user(request, message, messages.ERROR)
            return None
        return objects

    def cancel_url(self, objects) -> str:
        """Where "No, take me back" leads: the node's page for one object, else the list."""
        objects = list(objects)
        if len(objects) == 1:
            return node_url(getattr(objects[0], "node_id", objects[0].pk))
        return reverse(f"admin:{self.opts.app_label}_{self.opts.model_name}_changelist")

    def confirmed(self, request) -> bool:
        return request.method == "POST" and request.POST.get("post") == "yes"

    def run(self, request, operation, success_message) -> bool:
        """Run ``operation()`` (writes through the API, all or nothing) and report the outcome:
        ``success_message(result)``, or the error that stopped it."""
        try:
            with api.batch():
                result = operation()
        except VersionedItemsError as error:
            self.message_user(request, _("Nothing was changed: %(error)s") % {"error": error}, messages.ERROR)
            return False
        self.message_user(request, success_message(result), messages.SUCCESS)
        return True


def per_request(request, key: Hashable, compute: Callable):
    """``compute()``, once per request for ``key``: the admin asks the same permission question
    for each action, link and queryset of a page, and each answer may cost a query."""
    cache = request.__dict__.setdefault("_versioned_items_cache", {})
    if key not in cache:
        cache[key] = compute()
    return cache[key]


def counted(singular: str, plural: str):
    """A success message for :meth:`ReadOnlyTreeAdmin.run` that counts what was done."""
    return lambda done: ngettext(singular, plural, len(done)) % {"n": len(done)}


def object_pk(object_id) -> int | None:
    """The id in an admin URL, or None when it cannot name a row (not a number, or too large)."""
    try:
        pk = int(object_id)
    except (TypeError, ValueError):
        return None
    return pk if 0 < pk <= MAX_ID else None


def short_time(value) -> str:
    """A time in list columns: ``2025-03-01 14:05`` in the current time zone."""
    return date_format(localtime(value), "Y-m-d H:i")


def node_url(node_id) -> str:
    return reverse("admin:versioned_items_node_change", args=[node_id])


def version_url(serial) -> str:
    return reverse("admin:versioned_items_version_change", args=[serial])


def site_url(name: str, *args) -> str | None:
    """The URL of a page of the site (``versioned_items.site.urls``) if the project includes it."""
    try:
        return reverse(f"versioned_items:{name}", args=args)
    except NoReverseMatch:
        return None


def outermost(nodes: list) -> list:
    """The nodes that are not below another of them (a subtree's purge covers its descendants)."""
    chosen: list = []
    for node in sorted(nodes, key=lambda n: n.path):
        if not any(node.path.startswith(paths.subtree_prefix(c.path)) for c in chosen):
            chosen.append(node)
    return chosen

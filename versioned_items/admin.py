"""The admin of versioned_items: browse the tree, read a node's history, compare, restore and
undelete versions, edit attributes, purge old history, search, and maintain the indexes.

Nodes and versions cannot be added, edited or deleted through model forms here: every change
goes through :mod:`versioned_items.api` (and :mod:`versioned_items.search.indexing` for the
indexes), which keeps statistics, content references and the search outbox in step. The views
parse input with :mod:`versioned_items.forms`, call the library, and render.

Lists stay fast on large trees: :class:`CountLimitPaginator` never counts a whole table, and
every column of a list comes from the page's one query.
"""

from functools import cached_property

from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.views.main import ERROR_FLAG, PAGE_VAR, ChangeList
from django.core.exceptions import PermissionDenied
from django.core.paginator import EmptyPage, Page, PageNotAnInteger, Paginator
from django.db.models import OuterRef, Q, Subquery
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, path, reverse
from django.utils.formats import date_format
from django.utils.html import format_html
from django.utils.timezone import localtime
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from . import api, forms, paths, permissions
from .diffs import diff_versions, read_text
from .exceptions import ContentMissing, InvalidInput, VersionedItemsError
from .models import Attribute, Cluster, Node, Statistics, Version
from .urls import IdConverter  # noqa: F401  (registers the vi_id converter)
from .views import content_missing_message, content_response, page_links, run_search, suggestion_url

#: Rows counted at most for a list's total ("1,000+ nodes").
COUNT_LIMIT = 1000
#: Children and versions shown per page on a node's page.
NODE_PAGE_SIZE = 100
#: Bytes of a version's content shown on its page.
PREVIEW_BYTES = 64 * 1024
#: Objects an action handles at once.
MAX_SELECTED = 500
#: Hits per page of the admin's search.
SEARCH_PAGE_SIZE = 50


# --- lists without COUNT(*) ------------------------------------------------------------------


class AtLeast(int):
    """A count that stopped at a limit: prints as ``1000+``."""

    def __str__(self) -> str:
        return f"{int(self)}+"


class PeekedPage(Page):
    """A page that knows whether another follows (it fetched one row more) but not how many."""

    def __init__(self, object_list, number, paginator, more: bool):
        super().__init__(object_list, number, paginator)
        self.more = more

    def has_next(self) -> bool:
        return self.more


class CountLimitPaginator(Paginator):
    """Pages a queryset without counting all of it.

    ``count`` is one bounded ``COUNT`` over a ``LIMIT`` subquery (an :class:`AtLeast` when it
    hit :data:`COUNT_LIMIT`), and a page fetches one row more than it shows to know whether
    another follows, so page numbers past the counted rows still work.
    """

    @cached_property
    def count(self) -> int:
        counted = self.object_list[: COUNT_LIMIT + 1].count()
        return AtLeast(COUNT_LIMIT) if counted > COUNT_LIMIT else counted

    def validate_number(self, number) -> int:
        try:
            number = int(number)
        except (TypeError, ValueError):
            raise PageNotAnInteger(_("That page number is not an integer")) from None
        if number < 1:
            raise EmptyPage(_("That page number is less than 1"))
        return number

    def page(self, number) -> Page:
        number = self.validate_number(number)
        bottom = (number - 1) * self.per_page
        rows = list(self.object_list[bottom : bottom + self.per_page + 1])
        if not rows and number > 1:
            raise EmptyPage(_("That page contains no results"))
        page = PeekedPage(rows[: self.per_page], number, self, more=len(rows) > self.per_page)
        self.current_page = page
        return page


class FastChangeList(ChangeList):
    """A changelist paged by previous/next links (see :class:`CountLimitPaginator`)."""

    def get_results(self, request):
        # A page past the last one is a 404, as on the site's search; Django would redirect to
        # the unfiltered list (?e=1), or show page 1 under any number.
        try:
            super().get_results(request)
        except IncorrectLookupParameters:  # raised by Django only for an invalid page
            raise Http404(_("There is no page %(page)s of this list.") % {"page": self.page_num}) from None
        if self.page_num > 1 and not self.multi_page:
            raise Http404(_("There is no page %(page)s of this list.") % {"page": self.page_num})
        page = getattr(self.paginator, "current_page", None)
        self.capped = isinstance(self.result_count, AtLeast)
        self.counted = int(self.result_count)
        self.previous_url = self.get_query_string({PAGE_VAR: self.page_num - 1}) if self.page_num > 1 else None
        self.next_url = self.get_query_string({PAGE_VAR: self.page_num + 1}) if page and page.has_next() else None
        self.first_index = (self.page_num - 1) * self.list_per_page + 1
        self.last_index = self.first_index + len(self.result_list) - 1


# --- filters ---------------------------------------------------------------------------------
# The same filters serve nodes (on their current version) and versions: ``version_prefix`` and
# ``path_field`` on the ModelAdmin say where the version's fields and the path are.


class ClusterFilter(admin.SimpleListFilter):
    title = _("status")
    parameter_name = "cluster"

    def lookups(self, request, model_admin):
        self.prefix = model_admin.version_prefix
        choices = [(str(c.value), c.label) for c in Cluster]
        if self.prefix:
            choices.append(("folder", _("folder (no version)")))
        return choices

    def queryset(self, request, queryset):
        value = self.value()
        if value == "folder" and self.prefix:
            return queryset.filter(current__isnull=True)
        if value in {str(c.value) for c in Cluster}:
            return queryset.filter(**{f"{self.prefix}cluster": int(value)})
        return queryset


class InputFilter(admin.SimpleListFilter):
    """A filter typed into a text box instead of picked from a list of values (listing the
    values would scan the whole table)."""

    template = "admin/versioned_items/input_filter.html"
    placeholder = ""

    def lookups(self, request, model_admin):
        self.model_admin = model_admin
        return ()

    def has_output(self):
        return True

    def choices(self, changelist):
        others = {k: v for k, v in changelist.params.items() if k != self.parameter_name}
        yield {
            "selected": self.value() is None,
            "query_string": changelist.get_query_string(remove=[self.parameter_name]),
            "display": _("All"),
            "hidden": sorted(others.items()),
            "value": self.value() or "",
            "placeholder": self.placeholder,
        }


    def text(self, request) -> str:
        """The typed value, stripped; empty (with a warning) when it has a control character,
        which no stored value has and PostgreSQL cannot even compare."""
        value = (self.value() or "").strip()
        if any(ord(c) < 32 for c in value):
            messages.warning(request, _("The %(filter)s filter %(value)r has a control character; it was ignored.")
                             % {"filter": self.title, "value": value})
            return ""
        return value


class ContentTypeFilter(InputFilter):
    title = _("content type")
    parameter_name = "type"
    placeholder = "text/ or image/png"

    def queryset(self, request, queryset):
        value = self.text(request)
        if not value:
            return queryset
        return queryset.filter(**{f"{self.model_admin.version_prefix}content_type__startswith": value})


class UserFilter(InputFilter):
    title = _("user")
    parameter_name = "user"
    placeholder = _("user name")

    def queryset(self, request, queryset):
        value = self.text(request)
        return queryset.filter(**{f"{self.model_admin.version_prefix}muser": value}) if value else queryset


class SubtreeFilter(InputFilter):
    title = _("under path")
    parameter_name = "under"
    placeholder = "docs/guide"

    def queryset(self, request, queryset):
        try:
            under = paths.clean_path((self.value() or "").strip(), allow_root=True)
        except InvalidInput as error:
            messages.warning(request, str(error))
            return queryset
        if not under:
            return queryset
        field = self.model_admin.path_field
        prefix = paths.subtree_prefix(under)
        below = Q(**{f"{field}__gte": prefix, f"{field}__lt": paths.next_prefix(prefix)})
        return queryset.filter(Q(**{field: under}) | below)


# --- shared admin behaviour ------------------------------------------------------------------


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
            return self.error_response(request, _("Some filter values in the address are not valid."),
                                       back=reverse(f"admin:{self.opts.app_label}_{self.opts.model_name}_changelist"))
        return super().changelist_view(request, extra_context)

    def has_add_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_restore_permission(self, request):
        return permissions.can_restore(request.user)

    def has_purge_permission(self, request):
        return permissions.can_purge(request.user)

    def page_context(self, request, title, **context):
        return {**self.admin_site.each_context(request), "opts": self.opts, "title": title, **context}

    def error_response(self, request, message, *, status=400, back=None):
        """A friendly page for input that cannot be used (HTTP 400) or objects that are gone (404)."""
        context = self.page_context(request, _("Cannot show this page"), message=message, back=back)
        return TemplateResponse(request, "admin/versioned_items/error.html", context, status=status)

    def confirm(self, request, queryset, *, title, items, question, button, form=None, status=200, **context):
        """The confirmation page of an action: what will happen, and a button that posts it."""
        context = self.page_context(
            request, title, items=items, question=question, button=button, form=form,
            action=request.POST.get("action", ""), selected=[obj.pk for obj in queryset],
            action_checkbox_name=ACTION_CHECKBOX_NAME, cancel_url=self.cancel_url(queryset),
            **context,
        )
        return TemplateResponse(request, "admin/versioned_items/confirm.html", context, status=status)

    def selection(self, request, queryset) -> list | None:
        """The objects an action works on, or None (with a message) when more than
        :data:`MAX_SELECTED` are selected: an action never quietly does only part of the job."""
        objects = list(queryset[: MAX_SELECTED + 1])
        if len(objects) > MAX_SELECTED:
            message = _("Select at most %(n)d objects for this action; narrow the list with the filters, or "
                        "purge a whole subtree from its node's page.") % {"n": MAX_SELECTED}
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


def counted(singular: str, plural: str):
    """A success message for :meth:`ReadOnlyTreeAdmin.run` that counts what was done."""
    return lambda done: ngettext(singular, plural, len(done)) % {"n": len(done)}


def object_pk(object_id) -> int | None:
    """The id in an admin URL, or None when it cannot name a row (not a number, or too large)."""
    try:
        pk = int(object_id)
    except (TypeError, ValueError):
        return None
    return pk if 0 < pk <= forms.MAX_ID else None


def short_time(value) -> str:
    """A time in list columns: ``2025-03-01 14:05`` in the current time zone."""
    return date_format(localtime(value), "Y-m-d H:i")


def node_url(node_id) -> str:
    return reverse("admin:versioned_items_node_change", args=[node_id])


def version_url(serial) -> str:
    return reverse("admin:versioned_items_version_change", args=[serial])


def site_url(name: str, *args) -> str | None:
    """The URL of a page of the site (``versioned_items.urls``) if the project includes it."""
    try:
        return reverse(f"versioned_items:{name}", args=args)
    except NoReverseMatch:
        return None


def search_installed() -> bool:
    from django.apps import apps

    return apps.is_installed("versioned_items.search")


# --- nodes -----------------------------------------------------------------------------------


@admin.register(Node)
class NodeAdmin(ReadOnlyTreeAdmin):
    version_prefix = "current__"
    path_field = "path"
    list_display = ("path_link", "status", "size", "modified", "muser", "content_type")
    list_display_links = None  # path_link is the link
    list_select_related = ("current",)
    list_filter = (ClusterFilter, ContentTypeFilter, UserFilter, ("current__mtime", admin.DateFieldListFilter),
                   SubtreeFilter)
    sortable_by = ("path_link",)
    actions = ["undelete_selected", "purge_selected"]

    @admin.display(description=_("path"), ordering="path")
    def path_link(self, node):
        folder = "/" if node.path and not node.current_id else ""
        return format_html('<a href="{}">{}</a>{}', node_url(node.pk), node.path or "/", folder)

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

    def has_change_permission(self, request, obj=None):
        return False  # nothing on a node is edited through a form

    def get_urls(self):
        view = self.admin_site.admin_view
        urls = [
            path("<vi_id:node_id>/undelete/", view(self.undelete_view), name="versioned_items_node_undelete"),
            path("<vi_id:node_id>/purge/", view(self.purge_view), name="versioned_items_node_purge"),
        ]
        if search_installed():
            urls += [path("search/", view(self.search_view), name="versioned_items_node_search"),
                     path("search-index/", view(self.index_view), name="versioned_items_node_index")]
        return urls + super().get_urls()

    def changelist_view(self, request, extra_context=None):
        extra = {"can_manage_index": search_installed() and self.has_manage_index_permission(request)}
        return super().changelist_view(request, {**(extra_context or {}), **extra})

    def has_manage_index_permission(self, request):
        return permissions.can_manage_index(request.user)

    # Index maintenance: status, and the check, the intelligent update and a rebuild.

    INDEX_TASKS = {
        "check": (_("Check the indexes"), _("Compare both indexes with the database, document by document, and the "
                                            "statistics with a recomputation. Pending changes are applied first; "
                                            "nothing else is written.")),
        "update": (_("Update the indexes"), _("The intelligent update: apply pending changes, then compare both "
                                              "indexes with the database and rewrite only the documents that "
                                              "differ.")),
        "rebuild": (_("Rebuild the indexes"), _("Rebuild both indexes from the database into new folders that "
                                                "replace the old ones when complete; searches keep working "
                                                "meanwhile. This reads every version and takes the longest.")),
    }

    def index_view(self, request):
        from .search import indexing

        if not self.has_manage_index_permission(request):
            raise PermissionDenied
        task = request.POST.get("task") or request.GET.get("task")
        if task is not None and task not in self.INDEX_TASKS:
            return self.error_response(request, _("There is no index task %(task)r; choose check, update or "
                                                  "rebuild.") % {"task": task})
        context = self.page_context(request, _("Search indexes"), tasks=self.INDEX_TASKS, task=task)
        if task and self.confirmed(request):
            run = {"check": indexing.check, "update": indexing.update_index, "rebuild": indexing.rebuild}[task]
            try:
                context["report"] = run()
            except VersionedItemsError as error:
                self.message_user(request, str(error), messages.ERROR)
            else:
                self.message_user(request, _("%(task)s: done.") % {"task": self.INDEX_TASKS[task][0]},
                                  messages.SUCCESS)
            context["task_done"], context["task"] = task, None
        context["status"] = indexing.index_status()
        return TemplateResponse(request, "admin/versioned_items/node/index.html", context)

    # Search: the latest index, or the history index (every version, or as of a time).

    def search_view(self, request):
        if not self.has_view_or_change_permission(request):
            raise PermissionDenied
        form = forms.SearchForm(request.GET if "q" in request.GET else None)
        versions_visible = self.admin_site.get_model_admin(Version).has_view_or_change_permission(request)
        context = self.page_context(request, _("Search"), form=form, versions_visible=versions_visible)
        status = 200
        if form.is_bound and not form.is_valid():
            status = 400
        elif form.is_bound and not versions_visible and (form.cleaned_data["history"] or form.cleaned_data["before"]):
            # History hits are versions: only for those who may see versions.
            form.add_error("history", _("Searching history needs the permission to view versions."))
            status = 403
        elif form.is_bound:
            results, status = run_search(form, page_size=SEARCH_PAGE_SIZE)
            if results is not None:
                context.update(results=results, **page_links(request, results.page, results.has_next),
                               suggestion_url=suggestion_url(request, results.suggestion))
        return TemplateResponse(request, "admin/versioned_items/node/search.html", context, status=status or 200)

    # The node's page: breadcrumbs, children, statistics, current version and history.

    def change_view(self, request, object_id, form_url="", extra_context=None):
        node = self.get_object(request, object_id)
        if node is None:
            return self.error_response(request, _("There is no node with the id %(id)r.") % {"id": object_id},
                                       status=404, back=reverse("admin:versioned_items_node_changelist"))
        if not self.has_view_or_change_permission(request, node):
            raise PermissionDenied
        form = forms.NodePageForm(request.GET)
        if not form.is_valid():
            return self.error_response(request, forms.first_error(form), back=node_url(node.pk))
        context = self.page_context(request, node.path or "/", node=node, **self.node_page(request, node, form))
        return TemplateResponse(request, "admin/versioned_items/node/node.html", context)

    def get_object(self, request, object_id, from_field=None):
        pk = object_pk(object_id)
        return self.get_queryset(request).select_related("current").filter(pk=pk).first() if pk else None

    def node_page(self, request, node: Node, form) -> dict:
        after, older = form.cleaned_data["after"], form.cleaned_data["older"]
        # The children are one depth inside the node's path range: the (depth, path) index
        # serves them in order, however many there are.
        children = (Node.objects.subtree(node.path, include_self=False).filter(depth=node.depth + 1)
                    .select_related("current").order_by("path"))
        if after:
            children = children.filter(path__gt=after)
        children = list(children[: NODE_PAGE_SIZE + 1])
        versions = Version.objects.filter(node=node).order_by("-serial").prefetch_related("attributes")
        if older:
            versions = versions.filter(serial__lt=older)
        versions = list(versions[: NODE_PAGE_SIZE + 1])
        return {
            "ancestors": list(Node.objects.ancestors_of(node.path).order_by("depth")),
            "children": children[:NODE_PAGE_SIZE],
            "children_next": children[NODE_PAGE_SIZE - 1].path if len(children) > NODE_PAGE_SIZE else None,
            "statistics": list(Statistics.objects.filter(node=node).order_by("cluster")),
            "versions": versions[:NODE_PAGE_SIZE],
            "versions_next": versions[NODE_PAGE_SIZE - 1].serial if len(versions) > NODE_PAGE_SIZE else None,
            "paged": bool(after or older),
            "can_restore": permissions.can_restore(request.user),
            "can_purge": permissions.can_purge(request.user),
            "site_url": (site_url("item", node.path) if node.current_id
                         else site_url("browse", paths.subtree_prefix(node.path))),
        }

    # Undelete: the newest version that is not a delete marker becomes current again.

    @admin.action(description=_("Undelete selected items"), permissions=["restore"])
    def undelete_selected(self, request, queryset):
        restorable = (Version.objects.filter(node=OuterRef("pk")).exclude(cluster=Cluster.DELETED, checksum="")
                      .order_by("-serial").values("serial")[:1])
        nodes = self.selection(request, queryset.filter(current__cluster=Cluster.DELETED)
                               .select_related("current").annotate(restorable=Subquery(restorable)))
        if nodes is None:
            return None
        nodes = [node for node in nodes if node.restorable]
        if not nodes:
            self.message_user(request, _("None of the selected items is deleted with a version to restore."),
                              messages.WARNING)
            return None
        if self.confirmed(request):
            self.run(request, lambda: [api.undelete(n.path, user=request.user) for n in nodes],
                     counted("Undeleted %(n)d item.", "Undeleted %(n)d items."))
            return None
        items = [(node.path, _("version #%(serial)s becomes current again") % {"serial": node.restorable})
                 for node in nodes]
        return self.confirm(request, nodes, title=_("Undelete items"), items=items, button=_("Yes, undelete"),
                            question=_("These deleted items come back, each with its newest version that is not a "
                                       "delete marker:"))

    def undelete_view(self, request, node_id):
        return self.object_action(request, node_id, self.undelete_selected, self.has_restore_permission)

    def object_action(self, request, node_id, action, allowed):
        """An action on one node, from its page; back to the page when done."""
        queryset = self.get_queryset(request).filter(pk=node_id)
        if not queryset.exists():
            return self.error_response(request, _("There is no node with the id %(id)r.") % {"id": node_id}, status=404)
        if not allowed(request):
            raise PermissionDenied
        return action(request, queryset) or HttpResponseRedirect(node_url(node_id))

    # Purge: old versions of whole subtrees, written before a date.

    @admin.action(description=_("Purge old history of selected subtrees"), permissions=["purge"])
    def purge_selected(self, request, queryset):
        nodes = self.selection(request, queryset)
        if nodes is None:
            return None
        nodes = outermost(nodes)
        form = forms.PurgeForm(request.POST if "before" in request.POST else None)
        if not form.is_bound or not form.is_valid():
            return self.confirm(request, nodes, title=_("Purge old history"), form=form, button=_("Show what will go"),
                                items=[(node.path or "/", "") for node in nodes], step="ask",
                                question=_("Purge versions below these nodes (and of the nodes themselves):"),
                                status=400 if form.is_bound else 200)
        arguments = form.purge_arguments()
        if self.confirmed(request):
            self.run(request, lambda: sum((api.purge(n.path, **arguments) for n in nodes), []),
                     counted("Purged %(n)d version.", "Purged %(n)d versions."))
            return None
        summaries = [(node, *api.purge_summary(node.path, **arguments)) for node in nodes]
        total = (sum(s[1] for s in summaries), sum(s[2] for s in summaries))
        items = [(node.path or "/", ngettext("%(n)s version, %(size)s bytes", "%(n)s versions, %(size)s bytes", n)
                  % {"n": n, "size": size}) for node, n, size in summaries]
        return self.confirm(request, nodes, title=_("Purge old history"), form=form, items=items, step="confirm",
                            button=_("Yes, purge"), total=total, before=forms.format_time(arguments["before"]),
                            question=_("These versions will be deleted for good:"))

    def purge_view(self, request, node_id):
        return self.object_action(request, node_id, self.purge_selected, self.has_purge_permission)


def outermost(nodes: list[Node]) -> list[Node]:
    """The nodes that are not below another of them (a subtree's purge covers its descendants)."""
    chosen: list[Node] = []
    for node in sorted(nodes, key=lambda n: n.path):
        if not any(node.path.startswith(paths.subtree_prefix(c.path)) for c in chosen):
            chosen.append(node)
    return chosen


# --- versions and their attributes -----------------------------------------------------------


class AttributeInline(admin.TabularInline):
    """A version's attributes, edited inline; saved through the API (see VersionAdmin)."""

    model = Attribute
    fields = ("domain", "key", "value")
    extra = 1
    WIDGETS = {
        "domain": admin.widgets.AdminTextInputWidget(attrs={"size": 10}),
        "key": admin.widgets.AdminTextInputWidget(attrs={"size": 20}),
        "value": admin.widgets.AdminTextareaWidget(attrs={"rows": 1, "cols": 48}),
    }

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        if db_field.name in self.WIDGETS:
            kwargs["widget"] = self.WIDGETS[db_field.name]
        return super().formfield_for_dbfield(db_field, request, **kwargs)


@admin.register(Version)
class VersionAdmin(ReadOnlyTreeAdmin):
    version_prefix = ""
    path_field = "node__path"
    list_display = ("serial", "node_link", "cluster", "size", "modified", "muser", "content_type")
    list_display_links = ("serial",)
    list_select_related = ("node",)
    list_filter = (ClusterFilter, ContentTypeFilter, UserFilter, ("mtime", admin.DateFieldListFilter), SubtreeFilter)
    sortable_by = ("serial",)
    actions = ["restore_selected"]
    inlines = [AttributeInline]
    fields = ("node_link", "serial", "cluster", "size", "mtime", "muser", "content_type", "checksum",
              "source_link", "content")
    readonly_fields = fields

    @admin.display(description=_("node"))
    def node_link(self, version):
        return format_html('<a href="{}">{}</a>', node_url(version.node_id), version.node.path)

    @admin.display(description=_("modified"), ordering="mtime")
    def modified(self, version):
        return short_time(version.mtime)

    @admin.display(description=_("restored or copied from"))
    def source_link(self, version):
        if not version.source:
            return "—"
        return format_html('<a href="{}">#{}</a>', version_url(version.source), version.source)

    @admin.display(description=_("content"))
    def content(self, version):
        if version.is_delete_marker:
            return _("A delete marker: the item was deleted here.")
        try:
            text = read_text(version, PREVIEW_BYTES)
        except ContentMissing:
            return format_html('<p class="vi-content-missing">{}</p>', content_missing_message())
        download = reverse("admin:versioned_items_version_content", args=[version.serial])
        if text is None:
            return format_html('{} <a href="{}">{}</a>', _("Binary content."), download, _("Download"))
        more = format_html(' <a href="{}">{}</a>', download, _("Download all")) if text.truncated else ""
        return format_html('<pre class="vi-content">{}</pre>{}', text.text, more)

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("diff/", view(self.diff_view), name="versioned_items_version_diff"),
            path("<vi_id:serial>/restore/", view(self.restore_view), name="versioned_items_version_restore"),
            path("<vi_id:serial>/content/", view(self.content_view), name="versioned_items_version_content"),
        ] + super().get_urls()

    def get_object(self, request, object_id, from_field=None):
        pk = object_pk(object_id)
        return self.get_queryset(request).select_related("node").filter(pk=pk).first() if pk else None

    def change_view(self, request, object_id, form_url="", extra_context=None):
        version = self.get_object(request, object_id)
        if version is None:
            return self.error_response(request, _("There is no version %(id)r.") % {"id": object_id},
                                       status=404, back=reverse("admin:versioned_items_version_changelist"))
        older = Version.objects.filter(node_id=version.node_id, serial__lt=version.serial)
        previous = older.order_by("-serial").first()
        extra = {
            "title": _("Version #%(serial)s") % {"serial": version.serial},
            "subtitle": version.node.path,
            "version": version,
            "previous": previous,
            "is_current": version.node.current_id == version.serial,
            "can_restore": self.has_restore_permission(request),
            "site_item_url": site_url("item", version.node.path),
        }
        return super().change_view(request, object_id, form_url, {**(extra_context or {}), **extra})

    # Saving: the version itself never changes; its attributes change through the API.

    def save_model(self, request, obj, form, change):
        pass

    def save_formset(self, request, form, formset, change):
        formset.save(commit=False)  # fills new/changed/deleted_objects for the change message
        serial = form.instance.serial
        removed, changed = [], {}
        for inline in formset.forms:
            initial = (inline.initial.get("domain", ""), inline.initial.get("key")) if inline.instance.pk else None
            if inline in formset.deleted_forms:
                removed.append(initial)
                continue
            if not inline.has_changed() or not inline.cleaned_data:
                continue
            data = inline.cleaned_data
            current = (data["domain"], data["key"])
            if initial and initial != current:
                removed.append(initial)
            changed.setdefault(data["domain"], {})[data["key"]] = data["value"]
        with api.batch():
            for domain, key in filter(None, removed):
                api.delete_attributes(serial, [key], domain=domain)
            for domain, items in changed.items():
                api.set_attributes(serial, items, domain=domain)

    def response_change(self, request, obj):
        if "_continue" in request.POST:
            return super().response_change(request, obj)
        self.message_user(request, _("The attributes of version #%(serial)s were saved.") % {"serial": obj.serial},
                          messages.SUCCESS)
        return HttpResponseRedirect(node_url(obj.node_id))

    # Restore: a copy of an earlier version becomes current.

    @admin.action(description=_("Restore selected versions"), permissions=["restore"])
    def restore_selected(self, request, queryset):
        chosen = self.selection(request, queryset.select_related("node").order_by("node__path", "-serial"))
        if chosen is None:
            return None
        markers = [v for v in chosen if v.is_delete_marker]
        versions = [v for v in chosen if not v.is_delete_marker]
        if len({v.node_id for v in versions}) < len(versions):
            self.message_user(request, _("Pick at most one version per item to restore."), messages.ERROR)
            return None
        if not versions:
            self.message_user(request, _("Delete markers cannot be restored; pick an earlier version."),
                              messages.WARNING)
            return None
        if self.confirmed(request):
            self.run(request, lambda: [api.restore(v.serial, user=request.user) for v in versions],
                     counted("Restored %(n)d version.", "Restored %(n)d versions."))
            return None
        items = [(f"{v.node.path} #{v.serial}", _("of %(time)s by %(user)s, %(size)s bytes") % {
            "time": forms.format_time(v.mtime), "user": v.muser or "—", "size": v.size}) for v in versions]
        skipped = [f"#{v.serial}" for v in markers]
        return self.confirm(request, versions, title=_("Restore versions"), items=items, button=_("Yes, restore"),
                            skipped=skipped, question=_("A copy of each of these versions becomes the current "
                                                        "version of its item; the history keeps everything:"))

    def restore_view(self, request, serial):
        queryset = self.get_queryset(request).filter(pk=serial)
        version = queryset.select_related("node").first()
        if version is None:
            return self.error_response(request, _("There is no version %(id)r.") % {"id": serial}, status=404)
        if not self.has_restore_permission(request):
            raise PermissionDenied
        return self.restore_selected(request, queryset) or HttpResponseRedirect(node_url(version.node_id))

    # Reading: a diff of two versions, and a version's content.

    def diff_view(self, request):
        if not self.has_view_or_change_permission(request):
            raise PermissionDenied
        form = forms.CompareForm(request.GET)
        if not form.is_valid():
            return self.error_response(request, forms.first_error(form))
        found = Version.objects.select_related("node").in_bulk([form.cleaned_data["old"], form.cleaned_data["new"]])
        missing = [s for s in (form.cleaned_data["old"], form.cleaned_data["new"]) if s not in found]
        if missing:
            return self.error_response(request, _("There is no version %(id)r.") % {"id": missing[0]}, status=404)
        try:
            diff = diff_versions(found[form.cleaned_data["old"]], found[form.cleaned_data["new"]])
        except ContentMissing:
            return self.error_response(request, content_missing_message(), status=404)
        context = self.page_context(request, _("Differences"), diff=diff)
        return TemplateResponse(request, "admin/versioned_items/version/diff.html", context)

    def content_view(self, request, serial):
        version = self.get_queryset(request).select_related("node").filter(pk=serial).first()
        if version is None or version.is_delete_marker:
            raise Http404(_("There is no content for version %(id)r.") % {"id": serial})
        if not self.has_view_or_change_permission(request, version):
            raise PermissionDenied
        try:
            return content_response(version)
        except ContentMissing:
            return self.error_response(request, content_missing_message(), status=404)


"""The search app's pages in the node admin: search (the latest index, or the history index:
every version, or as of a time) and index maintenance (status, check, the intelligent update,
rebuild).

They are added to the core's node admin through :mod:`versioned_items.extensions` (see
``apps.py``), with links above the node list and on each node's page; no core module imports
this one.
"""

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.template.response import TemplateResponse
from django.urls import path
from django.utils.translation import gettext_lazy as _

from versioned_items import extensions
from versioned_items.exceptions import VersionedItemsError
from versioned_items.models import Version
from versioned_items.pages import page_links

from . import indexing, permissions
from .forms import SearchForm
from .views import run_search, suggestion_url

#: Hits per page of the admin's search.
SEARCH_PAGE_SIZE = 50

INDEX_TASKS = {
    "check": (
        _("Check the indexes"),
        _(
            "Compare both indexes with the database, document by document, and the "
            "statistics with a recomputation. Pending changes are applied first; "
            "nothing else is written."
        ),
    ),
    "update": (
        _("Update the indexes"),
        _(
            "The intelligent update: apply pending changes, then compare both "
            "indexes with the database and rewrite only the documents that "
            "differ."
        ),
    ),
    "rebuild": (
        _("Rebuild the indexes"),
        _(
            "Rebuild both indexes from the database into new folders that "
            "replace the old ones when complete; searches keep working "
            "meanwhile. This reads every version and takes the longest."
        ),
    ),
}


def node_admin_urls(model_admin) -> list:
    """The pages, as URL patterns of the node admin (``admin:versioned_items_node_search``, ``..._index``)."""
    view = model_admin.admin_site.admin_view
    return [
        path(
            "search/",
            view(lambda request: search_view(model_admin, request)),
            name="versioned_items_node_search",
        ),
        path(
            "search-index/",
            view(lambda request: index_view(model_admin, request)),
            name="versioned_items_node_index",
        ),
    ]


def can_manage_index(request) -> bool:
    return permissions.can_manage_index(request.user)


def register() -> None:
    """Add the pages and their links to the node admin (from ``AppConfig.ready``)."""
    extensions.register_node_admin_pages(
        node_admin_urls,
        list_tools=[
            extensions.Link(_("Search indexes"), "admin:versioned_items_node_index", visible=can_manage_index)
        ],
        node_tools=[
            extensions.Link(
                _("Search here"),
                "admin:versioned_items_node_search",
                query=lambda node: {"q": "", "under": node.path},
            )
        ],
    )


def index_view(model_admin, request):
    """Index maintenance: status, and the check, the intelligent update and a rebuild."""
    if not can_manage_index(request):
        raise PermissionDenied
    task = request.POST.get("task") or request.GET.get("task")
    if task is not None and task not in INDEX_TASKS:
        return model_admin.error_response(
            request, _("There is no index task %(task)r; choose check, update or rebuild.") % {"task": task}
        )
    context = model_admin.page_context(request, _("Search indexes"), tasks=INDEX_TASKS, task=task)
    if task and model_admin.confirmed(request):
        run = {"check": indexing.check, "update": indexing.update_index, "rebuild": indexing.rebuild}[task]
        try:
            context["report"] = run()
        except VersionedItemsError as error:
            model_admin.message_user(request, str(error), messages.ERROR)
        else:
            model_admin.message_user(
                request, _("%(task)s: done.") % {"task": INDEX_TASKS[task][0]}, messages.SUCCESS
            )
        context["task_done"], context["task"] = task, None
    context["status"] = indexing.index_status()
    return TemplateResponse(request, "admin/versioned_items/node/index.html", context)


def search_view(model_admin, request):
    """Search the latest index, or the history index (every version, or as of a time)."""
    if not model_admin.has_view_or_change_permission(request):
        raise PermissionDenied
    form = SearchForm(request.GET if "q" in request.GET else None)
    versions_visible = model_admin.admin_site.get_model_admin(Version).has_view_or_change_permission(request)
    context = model_admin.page_context(request, _("Search"), form=form, versions_visible=versions_visible)
    status = 200
    if form.is_bound and not form.is_valid():
        status = 400
    elif (
        form.is_bound
        and not versions_visible
        and (form.cleaned_data["history"] or form.cleaned_data["before"])
    ):
        # History hits are versions: only for those who may see versions.
        form.add_error("history", _("Searching history needs the permission to view versions."))
        status = 403
    elif form.is_bound:
        results, status = run_search(form, request.user, page_size=SEARCH_PAGE_SIZE)
        if results is not None:
            context.update(
                results=results,
                **page_links(request, results.page, results.has_next),
                suggestion_url=suggestion_url(request, results.suggestion),
            )
    return TemplateResponse(request, "admin/versioned_items/node/search.html", context, status=status or 200)

"""The search pages' views: the site's search page, and what the admin's search page shares
with it (running a search from the form, facet and suggestion links).

The search app adds its page to the site through :mod:`versioned_items.extensions` (see
``apps.py``); the core's site knows nothing about search.
"""

from django.contrib.auth.decorators import login_required
from django.shortcuts import render
from django.urls import path
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from versioned_items import extensions
from versioned_items.exceptions import IndexUnavailable, InvalidInput
from versioned_items.pages import page_links, query_string

from .api import search as run_query
from .forms import SearchForm

#: Hits per page of the site's search results.
SEARCH_PAGE_SIZE = 20


def run_search(form: SearchForm, user, *, page_size: int = SEARCH_PAGE_SIZE, **options):
    """Search as ``user`` (only what their grants let them read) with a valid form's
    arguments: ``(page, None)``, or ``(None, status)`` with the error added to the form (400
    for bad input, 404 for a page past the last one, 503 when the index cannot be read).
    Shared with the admin's search page."""
    try:
        results = run_query(**form.search_arguments(), page_size=page_size, user=user, **options)
        if results.total and results.page > results.num_pages:
            # Like Django's paginator (and the admin's lists): a page past the end is a 404. A
            # search that matches nothing keeps its page, to show its spelling suggestion.
            form.add_error(
                None,
                _("There is no page %(page)s: the results have %(pages)s page(s).")
                % {"page": results.page, "pages": results.num_pages},
            )
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
    form = SearchForm(request.GET if "q" in request.GET else None)
    context = {"form": form}
    if not form.is_bound:
        return render(request, "versioned_items/search.html", context)
    if not form.is_valid():
        return render(request, "versioned_items/search.html", context, status=400)
    results, status = run_search(form, request.user, facets=True)
    if results is None:
        return render(request, "versioned_items/search.html", context, status=status)
    context.update(
        results=results,
        facets=facet_links(request, results.facets),
        **page_links(request, results.page, results.has_next),
        suggestion_url=suggestion_url(request, results.suggestion),
    )
    return render(request, "versioned_items/search.html", context)


def suggestion_url(request, suggestion: str | None) -> str | None:
    """The same search with the spelling suggestion as its query text, from the first page.
    Shared with the admin's search page."""
    return f"?{query_string(request, q=suggestion, page=None)}" if suggestion else None


def facet_links(request, facets: dict) -> list[tuple[str, list[dict]]]:
    """The facets of a search as (title, [{value, count, url, selected}]): a link adds the
    value to the search, or removes it when it is already chosen."""
    groups = [
        (_("Modified by"), "muser", facets.get("muser", [])),
        (_("Content type"), "content_type", facets.get("content_type", [])),
    ]
    groups += [
        (name, "attr", [(f"{name}={value}", count) for value, count in values])
        for name, values in (facets.get("attributes") or {}).items()
    ]
    result = []
    for title, param, values in groups:
        chosen = request.GET.get(param, "")
        links = [
            {
                "value": value.partition("=")[2] if param == "attr" else value,
                "count": count,
                "selected": value == chosen,
                "url": "?" + query_string(request, page=None, **{param: None if value == chosen else value}),
            }
            for value, count in values
            if value != ""
        ]
        if links:
            result.append((title, links))
    return result


def site_urls() -> list:
    """The search page, as a URL pattern of the site (``versioned_items:search``)."""
    return [path("search/", search, name="search")]


def register() -> None:
    """Add the search page and its link in the header to the site (from ``AppConfig.ready``)."""
    extensions.register_site_pages(
        site_urls, nav=[extensions.Link(gettext_lazy("Search"), "versioned_items:search")]
    )

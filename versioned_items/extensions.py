"""Where optional apps add pages to the core's admin and site, so that the core never imports them.

The search app (``versioned_items.search``) registers its pages here from its
``AppConfig.ready()``; without it installed, the admin and the site simply have no search pages.
The same pattern as :func:`versioned_items.integrity.register_checker`::

    from versioned_items import extensions

    extensions.register_site_pages(lambda: [path("search/", views.search, name="search")],
                                   nav=[extensions.Link(_("Search"), "versioned_items:search")])
    extensions.register_node_admin_pages(
        lambda model_admin: [path("search/", ..., name="versioned_items_node_search")],
        list_tools=[extensions.Link(_("Search indexes"), "admin:versioned_items_node_index",
                                    visible=lambda request: request.user.is_superuser)],
        node_tools=[extensions.Link(_("Search here"), "admin:versioned_items_node_search",
                                    query=lambda node: {"under": node.path})],
    )

Site URL patterns are named inside the ``versioned_items`` namespace; node admin URL patterns
are added before the node admin's own (their paths must not look like an object id).
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlencode

from django.urls import NoReverseMatch, reverse


def _always(request) -> bool:
    return True


@dataclass(frozen=True)
class Link:
    """A link an extension adds to a page: its label, the URL name it leads to, who sees it,
    and (for links on a node's page) the query string it carries for that node."""

    label: str
    url_name: str
    visible: Callable = _always
    query: Callable | None = None

    def resolve(self, request, obj=None) -> dict | None:
        """``{"label", "url"}`` for this request, or None when hidden or its URL is not routed."""
        if not self.visible(request):
            return None
        try:
            url = reverse(self.url_name)
        except NoReverseMatch:
            return None
        if self.query is not None and obj is not None:
            url += "?" + urlencode(self.query(obj))
        return {"label": self.label, "url": url}


@dataclass
class _Registry:
    site_pages: list[Callable[[], list]] = field(default_factory=list)
    site_nav: list[Link] = field(default_factory=list)
    node_admin_pages: list[Callable[[object], list]] = field(default_factory=list)
    list_tools: list[Link] = field(default_factory=list)
    node_tools: list[Link] = field(default_factory=list)


_registry = _Registry()


def register_site_pages(urlpatterns: Callable[[], list], *, nav=()) -> None:
    """Add URL patterns to the site (``versioned_items.site.urls``) and links to its header.

    ``urlpatterns`` is called when the site's URLconf is first imported."""
    if urlpatterns not in _registry.site_pages:
        _registry.site_pages.append(urlpatterns)
    _registry.site_nav.extend(link for link in nav if link not in _registry.site_nav)


def register_node_admin_pages(urlpatterns: Callable[[object], list], *, list_tools=(), node_tools=()) -> None:
    """Add pages to the node admin (``urlpatterns(model_admin)``), links above its list
    (``list_tools``) and links on each node's page (``node_tools``, with ``query(node)``)."""
    if urlpatterns not in _registry.node_admin_pages:
        _registry.node_admin_pages.append(urlpatterns)
    _registry.list_tools.extend(link for link in list_tools if link not in _registry.list_tools)
    _registry.node_tools.extend(link for link in node_tools if link not in _registry.node_tools)


def site_urlpatterns() -> list:
    return [pattern for pages in _registry.site_pages for pattern in pages()]


def node_admin_urlpatterns(model_admin) -> list:
    return [pattern for pages in _registry.node_admin_pages for pattern in pages(model_admin)]


def site_nav(request) -> list[dict]:
    return _resolved(_registry.site_nav, request)


def list_tools(request) -> list[dict]:
    return _resolved(_registry.list_tools, request)


def node_tools(request, node) -> list[dict]:
    return _resolved(_registry.node_tools, request, node)


def _resolved(links: list[Link], request, obj=None) -> list[dict]:
    return [shown for link in links if (shown := link.resolve(request, obj)) is not None]

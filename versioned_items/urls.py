"""The site's pages. Include them in a project's URLconf::

    path("", include("versioned_items.urls")),

Every page needs a logged-in user, so the project also needs a login page (``LOGIN_URL``).
"""

from django.apps import apps
from django.urls import path, register_converter

from . import views


class IdConverter:
    """A serial or id in a URL: at most 18 digits, so that it fits the database's 64-bit
    integers (a longer number matches no URL instead of overflowing a query)."""

    regex = "[0-9]{1,18}"

    def to_python(self, value: str) -> int:
        return int(value)

    def to_url(self, value) -> str:
        return str(value)


register_converter(IdConverter, "vi_id")

app_name = "versioned_items"

urlpatterns = [
    path("", views.home, name="home"),
    path("browse/", views.browse, name="browse"),
    path("browse/<path:prefix>", views.browse, name="browse"),
    path("item/<path:path>", views.item, name="item"),
    path("diff/", views.diff, name="diff"),
    path("content/<vi_id:serial>/", views.content, name="content"),
    path("restore/<vi_id:serial>/", views.restore, name="restore"),
]

if apps.is_installed("versioned_items.search"):
    urlpatterns.append(path("search/", views.search, name="search"))

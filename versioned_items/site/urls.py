"""The site's pages. Include them in a project's URLconf::

    path("", include("versioned_items.site.urls")),

Every page needs a logged-in user, so the project also needs a login page (``LOGIN_URL``).
Installed extensions (the search app) add their pages here (:mod:`versioned_items.extensions`).
"""

from django.urls import path

from .. import extensions
from . import views

app_name = "versioned_items"

urlpatterns = [
    path("", views.home, name="home"),
    path("browse/", views.browse, name="browse"),
    path("browse/<path:prefix>", views.browse, name="browse"),
    path("item/<path:path>", views.item, name="item"),
    path("diff/", views.diff, name="diff"),
    path("content/<vi_id:serial>/", views.content, name="content"),
    path("restore/<vi_id:serial>/", views.restore, name="restore"),
    *extensions.site_urlpatterns(),
]

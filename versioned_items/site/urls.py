"""The site's pages. Include them in a project's URLconf::

    path("", include("versioned_items.site.urls")),

Every page needs a logged-in user, so the project also needs a login page (``LOGIN_URL``).
Installed extensions (the search app) add their pages here (:mod:`versioned_items.extensions`).
"""

from django.urls import path

from .. import extensions
from . import views, writes

app_name = "versioned_items"

urlpatterns = [
    path("", views.home, name="home"),
    path("browse/", views.browse, name="browse"),
    path("browse/<path:prefix>", views.browse, name="browse"),
    path("item/<path:path>", views.item, name="item"),
    path("diff/", views.diff, name="diff"),
    path("content/<vi_id:serial>/", views.content, name="content"),
    path("restore/<vi_id:serial>/", views.restore, name="restore"),
    # writes (versioned_items.site.writes); folders are paths without the trailing "/"
    path("upload/", writes.upload, name="upload"),
    path("upload/<path:folder>", writes.upload, name="upload"),
    path("new-folder/", writes.new_folder, name="new_folder"),
    path("new-folder/<path:folder>", writes.new_folder, name="new_folder"),
    path("new-version/<path:path>", writes.new_version, name="new_version"),
    path("edit/<path:path>", writes.edit, name="edit"),
    path("delete/<path:path>", writes.delete, name="delete"),
    path("move/<path:path>", writes.move, name="move"),
    path("copy/<path:path>", writes.copy, name="copy"),
    path("bin/", writes.recycle_bin, name="bin"),
    path("bin/<path:folder>", writes.recycle_bin, name="bin"),
    path("undelete/<path:path>", writes.undelete, name="undelete"),
    path("purge/<path:path>", writes.purge, name="purge"),
    *extensions.site_urlpatterns(),
]

from django.contrib import admin
from django.urls import path
from django.views.generic import RedirectView

urlpatterns = [
    path("admin/", admin.site.urls),
    # Placeholder until the site's own pages exist.
    path("", RedirectView.as_view(pattern_name="admin:index"), name="home"),
]

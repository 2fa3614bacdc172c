"""The admin's list filters (not :mod:`versioned_items.attribute_filters`, the attribute
filter expressions of listings and searches).

The same filters serve nodes (on their current version) and versions: ``version_prefix`` and
``path_field`` on the ModelAdmin say where the version's fields and the path are.
"""

from django.contrib import admin, messages
from django.utils.translation import gettext_lazy as _

from .. import paths, validation
from ..exceptions import InvalidInput
from ..models import Cluster


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
        if validation.control_character(value) is not None:
            messages.warning(
                request,
                _("The %(filter)s filter %(value)r has a control character; it was ignored.")
                % {"filter": self.title, "value": value},
            )
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
        return queryset.filter(paths.subtree_q(self.model_admin.path_field, under))

"""The site's forms: a folder's listing and the version an item page shows."""

from django import forms
from django.utils.translation import gettext_lazy as _

from .. import paths
from ..forms import FilterField, IdField, PathField, TimeField, clean_marker


class BrowseForm(forms.Form):
    """The listing of the browse page: :func:`versioned_items.api.list_latest` arguments."""

    PAGE_SIZES = (50, 100, 200, 500)

    prefix = PathField(prefix=True, label=_("Prefix"))
    marker = forms.CharField(required=False, strip=False, widget=forms.HiddenInput)
    before = TimeField(label=_("As of"))
    filter = FilterField(label=_("Attributes"))
    flat = forms.BooleanField(required=False, label=_("Flat (no folders)"))
    versions = forms.BooleanField(required=False, label=_("Show versions"))
    #: Name order is the listing's own; the others sort the rows of the page shown.
    SORTS = ("name", "-name", "size", "-size", "mtime", "-mtime")
    sort = forms.ChoiceField(
        choices=[(s, s) for s in SORTS], required=False, widget=forms.HiddenInput, label=_("Sort")
    )
    limit = forms.TypedChoiceField(
        choices=[(n, n) for n in PAGE_SIZES],
        coerce=int,
        required=False,
        empty_value=PAGE_SIZES[0],
        label=_("Per page"),
    )

    def clean_marker(self):
        return clean_marker(self.cleaned_data["marker"])

    def listing_arguments(self) -> dict:
        """Keyword arguments for :func:`~versioned_items.api.list_latest` (call after is_valid)."""
        data = self.cleaned_data
        return {
            "prefix": data["prefix"],
            "delimiter": None if data["flat"] else paths.SEPARATOR,
            "marker": data["marker"],
            "limit": data["limit"] or self.PAGE_SIZES[0],
            "before": data["before"],
            "filter": data["filter"] or None,
        }


class ItemForm(forms.Form):
    """Which version of an item to show: a serial, or the one current as of a time."""

    version = IdField(required=False, widget=forms.HiddenInput)
    before = TimeField(label=_("As of"))
    older = IdField(required=False, widget=forms.HiddenInput)


class BinForm(forms.Form):
    """The page of a recycle bin: deleted items after a path marker."""

    marker = forms.CharField(required=False, strip=False, widget=forms.HiddenInput)

    def clean_marker(self):
        return clean_marker(self.cleaned_data["marker"])

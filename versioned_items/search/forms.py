"""The search form of the site's search page and the admin's search: the arguments of
:func:`versioned_items.search.api.search`."""

from django import forms
from django.core.validators import MaxLengthValidator
from django.utils.translation import gettext_lazy as _

from versioned_items.conf import app_settings
from versioned_items.forms import PathField, TimeField


class SearchForm(forms.Form):
    """The search page and the admin's search box: :func:`versioned_items.search.api.search`
    arguments."""

    q = forms.CharField(
        required=False,
        strip=True,
        label=_("Search"),
        widget=forms.TextInput(attrs={"size": 30, "type": "search"}),
    )
    history = forms.BooleanField(required=False, label=_("Search history (every version)"))
    before = TimeField(label=_("As of"))
    under = PathField(
        label=_("Under"), widget=forms.TextInput(attrs={"placeholder": "docs/guide", "size": 14})
    )
    # Facet selections, set by the facet links of the results.
    content_type = forms.CharField(required=False, max_length=255, widget=forms.HiddenInput)
    muser = forms.CharField(required=False, max_length=150, widget=forms.HiddenInput)
    attr = forms.CharField(required=False, max_length=1000, widget=forms.HiddenInput)
    page = forms.IntegerField(required=False, min_value=1, max_value=10_000, widget=forms.HiddenInput)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # The query's length limit is a setting, read per form (not at import) so that it follows
        # override_settings; the browser's maxlength keeps longer text from being typed at all.
        limit = app_settings.SEARCH_MAX_QUERY_CHARS
        field = self.fields["q"]
        field.max_length = limit
        field.validators.append(
            MaxLengthValidator(
                limit,
                message=_(
                    "The query has %(show_value)s characters; the limit is %(limit_value)s: shorten it."
                ),
            )
        )
        field.widget.attrs["maxlength"] = str(limit)

    def clean_attr(self):
        """``name=value``: an attribute facet (``key`` or ``domain.key``) and its value."""
        value = self.cleaned_data["attr"]
        if value and "=" not in value:
            raise forms.ValidationError(
                _("The attribute facet %(value)r is not 'name=value'."), params={"value": value}
            )
        return value

    def search_arguments(self) -> dict:
        """Keyword arguments for :func:`versioned_items.search.api.search` (after is_valid)."""
        data = self.cleaned_data
        name, _, value = data["attr"].partition("=")
        return {
            "text": data["q"],
            "history": data["history"],
            "as_of": data["before"],
            "under": data["under"] or None,
            "content_type": data["content_type"] or None,
            "muser": data["muser"] or None,
            "attributes": {name: value} if name else None,
            "page": data["page"] or 1,
        }

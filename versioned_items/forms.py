"""Parsing what people type into the site's pages and the admin: times, paths, attribute
filters, search queries and the arguments of the operations that change history.

Each form turns query-string or POST values into the arguments of one library call, or into
errors that name the bad value. Views show those errors on the page with HTTP 400; nothing a
person types reaches the library unchecked, and nothing they type can cause a 500.
"""

from datetime import UTC, datetime

from django import forms
from django.core.validators import MaxLengthValidator
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from . import paths
from .conf import app_settings
from .exceptions import InvalidInput
from .filters import parse_filter
from .models import Cluster

#: Serials and ids are 64-bit integers in the database; larger numbers cannot name anything.
MAX_ID = 2**63 - 1

TIME_HELP = _("YYYY-MM-DD, or YYYY-MM-DD HH:MM[:SS], in %(zone)s; or ISO 8601 with an offset.")


class TimeField(forms.DateTimeField):
    """A point in time up to now: ``2024-05-01``, ``2024-05-01 14:30``, ``2024-05-01T14:30:00+02:00``.

    A time without an offset is in the current time zone; a date alone means its midnight.
    """

    widget = forms.TextInput(attrs={"placeholder": "YYYY-MM-DD HH:MM", "size": 18})
    default_error_messages = {
        "invalid": _("%(value)s is not a date or time; write YYYY-MM-DD or YYYY-MM-DD HH:MM."),
        "future": _("%(value)s is in the future; give a time up to now."),
        "range": _("%(value)s is outside the years 1 to 9999 in UTC."),
    }

    def __init__(self, **kwargs):
        kwargs.setdefault("required", False)
        kwargs.setdefault("help_text", TIME_HELP % {"zone": timezone.get_current_timezone_name()})
        super().__init__(**kwargs)

    def to_python(self, value):
        try:
            result = super().to_python(value.strip() if isinstance(value, str) else value)
        except forms.ValidationError:
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid",
                                        params={"value": repr(value)}) from None
        if result is None:
            return None
        try:
            result.astimezone(UTC)  # what the database stores; year 1 at +14:00 is before year 1
        except OverflowError:
            raise forms.ValidationError(self.error_messages["range"], code="range",
                                        params={"value": repr(value)}) from None
        if result > timezone.now():
            raise forms.ValidationError(self.error_messages["future"], code="future",
                                        params={"value": result.isoformat(sep=" ")})
        return result


class IdField(forms.IntegerField):
    """A version serial or node id: a whole number from 1 to :data:`MAX_ID`."""

    def __init__(self, **kwargs):
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", MAX_ID)
        super().__init__(**kwargs)


class PathField(forms.CharField):
    """A node path (``docs/a.txt``; empty for the root when not required), checked by
    :func:`versioned_items.paths.clean_path`."""

    def __init__(self, *, prefix: bool = False, **kwargs):
        self.prefix = prefix
        kwargs.setdefault("required", False)
        kwargs.setdefault("strip", False)
        super().__init__(**kwargs)

    def to_python(self, value):
        value = super().to_python(value)
        try:
            return paths.clean_prefix(value) if self.prefix else paths.clean_path(value, allow_root=True)
        except InvalidInput as error:
            raise forms.ValidationError(str(error), code="invalid") from None


class FilterField(forms.CharField):
    """An attribute filter expression (:mod:`versioned_items.filters`), checked on input."""

    widget = forms.TextInput(attrs={"placeholder": "status=draft, size>10, !reviewed", "size": 32})

    def __init__(self, **kwargs):
        kwargs.setdefault("required", False)
        kwargs.setdefault("help_text", _("Terms 'key', '!key' or 'key OP value' (OP one of = != < <= > >=), "
                                         "separated by commas; all must match."))
        super().__init__(**kwargs)

    def validate(self, value):
        super().validate(value)
        try:
            parse_filter(value)
        except InvalidInput as error:
            raise forms.ValidationError(str(error), code="invalid") from None


class BrowseForm(forms.Form):
    """The listing of the browse page: :func:`versioned_items.api.list_latest` arguments."""

    PAGE_SIZES = (50, 100, 200, 500)

    prefix = PathField(prefix=True, label=_("Prefix"))
    marker = forms.CharField(required=False, strip=False, widget=forms.HiddenInput)
    before = TimeField(label=_("As of"))
    filter = FilterField(label=_("Attributes"))
    flat = forms.BooleanField(required=False, label=_("Flat (no folders)"))
    limit = forms.TypedChoiceField(choices=[(n, n) for n in PAGE_SIZES], coerce=int, required=False,
                                   empty_value=PAGE_SIZES[0], label=_("Per page"))

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


def clean_marker(value: str) -> str | None:
    """A paging marker: any printable text; empty means the first page."""
    if any(ord(c) < 32 for c in value):
        raise forms.ValidationError(_("The page marker %(value)r contains a control character."),
                                    params={"value": value})
    return value or None


class NodePageForm(forms.Form):
    """Paging on a node's admin page: children after a path, versions older than a serial."""

    after = forms.CharField(required=False, strip=False)
    older = IdField(required=False)

    def clean_after(self):
        return clean_marker(self.cleaned_data["after"])


class ItemForm(forms.Form):
    """Which version of an item to show: a serial, or the one current as of a time."""

    version = IdField(required=False, widget=forms.HiddenInput)
    before = TimeField(label=_("As of"))
    older = IdField(required=False, widget=forms.HiddenInput)


class CompareForm(forms.Form):
    """Two versions to compare, by serial."""

    old = IdField(label=_("Old version"))
    new = IdField(label=_("New version"))


class SearchForm(forms.Form):
    """The search page and the admin's search box: :func:`versioned_items.search.api.search`
    arguments."""

    q = forms.CharField(required=False, strip=True, label=_("Search"),
                        widget=forms.TextInput(attrs={"size": 30, "type": "search"}))
    history = forms.BooleanField(required=False, label=_("Search history (every version)"))
    before = TimeField(label=_("As of"))
    under = PathField(label=_("Under"), widget=forms.TextInput(attrs={"placeholder": "docs/guide", "size": 14}))
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
        field.validators.append(MaxLengthValidator(limit, message=_(
            "The query has %(show_value)s characters; the limit is %(limit_value)s: shorten it.")))
        field.widget.attrs["maxlength"] = str(limit)

    def clean_attr(self):
        """``name=value``: an attribute facet (``key`` or ``domain.key``) and its value."""
        value = self.cleaned_data["attr"]
        if value and "=" not in value:
            raise forms.ValidationError(_("The attribute facet %(value)r is not 'name=value'."),
                                        params={"value": value})
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


class PurgeForm(forms.Form):
    """What to purge below a node: versions of some clusters written before a time."""

    CLUSTERS = [(Cluster.HISTORY.value, _("old versions (history)")),
                (Cluster.DELETED.value, _("delete markers and deleted versions"))]

    before = TimeField(required=True, label=_("Written before"))
    clusters = forms.TypedMultipleChoiceField(
        choices=CLUSTERS, coerce=int, initial=[Cluster.HISTORY.value], label=_("What"),
        widget=forms.CheckboxSelectMultiple,
    )

    def purge_arguments(self) -> dict:
        """Keyword arguments for :func:`~versioned_items.api.purge` and ``purge_summary``."""
        return {"before": self.cleaned_data["before"], "clusters": self.cleaned_data["clusters"],
                "subtree": True}


def first_error(form: forms.Form) -> str:
    """The first error message of a bound, invalid form, for a one-line notice."""
    for errors in form.errors.values():
        return errors[0]
    return ""


def format_time(value: datetime | None) -> str:
    """A time as the forms read it back (local time, to the second)."""
    return timezone.localtime(value).strftime("%Y-%m-%d %H:%M:%S") if value else ""

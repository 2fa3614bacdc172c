"""The form fields and forms that the admin, the site and the search app share: times, ids,
paths, attribute filters, paging markers, a pair of versions to compare, and the writes (uploads
into a folder, a new folder, a new version, a text edit, a destination for moves and copies, a
change comment), so that the admin and the site check a write by the same rules.

Each form turns query-string or POST values into the arguments of one library call, or into
errors that name the bad value. Views show those errors on the page with HTTP 400; nothing a
person types reaches the library unchecked, and nothing they type can cause a 500. The forms of
one part live with it: ``versioned_items.site.forms``, ``versioned_items.admin.forms``,
``versioned_items.search.forms``.
"""

from datetime import datetime

from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from . import paths, uploads, validation
from .attribute_filters import parse_filter
from .conf import app_settings
from .diffs import read_text
from .exceptions import ContentMissing, InvalidInput, NodeExists
from .models import Cluster, Node, Version

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
            raise forms.ValidationError(
                self.error_messages["invalid"], code="invalid", params={"value": repr(value)}
            ) from None
        if result is None:
            return None
        try:
            validation.to_utc(result, self.label or "time")  # what the database stores
        except InvalidInput:
            raise forms.ValidationError(
                self.error_messages["range"], code="range", params={"value": repr(value)}
            ) from None
        if result > timezone.now():
            raise forms.ValidationError(
                self.error_messages["future"], code="future", params={"value": result.isoformat(sep=" ")}
            )
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
    """An attribute filter expression (:mod:`versioned_items.attribute_filters`), checked on input."""

    widget = forms.TextInput(attrs={"placeholder": "status=draft, size>10, !reviewed", "size": 32})

    def __init__(self, **kwargs):
        kwargs.setdefault("required", False)
        kwargs.setdefault(
            "help_text",
            _(
                "Terms 'key', '!key' or 'key OP value' (OP one of = != < <= > >=), "
                "separated by commas; all must match."
            ),
        )
        super().__init__(**kwargs)

    def validate(self, value):
        super().validate(value)
        try:
            parse_filter(value)
        except InvalidInput as error:
            raise forms.ValidationError(str(error), code="invalid") from None


def clean_marker(value: str) -> str | None:
    """A paging marker: any printable text; empty means the first page."""
    if validation.control_character(value) is not None:
        raise forms.ValidationError(
            _("The page marker %(value)r contains a control character."), params={"value": value}
        )
    return value or None


class CompareForm(forms.Form):
    """Two versions to compare, by serial."""

    old = IdField(label=_("Old version"))
    new = IdField(label=_("New version"))


def first_error(form: forms.Form) -> str:
    """The first error message of a bound, invalid form, for a one-line notice."""
    for errors in form.errors.values():
        return errors[0]
    return ""


def format_time(value: datetime | None) -> str:
    """A time as the forms read it back (local time, to the second)."""
    return timezone.localtime(value).strftime("%Y-%m-%d %H:%M:%S") if value else ""


# --- writes, shared by the admin and the site -----------------------------------------------------------


class CommentField(forms.CharField):
    """A change comment, checked by :func:`versioned_items.validation.clean_comment`."""

    def __init__(self, **kwargs):
        kwargs.setdefault("required", False)
        kwargs.setdefault("label", _("Change comment"))
        kwargs.setdefault("max_length", validation.MAX_COMMENT_LENGTH)
        kwargs.setdefault("widget", forms.Textarea(attrs={"rows": 2, "cols": 60}))
        kwargs.setdefault("help_text", _("Why you make this change; kept with the new version."))
        super().__init__(**kwargs)

    def clean(self, value):
        value = super().clean(value)
        try:
            return validation.clean_comment(value)
        except InvalidInput as error:
            raise forms.ValidationError(str(error), code="invalid") from None


class MultipleFileInput(forms.FileInput):
    allow_multiple_selected = True


class UploadField(forms.FileField):
    """One uploaded file, at most ``UPLOAD_MAX_BYTES`` (checked by :func:`versioned_items.uploads.check`;
    views that take uploads are decorated with :func:`versioned_items.uploads.limited`)."""

    def clean(self, data, initial=None):
        upload = super().clean(data, initial)
        if upload:
            uploads.check(upload)
        return upload


class MultipleUploadField(UploadField):
    """Several uploaded files (``<input type=file multiple>``); cleans to a list."""

    widget = MultipleFileInput

    def clean(self, data, initial=None):
        uploads = data if isinstance(data, list | tuple) else [data] if data else []
        if not uploads and self.required:
            raise forms.ValidationError(self.error_messages["required"], code="required")
        return [super(MultipleUploadField, self).clean(upload, initial) for upload in uploads]


def joined(folder: str, name: str) -> str:
    return f"{folder}/{name}" if folder else name


class UploadFilesForm(forms.Form):
    """Files uploaded into a folder: each becomes a new version of ``folder/name``."""

    folder = PathField(label=_("Into folder"), help_text=_("Empty for the top level; created if missing."))
    files = MultipleUploadField(label=_("Files"))
    comment = CommentField()

    def clean(self):
        data = super().clean()
        if "folder" not in data or "files" not in data:
            return data
        names = set()
        for upload in data["files"]:
            try:
                path = paths.clean_path(joined(data["folder"], upload.name))
            except InvalidInput as error:
                raise forms.ValidationError(str(error), code="invalid") from None
            if path in names:
                raise forms.ValidationError(
                    _("Two files are named %(name)s."), code="duplicate", params={"name": upload.name}
                )
            names.add(path)
        data["targets"] = [(joined(data["folder"], upload.name), upload) for upload in data["files"]]
        return data


def existing_targets(data: dict) -> dict[str, Node]:
    """The nodes already at the paths a valid :class:`UploadFilesForm` writes (``data`` is its
    ``cleaned_data``), by path; call it inside the write's transaction. Raises
    :class:`NodeExists` when the folder is a live item, or a file would take a folder's name.
    Shared by the admin's and the site's upload pages."""
    folder = Node.objects.filter(path=data["folder"]).select_related("current").first()
    if folder is not None and folder.current_id is not None and not folder.current.is_delete_marker:
        raise NodeExists(f"{data['folder']!r} is an item, not a folder")
    targets = [path for path, _upload in data["targets"]]
    existing = {node.path: node for node in Node.objects.filter(path__in=targets).only("path", "current")}
    for path in targets:
        if path in existing and existing[path].current_id is None:
            raise NodeExists(f"{path!r} is a folder; a file cannot take its name")
    return existing


class NewFolderForm(forms.Form):
    path = PathField(required=True, label=_("New folder"), help_text=_("Its full path: docs/reports."))


class NewVersionForm(forms.Form):
    file = UploadField(label=_("File"))
    comment = CommentField()


class EditTextForm(forms.Form):
    """A text item's new content; ``base`` is the version it was edited from.

    Given the ``current`` version and its text (``original``, from :func:`editable_text`), the
    form also refuses an edit of an outdated version and an unchanged text, and keeps the
    file's line ends (browsers send CRLF), so ``cleaned_data["text"]`` is what to write.
    """

    text = forms.CharField(
        label=_("Text"), required=False, strip=False, widget=forms.Textarea(attrs={"rows": 24, "cols": 100})
    )
    comment = CommentField()
    base = IdField(widget=forms.HiddenInput)

    def __init__(self, *args, current: Version | None = None, original: str = "", **kwargs):
        super().__init__(*args, **kwargs)
        self.current, self.original = current, original

    def clean(self):
        data = super().clean()
        if self.current is None or "text" not in data or "base" not in data:
            return data
        if "\r\n" not in self.original:
            data["text"] = data["text"].replace("\r\n", "\n")
        if data["base"] != self.current.serial:
            raise forms.ValidationError(
                _(
                    "Version #%(serial)s by %(user)s was written since you opened this page; "
                    "copy your text, reload the page and edit the new version."
                ),
                code="outdated",
                params={"serial": self.current.serial, "user": self.current.muser or "—"},
            )
        if data["text"] == self.original:
            self.add_error("text", forms.ValidationError(_("The text is unchanged; nothing was written.")))
        return data


def editable_text(version: Version | None) -> tuple[str | None, str]:
    """The text of a live item's current ``version`` that an edit page opens, and ``""``; or
    None and why it cannot be edited: no live version, not text (valid UTF-8 without NUL),
    more than ``EDIT_MAX_BYTES``, or content missing from the storage."""
    if version is None or version.cluster != Cluster.NORMAL:
        return None, _("There is no current version to edit.")
    limit = app_settings.EDIT_MAX_BYTES
    try:
        text = read_text(version, limit)
    except ContentMissing as error:
        return None, str(error)
    if text is None:
        return None, _("This item is not text; upload a new version instead.")
    if text.truncated:
        return None, _("This item is larger than %(n)s bytes; upload a new version instead.") % {"n": limit}
    return text.text, ""


class DestinationForm(forms.Form):
    """Where a node goes (rename, move, copy): a full path."""

    destination = PathField(required=True, label=_("New path"))
    comment = CommentField()


class FolderDestinationForm(forms.Form):
    """The folder that list actions move or copy the selected nodes into."""

    folder = PathField(label=_("Into folder"), help_text=_("Empty for the top level; created if missing."))
    comment = CommentField()


class CommentForm(forms.Form):
    comment = CommentField()

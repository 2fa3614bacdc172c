"""The admin's own forms: paging on a node's page, what a purge removes, and the writes
(uploads, folders, text edits, moves, copies, deletes, the versioning policy), each field
checked by the rules of :mod:`versioned_items.validation` and :mod:`versioned_items.paths`."""

from django import forms
from django.template.defaultfilters import filesizeformat
from django.utils.translation import gettext_lazy as _

from .. import paths, validation
from ..conf import app_settings
from ..exceptions import InvalidInput
from ..forms import IdField, PathField, TimeField, clean_marker
from ..models import Cluster, Versioning


class NodePageForm(forms.Form):
    """Paging on a node's admin page: children after a path, versions older than a serial."""

    after = forms.CharField(required=False, strip=False)
    older = IdField(required=False)

    def clean_after(self):
        return clean_marker(self.cleaned_data["after"])


class PurgeForm(forms.Form):
    """What to purge below a node: versions of some clusters written before a time."""

    CLUSTERS = [
        (Cluster.HISTORY.value, _("old versions (history)")),
        (Cluster.DELETED.value, _("delete markers and deleted versions")),
    ]

    before = TimeField(required=True, label=_("Written before"))
    clusters = forms.TypedMultipleChoiceField(
        choices=CLUSTERS,
        coerce=int,
        initial=[Cluster.HISTORY.value],
        label=_("What"),
        widget=forms.CheckboxSelectMultiple,
    )

    def purge_arguments(self) -> dict:
        """Keyword arguments for :func:`~versioned_items.api.purge` and ``purge_summary``."""
        return {
            "before": self.cleaned_data["before"],
            "clusters": self.cleaned_data["clusters"],
            "subtree": True,
        }


# --- writes ----------------------------------------------------------------------------------


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


def check_upload_size(upload) -> None:
    """Refuse an upload over the ``UPLOAD_MAX_BYTES`` setting (it is on disk by now, never in
    memory: Django's upload handlers keep large files in temporary files)."""
    limit = app_settings.UPLOAD_MAX_BYTES
    if limit is not None and upload.size > limit:
        raise forms.ValidationError(
            _("%(name)s has %(size)s bytes; the limit is %(limit)s bytes (%(human)s)."),
            code="too_large",
            params={"name": upload.name, "size": upload.size, "limit": limit, "human": filesizeformat(limit)},
        )


class UploadField(forms.FileField):
    """One uploaded file, at most ``UPLOAD_MAX_BYTES``."""

    def clean(self, data, initial=None):
        upload = super().clean(data, initial)
        if upload:
            check_upload_size(upload)
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


class NewFolderForm(forms.Form):
    path = PathField(required=True, label=_("New folder"), help_text=_("Its full path: docs/reports."))


class NewVersionForm(forms.Form):
    file = UploadField(label=_("File"))
    comment = CommentField()


class EditTextForm(forms.Form):
    """A text item's new content; ``base`` is the version it was edited from."""

    text = forms.CharField(
        label=_("Text"), required=False, strip=False, widget=forms.Textarea(attrs={"rows": 24, "cols": 100})
    )
    comment = CommentField()
    base = IdField(widget=forms.HiddenInput)


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


class VersioningForm(forms.Form):
    versioning = forms.ChoiceField(
        choices=Versioning.choices,
        required=False,
        label=_("Versioning"),
        widget=forms.RadioSelect,
        help_text=_(
            "Puts from now on follow it. With 'keep only the current version', each new version "
            "replaces the previous one for good."
        ),
    )

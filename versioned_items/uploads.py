"""Uploads that stream to temporary files and stop at ``UPLOAD_MAX_BYTES``.

Django's default upload handlers keep a file of up to ``FILE_UPLOAD_MAX_MEMORY_SIZE`` in memory
and accept a file of any size; the limit could only be checked by the form, once the whole file
was on disk. :class:`LimitedUploadHandler` writes every uploaded file to a temporary file, chunk
by chunk, and gives up on a file as soon as its bytes pass the limit: the temporary file is
deleted, the rest of that file's bytes are read from the request and dropped (so that the
browser gets the page with the error, not a reset connection), and the file is handed to the
view as a :class:`RefusedUpload` that knows its real size. The form's size check
(:func:`check`) then names the limit, and nothing is written. From there
:func:`versioned_items.api.put` copies the temporary file into the storage in
``CONTENT_CHUNK_BYTES`` steps, hashing as it goes: no upload is ever held in memory whole.

Upload handlers must be changed before anything reads ``request.POST``, and Django's CSRF
check reads it. :func:`limited` does what Django's documentation prescribes for that
("Modifying upload handlers on the fly"): the view is exempt from the middleware's check,
installs the handlers, then runs the check itself (``csrf_protect``)::

    from versioned_items import uploads

    @uploads.limited
    def upload(request): ...

    class NodeAdmin(admin.ModelAdmin):
        @method_decorator(uploads.limited)
        def upload_view(self, request, node_id): ...
"""

from functools import wraps

from django import forms
from django.core.files.uploadedfile import UploadedFile
from django.core.files.uploadhandler import TemporaryFileUploadHandler
from django.template.defaultfilters import filesizeformat
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt, csrf_protect

from .conf import app_settings
from .exceptions import InvalidArgument


class RefusedUpload(UploadedFile):
    """An uploaded file that was larger than ``limit`` bytes: only its name and ``size`` are
    known. Reading it raises :class:`InvalidArgument`, so a view that forgets to check the
    size (:func:`check`) writes nothing rather than an empty or cut file."""

    def __init__(self, name: str, size: int, limit: int, content_type: str = "", charset=None):
        super().__init__(None, name, content_type, size, charset)
        self.limit = limit

    def message(self) -> str:
        return _("%(name)s has %(size)s bytes; the limit is %(limit)s bytes (%(human)s).") % {
            "name": self.name,
            "size": self.size,
            "limit": self.limit,
            "human": filesizeformat(self.limit),
        }

    def _refuse(self, *args, **kwargs):
        raise InvalidArgument(self.message() + " " + _("Nothing was uploaded."))

    read = chunks = open = multiple_chunks = __iter__ = _refuse

    def close(self) -> None:
        pass


class LimitedUploadHandler(TemporaryFileUploadHandler):
    """Every file to a temporary file; a file past ``UPLOAD_MAX_BYTES`` (None: no limit)
    becomes a :class:`RefusedUpload`, and its bytes past the limit are dropped as they arrive."""

    def __init__(self, request=None):
        super().__init__(request)
        self.limit = app_settings.UPLOAD_MAX_BYTES
        self.refused = False

    def new_file(self, *args, **kwargs):
        super().new_file(*args, **kwargs)
        self.refused = False

    def receive_data_chunk(self, raw_data, start):
        if self.refused:
            return None
        if self.limit is not None and start + len(raw_data) > self.limit:
            self.refused = True
            self.file.close()  # a TemporaryUploadedFile: closing deletes it
            return None
        return super().receive_data_chunk(raw_data, start)

    def file_complete(self, file_size):
        if self.refused:
            return RefusedUpload(self.file_name, file_size, self.limit, self.content_type, self.charset)
        return super().file_complete(file_size)


def upload_handlers(request) -> list:
    """The upload handlers :func:`limited` installs: one :class:`LimitedUploadHandler`."""
    return [LimitedUploadHandler(request)]


def limited(view):
    """Decorate a view that takes uploads: files stream to temporary files and stop at
    ``UPLOAD_MAX_BYTES`` (see the module's docstring); the view keeps Django's CSRF check.
    For a method (a ModelAdmin's view) use ``method_decorator(uploads.limited)``."""
    protected = csrf_protect(view)

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        # Before anything reads request.POST: the CSRF check below is the first.
        request.upload_handlers = upload_handlers(request)
        return protected(request, *args, **kwargs)

    return csrf_exempt(wrapper)


def check(upload) -> None:
    """Raise a form ``ValidationError`` naming the limit when ``upload`` was refused by
    :class:`LimitedUploadHandler`, or is larger than ``UPLOAD_MAX_BYTES`` (a view without
    :func:`limited`, where the whole file was received)."""
    limit = app_settings.UPLOAD_MAX_BYTES
    if isinstance(upload, RefusedUpload) or (limit is not None and upload.size > limit):
        refused = (
            upload if isinstance(upload, RefusedUpload) else RefusedUpload(upload.name, upload.size, limit)
        )
        raise forms.ValidationError(refused.message(), code="too_large")

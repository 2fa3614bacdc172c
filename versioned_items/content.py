"""Content-addressed storage of version content through Django's storage API.

A content file is named after the SHA-256 of its bytes, so identical content is stored once
however many versions use it. :class:`~versioned_items.models.Blob` rows count the references;
a row is locked by every write that touches it, which serialises a put of some content against
a purge that frees the same content.
"""

import hashlib
import io
from typing import BinaryIO, Iterable

from django.core.files.base import ContentFile
from django.core.files.storage import storages
from django.db import connection, transaction

from .conf import app_settings
from .models import Blob

CHUNK = 1 << 20


def storage():
    """The storage that keeps content files (``VERSIONED_ITEMS['STORAGE']``)."""
    return storages[app_settings.STORAGE]


def content_name(checksum: str) -> str:
    """The file name of some content inside the storage."""
    return f"{app_settings.CONTENT_PREFIX}/{checksum[:2]}/{checksum[2:4]}/{checksum}"


def read_all(content: bytes | str | BinaryIO) -> bytes:
    """The bytes of ``content`` (text is encoded as UTF-8)."""
    if isinstance(content, str):
        return content.encode("utf-8")
    if isinstance(content, (bytes, bytearray, memoryview)):
        return bytes(content)
    chunks = []
    while chunk := content.read(CHUNK):
        chunks.append(chunk if isinstance(chunk, bytes) else chunk.encode("utf-8"))
    return b"".join(chunks)


def checksum_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def acquire(data: bytes) -> str:
    """Take a reference to ``data``, storing it if nobody has; return its checksum.

    Must run inside the transaction that creates the version using it.
    """
    checksum = checksum_of(data)
    acquire_existing({checksum: 1}, sizes={checksum: len(data)})
    name = content_name(checksum)
    store = storage()
    if not store.exists(name):
        saved = store.save(name, ContentFile(data))
        if saved != name:  # a concurrent writer stored it first; keep theirs
            store.delete(saved)
    return checksum


def acquire_existing(counts: dict[str, int], sizes: dict[str, int] | None = None) -> None:
    """Add ``counts[checksum]`` references to each blob, creating missing rows (one statement)."""
    counts = {c: n for c, n in counts.items() if c}
    if not counts:
        return
    sizes = sizes or {}
    table = connection.ops.quote_name(Blob._meta.db_table)
    rows = ", ".join(["(%s, %s, %s)"] * len(counts))
    params = []
    for checksum, count in counts.items():
        params += [checksum, sizes.get(checksum, 0), count]
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (checksum, size, refcount) VALUES {rows} "
            f"ON CONFLICT (checksum) DO UPDATE SET refcount = {table}.refcount + excluded.refcount",
            params,
        )


def release(counts: dict[str, int]) -> None:
    """Drop references; content nobody references any more is deleted after commit."""
    from django.db.models import Case, F, When

    counts = {c: n for c, n in counts.items() if c}
    if not counts:
        return
    Blob.objects.filter(checksum__in=counts).update(
        refcount=F("refcount") - Case(*[When(checksum=c, then=n) for c, n in counts.items()])
    )
    freed = list(
        Blob.objects.filter(checksum__in=counts, refcount__lte=0).values_list("checksum", flat=True)
    )
    if freed:
        Blob.objects.filter(checksum__in=freed, refcount__lte=0).delete()
        transaction.on_commit(lambda: delete_unreferenced(freed))


def delete_unreferenced(checksums: Iterable[str]) -> None:
    """Delete the files of content that has no Blob row.

    Runs after the freeing transaction committed. A put of the same content racing with it
    either created the row already (the file is kept) or blocks on the row this inserts
    until the file is gone, and then stores the content again.
    """
    store = storage()
    for checksum in checksums:
        with transaction.atomic():
            Blob.objects.bulk_create([Blob(checksum=checksum, size=0, refcount=0)], ignore_conflicts=True)
            if Blob.objects.filter(checksum=checksum, refcount__gt=0).exists():
                continue
            store.delete(content_name(checksum))
            Blob.objects.filter(checksum=checksum, refcount=0).delete()


def open_content(checksum: str) -> BinaryIO:
    """A binary file-like object with the content (empty for no checksum)."""
    if not checksum:
        return io.BytesIO(b"")
    return storage().open(content_name(checksum), "rb")

"""Content-addressed storage of version content through Django's storage API.

A content file is named after the SHA-256 of its bytes (:func:`content_name`), so identical
content is stored once however many versions use it. :class:`~versioned_items.models.Blob` rows
count the references.

Writing content takes two steps, so that nothing half-written ever has a final name and no row
lock is held while a large file is copied:

1. :func:`stage`, *before* the transaction: the bytes are streamed in chunks of
   ``VERSIONED_ITEMS['CONTENT_CHUNK_BYTES']`` into a temporary file under
   ``CONTENT_PREFIX/tmp/`` in the same storage, hashed while they are copied, flushed to disk,
   and the stored size is checked (and, for small files, the stored hash).
2. :func:`acquire`, inside the transaction that creates the version: the Blob row is upserted,
   which locks it until commit; then the temporary file is moved to the final name unless a
   file that matches is there already. A file under a final name is trusted only if its size
   matches and, when it is at most ``CONTENT_VERIFY_HASH_BYTES`` long, its hash; otherwise it
   is replaced (a process killed mid-write by older versions of this app, or a full disk, left
   such files).

With :class:`~django.core.files.storage.FileSystemStorage` the move is ``os.replace`` inside
the storage's folder: atomic, since both names are on one filesystem. Other storages have no
rename, so the temporary file is copied (streamed) to the final name and then deleted; that
copy is not atomic, but it runs under the Blob row lock, and a file it left half-written is
caught by the size check on the next write and by ``vi_check``.

Locking rules that keep content and references in step under any interleaving:

- A reference is added only to a Blob row that was locked by the statement adding it and that
  either already had references, or whose file was then found present and matching
  (:func:`acquire` stores the file itself; :func:`acquire_existing` refuses with
  :class:`~versioned_items.exceptions.ContentMissing`).
- :func:`release` drops references under the same row locks, taken first in checksum order
  (:func:`lock`), like every statement that locks several Blob rows; content left without references
  loses its row in that transaction and its file after commit (:func:`delete_unreferenced`),
  which locks the row again and deletes the file only if still nobody references it. A put of
  the same bytes racing that deletion waits for the row and then finds the file missing and
  stores it again.

Files that can be left without a row, all collected by the checker's sweep of files older than
a grace period (``vi_check --fix``): a staged file of a process killed before it finished; a
file moved into place by a transaction that then rolled back or whose process died before the
commit (deleting it on rollback could delete a file that another, committed version uses); and
a file whose deletion after commit did not happen because the process died.
"""

import errno
import hashlib
import io
import logging
import os
import uuid
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager, nullcontext
from typing import BinaryIO, TextIO

from django.core.files.base import File
from django.core.files.storage import FileSystemStorage, Storage, storages
from django.db import connection, transaction

from .conf import app_settings
from .exceptions import ContentError, ContentMissing, InvalidArgument
from .models import Blob

logger = logging.getLogger(__name__)

Content = bytes | bytearray | memoryview | str | BinaryIO | TextIO


def storage() -> Storage:
    """The storage that keeps content files (``VERSIONED_ITEMS['STORAGE']``)."""
    return storages[app_settings.STORAGE]


def content_name(checksum: str) -> str:
    """The file name of some content inside the storage."""
    return f"{app_settings.CONTENT_PREFIX}/{checksum[:2]}/{checksum[2:4]}/{checksum}"


def temporary_prefix() -> str:
    """The folder inside the storage that holds staged files (``CONTENT_PREFIX/tmp``)."""
    return f"{app_settings.CONTENT_PREFIX}/tmp"


#: Bytes at the start of staged content kept in the ``head`` of a :class:`Staged`.
HEAD_BYTES = 8192


def checksum_of(data: bytes) -> str:
    """The SHA-256 of ``data``, hex: the checksum versions record."""
    return hashlib.sha256(data).hexdigest()


# --- staging ---------------------------------------------------------------------------------


class Staged:
    """Content copied to a temporary file in the storage, with its ``checksum`` and ``size``,
    and its first :data:`HEAD_BYTES` in ``head`` (for :func:`versioned_items.content_types.guess`,
    so that deciding the type reads nothing again).

    A context manager: leaving it deletes the temporary file unless :func:`acquire` moved it
    into place. :func:`versioned_items.api.put` accepts one as its content.
    """

    def __init__(self, name: str, checksum: str, size: int, head: bytes = b""):
        self.name = name
        self.checksum = checksum
        self.size = size
        self.head = head
        self.moved = False  # by acquire(): the file has its final name now
        self._discarded = False

    def __enter__(self) -> "Staged":
        return self

    def __exit__(self, *exc_info) -> None:
        self.discard()

    def discard(self) -> None:
        """Delete the temporary file (nothing when it was moved into place). A failure is
        logged, not raised: the checker's sweep collects what is left."""
        if self.moved or self._discarded:
            return
        self._discarded = True
        try:
            storage().delete(self.name)
        except OSError as error:
            logger.warning("could not delete the staged content file %s: %s", self.name, error)

    def __repr__(self) -> str:
        return f"<Staged {self.checksum[:12]} {self.size} bytes at {self.name}>"


class _Source(File):
    """``content`` as a Django File that the storage reads in bounded chunks, hashing and
    counting what passes, and telling reading errors apart from the storage's."""

    def __init__(self, content: Content):
        super().__init__(None, name="staged")
        self.content = content
        self.hash = hashlib.sha256()
        self.copied = 0
        self.head = b""
        self.read_failed = False
        self._iterator: Iterator[bytes] | None = None
        self._buffer = b""

    def _pieces(self, chunk: int) -> Iterator[bytes]:
        try:
            yield from self._raw_pieces(chunk)
        except UnicodeError as error:  # text that is not UTF-8-encodable, or a file not in its encoding
            raise InvalidArgument(
                f"content is not valid text ({error}); pass bytes or a binary file"
            ) from error

    def _raw_pieces(self, chunk: int) -> Iterator[bytes]:
        content = self.content
        if isinstance(content, str):
            # Encode slice by slice: a 200 MB string is not copied whole once more.
            for start in range(0, len(content), chunk):
                yield content[start : start + chunk].encode("utf-8")
            return
        if isinstance(content, (bytes, bytearray, memoryview)):
            view = memoryview(content).cast("B")
            for start in range(0, len(view), chunk):
                yield bytes(view[start : start + chunk])
            return
        while True:
            try:
                piece = content.read(chunk)
            except OSError:
                self.read_failed = True
                raise
            if not piece:
                return
            yield piece.encode("utf-8") if isinstance(piece, str) else bytes(piece)

    def chunks(self, chunk_size: int | None = None) -> Iterator[bytes]:
        for piece in self._pieces(app_settings.CONTENT_CHUNK_BYTES):
            if len(self.head) < HEAD_BYTES:
                self.head += piece[: HEAD_BYTES - len(self.head)]
            self.hash.update(piece)
            self.copied += len(piece)
            yield piece

    def read(self, size: int = -1) -> bytes:
        # For storages that read() instead of iterating chunks(): at most one chunk per call.
        if self._iterator is None:
            self._iterator = self.chunks()
        limit = app_settings.CONTENT_CHUNK_BYTES if size is None or size < 0 else size
        while len(self._buffer) < limit and (piece := next(self._iterator, b"")):
            self._buffer += piece
        result, self._buffer = self._buffer[:limit], self._buffer[limit:]
        return result

    def __iter__(self):
        return self.chunks()


def stage(content: Content | Staged) -> Staged | AbstractContextManager[Staged]:
    """Copy ``content`` (bytes, text as UTF-8, or a binary or text file object read from its
    current position) into a temporary file in the storage; return it as a :class:`Staged`.

    Use it as a context manager (``with stage(f) as staged: ...``) so that the temporary file
    goes away if no version takes it. Given a :class:`Staged`, it returns a context manager
    that yields it and leaves its file alone (whoever staged it discards it). Memory use is one
    chunk (``CONTENT_CHUNK_BYTES``) whatever the size.

    Raises :class:`InvalidArgument` for another type of content, :class:`ContentError` when
    the storage fails (a full disk, permissions), and what the file object raises when reading
    it fails. Nothing is left behind when it raises.
    """
    if isinstance(content, Staged):
        return nullcontext(content)
    if not isinstance(content, (bytes, bytearray, memoryview, str)) and not callable(
        getattr(content, "read", None)
    ):
        raise InvalidArgument(
            f"content must be bytes, str or a file object with read(), not {type(content).__name__}"
        )
    store = storage()
    source = _Source(content)
    staged = Staged(f"{temporary_prefix()}/{uuid.uuid4().hex}", "", 0)
    try:
        staged.name = store.save(staged.name, source)
        staged.checksum, staged.size, staged.head = source.hash.hexdigest(), source.copied, source.head
        _flush(store, staged.name)
        if not _matches(store, staged.name, staged.checksum, staged.size):
            raise ContentError(
                f"the storage kept {_stored_size(store, staged.name)} bytes of {staged.size} written "
                f"to {staged.name!r}"
            )
    except BaseException as error:
        staged.discard()
        if isinstance(error, OSError) and not source.read_failed and not isinstance(error, ContentError):
            raise _storage_error(error, staged.name) from error
        raise
    return staged


def _storage_error(error: OSError, name: str) -> ContentError:
    if error.errno in (errno.ENOSPC, errno.EDQUOT):
        reason = "the storage is full"
    else:
        reason = "the storage failed"
    return ContentError(
        f"content could not be written ({reason}: {error.strerror or error}); nothing was stored [{name}]"
    )


def _flush(store: Storage, name: str) -> None:
    """Force a file of a FileSystemStorage to disk (``CONTENT_FSYNC``): a final name must never
    point at data that a power cut can still take away."""
    if app_settings.CONTENT_FSYNC and isinstance(store, FileSystemStorage):
        fd = os.open(store.path(name), os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _stored_size(store: Storage, name: str) -> int | None:
    try:
        return store.size(name)
    except (OSError, ValueError):  # missing (FileNotFoundError) or unreadable
        return None


def _matches(store: Storage, name: str, checksum: str, size: int) -> bool:
    """Whether the file ``name`` holds this content: same size, and for files of at most
    ``CONTENT_VERIFY_HASH_BYTES``, same SHA-256 (larger files are trusted by size)."""
    if _stored_size(store, name) != size:
        return False
    if size > app_settings.CONTENT_VERIFY_HASH_BYTES:
        return True
    try:
        return file_checksum(name, store) == checksum
    except OSError:
        return False


def file_checksum(name: str, store: Storage | None = None) -> str:
    """The SHA-256 (hex) of the file ``name`` in the content storage (or ``store``), read in
    chunks of ``CONTENT_CHUNK_BYTES``. Raises :class:`OSError` when it cannot be read."""
    digest = hashlib.sha256()
    with (store or storage()).open(name, "rb") as file:
        while piece := file.read(app_settings.CONTENT_CHUNK_BYTES):
            digest.update(piece)
    return digest.hexdigest()


# --- references ------------------------------------------------------------------------------


def reference(counts: dict[str, int], sizes: dict[str, int]) -> dict[str, int]:
    """Add ``counts[checksum]`` references (0 allowed) in one upsert, creating missing rows;
    return each row's refcount afterwards.

    The upsert locks every row it touches until commit, also rows another transaction is
    inserting or changing (it waits for them). Rows are touched in checksum order, the one
    order every writer of Blob rows uses. With a count of 0 it locks (and creates) a row
    without changing it, as :func:`delete_unreferenced` and
    :func:`versioned_items.integrity.repair` do before they read the references. It adds
    references without storing the file: the write path uses :func:`acquire` and
    :func:`acquire_existing`.
    """
    table = connection.ops.quote_name(Blob._meta.db_table)
    ordered = sorted(counts)
    rows = ", ".join(["(%s, %s, %s)"] * len(ordered))
    params = []
    for checksum in ordered:
        params += [checksum, sizes.get(checksum, 0), counts[checksum]]
    sql = (
        f"INSERT INTO {table} (checksum, size, refcount) VALUES {rows} "
        f"ON CONFLICT (checksum) DO UPDATE SET refcount = {table}.refcount + excluded.refcount"
    )
    return _refcounts_after(sql, params, ordered)


def acquire(staged: Staged) -> str:
    """Take one reference to staged content and put its file in place; return its checksum.

    Must run inside the transaction that creates the version using it. If that transaction
    rolls back, a file moved into place stays as an orphan for the checker's sweep (see the
    module's docstring). Safe to call again with the same ``staged`` when a transaction is
    retried. Raises :class:`ContentError` when the storage fails.
    """
    reference({staged.checksum: 1}, {staged.checksum: staged.size})
    store = storage()
    name = content_name(staged.checksum)
    if _matches(store, name, staged.checksum, staged.size):
        return staged.checksum  # stored already; the staged copy goes when it is discarded
    if staged.moved:
        raise ContentError(f"content {staged.checksum} vanished from the storage while it was being written")
    try:
        _move_into_place(store, staged.name, name)
    except OSError as error:
        raise _storage_error(error, name) from error
    staged.moved = True
    return staged.checksum


def _move_into_place(store: Storage, temporary: str, final: str) -> None:
    """Give the staged file its final name, replacing a file there (the caller holds the
    Blob row lock, so no other writer of this name runs)."""
    if isinstance(store, FileSystemStorage):
        target = store.path(final)
        _make_folder(store, os.path.dirname(target))
        os.replace(store.path(temporary), target)  # atomic: both names are in one folder tree
        _flush_folder(os.path.dirname(target))
        return
    # No rename in the Storage API: stream a copy to the final name, then drop the original.
    if store.exists(final):
        store.delete(final)
    with store.open(temporary, "rb") as file:
        saved = store.save(final, File(file, name=final))
    if saved != final:
        store.delete(saved)
        raise ContentError(f"the storage saved {final!r} as {saved!r}; it must allow the exact name")
    store.delete(temporary)


def _make_folder(store: FileSystemStorage, folder: str) -> None:
    mode = store.directory_permissions_mode
    if mode is None:
        os.makedirs(folder, exist_ok=True)
        return
    # os.makedirs applies ``mode`` through the umask to every level it creates.
    old_umask = os.umask(0o777 & ~mode)
    try:
        os.makedirs(folder, mode, exist_ok=True)
    finally:
        os.umask(old_umask)


def _flush_folder(folder: str) -> None:
    """Make a rename in ``folder`` durable (``CONTENT_FSYNC``): the version row that commits
    next must not outlive the file's name after a power cut."""
    if app_settings.CONTENT_FSYNC:
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def acquire_existing(counts: dict[str, int], sizes: dict[str, int]) -> None:
    """Add ``counts[checksum]`` references to content that is stored already (copies and
    restores), in one statement that locks the Blob rows.

    ``sizes[checksum]`` is the content's size. Content whose row had no references any more
    (freed by a transaction that committed while this one read the version to copy) is taken
    only if its file is still present and matches. Must run inside the transaction that creates
    the versions. Raises :class:`ContentMissing` (and the transaction must roll back) when a
    file is gone.
    """
    counts = {c: n for c, n in counts.items() if c and n}
    if not counts:
        return
    after = reference(counts, sizes)
    store = storage()
    fresh = [c for c, n in counts.items() if after[c] == n]
    missing = [c for c in fresh if not _matches(store, content_name(c), c, sizes.get(c, 0))]
    if missing:
        raise ContentMissing(
            f"content {', '.join(sorted(missing))} is no longer stored (freed meanwhile, or deleted "
            f"from the storage); nothing was written"
        )


def release(counts: dict[str, int]) -> None:
    """Drop ``counts[checksum]`` references; content nobody references any more loses its row
    now and its file after commit (:func:`delete_unreferenced`).

    The counts must be exactly what the caller's statements deleted, inside the same
    transaction. The rows are locked first, in checksum order (the order of every writer of
    Blob rows): an ``UPDATE`` would lock them in the order it happens to scan them, and
    deadlock with a writer that locks them in checksum order.
    """
    counts = {c: n for c, n in counts.items() if c and n}
    if not counts:
        return
    ordered = sorted(counts)
    lock(ordered)
    after = _add_references({c: -counts[c] for c in ordered})
    freed = [c for c in ordered if after.get(c, 1) <= 0]
    if freed:
        Blob.objects.filter(checksum__in=freed, refcount__lte=0).delete()
        transaction.on_commit(lambda: delete_unreferenced(freed))


def lock(checksums: Iterable[str]) -> None:
    """Lock the existing Blob rows of ``checksums`` until commit (``FOR UPDATE``), in checksum
    order, in one statement. Nothing to do on SQLite, where the database lock serializes
    writers."""
    if not connection.features.has_select_for_update:
        return
    ordered = sorted(set(checksums))
    table = connection.ops.quote_name(Blob._meta.db_table)
    where = ", ".join(["%s"] * len(ordered))
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT checksum FROM {table} WHERE checksum IN ({where}) ORDER BY checksum FOR UPDATE", ordered
        )


def _add_references(deltas: dict[str, int]) -> dict[str, int]:
    """Add ``deltas[checksum]`` (negative: drop) to the reference counts of existing rows,
    which the caller has locked; return each row's refcount afterwards (missing rows are left
    out)."""
    table = connection.ops.quote_name(Blob._meta.db_table)
    cases = " ".join(["WHEN %s THEN %s"] * len(deltas))
    where = ", ".join(["%s"] * len(deltas))
    params = [v for item in deltas.items() for v in item] + list(deltas)
    sql = f"UPDATE {table} SET refcount = refcount + CASE checksum {cases} END WHERE checksum IN ({where})"
    return _refcounts_after(sql, params, list(deltas))


def _refcounts_after(sql: str, params: list, checksums: list[str]) -> dict[str, int]:
    """Run ``sql``, a statement that changes the Blob rows of ``checksums``; return their
    refcounts afterwards (``RETURNING``, or a read in the same transaction)."""
    with connection.cursor() as cursor:
        if connection.features.can_return_rows_from_bulk_insert:
            cursor.execute(f"{sql} RETURNING checksum, refcount", params)
            return dict(cursor.fetchall())
        cursor.execute(sql, params)  # SQLite before 3.35: the database lock covers the read
    return dict(Blob.objects.filter(checksum__in=checksums).values_list("checksum", "refcount"))


def delete_unreferenced(checksums: Iterable[str]) -> None:
    """Delete the files of content that nobody references (after the freeing commit).

    One short transaction per checksum: an upsert of a row with no references locks the row
    (waiting for any transaction that is adding a reference), and the file is deleted only if
    the row still has no references; the row goes with it. A put of the same bytes that comes
    later waits for this row, finds the file missing, and stores it again.
    """
    store = storage()
    for checksum in sorted(set(checksums)):
        with transaction.atomic():
            if reference({checksum: 0}, {})[checksum] > 0:
                continue  # referenced again meanwhile
            try:
                store.delete(content_name(checksum))
            except OSError as error:  # the caller's transaction committed: no error for it
                logger.warning(
                    "could not delete unreferenced content %s (the checker's sweep will): %s", checksum, error
                )
            Blob.objects.filter(checksum=checksum, refcount=0).delete()


def open_content(checksum: str) -> BinaryIO:
    """A binary file-like object with the content (empty for no checksum). Raises
    :class:`ContentMissing` when the file is gone from the storage."""
    if not checksum:
        return io.BytesIO(b"")
    try:
        return storage().open(content_name(checksum), "rb")
    except FileNotFoundError as error:
        raise ContentMissing(
            f"content {checksum} is missing from the storage; vi_check lists the versions affected"
        ) from error

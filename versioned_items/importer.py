"""Loading a directory tree into the store (the library behind ``manage.py vi_import``).

Files map to paths below ``under``: ``DIR/a/b.txt`` becomes ``under/a/b.txt``. A file whose
content differs from the current version gets a new version; a file whose content is the same
costs nothing but reading it; a live item below ``under`` whose file is gone gets a delete
marker. Writes are grouped into transactions of ``batch_size`` files; a transaction that
collides with a concurrent writer is run again (:func:`versioned_items.api.batch`).

Each file is read once, in chunks, straight into a staged file in the storage
(:func:`versioned_items.blobs.stage`), which gives its checksum; the staged files of a
batch are taken by one transaction afterwards. Memory use does not grow with file sizes.

Refused or skipped, with a warning each: symbolic links that lead outside ``DIR``, files that
cannot be read, names that are not valid paths, and anything that is not a regular file.
Version-control folders (``.git``, ``.hg``, ``.svn``) and ``__pycache__`` are not entered.
"""

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from . import api, paths
from .blobs import Staged, stage
from .exceptions import ContentError, InvalidArgument, InvalidInput
from .listing import latest_versions
from .models import Node
from .validation import clean_user

SKIPPED_DIRECTORIES = {".git", ".hg", ".svn", "__pycache__"}


@dataclass(kw_only=True)
class Report:
    """What an import skipped, with a warning for each; subclasses add their counts."""

    skipped: int = 0
    warnings: list[str] = field(default_factory=list)

    def skip(self, message: str) -> None:
        self.skipped += 1
        self.warnings.append(message)


@dataclass(kw_only=True)
class ImportReport(Report):
    """Counts of what a directory import did, and the warnings it gave."""

    new: int = 0
    changed: int = 0
    deleted: int = 0
    unchanged: int = 0

    def __str__(self) -> str:
        return (
            f"new {self.new}, changed {self.changed}, deleted {self.deleted}, "
            f"unchanged {self.unchanged}, skipped {self.skipped}"
        )


def _walk(root: Path, report: ImportReport) -> Iterator[tuple[str, Path]]:
    """(relative path with '/', file to read) for every importable file, in sorted order."""
    real_root = root.resolve()
    for folder, directories, files in os.walk(root):
        directories[:] = sorted(d for d in directories if d not in SKIPPED_DIRECTORIES)
        for name in sorted(files) + [d for d in directories if (Path(folder) / d).is_symlink()]:
            file = Path(folder) / name
            relative = file.relative_to(root).as_posix()
            if file.is_symlink():
                target = file.resolve()
                if target != real_root and real_root not in target.parents:
                    report.skip(f"{relative}: refused, the symbolic link leads outside {root}")
                    continue
                if target.is_dir():
                    continue  # its files are imported where they really are
            if not file.is_file():
                report.skip(f"{relative}: skipped, not a regular file or cannot be read")
                continue
            yield relative, file


def import_directory(
    root: str | os.PathLike,
    *,
    under: str = "",
    user: str = "",
    batch_size: int = 200,
    progress: Callable[[int], None] | None = None,
) -> ImportReport:
    """Import the tree at ``root`` below the path ``under``; return an :class:`ImportReport`.

    ``progress`` is called with the number of files handled after each file.
    Raises :class:`InvalidArgument` when ``root`` is not a directory, :class:`InvalidPath`
    for a bad ``under``.
    """
    root = Path(root)
    if not root.is_dir():
        raise InvalidArgument(f"{str(root)!r} is not a directory")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise InvalidArgument(f"batch_size {batch_size!r} must be a positive whole number")
    under = paths.clean_path(under, allow_root=True)
    user = clean_user(user)
    prefix = paths.subtree_prefix(under)
    current = dict(
        latest_versions()
        .filter(node__in=Node.objects.subtree(under, include_self=False).values("pk"))
        .values_list("node__path", "checksum")
    )
    report = ImportReport()
    seen: set[str] = set()
    pending: list[tuple[str, Staged]] = []

    def write() -> None:
        for path, staged in pending:
            api.put(path, staged, user=user)

    def flush() -> None:
        api.batch(write)  # run again on a collision with a concurrent writer: all is staged
        for _, staged in pending:
            staged.discard()  # those whose content was stored already
        pending.clear()

    try:
        for relative, file in _walk(root, report):
            try:
                path = paths.clean_path(prefix + relative)
            except InvalidInput as error:
                report.skip(f"{relative}: skipped, {error}")
                continue
            staged = _stage_file(file, relative, report)
            if staged is None:
                continue
            seen.add(path)
            known = current.get(path)
            if known is not None and known == staged.checksum:
                staged.discard()
                report.unchanged += 1
            else:
                pending.append((path, staged))
                if known is None:
                    report.new += 1
                else:
                    report.changed += 1
                if len(pending) >= batch_size:
                    flush()
            if progress:
                progress(1)
        if pending:
            flush()
    finally:
        for _, staged in pending:  # an error stopped the import: leave no staged file behind
            staged.discard()
    gone = sorted(set(current) - seen)
    for start in range(0, len(gone), batch_size):
        chunk = gone[start : start + batch_size]
        api.batch(lambda chunk=chunk: [api.delete(path, user=user) for path in chunk])
    report.deleted = len(gone)
    return report


def _stage_file(file: Path, relative: str, report: ImportReport) -> Staged | None:
    """The file's content staged in the storage, or None (with a warning) if it cannot be read.
    Raises :class:`ContentError` when the storage fails: that stops the import."""
    try:
        with open(file, "rb") as source:
            return stage(source)
    except ContentError:
        raise
    except OSError as error:
        report.skip(f"{relative}: skipped, cannot be read ({error.strerror or error})")
        return None


def count_files(root: str | os.PathLike) -> int:
    """How many files an import of ``root`` will look at (for a progress bar's total)."""
    total = 0
    for _, directories, files in os.walk(root):
        directories[:] = [d for d in directories if d not in SKIPPED_DIRECTORIES]
        total += len(files)
    return total

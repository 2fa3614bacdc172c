"""Replaying a git repository's history into the store (the library behind
``manage.py vi_import --git REPO``).

Every commit reachable from ``rev`` is replayed, oldest first (parents before children). Each
file a commit adds or changes gets a new version with the file's content at that commit; each
file it deletes gets a delete marker. A version records the commit's author as ``muser``, the
commit time as ``mtime``, the commit message as its change comment (see ``commit_comment()``),
and the attributes ``commit`` (the full commit id) and ``message`` (the whole commit message).
Merge commits bring the changes they make relative to their first parent.
Files land below ``under``: ``src/a.py`` becomes ``under/src/a.py``.

Each commit is one transaction (run again when it collides with a concurrent writer: see
:func:`versioned_items.api.batch`), and a commit whose id is already recorded on a version below
``under`` is skipped, so an interrupted import resumes where it stopped and a second run adds
only the new commits.

Times: the store keeps a node's versions in time order, so a commit older than the version it
follows (rebased or clock-skewed history), or one dated in the future, is stamped with the
nearest time that keeps the order.

Skipped with a warning: symbolic links and submodules (git stores no file content for them),
and names that are not valid paths. The ``git`` program is run through :mod:`subprocess`; file
contents are streamed from one ``git cat-file --batch`` into staged files
(:func:`versioned_items.blobs.stage`), never held in memory whole.
"""

import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import BinaryIO

from django.utils import timezone

from . import api, paths
from .blobs import Staged, stage
from .exceptions import InvalidArgument, InvalidInput
from .importer import Report
from .models import Attribute, Node, Version
from .validation import LINE_BREAKS_AND_TABS, MAX_COMMENT_LENGTH, MAX_USER_LENGTH, control_character

#: Attribute keys (in the default domain) that record where a version came from.
COMMIT_KEY = "commit"
MESSAGE_KEY = "message"
#: git file modes that hold file content (regular and executable files).
FILE_MODES = {"100644", "100755", "100664"}
_RECORD, _FIELD = b"\x1e", b"\x1f"
_FORMAT = "%x1e%H%x1f%an%x1f%ct%x1f%B%x1f"


@dataclass(kw_only=True)
class GitImportReport(Report):
    """Counts of what a git import did, and the warnings it gave."""

    commits: int = 0
    known: int = 0
    versions: int = 0
    deleted: int = 0

    def __str__(self) -> str:
        return (
            f"commits {self.commits} replayed, {self.known} already imported; "
            f"versions {self.versions}, deleted {self.deleted}, skipped {self.skipped}"
        )


@dataclass
class Change:
    """One path of a commit: its new content's blob id, None when the commit deletes it, or
    ``""`` when it is no longer a file (a symbolic link or submodule took its place)."""

    path: str
    blob: str | None


@dataclass
class Commit:
    id: str
    author: str
    time: datetime
    message: str
    changes: list[Change] = field(default_factory=list)


def _git(repo: str, *args: str) -> list[str]:
    return ["git", "-C", repo, "-c", "core.quotePath=false", *args]


def _run(repo: str, *args: str) -> str:
    """Run a git command and return its output; raise InvalidArgument with git's message."""
    result = subprocess.run(_git(repo, *args), capture_output=True)
    if result.returncode != 0:
        message = result.stderr.decode("utf-8", "replace").strip().splitlines()
        raise InvalidArgument(
            f"git {args[0]} failed in {repo!r}: {message[-1] if message else result.returncode}"
        )
    return result.stdout.decode("utf-8", "replace")


def check_repository(repo: str | os.PathLike, rev: str = "HEAD") -> str:
    """The commit id ``rev`` names in ``repo``. Raises :class:`InvalidArgument` when git is
    missing, ``repo`` is not a git repository, or ``rev`` names no commit."""
    repo = os.fspath(repo)
    if shutil.which("git") is None:
        raise InvalidArgument("the git program is not installed (apt-get install git)")
    if not os.path.isdir(repo):
        raise InvalidArgument(f"{repo!r} is not a directory")
    if not isinstance(rev, str) or not rev or rev.startswith("-") or any(ord(c) < 33 for c in rev):
        raise InvalidArgument(f"revision {rev!r} must be a branch, tag or commit id")
    _run(repo, "rev-parse", "--git-dir")
    try:
        return _run(repo, "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}").strip()
    except InvalidArgument:
        raise InvalidArgument(f"{rev!r} names no commit in {repo!r}") from None


def count_commits(repo: str | os.PathLike, rev: str = "HEAD") -> int:
    """How many commits an import of ``rev`` looks at (for a progress bar's total)."""
    return int(_run(os.fspath(repo), "rev-list", "--count", check_repository(repo, rev)))


def _records(stream: BinaryIO) -> Iterator[bytes]:
    """The records of ``git log`` output, split on the record separator as they arrive."""
    pending = b""
    while chunk := stream.read(1 << 16):
        pending += chunk
        *complete, pending = pending.split(_RECORD)
        yield from (record for record in complete if record)
    if pending:
        yield pending


def _parse(record: bytes) -> Commit:
    """One record: id, author, time, message, then ``:modes blobs status NUL path NUL`` items."""
    commit_id, author, stamp, message, tail = record.split(_FIELD, 4)
    commit = Commit(
        id=commit_id.decode("ascii"),
        author=author.decode("utf-8", "replace"),
        time=datetime.fromtimestamp(int(stamp), tz=UTC),
        message=message.decode("utf-8", "replace").strip(),
    )
    items = tail.strip(b"\0\n").split(b"\0")
    for meta, name in zip(items[::2], items[1::2], strict=False):
        _, new_mode, _, new_blob, status = meta.decode("ascii").lstrip(":").split()
        if status == "D":
            blob = None
        else:
            blob = new_blob if new_mode in FILE_MODES else ""
        commit.changes.append(Change(name.decode("utf-8", "surrogateescape"), blob))
    return commit


def commits(repo: str, rev: str) -> Iterator[Commit]:
    """The commits reachable from ``rev``, parents first, with the files each one changes."""
    args = [
        "log",
        "--reverse",
        "--topo-order",
        "--root",
        "--diff-merges=first-parent",
        "--raw",
        "--no-renames",
        "--no-abbrev",
        "-z",
        f"--format={_FORMAT}",
        rev,
        "--",
    ]
    # stderr goes to a file: a pipe nobody reads while stdout is read could fill up and stall git.
    with tempfile.TemporaryFile() as errors:
        process = subprocess.Popen(_git(repo, *args), stdout=subprocess.PIPE, stderr=errors)
        try:
            yield from (_parse(record) for record in _records(process.stdout))
        finally:
            process.stdout.close()
            if process.poll() is None:
                process.kill()  # the caller stopped early
            status = process.wait()
        if status != 0:
            errors.seek(0)
            message = errors.read().decode("utf-8", "replace").strip()
            raise InvalidArgument(f"git log failed in {repo!r}: {message or status}")


class _Exactly:
    """The next ``size`` bytes of ``stream`` as a file object that is read in chunks."""

    def __init__(self, stream: BinaryIO, size: int, blob: str):
        self.stream, self.left, self.blob = stream, size, blob

    def read(self, size: int = -1) -> bytes:
        size = self.left if size is None or size < 0 else min(size, self.left)
        data = self.stream.read(size) if size else b""
        if len(data) < size:
            raise InvalidArgument(f"git stopped in the middle of file content {self.blob}")
        self.left -= size
        return data


class BlobReader:
    """File contents by blob id, from one long-running ``git cat-file --batch``."""

    def __init__(self, repo: str):
        self.process = subprocess.Popen(
            _git(repo, "cat-file", "--batch"), stdin=subprocess.PIPE, stdout=subprocess.PIPE
        )

    def stage(self, blob: str) -> Staged:
        """The content of ``blob`` streamed into a staged file (see
        :func:`versioned_items.blobs.stage`), never held in memory whole.
        Raises :class:`InvalidArgument` when git has no such blob."""
        self.process.stdin.write(blob.encode("ascii") + b"\n")
        self.process.stdin.flush()
        header = self.process.stdout.readline().split()
        if len(header) != 3 or header[1] != b"blob":
            raise InvalidArgument(f"git has no file content {blob}")
        staged = stage(_Exactly(self.process.stdout, int(header[2]), blob))
        self.process.stdout.read(1)  # the newline after the content
        return staged

    def close(self) -> None:
        self.process.stdin.close()
        self.process.stdout.close()
        self.process.wait()


def _known_commits(under: str) -> set[str]:
    """Commit ids already recorded on versions below ``under``."""
    subtree = Node.objects.subtree(under, include_self=False).values("pk")
    return set(
        Attribute.objects.filter(domain="", key=COMMIT_KEY, version__node__in=subtree)
        .values_list("value", flat=True)
        .distinct()
    )


def _current_times(under: str) -> dict[str, datetime]:
    """The time of each node's current version below ``under``, for keeping time order."""
    subtree = Node.objects.subtree(under, include_self=False).values("pk")
    return dict(Version.objects.current().filter(node__in=subtree).values_list("node__path", "mtime"))


def commit_comment(message: str) -> str:
    """The change comment of a commit's versions: its message, cut to ``MAX_COMMENT_LENGTH``
    characters (ending with "…") and with control characters other than line breaks and tabs
    replaced by U+FFFD, so that no commit message, however long or odd, stops an import (the
    whole message stays in the ``message`` attribute)."""
    if len(message) > MAX_COMMENT_LENGTH:
        message = message[: MAX_COMMENT_LENGTH - 1].rstrip() + "…"
    return "".join("\ufffd" if control_character(char, LINE_BREAKS_AND_TABS) else char for char in message)


def _replay(
    commit: Commit, prefix: str, blobs: BlobReader, times: dict[str, datetime], report: GitImportReport
) -> None:
    """Write one commit's changes in one transaction. The files' contents are staged first,
    so that no lock is held while they are copied."""
    user = commit.author[:MAX_USER_LENGTH]
    attributes = {COMMIT_KEY: commit.id, MESSAGE_KEY: commit.message}
    writes: list[tuple[str, Staged | None]] = []
    try:
        for change in commit.changes:
            if change.blob == "":
                report.skip(f"{change.path} at {commit.id[:12]}: skipped, a symbolic link or submodule")
            try:
                path = paths.clean_path(prefix + change.path)
            except InvalidInput as error:
                report.skip(f"{change.path!r} at {commit.id[:12]}: skipped, {error}")
                continue
            writes.append((path, blobs.stage(change.blob) if change.blob else None))
        versions, deleted, written = api.batch(lambda: _write_commit(writes, commit, user, attributes, times))
        report.versions += versions
        report.deleted += deleted
        times.update(written)
    finally:
        for _, staged in writes:
            if staged is not None:
                staged.discard()


def _write_commit(
    writes: list[tuple[str, Staged | None]],
    commit: Commit,
    user: str,
    attributes: dict,
    times: dict[str, datetime],
) -> tuple[int, int, dict[str, datetime]]:
    """The body of a commit's batch, safe to run again when the batch is retried (see
    :func:`versioned_items.api.batch`): returns (versions written, delete markers written,
    {path: mtime written}) and changes nothing outside the database."""
    versions = deleted = 0
    written: dict[str, datetime] = {}
    comment = commit_comment(commit.message)
    for path, staged in writes:
        mtime = min(max(commit.time, written.get(path, times.get(path, commit.time))), timezone.now())
        if staged is not None:
            api.put(path, staged, user=user, attributes=attributes, mtime=mtime, comment=comment)
            versions += 1
        elif api.lookup(path) is not None:
            marker = api.delete(path, user=user, mtime=mtime, comment=comment)
            api.set_attributes(marker.serial, attributes)
            deleted += 1
        else:
            continue
        written[path] = mtime
    return versions, deleted, written


def import_git(
    repo: str | os.PathLike,
    *,
    under: str = "",
    rev: str = "HEAD",
    progress: Callable[[int], None] | None = None,
) -> GitImportReport:
    """Replay the history of ``rev`` in the git repository ``repo`` below the path ``under``;
    return a :class:`GitImportReport`. ``progress`` is called with 1 after each commit.

    Raises :class:`InvalidArgument` when git is missing, ``repo`` is not a repository or
    ``rev`` names no commit; :class:`InvalidPath` for a bad ``under``.
    """
    repo = os.fspath(repo)
    under = paths.clean_path(under, allow_root=True)
    head = check_repository(repo, rev)
    prefix = paths.subtree_prefix(under)
    known = _known_commits(under)
    times = _current_times(under)
    report = GitImportReport()
    blobs = BlobReader(repo)
    try:
        for commit in commits(repo, head):
            if commit.id in known:
                report.known += 1
            elif commit.changes:
                _replay(commit, prefix, blobs, times, report)
                report.commits += 1
            if progress:
                progress(1)
    finally:
        blobs.close()
    return report

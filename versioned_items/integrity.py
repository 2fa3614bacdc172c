"""The integrity checker: everything that must hold between the tables and the content files.

:func:`check` reports each inconsistency as a :class:`Problem` with a stable ``kind``:

- ``statistics``: stored statistics differ from a recomputation from the versions;
- ``several-normal``: a node has more than one version in the NORMAL cluster;
- ``normal-not-current``: a node's only NORMAL version is not its newest (current) one;
- ``marker-not-deleted``: a delete marker (a version without content) outside DELETED;
- ``current-missing``, ``current-foreign``, ``current-dangling``, ``current-not-newest``: the
  node's current pointer is NULL although it has versions, points at a version of another
  node, at no version at all, or not at the node's newest version;
- ``root``, ``parent``, ``depth``: tree rules (the root has the path ``""``, no parent and
  depth 0; every other node's parent is the node at
  :func:`~versioned_items.paths.parent_path` of its path, and its depth counts its segments);
- ``refcount``: a Blob's reference count differs from the number of versions with its checksum;
- ``blob-missing``: versions use a checksum that has no Blob row;
- ``content-missing``, ``content-size``, ``content-hash``: a content file is gone, has the
  wrong size, or (with ``verify_content``) the wrong SHA-256; the affected versions are named;
- ``orphan``: a file under ``CONTENT_PREFIX`` that neither a version nor a Blob with
  references uses; ``stale-temp``: a staged temporary file (under ``CONTENT_PREFIX/tmp/``).

Files younger than the grace period (``VERSIONED_ITEMS['ORPHAN_GRACE']`` seconds, or the
``grace`` argument) are never problems: they may belong to a write whose transaction has not
committed yet. They are counted in ``Report.counts['young_files']`` and left alone.

Work is bounded in memory whatever the size of the store: the tables are read with aggregate
queries and streamed, and the content files are listed one folder at a time and merged with
streams sorted by checksum. The number of queries does not depend on the number of nodes.

Other apps add their own checks with :func:`register_checker` (the search app adds its index
comparison from its ``AppConfig.ready()``); this module never imports them.

:func:`repair` fixes what the database allows and reports the rest; see its docstring.
"""

import heapq
import itertools
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.db import transaction
from django.db.models import Count, Exists, F, IntegerField, Max, Min, OuterRef, Q, Subquery, Sum, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from . import api, locking, paths
from . import blobs as content_store
from .blobs import content_name, file_checksum
from .conf import app_settings
from .locking import Mode
from .models import Blob, Cluster, Node, Statistics, Version
from .operations import operation, upsert_statistics

logger = logging.getLogger(__name__)

LISTED = 50  # affected versions named in one problem's message


@dataclass
class Problem:
    """One inconsistency. ``str(problem)`` is the message, in the user's terms."""

    kind: str
    message: str
    path: str | None = None
    serials: list[int] = field(default_factory=list)
    checksum: str = ""
    name: str = ""  # the file in the content storage, for file problems

    def __str__(self) -> str:
        return self.message


@dataclass
class Report:
    """What :func:`check` found (or :func:`repair` did). True when there are problems."""

    problems: list[Problem] = field(default_factory=list)
    repaired: list[Problem] = field(default_factory=list)  # repair(): what it fixed
    notes: list[str] = field(default_factory=list)  # summary lines of registered checkers
    counts: dict[str, int] = field(default_factory=dict)  # work done, by what was looked at

    def __bool__(self) -> bool:
        return bool(self.problems)

    def add(self, kind: str, message: str, **where) -> Problem:
        problem = Problem(kind, message, **where)
        self.problems.append(problem)
        return problem

    def kinds(self) -> list[str]:
        """The kinds of the problems, sorted, once each (handy in tests and summaries)."""
        return sorted({p.kind for p in self.problems})


@dataclass(frozen=True)
class Options:
    """What a checker is asked to do; handed to every registered checker."""

    verify_content: bool
    grace: timedelta
    progress: Callable[[str, int], None]  # progress(step, amount): a hook for progress bars


Checker = Callable[[Report, Options], None]
Repairer = Callable[[Report, Options], None]

_checkers: dict[str, tuple[Checker, Repairer | None]] = {}


def register_checker(name: str, check: Checker, repair: Repairer | None = None) -> None:
    """Add a check that :func:`check` (and ``vi_check``) run after the core's own.

    ``check(report, options)`` adds problems (``report.add(kind, message, ...)``) and summary
    lines (``report.notes``). ``repair(report, options)``, if given, is run by :func:`repair`
    and appends what it fixed to ``report.repaired``. Registering a name again replaces it.
    """
    _checkers[name] = (check, repair)


def registered_checkers() -> list[str]:
    """The names of the registered checkers, in the order they run."""
    return list(_checkers)


def default_grace() -> timedelta:
    return timedelta(seconds=app_settings.ORPHAN_GRACE)


def _no_progress(step: str, amount: int) -> None:
    pass


def _options(
    verify_content: bool, grace: timedelta | None, progress: Callable[[str, int], None] | None
) -> Options:
    """The :class:`Options` of the arguments of :func:`check` and :func:`repair`."""
    return Options(verify_content, default_grace() if grace is None else grace, progress or _no_progress)


def check(
    *,
    verify_content: bool = False,
    grace: timedelta | None = None,
    progress: Callable[[str, int], None] | None = None,
    checkers: bool = True,
) -> Report:
    """Check the store; return a :class:`Report` whose ``problems`` are empty when it is
    consistent. ``verify_content`` also hashes every content file. ``grace`` (default the
    ``ORPHAN_GRACE`` setting) is the age below which unreferenced files are left out.
    ``checkers=False`` skips the registered checkers (the search index check).
    ``progress(step, amount)`` is called as work is done (see ``vi_check``)."""
    options = _options(verify_content, grace, progress)
    report = Report()
    _check_statistics(report)
    _check_clusters(report)
    _check_current(report)
    _check_tree(report, options)
    _check_blobs(report)
    _check_files(report, options)
    if checkers:
        for check_more, _ in list(_checkers.values()):
            check_more(report, options)
    return report


# --- the tables ------------------------------------------------------------------------------


def _label(path: str) -> str:
    return path or "/"


def _check_statistics(report: Report) -> None:
    for difference in api.recompute_statistics():
        report.add("statistics", f"statistics of {difference}", path=difference.path)


def _check_clusters(report: Report) -> None:
    normal = Version.objects.filter(cluster=Cluster.NORMAL)
    several = (
        normal.values("node")
        .annotate(n=Count("serial"))
        .filter(n__gt=1)
        .values_list("node", flat=True)
        .order_by()
    )
    crowded = set()
    for path, serial in (
        normal.filter(node__in=several)
        .order_by("node__path", "serial")
        .values_list("node__path", "serial")
        .iterator()
    ):
        crowded.add(path)
        if (
            report.problems
            and report.problems[-1].kind == "several-normal"
            and report.problems[-1].path == path
        ):
            report.problems[-1].serials.append(serial)
        else:
            report.add("several-normal", "", path=path, serials=[serial])
    for problem in report.problems:
        if problem.kind == "several-normal":
            problem.message = (
                f"{_label(problem.path)} has {len(problem.serials)} live (NORMAL) versions: "
                f"{listed(problem.serials)}; only the current one may be"
            )
    # Against the newest version rather than the current pointer, so that a wrong pointer is
    # reported once, as a pointer problem.
    newer = Version.objects.filter(node=OuterRef("node"), serial__gt=OuterRef("serial"))
    stray = normal.filter(Exists(newer)).values_list("node__path", "serial")
    for path, serial in stray.order_by("node__path").iterator():
        if path not in crowded:
            report.add(
                "normal-not-current",
                f"{_label(path)}: version {serial} is live (NORMAL) but is not the current version",
                path=path,
                serials=[serial],
            )
    markers = Version.objects.filter(checksum="").exclude(cluster=Cluster.DELETED)
    for path, serial, cluster in (
        markers.order_by("serial").values_list("node__path", "serial", "cluster").iterator()
    ):
        report.add(
            "marker-not-deleted",
            f"{_label(path)}: delete marker {serial} is in {Cluster(cluster).label}, not deleted",
            path=path,
            serials=[serial],
        )


def listed(items: list) -> str:
    """The first ``LISTED`` (50) of ``items``, comma-separated, and how many more there are."""
    shown = ", ".join(map(str, items[:LISTED]))
    return shown + (f" and {len(items) - LISTED} more" if len(items) > LISTED else "")


def _check_current(report: Report) -> None:
    newest = Version.objects.filter(node=OuterRef("pk")).order_by("-serial").values("serial")[:1]
    pointer_node = Version.objects.filter(serial=OuterRef("current_id")).values("node_id")[:1]
    wrong = (
        Node.objects.annotate(newest=Subquery(newest), pointer_node=Subquery(pointer_node))
        .filter(
            Q(current__isnull=True, newest__isnull=False)
            | Q(current__isnull=False, newest__isnull=True)
            | (Q(current__isnull=False, newest__isnull=False) & ~Q(current=F("newest")))
        )
        .order_by("path")
        .values_list("pk", "path", "current_id", "newest", "pointer_node")
    )
    for pk, path, current, newest_serial, pointer in wrong.iterator():
        where = dict(path=path, serials=[s for s in (current, newest_serial) if s is not None])
        if current is None:
            report.add(
                "current-missing",
                f"{_label(path)} has versions but no current version (the newest is {newest_serial})",
                **where,
            )
        elif pointer is None:
            report.add(
                "current-dangling", f"{_label(path)}: the current version {current} does not exist", **where
            )
        elif pointer != pk:
            report.add(
                "current-foreign",
                f"{_label(path)}: the current version {current} belongs to another item",
                **where,
            )
        else:
            report.add(
                "current-not-newest",
                f"{_label(path)}: the current version is {current}, not the newest one ({newest_serial})",
                **where,
            )


def _check_tree(report: Report, options: Options) -> None:
    rows = Node.objects.order_by("path").values_list("path", "depth", "parent_id", "parent__path")
    nodes = 0
    for path, depth, parent_id, parent in rows.iterator(chunk_size=2000):
        nodes += 1
        if path == "":
            if parent_id is not None or depth != 0:
                report.add("root", f"the root node has a parent or a depth ({depth}) other than 0", path=path)
            continue
        expected = paths.parent_path(path)
        if parent_id is None:
            report.add("parent", f"{path} has no parent node (expected {_label(expected)})", path=path)
        elif parent != expected:
            report.add(
                "parent",
                f"{path}: the parent node is {_label(parent)}, expected {_label(expected)}",
                path=path,
            )
        if depth != paths.depth(path):
            report.add("depth", f"{path}: depth is {depth}, expected {paths.depth(path)}", path=path)
        if nodes % 1000 == 0:
            options.progress("nodes", 1000)
    options.progress("nodes", nodes % 1000)
    if nodes and not Node.objects.filter(path="").exists():
        report.add("root", "there is no root node (path '') although other nodes exist", path="")
    report.counts["nodes"] = nodes


def _version_counts():
    """Per checksum: how many versions use it (a subquery for Blob rows)."""
    return (
        Version.objects.filter(checksum=OuterRef("pk"))
        .order_by()
        .values("checksum")
        .annotate(n=Count("serial"))
        .values("n")
    )


def _check_blobs(report: Report) -> None:
    wrong = (
        Blob.objects.annotate(
            used=Coalesce(Subquery(_version_counts()), Value(0), output_field=IntegerField())
        )
        .exclude(refcount=F("used"))
        .exclude(refcount__lte=0, used=0)
        .order_by("checksum")
        .values_list("checksum", "refcount", "used")
    )
    for checksum, refcount, used in wrong.iterator():
        report.add(
            "refcount",
            f"content {checksum[:12]}: reference count {refcount}, but {used} versions use it",
            checksum=checksum,
        )
    unknown = (
        Version.objects.exclude(checksum="")
        .exclude(checksum__in=Blob.objects.values("checksum"))
        .values("checksum")
        .annotate(n=Count("serial"))
        .order_by("checksum")
        .values_list("checksum", "n")
    )
    for checksum, n in unknown.iterator():
        report.add(
            "blob-missing",
            f"content {checksum[:12]} is used by {n} versions but has no content record",
            checksum=checksum,
        )


# --- the content files -----------------------------------------------------------------------


@dataclass
class _File:
    name: str
    key: str  # the checksum its name says


def _walk(store, folder: str) -> Iterator[str]:
    """Every file below ``folder``, sorted by name at each level (so checksums come sorted)."""
    try:
        folders, files = store.listdir(folder)
    except FileNotFoundError:
        return
    for name in sorted(files):
        yield f"{folder}/{name}"
    for sub in sorted(folders):
        yield from _walk(store, f"{folder}/{sub}")


def _is_hex(text: str, length: int) -> bool:
    return len(text) == length and all(c in "0123456789abcdef" for c in text)


def _content_files(store, prefix: str, strays: list[str]) -> Iterator[_File]:
    """The content files, sorted by checksum; anything else under ``prefix`` except the
    temp folder is appended to ``strays``."""
    try:
        folders, files = store.listdir(prefix)
    except FileNotFoundError:
        return
    strays.extend(f"{prefix}/{name}" for name in files)
    for top in sorted(folders):
        if top == "tmp":
            continue
        if not _is_hex(top, 2):
            strays.extend(_walk(store, f"{prefix}/{top}"))
            continue
        subfolders, files = store.listdir(f"{prefix}/{top}")
        strays.extend(f"{prefix}/{top}/{name}" for name in files)
        for sub in sorted(subfolders):
            folder = f"{prefix}/{top}/{sub}"
            if not _is_hex(sub, 2):
                strays.extend(_walk(store, folder))
                continue
            deeper, files = store.listdir(folder)
            strays.extend(itertools.chain.from_iterable(_walk(store, f"{folder}/{d}") for d in deeper))
            for name in sorted(files):
                if _is_hex(name, 64) and name.startswith(top + sub):
                    yield _File(f"{folder}/{name}", name)
                else:
                    strays.append(f"{folder}/{name}")


def _merged(*streams: Iterator[tuple[str, object]]) -> Iterator[tuple[str, list]]:
    """Full outer merge of streams sorted by key: (key, [row of stream i or None, ...])."""

    def tag(i, stream):
        return ((key, i, row) for key, row in stream)

    tagged = [tag(i, stream) for i, stream in enumerate(streams)]
    for key, group in itertools.groupby(heapq.merge(*tagged, key=lambda t: (t[0], t[1])), key=lambda t: t[0]):
        rows = [None] * len(streams)
        for _, i, row in group:
            rows[i] = row
        yield key, rows


def _age(store, name: str):
    try:
        return timezone.now() - store.get_modified_time(name)
    except (FileNotFoundError, NotImplementedError):
        return None


def _check_files(report: Report, options: Options) -> None:
    store = content_store.storage()
    prefix = app_settings.CONTENT_PREFIX
    strays: list[str] = []
    counts = report.counts
    counts.update(content=0, files=0, young_files=0, temp_files=0)
    used = (
        Version.objects.exclude(checksum="")
        .values("checksum")
        .annotate(low=Min("size"), high=Max("size"))
        .order_by("checksum")
        .values_list("checksum", "low", "high")
    )
    referenced = Blob.objects.filter(refcount__gt=0).order_by("checksum").values_list("checksum", flat=True)
    files = ((f.key, f) for f in _content_files(store, prefix, strays))
    missing, wrong_size, wrong_hash = [], [], []
    for checksum, (file, sizes, blob) in _merged(
        files,
        ((checksum, (low, high)) for checksum, low, high in used.iterator(chunk_size=2000)),
        ((checksum, True) for checksum in referenced.iterator(chunk_size=2000)),
    ):
        if file is not None:
            counts["files"] += 1
        if sizes is not None:
            counts["content"] += 1
            if counts["content"] % 100 == 0:
                options.progress("content", 100)
        if file is None:
            if sizes is not None:
                missing.append(checksum)
            continue
        if sizes is None and blob is None:
            _unreferenced(report, store, file.name, options, "orphan", checksum)
            continue
        if sizes is None:
            continue  # a Blob row without versions: a refcount problem, reported above
        actual = store.size(file.name)
        if sizes != (actual, actual):
            wrong_size.append((checksum, actual))
        elif options.verify_content and file_checksum(file.name, store) != checksum:
            wrong_hash.append(checksum)
    options.progress("content", counts["content"] % 100)
    for name in strays:
        _unreferenced(report, store, name, options, "orphan", "")
    for name in _walk(store, f"{prefix}/tmp"):
        counts["temp_files"] += 1
        _unreferenced(report, store, name, options, "stale-temp", "")
    _report_content(report, missing, wrong_size, wrong_hash)


def _unreferenced(report: Report, store, name: str, options: Options, kind: str, checksum: str) -> None:
    age = _age(store, name)
    if age is not None and age < options.grace:
        report.counts["young_files"] += 1
        return
    what = "a staged temporary file left behind" if kind == "stale-temp" else "not used by any version"
    report.add(kind, f"content file {name} is {what}", name=name, checksum=checksum)


def _affected(checksums: list[str]) -> dict[str, list[tuple[int, str, int]]]:
    """The versions using each checksum: {checksum: [(serial, path, size), ...]}, queried
    after the scan, so that a version purged meanwhile is not reported."""
    found: dict[str, list] = {}
    for start in range(0, len(checksums), 500):
        rows = (
            Version.objects.filter(checksum__in=checksums[start : start + 500])
            .order_by("serial")
            .values_list("checksum", "serial", "node__path", "size")
        )
        for checksum, serial, path, size in rows:
            found.setdefault(checksum, []).append((serial, path, size))
    return found


def _report_content(
    report: Report, missing: list[str], wrong_size: list[tuple[str, int]], wrong_hash: list[str]
) -> None:
    store = content_store.storage()
    affected = _affected(missing + [c for c, _ in wrong_size] + wrong_hash)

    def add(kind: str, checksum: str, what: str, versions) -> None:
        if not versions:
            return
        where = ", ".join(f"{_label(path)} (version {serial})" for serial, path, _ in versions[:LISTED])
        more = f" and {len(versions) - LISTED} more" if len(versions) > LISTED else ""
        report.add(
            kind,
            f"content {checksum[:12]} {what}; affected: {where}{more}",
            path=versions[0][1],
            serials=[serial for serial, _, _ in versions],
            checksum=checksum,
            name=content_name(checksum),
        )

    for checksum in missing:
        if not store.exists(content_name(checksum)):  # re-checked: a put may have stored it meanwhile
            add("content-missing", checksum, "is missing from the content storage", affected.get(checksum))
    for checksum, actual in wrong_size:
        versions = [v for v in affected.get(checksum, []) if v[2] != actual]
        add(
            "content-size",
            checksum,
            f"is {actual} bytes long, not the size recorded for the versions",
            versions,
        )
    for checksum in wrong_hash:
        add(
            "content-hash",
            checksum,
            "does not match its SHA-256 (the file is damaged)",
            affected.get(checksum),
        )


# --- repair ----------------------------------------------------------------------------------

_NODE_KINDS = {
    "several-normal",
    "normal-not-current",
    "marker-not-deleted",
    "current-missing",
    "current-foreign",
    "current-dangling",
    "current-not-newest",
}
_TREE_KINDS = {"root", "parent", "depth"}
_BLOB_KINDS = {"refcount", "blob-missing"}
#: The kinds :func:`repair` can fix from the database; the others are only reported.
REPAIRABLE = frozenset({"statistics", "orphan", "stale-temp"} | _NODE_KINDS | _TREE_KINDS | _BLOB_KINDS)
_FILE_KINDS = {"orphan", "stale-temp"}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)  # the time of a statistics row made to be locked


def repair(
    *,
    verify_content: bool = False,
    grace: timedelta | None = None,
    progress: Callable[[str, int], None] | None = None,
    checkers: bool = True,
) -> Report:
    """Check the store (as :func:`check` does, with the same arguments), repair what the
    database allows, and check again. Returns the second check's :class:`Report`:
    ``problems`` is what is left (empty when the store is whole now) and ``repaired`` what was
    fixed.

    Repaired, in this order, each in a short transaction of its own that takes the locks the
    write path takes, so that it is safe while writers run (a problem that a writer fixed or
    changed meanwhile is re-read under the lock and left alone if it is gone):

    - the tree: a node's parent and depth follow from its path; missing parent folders are
      created (``root``, ``parent``, ``depth``);
    - each node's versions: the newest version is the current one, at most that one is NORMAL
      (a live item stays live, on its newest version), delete markers are DELETED; statistics
      follow each change and search is told, as for any write (``several-normal``,
      ``normal-not-current``, ``marker-not-deleted``, ``current-*``);
    - reference counts are set to the number of versions using the content, under the Blob
      row lock (``refcount``, ``blob-missing``); content nobody uses any more is freed;
    - statistics are recomputed, node by node, under the lock of their rows (``statistics``);
    - unreferenced content files and stale staged files older than the grace period are deleted
      (``orphan``, ``stale-temp``), content files through
      :func:`versioned_items.blobs.delete_unreferenced`, which deletes a file only while its
      row says nobody references it.

    Content that is missing, has the wrong size or the wrong hash cannot be repaired from the
    database: it stays in ``problems``, with the versions affected (a put of the same bytes
    stores the file again). With ``verify_content`` the second check does not hash again; the
    hash problems of the first are carried over. Registered checkers' repair functions run last.
    """
    options = _options(verify_content, grace, progress)
    found = check(
        verify_content=verify_content, grace=options.grace, progress=options.progress, checkers=checkers
    )
    by_kind: dict[str, list[Problem]] = {}
    for problem in found.problems:
        by_kind.setdefault(problem.kind, []).append(problem)
    kinds = set(by_kind)
    repaired = found.repaired
    if kinds & _TREE_KINDS:
        _repair_each(repaired, _problems(by_kind, _TREE_KINDS), "path", _repair_tree)
    if kinds & _NODE_KINDS:
        _repair_each(repaired, _problems(by_kind, _NODE_KINDS), "path", _repair_versions)
    if kinds & _BLOB_KINDS:
        _repair_each(repaired, _problems(by_kind, _BLOB_KINDS), "checksum", _repair_refcount)
    if kinds & (_TREE_KINDS | _NODE_KINDS | {"statistics"}):
        _repair_statistics(repaired)  # recomputed afresh: the repairs above may have changed them
    if kinds & _FILE_KINDS:
        _repair_files(repaired, _problems(by_kind, _FILE_KINDS), options)
    if checkers:
        for _, repair_more in list(_checkers.values()):
            if repair_more is not None:
                repair_more(found, options)
    report = check(grace=options.grace, progress=options.progress, checkers=checkers)
    report.repaired = repaired
    report.problems += [
        p for p in by_kind.get("content-hash", []) if Version.objects.filter(checksum=p.checksum).exists()
    ]
    return report


def _problems(by_kind: dict[str, list[Problem]], kinds: set[str]) -> list[Problem]:
    return [p for kind in sorted(kinds) for p in by_kind.get(kind, [])]


def _repair_each(
    repaired: list[Problem], problems: list[Problem], key: str, fix: Callable[[str], bool]
) -> None:
    """Call ``fix(where)`` once per distinct ``problem.<key>``; the problems of a place that
    needed fixing go to ``repaired``."""
    done: dict[str, bool] = {}
    for problem in problems:
        where = getattr(problem, key)
        if where not in done:
            done[where] = fix(where)
        if done[where]:
            repaired.append(problem)


def _repair_tree(path: str) -> bool:
    """Give the node at ``path`` the parent and depth its path says, creating missing parent
    folders, with the locks of the write path (:func:`versioned_items.api.ensure_nodes`).
    Returns whether anything changed."""
    with operation() as changes:
        node = locking.lock(locking.for_path(path, Mode.UPDATE)).get(path)
        if node is None:
            if path != "":
                return False
            api.ensure_nodes("", changes)  # the root itself was missing
            return True
        if path == "":
            parent_id, depth = None, 0
        else:
            parent_path = paths.parent_path(path)
            parents = api.ensure_nodes(parent_path, changes, Mode.KEY_SHARE, also={path: Mode.UPDATE})
            parent_id, depth = parents[parent_path].pk, paths.depth(path)
        if (node.parent_id, node.depth) == (parent_id, depth):
            return False
        Node.objects.filter(pk=node.pk).update(parent_id=parent_id, depth=depth)
        changes.nodes.add(node.pk)
    return True


def _repair_versions(path: str) -> bool:
    """Make the newest version of the node at ``path`` its current one, at most that one NORMAL
    and its delete markers DELETED, under the node's row lock. Statistics follow (the write
    path's own :func:`~versioned_items.api.move_to_cluster`). Returns whether anything
    changed."""
    with operation() as changes:
        node = locking.lock(locking.for_path(path)).get(path)  # as a put of it would
        if node is None:
            return False
        versions = Version.objects.filter(node=node)
        newest = versions.order_by("-serial").first()
        if newest is None:
            if node.current_id is None:
                return False
            Node.objects.filter(pk=node.pk).update(current=None)
            changes.nodes.add(node.pk)
            return True
        newest.node = node
        live = versions.filter(cluster=Cluster.NORMAL).exists()
        pointer_broken = node.current_id != newest.serial
        wrong = list(
            versions.filter(Q(cluster=Cluster.NORMAL) | Q(checksum=""))
            .exclude(serial=newest.serial)
            .exclude(cluster=Cluster.DELETED, checksum="")
        )
        now = timezone.now()
        for version in wrong:
            version.node = node
            cluster = Cluster.HISTORY if version.checksum else Cluster.DELETED
            api.move_to_cluster(version, cluster, changes, now)
        if not newest.checksum:
            target = Cluster.DELETED
        elif live or (pointer_broken and newest.cluster == Cluster.HISTORY):
            target = Cluster.NORMAL  # a live item stays live, on its newest version
        else:
            target = newest.cluster  # a version moved to HISTORY on purpose stays there
        changed = bool(wrong) or target != newest.cluster or pointer_broken
        if target != newest.cluster:
            api.move_to_cluster(newest, target, changes, now)
        if pointer_broken:
            Node.objects.filter(pk=node.pk).update(current=newest.serial)
            changes.nodes.add(node.pk)
            changes.versions.add(newest.serial)
    return changed


def _repair_refcount(checksum: str) -> bool:
    """Set the reference count of ``checksum`` to the number of versions using it, under the
    Blob row lock (creating a missing row); content nobody uses is freed as a write frees it.
    Returns whether the count changed."""
    size = Version.objects.filter(checksum=checksum).values_list("size", flat=True).first()
    with transaction.atomic():
        # The upsert of no references locks the row until commit: writers adding or dropping
        # references to this content wait, so the count below stays true.
        refcount = content_store.reference({checksum: 0}, {checksum: size or 0})[checksum]
        used = Version.objects.filter(checksum=checksum).count()
        if refcount > used:
            content_store.release({checksum: refcount - used})
        elif refcount < used:
            content_store.reference({checksum: used - refcount}, {})
        elif used == 0:
            transaction.on_commit(lambda: content_store.delete_unreferenced([checksum]))
    return refcount != used


def _repair_statistics(repaired: list[Problem]) -> None:
    """Recompute the statistics and fix each difference under the lock of its row."""
    for difference in api.recompute_statistics():
        if _repair_statistics_row(difference.path, difference.cluster):
            repaired.append(Problem("statistics", f"statistics of {difference}", path=difference.path))


def _repair_statistics_row(path: str, cluster: int) -> bool:
    """Set the statistics of ``cluster`` at the node ``path`` to a recomputation from the
    versions below it. Writers add their deltas to the row at the end of their transaction:
    with the row locked, a writer that already added its delta has committed (and is counted
    below), one that has not adds it after this commit. Returns whether the row changed."""
    with operation():
        node = Node.objects.filter(path=path).first()
        if node is None:
            return False
        upsert_statistics([(node.pk, cluster, 0, 0, _EPOCH)])  # creates and locks the row
        row = Statistics.objects.get(node=node, cluster=cluster)
        below = Version.objects.filter(
            cluster=cluster, node__in=Node.objects.subtree(path, include_self=False).values("pk")
        )
        expected = below.aggregate(
            population=Count("serial", filter=Q(node__depth=node.depth + 1)),
            size=Sum("size"),
            mtime=Max("mtime"),
        )
        size, mtime = expected["size"] or 0, expected["mtime"]
        created = row.mtime == _EPOCH
        stale = mtime is not None and (created or row.mtime < mtime)
        differs = (row.population, row.size) != (expected["population"], size)
        if differs or stale or created:
            Statistics.objects.filter(pk=row.pk).update(
                population=expected["population"], size=size, mtime=mtime if stale or created else row.mtime
            )
    return differs or stale


def _repair_files(repaired: list[Problem], problems: list[Problem], options: Options) -> None:
    """Delete unreferenced files still older than the grace period: content files through
    :func:`~versioned_items.blobs.delete_unreferenced` (which re-checks the references under
    the row lock), other files and stale staged files directly."""
    store = content_store.storage()
    named: dict[str, Problem] = {}
    for problem in problems:
        age = _age(store, problem.name)
        if age is None or age < options.grace:
            continue  # gone meanwhile, or touched again: a write may own it now
        if problem.checksum and problem.name == content_name(problem.checksum):
            named[problem.checksum] = problem
            continue
        try:
            store.delete(problem.name)
        except OSError as error:  # reported again by the check that follows
            logger.warning("could not delete %s: %s", problem.name, error)
            continue
        repaired.append(problem)
    if named:
        content_store.delete_unreferenced(named)
        repaired.extend(p for c, p in named.items() if not store.exists(p.name))

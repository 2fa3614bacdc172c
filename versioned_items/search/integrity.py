"""The search indexes' part of the integrity check: ``vi_check`` compares them with the database.

Registered with :func:`versioned_items.integrity.register_checker` from the app's
``AppConfig.ready()``, so :func:`versioned_items.integrity.check` (and ``vi_check``) report
index differences whenever this app is installed, and the core knows nothing of search.

Problems, one per index and kind of difference, naming up to 50 documents (node ids for the
latest index, serials for the history index):

- ``index-missing``, ``index-stale``, ``index-changed``: documents the database calls for but
  the index lacks, documents of objects that are gone, documents whose fields differ;
- ``outbox-overdue``: index changes recorded longer ago than ``SEARCH_MAX_LAG`` and still not
  applied;
- ``index-unavailable``: an index cannot be read (rebuild it with ``vi_rebuild_index``).

Pending outbox entries are applied before comparing, so that changes merely in flight are not
reported. :func:`repair_indexes` runs :func:`~versioned_items.search.indexing.update_index`,
which fixes only the documents that differ.
"""

from versioned_items.exceptions import IndexUnavailable
from versioned_items.integrity import LISTED, Options, Report, listed

from . import indexing

INDEX_KINDS = ("index-missing", "index-stale", "index-changed", "outbox-overdue")


def check_indexes(report: Report, options: Options) -> None:
    """Compare both indexes with the database; add the differences to ``report`` as problems
    and a summary of each index, the outbox and the last rebuild to ``report.notes``."""
    try:
        found = indexing.check()
    except IndexUnavailable as error:
        report.add("index-unavailable", f"search: {error}")
        return
    for name in ("latest", "history"):
        diff = getattr(found.diff, name)
        report.notes.append(
            f"{name} index: {diff.documents} documents, {diff.expected} expected; "
            f"missing={len(diff.missing)} stale={len(diff.stale)} changed={len(diff.changed)}"
        )
        for label in ("missing", "stale", "changed"):
            ids = sorted(getattr(diff, label))
            if ids:
                report.add(
                    f"index-{label}",
                    f"{name} index: {len(ids)} documents {label}: {listed(ids)}",
                    serials=ids[:LISTED] if name == "history" else [],
                )
    report.notes.append(f"outbox: {found.pending} pending, {found.overdue} older than the lag bound")
    if found.overdue:
        report.add(
            "outbox-overdue",
            f"search: {found.overdue} index changes are older than the lag bound "
            f"and not applied yet (is an applier stuck?)",
        )
    rebuilt = indexing.index_status().indexes[0].last_rebuild
    report.notes.append(f"last rebuild: {rebuilt.isoformat(timespec='seconds') if rebuilt else 'never'}")


def repair_indexes(report: Report, options: Options) -> None:
    """Fix the index differences that ``report`` holds: apply the outbox, then add, remove or
    rewrite only the documents that differ. Fixed problems go to ``report.repaired``."""
    differences = [p for p in report.problems if p.kind in INDEX_KINDS]
    if not differences:
        return
    try:
        indexing.update_index()
    except IndexUnavailable:
        return  # reported again by the check that follows
    report.repaired.extend(differences)

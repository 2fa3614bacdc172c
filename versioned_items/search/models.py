"""The outbox, and the record of index maintenance runs.

The outbox (:class:`IndexChange`) holds index work recorded in the same database transaction as
the change itself. Each entry says "make the index agree with the database about this object".
Applying an entry reads the object's *current* state from the database, so entries are
idempotent: their order and duplicates do not matter, and a rolled-back transaction takes its
entries with it.

:class:`MaintenanceRun` records each rebuild, intelligent update and check, so that the index
status (``indexing.index_status()``) can say when the indexes were last rebuilt and checked.
"""

from datetime import datetime

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class IndexChangeQuerySet(models.QuerySet):
    def pending(self, *, include_applied: bool = True) -> "IndexChangeQuerySet":
        """Entries in the order they were recorded; without those already applied if asked."""
        qs = self.order_by("id")
        return qs if include_applied else qs.filter(applied=False)

    def backlog(self) -> dict[int, tuple[int, datetime]]:
        """``{kind: (entries not applied yet, when the oldest was recorded)}``, in one query;
        kinds with no such entry are left out."""
        rows = (
            self.filter(applied=False)
            .order_by()
            .values("kind")
            .annotate(count=models.Count("id"), oldest=models.Min("created"))
        )
        return {row["kind"]: (row["count"], row["oldest"]) for row in rows}


class IndexChange(models.Model):
    """One object whose index document must be checked against the database."""

    class Kind(models.IntegerChoices):
        LATEST = 0, _("latest document of a node")
        HISTORY = 1, _("history document of a version")

    id = models.BigAutoField(primary_key=True)
    kind = models.PositiveSmallIntegerField(
        _("kind"),
        choices=Kind.choices,
        help_text=_("Which index the entry is for: latest (by node) or history (by version)."),
    )
    object_id = models.BigIntegerField(
        _("object id"),
        help_text=_("The node id (latest) or the version serial (history) to recheck."),
    )
    applied = models.BooleanField(
        _("applied"),
        default=False,
        help_text=_(
            "Already applied to the live index while a rebuild was running; kept so that it "
            "is replayed into the rebuilt index after the swap."
        ),
    )
    created = models.DateTimeField(
        _("created"),
        default=timezone.now,
        help_text=_("When the change was recorded; vi_check reports entries older than the lag bound."),
    )

    objects = IndexChangeQuerySet.as_manager()

    class Meta:
        verbose_name = _("index change")
        verbose_name_plural = _("index changes")
        permissions = [("manage_index", _("Can check, update and rebuild the search indexes"))]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.object_id}"


def _count(verbose_name, help_text) -> models.PositiveIntegerField:
    """A count that a maintenance run may leave empty (not every kind of run counts it)."""
    return models.PositiveIntegerField(verbose_name, null=True, blank=True, help_text=help_text)


class MaintenanceRunQuerySet(models.QuerySet):
    def succeeded(self) -> "MaintenanceRunQuerySet":
        """Runs that finished without an error."""
        return self.filter(finished__isnull=False, error="")

    def newest_of_each_kind(self) -> dict[str, "MaintenanceRun"]:
        """``{kind: the newest run of that kind}`` among these runs, in one query."""
        newest = self.order_by().values("kind").annotate(newest=models.Max("id")).values("newest")
        return {run.kind: run for run in self.model.objects.filter(id__in=models.Subquery(newest))}

    def prune(self, kind: str, *, keep: int = 100) -> None:
        """Delete the runs of ``kind`` but the newest ``keep``: a check run from cron every
        minute must not grow the table without end."""
        oldest_kept = self.filter(kind=kind).order_by("-id").values_list("id", flat=True)[keep - 1 : keep]
        self.filter(kind=kind, id__lt=models.Subquery(oldest_kept)).delete()


class MaintenanceRun(models.Model):
    """One rebuild, intelligent update or check of the indexes, recorded by the library function
    that ran it (``indexing.rebuild``, ``update_index``, ``check``), whoever called it: the
    index status (``indexing.index_status()``) reads the last ones."""

    class Kind(models.TextChoices):
        REBUILD = "rebuild", _("rebuild")
        UPDATE = "update", _("intelligent update")
        CHECK = "check", _("check")

    id = models.BigAutoField(primary_key=True)
    kind = models.CharField(
        _("kind"),
        max_length=16,
        choices=Kind.choices,
        help_text=_("What ran: a rebuild, an intelligent update or a check."),
    )
    dry_run = models.BooleanField(
        _("dry run"),
        default=False,
        help_text=_("An intelligent update that only reported the differences."),
    )
    started = models.DateTimeField(_("started"), default=timezone.now, help_text=_("When the run started."))
    finished = models.DateTimeField(
        _("finished"),
        null=True,
        blank=True,
        help_text=_("When the run ended; empty while it runs, and for a run that failed or was killed."),
    )
    error = models.TextField(_("error"), blank=True, help_text=_("Why the run failed; empty if it did not."))
    latest_documents = _count(
        _("latest documents"),
        _("Documents of the latest index: written by a rebuild, found by an update or a check."),
    )
    history_documents = _count(
        _("history documents"),
        _("Documents of the history index: written by a rebuild, found by an update or a check."),
    )
    latest_differences = _count(
        _("latest differences"),
        _("Documents of the latest index that were missing, stale or changed (update and check)."),
    )
    history_differences = _count(
        _("history differences"),
        _("Documents of the history index that were missing, stale or changed (update and check)."),
    )
    statistics_differences = _count(
        _("statistics differences"), _("Statistics rows that differed from a recomputation (check).")
    )
    applied = models.PositiveIntegerField(
        _("applied"),
        default=0,
        help_text=_(
            "Outbox entries the run applied (a rebuild: replayed into the new indexes after the swap)."
        ),
    )

    objects = MaintenanceRunQuerySet.as_manager()

    class Meta:
        verbose_name = _("index maintenance run")
        verbose_name_plural = _("index maintenance runs")

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.started:%Y-%m-%d %H:%M:%S}"

    @property
    def differences(self) -> int | None:
        """Differing documents of both indexes (None for a rebuild)."""
        if self.latest_differences is None or self.history_differences is None:
            return None
        return self.latest_differences + self.history_differences

"""The outbox: index work recorded in the same database transaction as the change itself.

Each entry says "make the index agree with the database about this object". Applying an entry
reads the object's *current* state from the database, so entries are idempotent: their order
and duplicates do not matter, and a rolled-back transaction takes its entries with it.
"""

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class IndexChangeQuerySet(models.QuerySet):
    def pending(self, *, include_applied: bool = True) -> "IndexChangeQuerySet":
        """Entries in the order they were recorded; without those already applied if asked."""
        qs = self.order_by("id")
        return qs if include_applied else qs.filter(applied=False)


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

"""The outbox and the record of maintenance runs."""

from datetime import timedelta

import pytest
from django.utils import timezone

from versioned_items.search.models import IndexChange, MaintenanceRun

pytestmark = pytest.mark.django_db


def test_pending_in_order_and_without_applied():
    IndexChange.objects.bulk_create(
        [
            IndexChange(kind=IndexChange.Kind.HISTORY, object_id=3),
            IndexChange(kind=IndexChange.Kind.LATEST, object_id=1, applied=True),
            IndexChange(kind=IndexChange.Kind.LATEST, object_id=2),
        ]
    )
    assert [e.object_id for e in IndexChange.objects.pending()] == [3, 1, 2]
    assert [e.object_id for e in IndexChange.objects.pending(include_applied=False)] == [3, 2]
    assert str(IndexChange.objects.first()) == "history document of a version 3"


def test_backlog_counts_pending_entries_per_kind_with_the_oldest():
    old = timezone.now() - timedelta(minutes=5)
    IndexChange.objects.bulk_create(
        [
            IndexChange(kind=IndexChange.Kind.HISTORY, object_id=1, created=old),
            IndexChange(kind=IndexChange.Kind.HISTORY, object_id=2),
            IndexChange(kind=IndexChange.Kind.LATEST, object_id=1, applied=True),
        ]
    )
    assert IndexChange.objects.backlog() == {IndexChange.Kind.HISTORY: (2, old)}


def test_only_the_newest_runs_of_each_kind_are_kept():
    MaintenanceRun.objects.bulk_create([MaintenanceRun(kind=kind) for kind in ["check"] * 5 + ["rebuild"]])
    MaintenanceRun.objects.prune("check", keep=2)
    assert MaintenanceRun.objects.filter(kind="check").count() == 2
    assert MaintenanceRun.objects.filter(kind="rebuild").count() == 1
    newest = MaintenanceRun.objects.newest_of_each_kind()
    assert newest["check"] == MaintenanceRun.objects.filter(kind="check").latest("id")
    assert set(newest) == {"check", "rebuild"}


def test_succeeded_runs_finished_without_an_error():
    now = timezone.now()
    MaintenanceRun.objects.bulk_create(
        [
            MaintenanceRun(kind="check", finished=now, latest_differences=1, history_differences=2),
            MaintenanceRun(kind="check", error="IndexUnavailable: down"),
            MaintenanceRun(kind="rebuild"),  # still running, or killed
        ]
    )
    [run] = MaintenanceRun.objects.succeeded()
    assert run.differences == 3 and str(run).startswith("check ")

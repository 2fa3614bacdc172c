"""The outbox model."""

import pytest

from versioned_items.search.models import IndexChange

pytestmark = pytest.mark.django_db


def test_pending_in_order_and_without_applied():
    IndexChange.objects.bulk_create([
        IndexChange(kind=IndexChange.Kind.HISTORY, object_id=3),
        IndexChange(kind=IndexChange.Kind.LATEST, object_id=1, applied=True),
        IndexChange(kind=IndexChange.Kind.LATEST, object_id=2),
    ])
    assert [e.object_id for e in IndexChange.objects.pending()] == [3, 1, 2]
    assert [e.object_id for e in IndexChange.objects.pending(include_applied=False)] == [3, 2]
    assert str(IndexChange.objects.first()) == "history document of a version 3"

"""The receiver: one outbox entry per changed node and version, in the writer's transaction."""

import pytest
from django.db import transaction

from versioned_items import api
from versioned_items.models import Node, Version
from versioned_items.operations import ChangeSet
from versioned_items.search import indexing
from versioned_items.search.models import IndexChange
from versioned_items.search.receivers import record_index_changes
from versioned_items.signals import versions_changed

pytestmark = pytest.mark.django_db


def entries():
    return sorted(IndexChange.objects.values_list("kind", "object_id"))


def test_put_records_its_node_and_version():
    v1 = api.put("a/b.txt", b"x")
    assert entries() == [(0, v1.node_id), (1, v1.serial)]


def test_second_put_also_rechecks_the_previous_version():
    v1 = api.put("a/b.txt", b"x")
    IndexChange.objects.all().delete()
    v2 = api.put("a/b.txt", b"y")
    assert entries() == [(0, v1.node_id), (1, v1.serial), (1, v2.serial)]


def test_removed_versions_are_recorded_too():
    v1 = api.put("a/b.txt", b"x")
    IndexChange.objects.all().delete()
    api.remove_version(v1.serial)
    assert entries() == [(0, v1.node_id), (1, v1.serial)]


def test_rollback_takes_the_entries_with_it():
    with pytest.raises(RuntimeError):
        with transaction.atomic():
            api.put("a/b.txt", b"x")
            raise RuntimeError
    assert entries() == []


def test_one_insert_per_operation(django_assert_num_queries):
    changes = ChangeSet(nodes={1, 2}, versions={3, 4}, removed_versions={5})
    with django_assert_num_queries(1):
        record_index_changes(sender=Version, changes=changes)
    assert entries() == [(0, 1), (0, 2), (1, 3), (1, 4), (1, 5)]


def test_empty_change_set_writes_nothing(django_assert_num_queries):
    with django_assert_num_queries(0):
        record_index_changes(sender=Version, changes=ChangeSet())


def test_connected_for_the_version_sender_only():
    assert versions_changed.has_listeners(Version)
    assert not versions_changed.has_listeners(Node)


def test_one_commit_callback_per_transaction(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        with transaction.atomic():
            api.put("a/1", b"x")
            api.put("a/2", b"x")
    assert callbacks == [indexing.apply_after_commit]

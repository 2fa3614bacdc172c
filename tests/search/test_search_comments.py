"""Change comments in the indexes: the ``comment`` field of both, in the history's default
text only, stored for results, and compared with the database by the checker."""

import pytest

from versioned_items import api
from versioned_items.models import Version, direct_writes
from versioned_items.search import compare
from versioned_items.search.api import search

from ..search_fixtures import assert_in_step, found, history_docs, indexed

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _index(search_index):
    return search_index


@pytest.fixture
def edits():
    """Two items with commented versions and a commented delete marker."""
    return {
        "draft": api.put("docs/plan.txt", "budget for the year\n", comment="First draft"),
        "typo": api.put("docs/plan.txt", "budget for the year.\n", comment="Fix a typo in the budget"),
        "other": api.put("docs/notes.txt", "meeting notes\n", comment="Notes of Monday's meeting"),
        "gone": api.put("docs/old.txt", "obsolete words\n"),
        "marker": api.delete("docs/old.txt", comment="Superseded by the wombat plan"),
    }


def test_comment_words_find_versions_in_the_history(edits):
    indexed()
    serials = [hit.serial for hit in search("typo", history=True)]
    assert serials == [edits["typo"].serial]
    assert [hit.serial for hit in search("comment:draft", history=True)] == [edits["draft"].serial]
    # Stemmed, like the content: "drafts" finds "draft".
    assert [hit.serial for hit in search("comment:drafts", history=True)] == [edits["draft"].serial]
    # A delete marker's comment is searchable in the recycle bin's history.
    assert search("wombat", history=True).total == 0
    assert [hit.serial for hit in search("wombat", history=True, include_deleted=True)] == [
        edits["marker"].serial
    ]


def test_the_latest_index_has_the_field_but_not_in_its_default_text(edits):
    indexed()
    assert found("typo") == []
    assert found("comment:typo") == ["docs/plan.txt"]
    assert found("comment:draft") == []  # the current version's comment only


def test_hits_carry_the_comment(edits):
    indexed()
    (hit,) = search("comment:monday", history=True)
    assert hit.fields["comment"] == "Notes of Monday's meeting"
    assert history_docs()[edits["gone"].serial]["comment"] == ""


def test_the_checker_sees_a_comment_the_index_lacks(edits):
    indexed()
    assert_in_step()
    # As an index written before the field existed, or out of step: the comment differs.
    with direct_writes():
        Version.objects.filter(serial=edits["other"].serial).update(comment="Changed behind the index")
    diff = compare.compare()
    assert diff.history.changed == {edits["other"].serial}
    assert diff.latest.changed == {edits["other"].node_id}

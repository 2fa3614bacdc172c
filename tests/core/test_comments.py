"""Change comments: every API write that makes a version takes ``comment=``, checked by
validation.clean_comment; a rejected comment writes nothing."""

import re

import pytest

from versioned_items import api, validation
from versioned_items.exceptions import InvalidArgument
from versioned_items.models import Version

from ..helpers import snapshot

pytestmark = pytest.mark.django_db


def test_every_write_that_makes_a_version_keeps_its_comment():
    first = api.put("docs/a.txt", "one\n", comment="First draft")
    assert first.comment == "First draft"
    api.put("docs/a.txt", "two\n", comment="Second\ndraft\twith a tab\r\n")
    deleted = api.delete("docs/a.txt", comment="Obsolete")
    undeleted = api.undelete("docs/a.txt", comment="Still needed")
    restored = api.restore(first.serial, comment="Back to the first draft")
    copied = api.copy(first.serial, "docs/b.txt", comment="A copy for review")
    stored = dict(Version.objects.values_list("serial", "comment"))
    assert stored[deleted.serial] == "Obsolete"
    assert stored[undeleted.serial] == "Still needed"
    assert stored[restored.serial] == "Back to the first draft"  # not the original's comment
    assert stored[copied.serial] == "A copy for review"
    assert [v.comment for v in api.versions("docs/a.txt")][-2] == "Second\ndraft\twith a tab"


def test_no_comment_is_an_empty_one():
    assert api.put("a.txt", "x").comment == ""
    assert api.put("a.txt", "y", comment=None).comment == ""
    assert api.put("a.txt", "z", comment="  \n ").comment == ""


@pytest.mark.parametrize(
    "comment, message",
    [
        ("x" * (validation.MAX_COMMENT_LENGTH + 1), "the limit is 2,000"),
        ("bell\a", "U+0007"),
        ("nul\x00", "U+0000 (NUL)"),
        ("escape\x1b[31m", "U+001B (ESC)"),
        (42, "comment must be a string"),
    ],
)
def test_bad_comments_are_refused_and_nothing_is_written(comment, message):
    first = api.put("a.txt", "x")
    before = snapshot()
    for write in (
        lambda: api.put("a.txt", "y", comment=comment),
        lambda: api.put("new.txt", "y", comment=comment),
        lambda: api.restore(first.serial, comment=comment),
        lambda: api.copy(first.serial, "b.txt", comment=comment),
        lambda: api.delete("a.txt", comment=comment),
    ):
        with pytest.raises(InvalidArgument, match=re.escape(message)):
            write()
    assert snapshot() == before
    api.delete("a.txt")
    before = snapshot()
    with pytest.raises(InvalidArgument):
        api.undelete("a.txt", comment=comment)
    assert snapshot() == before


def test_a_comment_at_the_limit_is_kept_whole():
    comment = "é" * validation.MAX_COMMENT_LENGTH
    assert api.put("a.txt", "x", comment=comment).comment == comment
    assert Version.objects.get().comment == comment

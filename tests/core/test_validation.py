"""The one vocabulary of input rules (versioned_items.validation): one definition of a control
character for every layer, and the write path enforced on the models' QuerySets."""

import asyncio
import threading

import pytest
from django import forms as django_forms

from versioned_items import api, forms, listing, operations, paths, validation
from versioned_items.attribute_filters import parse_filter
from versioned_items.exceptions import (
    InvalidArgument,
    InvalidFilter,
    InvalidInput,
    InvalidPath,
    WriteOutsideOperation,
)
from versioned_items.models import Attribute, Node, Statistics, Version, direct_writes

pytestmark = pytest.mark.django_db

#: A C0 control, DEL, a C1 control (NEL), a lone surrogate of each half.
CONTROLS = ["\x07", "\x7f", "\x85", "\ud800", "\udfff"]
#: Category C members that real text carries: ZWJ (inside emoji), RLM, private use, unassigned.
PRINTABLE = ["\u200d", "\u200f", "\ue000", "\U000e0080"]


def every_rule():
    """Each layer's check of one piece of text, as a callable that raises on a bad character."""

    def form_marker(text):
        try:
            forms.clean_marker(text)
        except django_forms.ValidationError as error:
            raise InvalidInput(str(error)) from None

    return {
        "path": lambda t: paths.clean_path(f"a{t}b"),
        "prefix": lambda t: paths.clean_prefix(f"a{t}"),
        "key": lambda t: validation.clean_key(f"k{t}"),
        "domain": lambda t: validation.clean_domain(f"d{t}"),
        "user": lambda t: validation.clean_user(f"u{t}"),
        "content type": lambda t: validation.clean_content_type(f"text/x{t}"),
        "delimiter": lambda t: validation.clean_delimiter(f"/{t}"),
        "marker": lambda t: validation.clean_marker(f"m{t}"),
        "filter": lambda t: parse_filter(f"k=v{t}"),
        "form marker": form_marker,
    }


@pytest.mark.parametrize("char", CONTROLS, ids=lambda c: f"U+{ord(c):04X}")
@pytest.mark.parametrize("rule", list(every_rule()))
def test_every_layer_rejects_the_same_control_characters(rule, char):
    with pytest.raises(InvalidInput):
        every_rule()[rule](char)


@pytest.mark.parametrize("char", PRINTABLE, ids=lambda c: f"U+{ord(c):04X}")
@pytest.mark.parametrize("rule", list(every_rule()))
def test_every_layer_accepts_the_same_printable_text(rule, char):
    every_rule()[rule](char)


def test_the_messages_name_the_character():
    with pytest.raises(InvalidArgument, match=r"U\+007F \(DEL\)"):
        validation.clean_key("k\x7f")  # passed before: it checked ord(c) < 32 only
    with pytest.raises(InvalidPath, match=r"U\+D800 \(a lone surrogate\)"):
        paths.clean_path("a\ud800")
    with pytest.raises(InvalidFilter, match="U\\+0085"):
        parse_filter("k=\x85")


def test_rules_that_say_otherwise():
    assert validation.clean_value("line one\nline two\r\n\ttabbed") == "line one\nline two\r\n\ttabbed"
    assert parse_filter("a=1,\tb=2")  # a tab separates like a space
    with pytest.raises(InvalidArgument, match="NUL"):
        validation.clean_value("a\x00")
    with pytest.raises(InvalidArgument):
        validation.clean_value("lone \udc80")


def test_a_bad_content_type_is_an_error_not_truncated():
    with pytest.raises(InvalidArgument, match="content type"):
        api.put("docs/a.txt", b"x", content_type="text/" + "x" * 300)
    with pytest.raises(InvalidArgument, match="control character"):
        api.put("docs/a.txt", b"x", content_type="text/plain\r\nX-Injected: 1")
    assert not Node.objects.filter(path="docs/a.txt").exists()


def test_ranges_share_one_rule():
    assert validation.clean_size_range((1, None)) == (1, None)
    for bad, message in [((5, 1), "greater"), (5, "pair"), ((-1, 2), "at least 0"), ((True, 2), "int")]:
        with pytest.raises(InvalidArgument, match=message):
            validation.clean_size_range(bad)
    api.put("docs/a.txt", b"alpha")
    with pytest.raises(InvalidArgument, match="size_range"):
        listing.list_latest(size_range=(5, 1))


def test_the_model_field_uses_the_rule_of_the_user_name():
    assert Version._meta.get_field("muser").max_length == validation.MAX_USER_LENGTH


@pytest.mark.parametrize(
    "queryset",
    [
        lambda: Node.objects.all(),
        lambda: Version.objects.all(),
        lambda: Attribute.objects.all(),
        lambda: Statistics.objects.all(),
        lambda: api.children(""),
        lambda: api.versions("docs/a.txt"),
    ],
    ids=["nodes", "versions", "attributes", "statistics", "api.children", "api.versions"],
)
def test_querysets_refuse_writes_outside_an_operation(queryset):
    api.put("docs/a.txt", b"alpha", attributes={"k": "v"})
    before = (
        Node.objects.count(),
        Version.objects.count(),
        Attribute.objects.count(),
        list(Statistics.objects.values_list("population", "size")),
    )
    with pytest.raises(WriteOutsideOperation, match="versioned_items.api"):
        queryset().update(mtime=None) if queryset().model is Version else queryset().delete()
    with pytest.raises(WriteOutsideOperation):
        queryset().delete()
    assert before == (
        Node.objects.count(),
        Version.objects.count(),
        Attribute.objects.count(),
        list(Statistics.objects.values_list("population", "size")),
    )


def test_direct_writes_lift_the_guard_for_this_context_only():
    api.put("docs/a.txt", b"alpha")
    with direct_writes():
        assert Version.objects.filter(node__path="docs/a.txt").update(muser="fixed") == 1
    with pytest.raises(WriteOutsideOperation):
        Version.objects.update(muser="again")


def test_the_change_set_follows_threads_and_async_tasks():
    seen = {}

    async def task(name):
        seen[name] = operations.current()

    with operations.operation() as outer:
        assert operations.current() is outer
        thread = threading.Thread(target=lambda: seen.setdefault("thread", operations.current()))
        thread.start()
        thread.join()
        asyncio.run(task("task"))  # a task copies the context it was created in
    assert seen == {"thread": None, "task": outer}
    assert operations.current() is None

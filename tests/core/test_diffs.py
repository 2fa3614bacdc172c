"""versioned_items.diffs: text detection and line diffs of versions, HTML-escaped."""

import pytest

from versioned_items import api, diffs


def lines(hunks):
    return [(line.kind, line.old, line.new, line.text) for hunk in hunks for line in hunk.lines]


def test_decode_text_accepts_utf8_and_refuses_binary():
    assert diffs.decode_text("héllo\n".encode()) == "héllo\n"
    assert diffs.decode_text(b"a\x00b") is None
    assert diffs.decode_text(b"\xff\xfe\xfa") is None
    # A character cut at the end of a partial read is dropped, not an error.
    assert diffs.decode_text("aé".encode()[:-1], complete=False) == "a"


def test_diff_lines_numbers_both_sides():
    hunks, truncated = diffs.diff_lines(["a", "b", "c"], ["a", "B", "c", "d"])
    assert not truncated
    assert [h.header for h in hunks] == ["@@ -1,3 +1,4 @@"]
    assert lines(hunks) == [
        (" ", 1, 1, "a"),
        ("-", 2, None, "b"),
        ("+", None, 2, "B"),
        (" ", 3, 3, "c"),
        ("+", None, 4, "d"),
    ]


def test_diff_lines_keeps_context_and_splits_far_changes():
    old = [str(i) for i in range(30)]
    new = old[:]
    new[2], new[25] = "two", "twenty-five"
    hunks, _ = diffs.diff_lines(old, new, context=1)
    assert [h.header for h in hunks] == ["@@ -2,3 +2,3 @@", "@@ -25,3 +25,3 @@"]


def test_diff_lines_is_cut_at_the_limit(settings):
    settings.VERSIONED_ITEMS = {**getattr(settings, "VERSIONED_ITEMS", {}), "DIFF_MAX_LINES": 10}
    hunks, truncated = diffs.diff_lines([], [str(i) for i in range(50)])
    assert truncated and sum(len(h.lines) for h in hunks) == 10


@pytest.mark.django_db
def test_diff_versions_html_escapes_every_line():
    old = api.put("a.html", "<b>bold</b>\nsame\n")
    new = api.put("a.html", "<script>alert('x')</script>\nsame\n")
    diff = diffs.diff_versions(old, new)
    assert (diff.added, diff.removed) == (1, 1)
    html = diff.as_html()
    assert "<script>" not in html and "<b>" not in html
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in html
    assert "&lt;b&gt;bold&lt;/b&gt;" in html
    assert 'class="vi-diff-added"' in html and 'class="vi-diff-removed"' in html


@pytest.mark.django_db
def test_diff_versions_identical_binary_and_too_large(settings):
    a = api.put("x.txt", "same\n")
    b = api.put("x.txt", "same\n")
    assert diffs.diff_versions(a, b).identical
    assert "identical" in diffs.diff_versions(a, b).as_html()
    png = api.put("x.txt", b"\x89PNG\x00\x01")
    binary = diffs.diff_versions(b, png)
    assert not binary.comparable and "binary" in binary.as_html()
    settings.VERSIONED_ITEMS = {**getattr(settings, "VERSIONED_ITEMS", {}), "DIFF_MAX_BYTES": 3}
    assert "larger than 3 bytes" in diffs.diff_versions(a, b).reason


@pytest.mark.django_db
def test_diff_against_a_delete_marker_removes_everything():
    live = api.put("d.txt", "one\ntwo\n")
    marker = api.delete("d.txt")
    diff = diffs.diff_versions(live, marker)
    assert (diff.added, diff.removed) == (0, 2)


@pytest.mark.django_db
def test_read_text_cuts_at_the_limit_and_refuses_binary():
    text = diffs.read_text(api.put("t.txt", "0123456789"), 4)
    assert (text.text, text.truncated) == ("0123", True)
    assert diffs.read_text(api.put("t.txt", "short"), 100) == diffs.Text("short", False)
    assert diffs.read_text(api.put("b.bin", b"\x00\x01\x02"), 100) is None

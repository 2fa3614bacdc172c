import pytest

from versioned_items import paths
from versioned_items.exceptions import InvalidPath


@pytest.mark.parametrize(
    "raw, clean",
    [
        ("docs/a.txt", "docs/a.txt"),
        ("/docs/a.txt", "docs/a.txt"),
        ("ünï/cödé ✓.txt", "ünï/cödé ✓.txt"),
        ("a" * 1024, "a" * 1024),
    ],
)
def test_clean_path_accepts(raw, clean):
    assert paths.clean_path(raw) == clean


@pytest.mark.parametrize(
    "raw, message",
    [
        ("", "empty"),
        ("/", "empty"),
        ("a//b", "segment"),
        ("a/", "segment"),
        ("a/./b", "'.'"),
        ("a/../b", "'..'"),
        ("..", "'..'"),
        ("a\x00b", "U+0000"),
        ("a\nb", "U+000A"),
        ("a\x7fb", "U+007F"),
        ("a" * 1025, "1024 bytes"),
        ("é" * 513, "1024 bytes"),
        (b"bytes", "string"),
        (None, "string"),
    ],
)
def test_clean_path_rejects_with_the_reason(raw, message):
    with pytest.raises(InvalidPath, match=message.replace(".", r"\.").replace("+", r"\+")):
        paths.clean_path(raw)


def test_root_only_when_allowed():
    assert paths.clean_path("", allow_root=True) == ""
    with pytest.raises(InvalidPath):
        paths.clean_path("")


def test_tree_helpers():
    assert paths.ancestor_paths("a/b/c") == ["", "a", "a/b"]
    assert paths.ancestor_paths("a") == [""]
    assert paths.ancestor_paths("") == []
    assert paths.parent_path("a/b/c") == "a/b"
    assert paths.parent_path("a") == ""
    assert paths.parent_path("") is None
    assert paths.depth("") == 0 and paths.depth("a") == 1 and paths.depth("a/b") == 2
    assert paths.name("a/b/c.txt") == "c.txt"


def test_next_prefix_bounds_exactly_the_strings_with_the_prefix():
    assert paths.next_prefix("hello") == "hellp"
    assert paths.next_prefix("docs/") == "docs0"
    assert paths.next_prefix("a\U0010ffff") == "b"
    assert paths.next_prefix("a\ud7ff") == "a\ue000"
    assert paths.next_prefix("") is None
    upper = paths.next_prefix("hello")
    assert "hello\U0010ffff\U0010ffff" < upper
    assert not ("hellna" >= "hello")


def test_clean_prefix_allows_trailing_separator_and_empty():
    assert paths.clean_prefix("") == ""
    assert paths.clean_prefix("docs/") == "docs/"
    assert paths.clean_prefix("docs/re") == "docs/re"
    with pytest.raises(InvalidPath):
        paths.clean_prefix("docs//")

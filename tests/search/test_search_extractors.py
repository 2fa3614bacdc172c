"""Text extraction: the registry, the built-in extractors, the size cap and failures."""

import io
import logging

import pytest

from versioned_items.search import extractors
from versioned_items.search.extractors import extract, find_extractor, register, unregister


def run(data: bytes, content_type: str):
    return extract(lambda: io.BytesIO(data), content_type, label="test")


@pytest.mark.parametrize(
    "content_type, extractor",
    [
        ("text/plain", extractors.plain_text),
        ("text/csv; charset=utf-8", extractors.plain_text),
        ("TEXT/HTML", extractors.markup_text),
        ("application/xhtml+xml", extractors.markup_text),
        ("image/svg+xml", extractors.markup_text),
        ("application/json", extractors.json_text),
        ("application/ld+json", extractors.json_text),
        ("text/markdown", extractors.markdown_text),
        ("image/png", None),
        ("application/octet-stream", None),
        ("", None),
    ],
)
def test_registry_picks_the_most_specific_extractor(content_type, extractor):
    assert find_extractor(content_type) is extractor


def test_html_is_stripped_of_tags_scripts_and_entities():
    result = run(
        b"<html><head><style>p{}</style><script>var secret=1</script></head>"
        b"<body><h1>Title</h1><p>Tom &amp; Jerry</p></body></html>",
        "text/html",
    )
    assert result == extractors.Extraction("Title\nTom & Jerry", extractors.OK)


def test_json_gives_keys_and_values():
    result = run(b'{"title": "Report", "tags": ["a", "b"], "n": 3, "none": null}', "application/json")
    assert result.text.split("\n") == ["title", "Report", "tags", "a", "b", "n", "3", "none"]


def test_markdown_loses_its_punctuation():
    text = run(
        b"# Head\n\n* item **bold** and `code`\n\n[link](http://x.org) ![alt](i.png)\n```\nfenced\n```",
        "text/markdown",
    ).text
    assert "#" not in text and "**" not in text and "`" not in text and "![" not in text
    assert (
        "Head" in text
        and "bold" in text
        and "link http://x.org" in text
        and "alt" in text
        and "fenced" in text
    )


def test_charset_is_honoured():
    assert run("café".encode("latin-1"), "text/plain; charset=latin-1").text == "café"
    assert run(b"caf\xe9", "text/plain").text == "caf\ufffd"  # bad UTF-8 replaced, not fatal


def test_unsupported_types_are_metadata_only():
    opened = []
    result = extract(lambda: opened.append(1) or io.BytesIO(b"x"), "image/png")
    assert result == extractors.Extraction("", extractors.UNSUPPORTED)
    assert opened == []  # the content is not even read


def test_size_cap_truncates_and_says_so(settings):
    settings.VERSIONED_ITEMS = {"EXTRACT_MAX_CHARS": 5}
    assert run(b"abcdefghij", "text/plain") == extractors.Extraction("abcde", extractors.TRUNCATED)
    assert run(b"abcde", "text/plain") == extractors.Extraction("abcde", extractors.OK)


def test_cut_json_falls_back_to_text(settings):
    settings.VERSIONED_ITEMS = {"EXTRACT_MAX_CHARS": 1}
    result = run(b'{"key": "' + b"v" * 10000 + b'"}', "application/json")
    assert result.status == extractors.TRUNCATED
    assert result.text == "{"


def test_a_raising_extractor_is_logged_and_gives_no_text(caplog):
    register("application/x-test", lambda data, ctype: 1 / 0)
    try:
        with caplog.at_level(logging.ERROR, logger="versioned_items.search"):
            result = run(b"data", "application/x-test")
    finally:
        unregister("application/x-test")
    assert result == extractors.Extraction("", extractors.FAILED)
    assert "ZeroDivisionError" in caplog.text


def test_register_as_decorator_and_replace():
    @register("application/x-upper")
    def upper(data, content_type):
        return data.decode().upper()

    try:
        assert run(b"abc", "application/x-upper").text == "ABC"
        register("application/x-upper", lambda data, ctype: "replaced")
        assert run(b"abc", "application/x-upper").text == "replaced"
    finally:
        unregister("application/x-upper")
    assert find_extractor("application/x-upper") is None


@pytest.mark.parametrize("pattern", ["text", "*/*", "*/plain", "text/*/x", ""])
def test_bad_patterns_are_refused(pattern):
    with pytest.raises(ValueError, match="not valid"):
        register(pattern, extractors.plain_text)

"""Text extraction: turns a version's content into the text that the search indexes hold.

Extractors are registered by content type. Built in:

- ``text/html``, ``application/xhtml+xml``, ``application/xml``, ``text/xml`` and ``*/*+xml``:
  markup stripped (``<script>`` and ``<style>`` dropped);
- ``application/json`` and ``*/*+json``: the keys and scalar values, one per line;
- ``text/markdown`` and ``text/x-markdown``: the text without the Markdown punctuation;
- ``text/*``: the text as it is.

Any other type is indexed by its metadata only (path, name, attributes, ...). A site adds its
own extractor from its ``AppConfig.ready()``::

    from versioned_items.search import extractors

    @extractors.register("application/pdf")
    def pdf_text(data: bytes, content_type: str) -> str:
        ...

An extractor gets the content's bytes (at most about four bytes per character of
``EXTRACT_MAX_CHARS``) and the full content type, and returns text. The text is cut to
``EXTRACT_MAX_CHARS`` characters and the cut is recorded in the document's ``text_status``.
An extractor that raises never stops indexing: the document is indexed without content, with
``text_status`` ``"failed"``, and the failure is logged on the ``versioned_items.search`` logger.
"""

import html.parser
import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO

from versioned_items.conf import app_settings

logger = logging.getLogger("versioned_items.search")

Extractor = Callable[[bytes, str], str]

# (pattern, extractor), most specific first. A pattern is a full type ("text/html"), a major
# type with a wildcard ("text/*") or a structured-syntax suffix ("*/*+json").
_registry: list[tuple[str, Extractor]] = []

# text_status values stored in every document.
OK = "ok"  # all of the content's text is indexed
TRUNCATED = "truncated"  # the text was cut to EXTRACT_MAX_CHARS
FAILED = "failed"  # the extractor raised; indexed without content
UNSUPPORTED = "unsupported"  # no extractor for the content type; metadata only
EMPTY = "empty"  # the version has no content (e.g. a delete marker)


@dataclass(frozen=True)
class Extraction:
    """The text extracted from one content, and how complete it is (one of the statuses above)."""

    text: str
    status: str


def register(pattern: str, extractor: Extractor | None = None):
    """Register ``extractor`` for content types matching ``pattern``; usable as a decorator.

    A later registration for the same pattern replaces the earlier one. More specific patterns
    win over less specific ones whatever the order of registration: full type, then suffix
    (``*/*+json``), then major type (``text/*``).

    Returns the extractor. Raises ValueError for a pattern of another shape.
    """
    if extractor is None:
        return lambda func: register(pattern, func)
    pattern = pattern.strip().lower()
    if _pattern_rank(pattern) is None:
        raise ValueError(
            f"content type pattern {pattern!r} is not valid; use 'major/minor', 'major/*' or '*/*+suffix'"
        )
    unregister(pattern)
    _registry.append((pattern, extractor))
    _registry.sort(key=lambda item: _pattern_rank(item[0]))
    return extractor


def unregister(pattern: str) -> None:
    """Remove the extractor registered for exactly ``pattern`` (no error when there is none)."""
    pattern = pattern.strip().lower()
    _registry[:] = [item for item in _registry if item[0] != pattern]


def _pattern_rank(pattern: str) -> int | None:
    major, sep, minor = pattern.partition("/")
    if not sep or not major or not minor:
        return None
    if major == "*" and minor.startswith("*+") and len(minor) > 2:
        return 1
    if major != "*" and minor == "*":
        return 2
    if "*" not in pattern:
        return 0
    return None


def base_type(content_type: str) -> str:
    """``content_type`` lower-cased and without parameters: ``"Text/HTML; charset=x"`` -> ``"text/html"``."""
    return (content_type or "").split(";", 1)[0].strip().lower()


def find_extractor(content_type: str) -> Extractor | None:
    """The extractor for ``content_type`` (parameters ignored), or None when there is none."""
    ctype = base_type(content_type)
    major, _, minor = ctype.partition("/")
    suffix = minor.rpartition("+")[2] if "+" in minor else None
    for pattern, extractor in _registry:
        if pattern == ctype:
            return extractor
        if suffix and pattern == f"*/*+{suffix}":
            return extractor
        if pattern == f"{major}/*":
            return extractor
    return None


def extract(open_content: Callable[[], BinaryIO], content_type: str, label: str = "") -> Extraction:
    """Extract the text of one content.

    ``open_content`` opens the content as a binary file; it is called only when an extractor
    exists for ``content_type``. ``label`` names the content in log messages (e.g. a path and
    serial). Never raises because of the content: failures give status ``"failed"`` and are
    logged.
    """
    extractor = find_extractor(content_type)
    if extractor is None:
        return Extraction("", UNSUPPORTED)
    max_chars = app_settings.EXTRACT_MAX_CHARS
    # Four bytes per character is UTF-8's worst case, plus room for markup that is stripped.
    max_bytes = max_chars * 4 + 4096
    try:
        with open_content() as stream:
            data = stream.read(max_bytes + 1)
        cut_bytes = len(data) > max_bytes
        text = extractor(data[:max_bytes], content_type)
    except Exception:
        # Any error in any extractor: the document must still be indexed (the rule).
        logger.exception("Text extraction failed for %s (%s); indexed without content", label, content_type)
        return Extraction("", FAILED)
    if cut_bytes or len(text) > max_chars:
        return Extraction(text[:max_chars], TRUNCATED)
    return Extraction(text, OK)


def decode(data: bytes, content_type: str) -> str:
    """``data`` decoded with the content type's ``charset`` (default UTF-8), bad bytes replaced."""
    match = re.search(r"charset\s*=\s*\"?([\w.:-]+)", content_type or "", re.IGNORECASE)
    encoding = match.group(1) if match else "utf-8"
    try:
        return data.decode(encoding, errors="replace")
    except LookupError:  # an unknown charset name
        return data.decode("utf-8", errors="replace")


# --- built-in extractors ---


def plain_text(data: bytes, content_type: str) -> str:
    """The text as it is."""
    return decode(data, content_type)


class _TextCollector(html.parser.HTMLParser):
    # Elements whose content is not text a reader sees.
    SKIP = {"script", "style", "template", "noscript"}
    # Elements that end a line, so that words of adjacent blocks are not glued together.
    BLOCKS = {
        "p",
        "div",
        "br",
        "li",
        "tr",
        "td",
        "th",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "section",
        "article",
        "header",
        "footer",
        "pre",
        "blockquote",
        "title",
    }

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skipping = 0

    def handle_starttag(self, tag, attrs):
        if tag in self.SKIP:
            self.skipping += 1
        elif tag in self.BLOCKS:
            self.parts.append("\n")

    def handle_endtag(self, tag):
        if tag in self.SKIP and self.skipping:
            self.skipping -= 1
        elif tag in self.BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data):
        if not self.skipping:
            self.parts.append(data)


def markup_text(data: bytes, content_type: str) -> str:
    """HTML or XML with the tags stripped and entities decoded."""
    collector = _TextCollector()
    collector.feed(decode(data, content_type))
    collector.close()
    text = "".join(collector.parts)
    return re.sub(r"[ \t\r\f\v]*\n\s*", "\n", text).strip()


def json_text(data: bytes, content_type: str) -> str:
    """The keys and scalar values of a JSON document, one per line.

    A document cut by the size cap is not valid JSON; it is then indexed as plain text.
    """
    raw = decode(data, content_type)
    try:
        value = json.loads(raw)
    except ValueError:
        if len(data) >= app_settings.EXTRACT_MAX_CHARS * 4:
            return raw
        raise
    lines: list[str] = []
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            for key, child in reversed(list(item.items())):
                stack.append(child)
                stack.append(str(key))
        elif isinstance(item, list):
            stack.extend(reversed(item))
        elif item is not None:
            lines.append(str(item))
    return "\n".join(lines)


_MARKDOWN_RULES = [
    (re.compile(r"^```.*$|^~~~.*$", re.MULTILINE), ""),  # code fences
    (re.compile(r"!\[([^\]]*)\]\([^)]*\)"), r"\1"),  # images: keep the alt text
    (re.compile(r"\[([^\]]*)\]\(([^)]*)\)"), r"\1 \2"),  # links: keep text and target
    (re.compile(r"^\s{0,3}#{1,6}\s*", re.MULTILINE), ""),  # headings
    (re.compile(r"^\s{0,3}>\s?", re.MULTILINE), ""),  # block quotes
    (re.compile(r"^\s*(?:[-*+]|\d+[.)])\s+", re.MULTILINE), ""),  # list markers
    (re.compile(r"^\s*(?:[-*_]\s*){3,}$", re.MULTILINE), ""),  # horizontal rules
    (re.compile(r"(\*{1,3}|_{1,3}|~~|`+)(?=\S)(.+?)(?<=\S)\1"), r"\2"),  # emphasis, code spans
    (re.compile(r"<[^>\n]+>"), ""),  # inline HTML tags
]


def markdown_text(data: bytes, content_type: str) -> str:
    """Markdown without its punctuation: headings, emphasis, link syntax, fences, list markers."""
    text = decode(data, content_type)
    for pattern, replacement in _MARKDOWN_RULES:
        text = pattern.sub(replacement, text)
    return text.strip()


for _pattern, _extractor in [
    ("text/*", plain_text),
    ("text/html", markup_text),
    ("application/xhtml+xml", markup_text),
    ("application/xml", markup_text),
    ("text/xml", markup_text),
    ("*/*+xml", markup_text),
    ("application/json", json_text),
    ("*/*+json", json_text),
    ("text/markdown", markdown_text),
    ("text/x-markdown", markdown_text),
]:
    register(_pattern, _extractor)

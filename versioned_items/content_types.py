"""The content type a new version gets when its writer names none: the one place it is decided.

:func:`guess` looks at the item's name first and at the first bytes of the content second:

1. Names that are text by convention (``Makefile``, ``Dockerfile``, ``LICENSE``, ``README``...)
   and extensions of text formats (``.cfg``, ``.toml``, ``.po``, ``.ini``, ``.rst``, ``.md``,
   ``.yaml``...) get a ``text/*`` type from :data:`TEXT_NAMES` / :data:`TEXT_EXTENSIONS`. They
   come before Python's ``mimetypes``, whose answers depend on the machine's ``/etc/mime.types``
   (``.rst`` is ``text/prs.fallenstein.rst`` on Debian and unknown elsewhere) and which knows
   none of these names.
2. Otherwise ``mimetypes.guess_type()`` (with the non-standard types).
3. When that is unknown or ``application/octet-stream``, the content is sniffed: valid UTF-8
   without a NUL byte in its first ``SNIFF_BYTES`` (8 KiB) is
   ``text/plain``, anything else ``application/octet-stream``.

A ``text/*`` type is what the search app extracts text from, so such items are searchable as
well as previewed (the preview sniffs the content whatever its type). Types are decided when a
version is written; versions written before keep theirs.
"""

import mimetypes

from . import paths
from .diffs import SNIFF_BYTES, decode_text

#: The type of content that is not known to be anything else.
BINARY = "application/octet-stream"

#: Names (compared without case) of files that are text by convention, whatever follows a dot.
TEXT_NAMES: dict[str, str] = {
    name.lower(): "text/plain"
    for name in [
        "Makefile",
        "GNUmakefile",
        "Dockerfile",
        "Containerfile",
        "Vagrantfile",
        "Jenkinsfile",
        "Procfile",
        "Gemfile",
        "Rakefile",
        "LICENSE",
        "LICENCE",
        "COPYING",
        "README",
        "AUTHORS",
        "CONTRIBUTORS",
        "CHANGES",
        "CHANGELOG",
        "NEWS",
        "HISTORY",
        "INSTALL",
        "NOTICE",
        "TODO",
        "CODEOWNERS",
        ".gitignore",
        ".gitattributes",
        ".gitmodules",
        ".dockerignore",
        ".editorconfig",
        ".env",
    ]
}

#: Extensions (lower case, with the dot) of text formats, mapped to their ``text/*`` type.
TEXT_EXTENSIONS: dict[str, str] = {
    ".txt": "text/plain",
    ".text": "text/plain",
    ".md": "text/markdown",
    ".markdown": "text/markdown",
    ".rst": "text/x-rst",
    ".cfg": "text/plain",
    ".conf": "text/plain",
    ".ini": "text/plain",
    ".toml": "text/plain",
    ".yaml": "text/yaml",
    ".yml": "text/yaml",
    ".po": "text/x-gettext-translation",
    ".pot": "text/x-gettext-translation",
    ".properties": "text/plain",
    ".env": "text/plain",
    ".in": "text/plain",
    ".lock": "text/plain",
    ".log": "text/plain",
    ".csv": "text/csv",
    ".tsv": "text/tab-separated-values",
    ".mk": "text/x-makefile",
    ".go": "text/x-go",
    ".rs": "text/x-rust",
}


def looks_like_text(head: bytes, *, complete: bool) -> bool:
    """Whether ``head``, the first bytes of some content, is text: no NUL byte, valid UTF-8.

    ``complete`` says that ``head`` is the whole content; when it is not, a multibyte
    character cut at its end is allowed. The rule is the preview's
    (``versioned_items.diffs.decode_text``), so what is previewed as text is typed as text.
    """
    return decode_text(head[:SNIFF_BYTES], complete=complete and len(head) <= SNIFF_BYTES) is not None


def guess_from_name(path: str) -> str | None:
    """The content type that the name of ``path`` suggests, or None when it suggests none
    (or only ``application/octet-stream``)."""
    name = paths.name(path)
    lowered = name.lower()
    if lowered in TEXT_NAMES:
        return TEXT_NAMES[lowered]
    stem, dot, extension = lowered.rpartition(".")
    if dot and stem and f".{extension}" in TEXT_EXTENSIONS:
        return TEXT_EXTENSIONS[f".{extension}"]
    guessed = mimetypes.guess_type(name, strict=False)[0]
    return None if guessed in (None, BINARY) else guessed


def guess(path: str, head: bytes, *, complete: bool) -> str:
    """The content type of new content at ``path`` whose first bytes are ``head``
    (``complete``: all of it): from the name, else ``text/plain`` when the bytes are text,
    else ``application/octet-stream``. Never raises."""
    guessed = guess_from_name(path)
    if guessed is not None:
        return guessed
    return "text/plain" if looks_like_text(head, complete=complete) else BINARY

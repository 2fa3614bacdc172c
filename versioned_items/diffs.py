"""Versions shown as text: the readable part of a version's content, and the line-by-line
difference between two versions, for the admin and the site.

:func:`read_text` decides whether content is text (no NUL byte, valid UTF-8) and returns it,
cut at a limit. :func:`diff_versions` compares two versions like ``diff -u`` and returns a
:class:`Diff`, whose :meth:`~Diff.as_html` is a table with every line HTML-escaped. Content
larger than ``DIFF_MAX_BYTES`` (a setting) is not compared: difflib's cost grows with the product of
the line counts, and a page of a 100,000-line diff helps nobody. The comparison itself has an
operation budget, ``DIFF_MAX_COST`` (see :class:`BudgetedMatcher`): two versions whose lines
repeat a lot (40,000 lines, few distinct) are "too large to compare" instead of taking minutes.
"""

import codecs
import difflib
import itertools
from dataclasses import dataclass, field

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext as _

from .conf import app_settings
from .models import Version

#: Bytes looked at for a NUL when deciding whether content is text.
SNIFF_BYTES = 8192


@dataclass(frozen=True)
class Text:
    """The text of a version: ``text`` holds at most the requested bytes; ``truncated`` says
    whether more followed."""

    text: str
    truncated: bool = False


def decode_text(data: bytes, *, complete: bool = True) -> str | None:
    """``data`` as a string when it looks like text (no NUL byte near the start and valid
    UTF-8), else None. With ``complete=False`` a character cut at the end is dropped."""
    if b"\x00" in data[:SNIFF_BYTES]:
        return None
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        return decoder.decode(data, final=complete)
    except UnicodeDecodeError:
        return None


def read_text(version: Version, limit: int) -> Text | None:
    """The text of ``version``, at most ``limit`` bytes of it, or None for binary content.
    A delete marker reads as empty text."""
    with version.open() as file:
        data = file.read(limit + 1)
    truncated = len(data) > limit
    text = decode_text(data[:limit], complete=not truncated)
    return None if text is None else Text(text, truncated)


@dataclass(frozen=True)
class Line:
    """One line of a diff: ``kind`` is ``" "`` (both sides), ``"-"`` (old only) or ``"+"``
    (new only); ``old``/``new`` are 1-based line numbers, None on the side it is missing from."""

    kind: str
    old: int | None
    new: int | None
    text: str


@dataclass
class Hunk:
    """A run of changed lines with their context, as in ``@@ -old_start,old_count +... @@``."""

    old_start: int
    old_count: int
    new_start: int
    new_count: int
    lines: list[Line] = field(default_factory=list)

    @property
    def header(self) -> str:
        return f"@@ -{self.old_start},{self.old_count} +{self.new_start},{self.new_count} @@"


@dataclass
class Diff:
    """The difference between two versions. ``reason`` is set (and ``hunks`` empty) when the
    contents could not be compared: one is binary, or too large."""

    old: Version
    new: Version
    hunks: list[Hunk] = field(default_factory=list)
    reason: str = ""
    truncated: bool = False

    @property
    def comparable(self) -> bool:
        return not self.reason

    @property
    def identical(self) -> bool:
        return self.comparable and not self.hunks

    @property
    def added(self) -> int:
        return sum(line.kind == "+" for hunk in self.hunks for line in hunk.lines)

    @property
    def removed(self) -> int:
        return sum(line.kind == "-" for hunk in self.hunks for line in hunk.lines)

    def as_html(self) -> SafeString:
        """A ``<table class="vi-diff">``; every line of content is HTML-escaped."""
        if not self.comparable:
            return format_html('<p class="vi-diff-note">{}</p>', self.reason)
        if not self.hunks:
            return format_html('<p class="vi-diff-note">{}</p>', _("The contents are identical."))
        rows = []
        for hunk in self.hunks:
            rows.append(format_html('<tr class="vi-diff-hunk"><td colspan="4">{}</td></tr>', hunk.header))
            rows.append(
                format_html_join(
                    "",
                    '<tr class="{}"><td class="vi-diff-no">{}</td>'
                    '<td class="vi-diff-no">{}</td><td class="vi-diff-sign">{}</td>'
                    '<td class="vi-diff-text">{}</td></tr>',
                    (
                        (_ROW_CLASS[line.kind], line.old or "", line.new or "", line.kind, line.text)
                        for line in hunk.lines
                    ),
                )
            )
        if self.truncated:
            rows.append(
                format_html(
                    '<tr class="vi-diff-hunk"><td colspan="4">{}</td></tr>',
                    _("The diff was cut after %(n)s lines.") % {"n": app_settings.DIFF_MAX_LINES},
                )
            )
        return format_html('<table class="vi-diff">{}</table>', mark_safe("".join(rows)))


_ROW_CLASS = {" ": "vi-diff-context", "-": "vi-diff-removed", "+": "vi-diff-added"}


class TooCostly(Exception):
    """Raised by :class:`BudgetedMatcher` when a comparison would pass its budget."""


class BudgetedMatcher(difflib.SequenceMatcher):
    """difflib's matcher (without autojunk, so every line may match) that counts its work.

    Each ``find_longest_match`` call reads every old line of its range and, for each, the
    positions of that line in the new text: its cost is known before it runs, from prefix sums.
    ``cost`` adds them up; a call that would take it past ``budget`` raises :class:`TooCostly`
    instead of running, so a comparison never does more than ``budget`` line comparisons.
    """

    def __init__(self, old: list[str], new: list[str], budget: int):
        super().__init__(None, old, new, autojunk=False)
        self.budget, self.cost = budget, 0
        occurrences = [len(self.b2j.get(line, ())) + 1 for line in old]
        self._sums = [0, *itertools.accumulate(occurrences)]

    def find_longest_match(self, alo=0, ahi=None, blo=0, bhi=None):
        ahi = len(self.a) if ahi is None else ahi
        self.cost += self._sums[ahi] - self._sums[alo]
        if self.cost > self.budget:
            raise TooCostly(self.cost)
        return super().find_longest_match(alo, ahi, blo, bhi)


def diff_lines(old: list[str], new: list[str], *, context: int = 3) -> tuple[list[Hunk], bool]:
    """The hunks turning ``old`` into ``new`` (lists of lines without line ends), and whether
    they were cut at ``DIFF_MAX_LINES``. Raises :class:`TooCostly` past ``DIFF_MAX_COST``."""
    hunks, total = [], 0
    matcher = BudgetedMatcher(old, new, app_settings.DIFF_MAX_COST)
    for group in matcher.get_grouped_opcodes(context):
        first, last = group[0], group[-1]
        hunk = Hunk(first[1] + 1, last[2] - first[1], first[3] + 1, last[4] - first[3])
        for tag, i1, i2, j1, j2 in group:
            if tag == "equal":
                hunk.lines += [
                    Line(" ", i + 1, j + 1, old[i]) for i, j in zip(range(i1, i2), range(j1, j2), strict=True)
                ]
                continue
            hunk.lines += [Line("-", i + 1, None, old[i]) for i in range(i1, i2)]
            hunk.lines += [Line("+", None, j + 1, new[j]) for j in range(j1, j2)]
        total += len(hunk.lines)
        if total > app_settings.DIFF_MAX_LINES:
            hunk.lines = hunk.lines[: len(hunk.lines) - (total - app_settings.DIFF_MAX_LINES)]
            hunks.append(hunk)
            return hunks, True
        hunks.append(hunk)
    return hunks, False


def diff_versions(old: Version, new: Version, *, context: int = 3) -> Diff:
    """Compare the contents of two versions line by line (a delete marker is empty)."""
    diff = Diff(old, new)
    if max(old.size, new.size) > app_settings.DIFF_MAX_BYTES:
        diff.reason = _("The contents are larger than %(n)s bytes and are not compared.") % {
            "n": app_settings.DIFF_MAX_BYTES
        }
        return diff
    texts = [read_text(version, app_settings.DIFF_MAX_BYTES) for version in (old, new)]
    if None in texts:
        diff.reason = _("At least one of the versions is binary content; only text is compared.")
        return diff
    old_lines, new_lines = texts[0].text.splitlines(), texts[1].text.splitlines()
    try:
        diff.hunks, diff.truncated = diff_lines(old_lines, new_lines, context=context)
    except TooCostly:
        diff.reason = _(
            "The versions are too large to compare: %(old)s and %(new)s lines, %(distinct)s of them "
            "distinct; comparing them would take more than %(limit)s line comparisons (setting "
            "DIFF_MAX_COST)."
        ) % {
            "old": f"{len(old_lines):,}",
            "new": f"{len(new_lines):,}",
            "distinct": f"{len(set(old_lines) | set(new_lines)):,}",
            "limit": f"{app_settings.DIFF_MAX_COST:,}",
        }
    return diff

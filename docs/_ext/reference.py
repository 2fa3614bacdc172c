"""Reference pages generated from the code, so that they cannot drift from it.

- ``{vi-settings}``: a table of every key of :data:`versioned_items.conf.DEFAULTS`, with its
  default (as written in ``conf.py``) and the comment above it in ``conf.py``, grouped by the
  ``# --- name ---`` banners there. ``conf.py`` is the one place a setting is described.
- ``{vi-command} NAME``: a management command's usage, help text and arguments, taken from
  its own parser, as ``manage.py help NAME`` prints them (without Django's common options).

The reading is in ``reference_data.py``.
"""

from docutils import nodes
from sphinx.util.docutils import SphinxDirective

from reference_data import CONF_PY, command_help, command_names, setting_rows


class SettingsDirective(SphinxDirective):
    """``{vi-settings}``: the settings table, one table per section of ``conf.py``."""

    def run(self) -> list[nodes.Node]:
        self.env.note_dependency(str(CONF_PY))
        result: list[nodes.Node] = []
        rows = setting_rows()
        for section in dict.fromkeys(row.section for row in rows):
            result.append(nodes.rubric(text=_section_title(section)))
            body = [(row.name, row.default, row.description) for row in rows if row.section == section]
            result.append(_table(("key", "default", "meaning"), (26, 16, 58), body, literal_columns=(0, 1)))
        return result


def _section_title(section: str) -> str:
    return section[:1].upper() + section[1:] if section else "Storage"


class CommandDirective(SphinxDirective):
    """``{vi-command} NAME``: usage, help text and arguments of one management command."""

    required_arguments = 1

    def run(self) -> list[nodes.Node]:
        name = self.arguments[0]
        if name not in command_names():
            raise self.error(f"{name!r} is not a management command of versioned_items")
        usage, text, arguments = command_help(name)
        result: list[nodes.Node] = [
            nodes.literal_block(usage, usage, language="text"),
            nodes.paragraph(text=text),
        ]
        if arguments:
            result.append(_table(("argument", "meaning"), (30, 70), arguments, literal_columns=(0,)))
        return result


def _table(
    header: tuple[str, ...],
    widths: tuple[int, ...],
    rows: list[tuple[str, ...]],
    literal_columns: tuple[int, ...],
) -> nodes.table:
    """A docutils table with relative column ``widths``; cells in ``literal_columns`` are code."""
    group = nodes.tgroup(cols=len(header))
    group.extend(nodes.colspec(colwidth=width) for width in widths)

    def row(cells: tuple[str, ...], literal: tuple[int, ...]) -> nodes.row:
        result = nodes.row()
        for i, cell in enumerate(cells):
            content = nodes.literal(text=cell) if i in literal else nodes.Text(cell)
            result += nodes.entry("", nodes.paragraph("", "", content))
        return result

    group += nodes.thead("", row(header, ()))
    group += nodes.tbody("", *(row(cells, literal_columns) for cells in rows))
    return nodes.table("", group)


def setup(app):
    app.add_directive("vi-settings", SettingsDirective)
    app.add_directive("vi-command", CommandDirective)
    return {"parallel_read_safe": True, "parallel_write_safe": True}

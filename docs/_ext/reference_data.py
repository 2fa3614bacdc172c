"""What the reference pages show, read from the code: the settings and the management commands.

Kept free of Sphinx so that tests/project/test_docs.py can import it too, to check that every setting
has a description and every command is on the commands page. The directives that render it are
in ``reference.py``.
"""

import argparse
import ast
import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CONF_PY = ROOT / "versioned_items" / "conf.py"
BANNER = re.compile(r"^#\s*---\s*(?P<title>.*?)\s*---\s*$")
# Options every Django command has; `manage.py help NAME` lists them, the page does not.
COMMON_OPTIONS = {
    "--help",
    "--version",
    "--verbosity",
    "--settings",
    "--pythonpath",
    "--traceback",
    "--no-color",
    "--force-color",
    "--skip-checks",
}


@dataclass(frozen=True)
class SettingRow:
    """One key of ``DEFAULTS``: its section banner, name, default as written, and comment."""

    section: str
    name: str
    default: str
    description: str


def setting_rows(path: Path = CONF_PY) -> list[SettingRow]:
    """Every key of the ``DEFAULTS`` dict in ``path``, in source order.

    A key's description is the block of ``#`` comment lines right above it; keys written on
    consecutive lines without a comment of their own share the one above the first of them.
    Raises ValueError when the file has no ``DEFAULTS = {...}`` literal.
    """
    source = path.read_text(encoding="utf-8")
    lines = source.splitlines()
    defaults = _defaults_dict(ast.parse(source))
    rows: list[SettingRow] = []
    section, previous_end = "", None
    for key, value in zip(defaults.keys, defaults.values, strict=True):
        comments, banner = _comments_above(lines, key.lineno - 1)
        section = banner if banner is not None else section
        if comments:
            description = " ".join(comments)
        elif previous_end == key.lineno - 1 and rows:
            description = rows[-1].description
        else:
            description = ""
        default = ast.get_source_segment(source, value) or ""
        rows.append(SettingRow(section, key.value, " ".join(default.split()), description))
        previous_end = value.end_lineno
    return rows


def _defaults_dict(tree: ast.Module) -> ast.Dict:
    for statement in tree.body:
        target = getattr(statement, "target", None) or (getattr(statement, "targets", None) or [None])[0]
        if isinstance(target, ast.Name) and target.id == "DEFAULTS" and isinstance(statement.value, ast.Dict):
            return statement.value
    raise ValueError(f"{CONF_PY} has no DEFAULTS = {{...}} literal")


def _comments_above(lines: list[str], index: int) -> tuple[list[str], str | None]:
    """The comment lines right above ``lines[index]`` (banners left out), and the banner's title."""
    comments: list[str] = []
    banner = None
    i = index - 1
    while i >= 0 and lines[i].strip().startswith("#"):
        text = lines[i].strip()
        match = BANNER.match(text)
        if match:
            banner = match["title"]
            break
        comments.insert(0, text.lstrip("#").strip())
        i -= 1
    return comments, banner


def command_names() -> dict[str, str]:
    """``{command: app module}`` for every management command of versioned_items (any app)."""
    from django.core.management import get_commands

    return {name: app for name, app in get_commands().items() if app.startswith("versioned_items")}


def command_help(name: str) -> tuple[str, str, list[tuple[str, str]]]:
    """``(usage, help text, [(argument, its help)])`` of one command, from its parser."""
    from django.core.management import load_command_class

    command = load_command_class(command_names()[name], name)
    parser = command.create_parser("manage.py", name)
    actions = [a for a in parser._actions if not set(a.option_strings) & COMMON_OPTIONS]
    formatter = argparse.HelpFormatter(parser.prog, width=88)
    formatter.add_usage(None, actions, parser._mutually_exclusive_groups, prefix="")
    arguments = [(_argument_label(a), _expand(a)) for a in actions]
    return formatter.format_help().strip(), " ".join(command.help.split()), arguments


def _argument_label(action: argparse.Action) -> str:
    if not action.option_strings:
        return action.metavar or action.dest
    label = ", ".join(action.option_strings)
    if action.nargs != 0:
        label += " " + (action.metavar or action.dest.upper())
    return label


def _expand(action: argparse.Action) -> str:
    text = action.help or ""
    return text % {"default": action.default} if "%(default)" in text else text

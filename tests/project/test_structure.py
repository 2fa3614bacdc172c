"""The package's layout keeps its promises: the core never imports the search app, and the
search app reaches the admin and the site only through the core's extension points."""

import ast
from pathlib import Path

import pytest

import versioned_items

PACKAGE = Path(versioned_items.__file__).resolve().parent
SEARCH = PACKAGE / "search"


def imported_modules(path: Path) -> set[str]:
    """Absolute names of the modules a file imports (relative imports resolved), at any depth."""
    package = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts[:-1])
    tree = ast.parse(path.read_text(), filename=str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
            module = ".".join([*base, node.module] if node.module else base)
            names.add(module)
            names.update(f"{module}.{alias.name}" for alias in node.names)
    return names


def core_modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if SEARCH not in p.parents)


def test_the_walk_sees_the_core_and_resolves_relative_imports():
    files = {p.relative_to(PACKAGE).as_posix() for p in core_modules()}
    assert {"api.py", "models.py", "admin/nodes.py", "site/views.py", "extensions.py"} <= files
    assert "versioned_items.pages" in imported_modules(PACKAGE / "site" / "views.py")  # from .. import pages
    assert "versioned_items.search.indexing" in imported_modules(
        SEARCH / "admin.py"
    )  # from . import indexing


@pytest.mark.parametrize("path", core_modules(), ids=lambda p: p.relative_to(PACKAGE).as_posix())
def test_no_core_module_imports_the_search_app(path):
    offending = {
        name
        for name in imported_modules(path)
        if name == "versioned_items.search" or name.startswith("versioned_items.search.")
    }
    assert not offending, f"{path.relative_to(PACKAGE)} imports {sorted(offending)}"


def test_no_core_template_names_the_search_pages():
    templates = [p for p in (PACKAGE / "templates").rglob("*.html")]
    assert templates
    for template in templates:
        text = template.read_text()
        assert (
            "versioned_items:search" not in text and "node_search" not in text and "node_index" not in text
        ), template.relative_to(PACKAGE)

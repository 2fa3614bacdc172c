"""Sphinx configuration of the versioned_items documentation.

Build: ``make docs`` (``scripts/docs.sh``), which runs ``sphinx-build -W -n``: every warning and
every unresolved cross-reference fails the build, so the API pages cannot drift from the code.
"""

import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
# The reference pages' directives ({vi-settings}, {vi-command}): docs/_ext/reference.py.
sys.path.insert(0, str(ROOT / "docs" / "_ext"))

# autodoc imports the modules, which need configured settings: a minimal site, in memory.
import django  # noqa: E402
from django.conf import settings  # noqa: E402

_tmp = tempfile.mkdtemp(prefix="vi-docs-")
settings.configure(
    INSTALLED_APPS=[
        "django.contrib.admin",
        "django.contrib.auth",
        "django.contrib.contenttypes",
        "django.contrib.sessions",
        "django.contrib.messages",
        "haystack",
        "versioned_items",
        "versioned_items.search",
    ],
    DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
    HAYSTACK_CONNECTIONS={
        name: {"ENGINE": "versioned_items.search.backends.WhooshEngine", "PATH": os.path.join(_tmp, name)}
        for name in ("default", "vi_latest", "vi_history")
    },
    HAYSTACK_ROUTERS=[
        "versioned_items.search.routers.VersionedItemsRouter",
        "haystack.routers.DefaultRouter",
    ],
    USE_TZ=True,
    SECRET_KEY="docs",
)
django.setup()

project = "versioned_items"
author = "The versioned_items developers"
copyright = "2026, the versioned_items developers"  # noqa: A001  (Sphinx's name)
release = __import__("versioned_items").__version__

extensions = ["myst_parser", "sphinx.ext.autodoc", "sphinx.ext.viewcode", "reference"]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
myst_heading_anchors = 3
exclude_patterns = ["_build", "_ext"]
html_theme = "alabaster"

autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"members": True, "undoc-members": False}

# The build has no network, so there is no intersphinx: references to classes of Python, Django
# and Haystack cannot be resolved and are not ours to check. Everything of this app must resolve.
nitpick_ignore_regex = [
    (
        r"py:.*",
        r"(django|haystack|whoosh|tantivy|datetime|typing|collections|contextlib|decimal|pathlib|io|os)\..*",
    ),
    (r"py:class", r"(BinaryIO|Any|Iterable|Iterator|Mapping|Sequence|Callable|Path|timedelta|datetime)"),
    (r"py:mod", r"(subprocess|os|io|json|tempfile)"),
    # Private helpers named in module docstrings for contributors; deliberately not documented.
    (r"py:.*", r"_\w+"),
    (r"py:class", r"(dict|list|set|tuple|str|int|float|bytes|bool|None|NoneType|object|type)\b.*"),
]


def _resolve_by_suffix(app, env, node, contnode):
    """Resolve a bare name such as ``NodeNotFound`` in a docstring to the one documented object
    of that name (``versioned_items.exceptions.NodeNotFound``), as Python's own scoping would:
    the API modules import these names. An ambiguous or unknown name stays a warning."""
    if node.get("refdomain") != "py" or "." in node["reftarget"]:
        return None
    domain = env.get_domain("py")
    target = node["reftarget"]
    matches = [name for name in domain.objects if name.endswith("." + target)]
    if len(matches) != 1:
        return None
    return domain.resolve_xref(env, node["refdoc"], app.builder, node["reftype"], matches[0], node, contnode)


def setup(app):
    app.connect("missing-reference", _resolve_by_suffix)

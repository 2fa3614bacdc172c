"""The documentation says what the code does: its examples run, its snippets configure a
working site, and every setting and management command is on its page."""

import doctest
import importlib.util
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from versioned_items.conf import DEFAULTS

from ..conftest import REPO_ROOT

DOCS = REPO_ROOT / "docs"
README = REPO_ROOT / "README.md"
PAGES = [README, *sorted(DOCS.glob("*.md"))]
FENCE = re.compile(r"^```(?P<lang>[^\n]*)\n(?P<body>.*?)^```$", re.MULTILINE | re.DOTALL)


def _reference_data():
    """docs/_ext/reference_data.py, which the settings and commands pages are generated from."""
    spec = importlib.util.spec_from_file_location("reference_data", DOCS / "_ext" / "reference_data.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def code_blocks(page: Path, lang: str) -> list[tuple[int, str]]:
    """``(line number, code)`` of every fenced block of ``lang`` on ``page``."""
    text = page.read_text(encoding="utf-8")
    return [
        (text.count("\n", 0, match.start("body")) + 1, match["body"])
        for match in FENCE.finditer(text)
        if match["lang"].strip() == lang
    ]


def run_session(page: Path) -> doctest.TestResults:
    """Run the ``pycon`` blocks of ``page`` in order, as one interactive session.

    Raises AssertionError with doctest's report when an example fails.
    """
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    parser = doctest.DocTestParser()
    session: dict = {}
    report: list[str] = []
    for lineno, code in code_blocks(page, "pycon"):
        name = page.relative_to(REPO_ROOT).as_posix()
        test = parser.get_doctest(code, session, name, str(page), lineno - 1)
        runner.run(test, out=report.append, clear_globs=False)
        session = test.globs  # a DocTest works on a copy: carry its names to the next block
    assert runner.failures == 0, "".join(report)
    return runner.summarize(verbose=False)


@pytest.mark.django_db
@pytest.mark.parametrize(
    "page", [p for p in PAGES if code_blocks(p, "pycon")], ids=lambda p: p.relative_to(REPO_ROOT).as_posix()
)
def test_examples_run(page, search_index):
    results = run_session(page)
    assert results.attempted >= 5


def test_readme_is_short_and_starts_with_the_two_commands():
    assert README.stat().st_size <= 8 * 1024
    first_block = code_blocks(README, "sh")[0][1]
    commands = [line.split("#")[0].strip() for line in first_block.splitlines()]
    assert commands == ["make demo", "make test"]
    makefile = (REPO_ROOT / "Makefile").read_text()
    for target in ("demo", "test"):
        assert re.search(rf"^{target}:", makefile, re.MULTILINE), target
    # CI runs the README's test command.
    assert re.search(r"^\s*make test\b", (REPO_ROOT / ".ci" / "run").read_text(), re.MULTILINE)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(REPO_ROOT).as_posix())
def test_relative_links_resolve(page):
    text = page.read_text(encoding="utf-8")
    targets = [t for t in re.findall(r"\]\(([^)#\s]+)", text) if "://" not in t]
    missing = [t for t in targets if not (page.parent / t).exists()]
    assert missing == []


def test_every_setting_is_described_on_the_settings_page():
    rows = _reference_data().setting_rows()
    assert [row.name for row in rows] == list(DEFAULTS)
    assert [row.name for row in rows if not row.description] == []
    assert "```{vi-settings}" in (DOCS / "settings.md").read_text()


def test_every_command_is_on_the_commands_page():
    on_disk = {
        path.stem
        for path in (REPO_ROOT / "versioned_items").glob("**/management/commands/*.py")
        if not path.stem.startswith("_")
    }
    reference = _reference_data()
    assert set(reference.command_names()) == on_disk
    documented = re.findall(r"^```\{vi-command\} (\S+)$", (DOCS / "commands.md").read_text(), re.MULTILINE)
    assert sorted(documented) == sorted(on_disk)
    for name in on_disk:
        usage, help_text, _ = reference.command_help(name)
        assert usage.startswith(f"manage.py {name}") and help_text, name


INSTALL_CHECK = textwrap.dedent(
    """
    import django
    from django.test.utils import setup_test_environment

    django.setup()
    setup_test_environment()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.test import Client

    from versioned_items import api
    from versioned_items.search.api import search
    from versioned_items.search.indexing import stop_background, wait_for_index

    call_command("migrate", verbosity=0)
    call_command("check", fail_level="WARNING")
    version = api.put("docs/hello.txt", b"hello world", user="ann")
    wait_for_index()
    assert [hit.path for hit in search("hello")] == ["docs/hello.txt"]
    client = Client()
    assert client.get("/browse/docs/").status_code == 302  # to the login page
    client.force_login(get_user_model().objects.create_superuser("ann", "ann@example.com", "pw"))
    for url in ["/browse/docs/", "/item/docs/hello.txt", f"/content/{version.serial}/", "/search/?q=hello",
                "/admin/versioned_items/node/", "/admin/versioned_items/node/?q=hello", "/accounts/login/"]:
        status = client.get(url).status_code
        assert status == 200, (url, status)
    stop_background(10)
    print("site works")
    """
)


@pytest.mark.slow
def test_install_snippets_make_a_working_site(tmp_path):
    """The settings and URLconf snippets of docs/install.md, appended as they are to a new
    ``startproject`` project: checks pass, writes are searchable, and the pages answer."""
    blocks = [code for _, code in code_blocks(DOCS / "install.md", "python")]
    (settings_snippet,) = [code for code in blocks if "HAYSTACK_CONNECTIONS" in code]
    (urls_snippet,) = [code for code in blocks if "urlpatterns +=" in code]
    python = sys.executable
    subprocess.run([python, "-m", "django", "startproject", "mysite", str(tmp_path)], check=True)
    with open(tmp_path / "mysite" / "settings.py", "a") as settings:
        settings.write("\n" + settings_snippet)
    with open(tmp_path / "mysite" / "urls.py", "a") as urls:
        urls.write("\n" + urls_snippet)
    env = {
        "PATH": "/usr/bin:/bin",
        "DJANGO_SETTINGS_MODULE": "mysite.settings",
        "PYTHONPATH": f"{tmp_path}:{REPO_ROOT}",
    }
    result = subprocess.run(
        [python, "-c", INSTALL_CHECK], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().endswith("site works")

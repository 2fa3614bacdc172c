"""The management commands: thin wrappers over the library, checked by their output."""

import json
import re
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from versioned_items import api
from versioned_items.search import indexing
from versioned_items.search.models import IndexChange

from ..search_fixtures import assert_in_step, found, indexed

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def store(search_index):
    v1 = api.put("docs/a.txt", b"alpha words", user="ann")
    api.put("docs/a.txt", b"alpha again", user="ann")
    api.put("docs/b.txt", b"beta words", user="bob")
    indexed()
    return v1


def run(*args) -> str:
    out = StringIO()
    call_command(*args, stdout=out, stderr=StringIO())
    return out.getvalue()


def test_rebuild():
    out = run("vi_rebuild_index", "--batch-size", "2")
    assert "latest: 2 documents, history: 3 documents" in out
    assert_in_step()


def test_rebuild_with_two_processes():
    run("vi_rebuild_index", "--procs", "2")
    assert found("words") == ["docs/b.txt"]
    assert_in_step()


def test_rebuild_rejects_bad_numbers():
    with pytest.raises(CommandError, match="at least 1"):
        run("vi_rebuild_index", "--procs", "0")


def test_update_index_dry_run_and_fix(store):
    indexing.history_side().backend.remove(f"versioned_items.version.{store.serial}")
    out = run("vi_update_index", "--dry-run")
    assert "history: would fix added=1 removed=0 updated=0" in out
    assert "latest: would fix added=0 removed=0 updated=0" in out
    out = run("vi_update_index")
    assert "history: fixed added=1 removed=0 updated=0" in out
    assert_in_step()


def test_optimize():
    assert "optimized" in run("vi_optimize_index")


def test_dump_lines_and_json():
    lines = run("vi_dump_index").splitlines()
    assert [line.split()[0] for line in lines] == ["docs/a.txt", "docs/b.txt"]
    history = [json.loads(line) for line in run("vi_dump_index", "--history", "--json").splitlines()]
    assert [d["path_exact"] for d in history] == ["docs/a.txt", "docs/a.txt", "docs/b.txt"]
    assert history[0]["content"] == "alpha words"


def test_search_prints_results():
    out = run("vi_search", "alpha")
    assert out.splitlines()[0].startswith("docs/a.txt  serial=")
    assert "1 matches" in out
    assert "2 matches" in run("vi_search", "alpha", "--history")
    assert "0 matches" in run("vi_search", "alpha", "--as-of", "2000-01-01")
    assert "0 matches" in run("vi_search", "alpha", "--under", "elsewhere")
    data = json.loads(run("vi_search", "words", "--history", "--limit", "1", "--json"))
    assert data["total"] == 2 and len(data["hits"]) == 1


def test_search_offers_a_spelling_suggestion():
    out = run("vi_search", "alhpa")
    assert "0 matches" in out and "did you mean: alpha" in out
    assert json.loads(run("vi_search", "alhpa", "--json"))["suggestion"] == "alpha"


@pytest.mark.parametrize(
    "args, message",
    [
        (("vi_search", "alpha ("), "unclosed"),
        (("vi_search", "alpha", "--as-of", "yesterday"), "ISO date"),
        (("vi_search", "alpha", "--under", "a/../b"), "'..'"),
    ],
)
def test_search_errors_become_command_errors(args, message):
    with pytest.raises(CommandError, match=message):
        run(*args)


def test_check_passes_and_fails(store):
    out = run("vi_check")
    assert "no problems found" in out
    assert "latest index: 2 documents, 2 expected; missing=0 stale=0 changed=0" in out
    assert "last rebuild: never" in out
    run("vi_rebuild_index")
    assert re.search(r"^last rebuild: \d{4}-\d\d-\d\dT", run("vi_check"), re.MULTILINE)
    api.set_attributes(store.serial, {"k": "v"})
    IndexChange.objects.all().delete()  # the change never reaches the index
    with pytest.raises(CommandError, match="1 problems found"):
        run("vi_check")

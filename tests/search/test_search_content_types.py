"""Text files named without a text type (Makefile, setup.cfg, .po, extension-less scripts) are
typed as text when written, so the search indexes hold their words."""

import pytest

from versioned_items import api
from versioned_items.importer import import_directory
from versioned_items.search import extractors, indexing

from ..search_fixtures import found, history_docs, indexed

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _index(search_index):
    return search_index


def test_text_files_without_a_text_extension_are_searchable():
    api.put("proj/Makefile", "release:\n\ttwine upload dist/*\n")
    api.put("proj/setup.cfg", "[metadata]\nname = frobnicator\n")
    api.put("proj/bin/deploy", "#!/bin/sh\nrsync --archive site/ quokka:/srv/\n")
    api.put("proj/core", b"\x00\x01 quokka")  # binary: metadata only
    indexed()
    assert found("twine") == ["proj/Makefile"]
    assert found("frobnicator") == ["proj/setup.cfg"]
    assert found("quokka") == ["proj/bin/deploy"]
    statuses = {d["path_exact"]: d["text_status"] for d in indexing.dump()}
    assert statuses["proj/Makefile"] == extractors.OK
    assert statuses["proj/core"] == extractors.UNSUPPORTED


def test_imported_po_files_are_searchable_in_both_indexes(tmp_path):
    root = tmp_path / "tree" / "locale" / "de" / "LC_MESSAGES"
    root.mkdir(parents=True)
    (root / "django.po").write_text('msgid "Wombat"\nmsgstr "Nacktnasenwombat"\n')
    import_directory(tmp_path / "tree", under="site")
    indexed()
    assert found("Nacktnasenwombat") == ["site/locale/de/LC_MESSAGES/django.po"]
    assert found("Nacktnasenwombat", history=True) == ["site/locale/de/LC_MESSAGES/django.po"]
    (doc,) = history_docs().values()
    assert doc["text_status"] == extractors.OK

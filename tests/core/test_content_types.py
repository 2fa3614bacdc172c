"""Content types of new versions (versioned_items.content_types): by name, then by a sniff of
the first bytes, through api.put and the directory import."""

import pytest

from versioned_items import api, content_types
from versioned_items.importer import import_directory

pytestmark = pytest.mark.django_db

TEXT = '# Übersetzung\nmsgid "hello"\nmsgstr "hallo"\n'


@pytest.mark.parametrize(
    "path, expected",
    [
        ("src/Makefile", "text/plain"),
        ("src/Dockerfile", "text/plain"),
        ("LICENSE", "text/plain"),
        ("README", "text/plain"),
        ("setup.cfg", "text/plain"),
        ("pyproject.toml", "text/plain"),
        ("tox.ini", "text/plain"),
        ("locale/de/LC_MESSAGES/django.po", "text/x-gettext-translation"),
        ("docs/index.rst", "text/x-rst"),
        ("docs/index.md", "text/markdown"),
        ("notes.txt", "text/plain"),
        (".github/ci.yaml", "text/yaml"),
        ("project/.gitignore", "text/plain"),
        ("UPPER.TOML", "text/plain"),
    ],
)
def test_text_names_and_extensions_are_text_whatever_the_content(path, expected):
    assert api.put(path, TEXT).content_type == expected
    assert api.lookup(path).content_type == expected


def test_a_known_binary_type_comes_from_mimetypes():
    assert api.put("logo.png", b"\x89PNG\r\n\x1a\n\x00\x00").content_type == "image/png"
    assert api.put("data.json", b'{"a": 1}').content_type == "application/json"


def test_unknown_names_are_sniffed():
    assert api.put("bin/run", "#!/bin/sh\necho hi\n").content_type == "text/plain"
    assert api.put("data.unknownext", "plain words").content_type == "text/plain"
    assert api.put("bin/tool", b"\x7fELF\x02\x01\x01\x00\x00").content_type == "application/octet-stream"
    assert api.put("latin1", "café".encode("latin-1")).content_type == "application/octet-stream"


def test_a_nul_after_the_sniffed_bytes_does_not_count():
    data = b"a" * content_types.SNIFF_BYTES + b"\x00"
    assert api.put("long", data).content_type == "text/plain"


def test_a_multibyte_character_cut_at_the_sniff_limit_is_text():
    # "é" is two bytes; the first one is the last sniffed byte: the file goes on after it.
    data = b"a" * (content_types.SNIFF_BYTES - 1) + "é".encode() + b"tail"
    assert api.put("cut", data).content_type == "text/plain"


def test_a_multibyte_character_cut_at_the_real_end_is_not_text():
    assert api.put("broken", "é".encode()[:1]).content_type == "application/octet-stream"


def test_a_file_object_is_sniffed_from_its_first_chunk(tmp_path):
    file = tmp_path / "Vagrantfile.local"
    file.write_text("Vagrant.configure(2) do |config|\nend\n")
    with open(file, "rb") as source:
        assert api.put("vm/config", source).content_type == "text/plain"


def test_a_given_type_is_kept():
    assert (
        api.put("Makefile", TEXT, content_type="application/x-custom").content_type == "application/x-custom"
    )
    assert api.put("blob", b"\x00\x01", content_type="text/plain").content_type == "text/plain"


def test_the_importer_types_real_files(tmp_path):
    root = tmp_path / "tree"
    (root / "locale" / "fr" / "LC_MESSAGES").mkdir(parents=True)
    (root / "Makefile").write_text("all:\n\tpython -m build\n")
    (root / "setup.cfg").write_text("[metadata]\nname = demo\n")
    (root / "locale" / "fr" / "LC_MESSAGES" / "django.po").write_text(TEXT)
    (root / "run").write_text("#!/bin/sh\nexec demo\n")
    (root / "core").write_bytes(b"\x00\x01\x02 binary")
    import_directory(root, under="imp")
    types = {
        path: api.lookup(f"imp/{path}").content_type for path in ["Makefile", "setup.cfg", "run", "core"]
    }
    assert types == {
        "Makefile": "text/plain",
        "setup.cfg": "text/plain",
        "run": "text/plain",
        "core": "application/octet-stream",
    }
    assert api.lookup("imp/locale/fr/LC_MESSAGES/django.po").content_type == "text/x-gettext-translation"


def test_guess_without_the_database():
    assert content_types.guess("a/Makefile", b"\x00", complete=True) == "text/plain"
    assert content_types.guess("a/b", b"", complete=True) == "text/plain"
    assert content_types.guess("a/b", b"\xff\xfe", complete=True) == "application/octet-stream"
    assert content_types.guess_from_name("a/b") is None

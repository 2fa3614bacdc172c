"""The site's pages for screen readers and narrow screens, read from their HTML (no browser):
a skip link to the main landmark, a label for every input, ``aria-describedby`` pointing at
elements that exist, ``<th scope>`` on every header cell, and paths that break after their
slashes (``<wbr>``, the ``breakable`` filter) in titles, crumbs and listings."""

from html.parser import HTMLParser

import pytest
from django.urls import reverse

from versioned_items import api

from ..conftest import SEARCH

pytestmark = pytest.mark.django_db

#: Inputs that need no label: they are not shown, or their text is their label.
UNLABELLED_TYPES = {"hidden", "submit", "button", "reset", "image"}


class Page(HTMLParser):
    """What the checks need of one page's HTML."""

    def __init__(self, html: str):
        super().__init__(convert_charrefs=True)
        self.ids: set[str] = set()
        self.label_for: set[str] = set()
        self.controls: list[dict] = []  # each input, select and textarea, with "in_label"
        self.described: list[str] = []
        self.headers: list[dict] = []  # each th, with "in_thead"
        self.sections: list[str] = []  # of the tables open: "table", "thead" or "tbody"
        self.skip_links: list[str] = []
        self.open_labels = 0
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "id" in attrs:
            self.ids.add(attrs["id"])
        if attrs.get("aria-describedby"):
            self.described.extend(attrs["aria-describedby"].split())
        if tag == "label":
            self.open_labels += 1
            if attrs.get("for"):
                self.label_for.add(attrs["for"])
        elif tag in ("input", "select", "textarea"):
            self.controls.append({**attrs, "tag": tag, "in_label": self.open_labels > 0})
        elif tag == "table":
            self.sections.append("table")
        elif tag in ("thead", "tbody", "tfoot") and self.sections:
            self.sections[-1] = tag
        elif tag == "th":
            self.headers.append({**attrs, "in_thead": self.sections[-1:] == ["thead"]})
        elif tag == "a" and "vi-skip" in attrs.get("class", ""):
            self.skip_links.append(attrs.get("href", ""))

    def handle_endtag(self, tag):
        if tag == "label":
            self.open_labels -= 1
        elif tag == "table" and self.sections:
            self.sections.pop()

    def unlabelled(self) -> list[str]:
        """The names of the controls without a label."""
        return [
            control.get("name", control["tag"])
            for control in self.controls
            if control.get("type") not in UNLABELLED_TYPES
            and not control["in_label"]
            and control.get("id") not in self.label_for
            and not control.get("aria-label")
            and not control.get("aria-labelledby")
        ]


def assert_accessible(client, url: str) -> str:
    """GET ``url`` and check it; return its HTML."""
    response = client.get(url)
    assert response.status_code == 200, url
    html = response.content.decode()
    page = Page(html)
    assert page.skip_links == ["#main"] and "main" in page.ids, url
    assert page.unlabelled() == [], url
    assert [target for target in page.described if target not in page.ids] == [], url
    # A column's header is in the table's <thead>; a row's header (scope="row") in its row.
    assert [th for th in page.headers if not (th.get("scope") == "col" and th["in_thead"])] == [], url
    return html


@pytest.fixture
def tree(client, django_user_model):
    """A superuser logged in, and items with history below a nested folder."""
    user = django_user_model.objects.create_superuser("demo", "demo@example.com", "demo")
    client.force_login(user)
    with api.batch():
        old = api.put("docs/guides/setup.txt", "one\n", user="ann", comment="first")
        new = api.put("docs/guides/setup.txt", "one\ntwo\n", user="bob", comment="second")
        api.put("docs/guides/gone.txt", "gone\n")
        api.delete("docs/guides/gone.txt", comment="superseded")
    return {"old": old, "new": new}


def site(name, *args, **query):
    url = reverse(f"versioned_items:{name}", args=args)
    return f"{url}?{'&'.join(f'{k}={v}' for k, v in query.items())}" if query else url


def test_browse_item_and_diff(client, tree):
    browse = assert_accessible(client, site("browse", "docs/guides/"))
    assert "<h1>docs/<wbr>guides/<wbr></h1>" in browse
    assert_accessible(client, site("browse", "docs/guides/", versions="on"))
    assert_accessible(client, site("browse"))
    assert_accessible(client, site("item", "docs/guides/setup.txt"))
    diff = assert_accessible(client, site("diff", old=tree["old"].serial, new=tree["new"].serial))
    assert "docs/<wbr>guides/<wbr>setup.txt" in diff


@pytest.mark.skipif(not SEARCH, reason="needs versioned_items.search (VI_TEST_SEARCH=0)")
def test_search(client, tree, search_index):
    from versioned_items.search.indexing import wait_for_index

    wait_for_index()
    assert_accessible(client, site("search"))
    results = assert_accessible(client, site("search", q="two", history="on"))
    assert "docs/<wbr>guides/<wbr>setup.txt" in results


@pytest.mark.parametrize(
    "name, path, shown",
    [
        ("upload", "docs/guides", "<h1>Add to docs/<wbr>guides</h1>"),
        ("new_folder", "docs/guides", "<h1>Add to docs/<wbr>guides</h1>"),
        ("new_version", "docs/guides/setup.txt", None),  # the item's name, its path in the crumbs
        ("edit", "docs/guides/setup.txt", None),
        ("delete", "docs/guides/setup.txt", "<h1>Delete docs/<wbr>guides/<wbr>setup.txt?</h1>"),
        ("move", "docs/guides", "<h1>Rename or move docs/<wbr>guides</h1>"),
        ("copy", "docs/guides/setup.txt", "<h1>Copy docs/<wbr>guides/<wbr>setup.txt</h1>"),
        ("bin", "docs/guides", "<h1>Recycle bin of docs/<wbr>guides</h1>"),
        ("purge", "docs/guides/gone.txt", "<h1>Purge docs/<wbr>guides/<wbr>gone.txt for good?</h1>"),
    ],
)
def test_write_pages(client, tree, name, path, shown):
    html = assert_accessible(client, site(name, path))
    assert shown is None or shown in html, name


def test_restore_page(client, tree):
    html = assert_accessible(client, site("restore", tree["old"].serial))
    assert "docs/<wbr>guides/<wbr>setup.txt" in html


def test_a_rejected_form_keeps_its_labels_and_descriptions(client, tree):
    response = client.post(site("move", "docs/guides"), {"destination": "bad//path"})
    page = Page(response.content.decode())
    assert response.status_code == 400
    assert page.unlabelled() == [] and [t for t in page.described if t not in page.ids] == []


def test_a_rejected_toolbar_names_its_error(client, tree):
    response = client.get(site("browse", "docs/"), {"before": "the day before yesterday"})
    page = Page(response.content.decode())
    assert "id_before_error" in page.described and "id_before_error" in page.ids
    assert [t for t in page.described if t not in page.ids] == []

"""versioned_items.admin.versions: the change comment in the version list (cut short with an
ellipsis) and in full on the version's page."""

import pytest
from django.urls import reverse

from versioned_items import api

pytestmark = pytest.mark.django_db

LONG = "Rewrote the introduction so that it reads well for people new to the project"


@pytest.fixture
def versions():
    with api.batch():
        return {
            "long": api.put("docs/a.txt", "one\n", user="ann", comment=LONG),
            "lines": api.put("docs/a.txt", "two\n", user="ann", comment="Short title\nand the details"),
            "short": api.put("docs/b.txt", "b\n", user="bob", comment="typo"),
            "none": api.put("docs/c.txt", "c\n", user="bob"),
        }


def cell(html: str, version) -> str:
    """The comment cell of ``version``'s row in the version list."""
    row = html.split(f'<a href="{reverse("admin:versioned_items_version_change", args=[version.serial])}"')[1]
    return row.split('<td class="field-short_comment">')[1].split("</td>")[0]


def test_the_version_list_shows_each_comment_cut_short(admin_client, versions):
    html = admin_client.get(reverse("admin:versioned_items_version_changelist")).content.decode()
    assert ">comment<" in html.lower()  # the column's heading
    assert cell(html, versions["long"]) == (
        f'<span class="vi-comment" title="{LONG}">Rewrote the introduction so that it reads well for people '
        "n…</span>"
    )
    assert cell(html, versions["lines"]) == (
        '<span class="vi-comment" title="Short title\nand the details">Short title…</span>'
    )
    assert cell(html, versions["short"]) == '<span class="vi-comment" title="typo">typo</span>'
    assert cell(html, versions["none"]) == "-"  # the admin's empty value


def test_the_version_page_shows_the_whole_comment(admin_client, versions):
    page = admin_client.get(reverse("admin:versioned_items_version_change", args=[versions["long"].serial]))
    assert LONG in page.content.decode()
    page = admin_client.get(reverse("admin:versioned_items_version_change", args=[versions["lines"].serial]))
    assert "Short title<br>and the details" in page.content.decode()


def test_the_comments_cost_no_query(admin_client, versions, django_assert_num_queries):
    with django_assert_num_queries(4):  # as tests/admin/test_admin.py counts the list without comments
        admin_client.get(reverse("admin:versioned_items_version_changelist"))

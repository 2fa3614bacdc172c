"""The admin's writes end to end in Chromium (driven as in tests/site/test_browser.py), as a
staff user with the node permissions and a write grant, and as a superuser: upload two files
into a new folder from the Nodes list's "Add", edit one with a change comment (seen in its
history and in the admin's search), rename the folder, delete an item and undelete it, copy an
item; then the LogEntry rows in "Recent actions" and in the node's History. Screenshots of the
main pages at 1280 and 390 px wide go to tests/admin/screenshots/ and /tmp/shots/adminflows-*."""

import os
import re
from pathlib import Path

import pytest
from django.contrib.auth.models import Permission
from playwright.sync_api import expect

from versioned_items import api
from versioned_items.models import Node

from ..site.test_browser import CHROMIUM, browser, page  # noqa: F401  (fixtures)

SCREENSHOTS = Path(__file__).resolve().parent / "screenshots"
SHOTS = Path(os.environ.get("VI_SHOTS", "/tmp/shots"))

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not Path(CHROMIUM).exists() and not os.environ.get("CI"), reason=f"{CHROMIUM} is missing"
    ),
]

#: What a staff user needs for the flows: the node writes, and reading versions (the history
#: search shows versions).
STAFF_PERMISSIONS = ("view_node", "add_node", "change_node", "delete_node", "view_version")

#: The elements of the page that reach past the window, leaving out those inside a box that
#: scrolls on its own (the admin's change list and the app's tables scroll in their module).
OVERFLOWING = """() => Array.from(document.querySelectorAll('#container *'))
    .filter(e => !e.closest('.results, .vi-scroll, .module table') &&
                 e.getBoundingClientRect().right > window.innerWidth + 1)
    .map(e => e.tagName + '.' + e.className)"""


@pytest.fixture(params=["staff", "superuser"])
def writer(request, transactional_db, search_index, django_user_model):
    """Who the flows log in as (a staff user with the permissions and a write grant on the
    whole tree, or a superuser), and one item with history, committed and indexed."""
    from versioned_items.search.indexing import wait_for_index

    if request.param == "superuser":
        django_user_model.objects.create_superuser("writer", "writer@example.com", "writer")
    else:
        user = django_user_model.objects.create_user("writer", password="writer", is_staff=True)
        user.user_permissions.add(
            *Permission.objects.filter(
                content_type__app_label="versioned_items", codename__in=STAFF_PERMISSIONS
            )
        )
    with api.batch():
        api.put("docs/guide.txt", "Step one.\n", user="ann", comment="first draft")
    if request.param == "staff":
        api.grant("", user="writer", level="write")
    wait_for_index()
    return request.param


def admin_log_in(page, next_path="/admin/"):  # noqa: F811
    page.goto(f"/admin/login/?next={next_path}")
    page.fill("input[name=username]", "writer")
    page.fill("input[name=password]", "writer")
    page.click("input[type=submit]")
    page.wait_for_url(f"**{next_path}")


def node_page(page, path):  # noqa: F811
    """Open the admin page of the node at ``path``."""
    page.goto(f"/admin/versioned_items/node/{Node.objects.get(path=path).pk}/change/")


def shoot(page, name):  # noqa: F811
    """``name`` at 1280 and 390 px wide; the page needs no horizontal scroll at either."""
    SCREENSHOTS.mkdir(exist_ok=True)
    SHOTS.mkdir(parents=True, exist_ok=True)
    wide = {}
    for width in (1280, 390):
        page.set_viewport_size({"width": width, "height": 900})
        page.screenshot(path=str(SCREENSHOTS / f"{name}-{width}.png"), full_page=True)
        page.screenshot(path=str(SHOTS / f"adminflows-{name}-{width}.png"), full_page=True)
        overflow = page.evaluate(OVERFLOWING)
        scroll = page.evaluate("document.documentElement.scrollWidth")
        if overflow or scroll > width:
            wide[width] = (scroll, overflow[:5])
    page.set_viewport_size({"width": 1280, "height": 900})
    assert wide == {}, name


def test_upload_edit_search_rename_delete_undelete_copy_and_the_log(page, writer, tmp_path):  # noqa: F811
    from versioned_items.search.indexing import wait_for_index

    shots = writer == "superuser"  # one set of screenshots is enough
    admin_log_in(page, "/admin/versioned_items/node/")
    if shots:
        shoot(page, "nodes")

    # Add: two files into a new folder, from the Nodes list
    page.click("a:has-text('Add files or a folder')")
    page.wait_for_url("**/admin/versioned_items/node/add/**")
    if shots:
        shoot(page, "add")
    (tmp_path / "plan.txt").write_text("Plan: build it.\n")
    (tmp_path / "notes.md").write_text("# Notes\n")
    page.fill("input[name=upload-folder]", "projects")
    page.set_input_files("input[name=upload-files]", [str(tmp_path / "plan.txt"), str(tmp_path / "notes.md")])
    page.fill("[name=upload-comment]", "kick-off")
    page.click("input[name=_upload]")
    page.wait_for_url("**/admin/versioned_items/node/*/change/")
    expect(page.locator(".messagelist")).to_contain_text("Uploaded 2 files.")
    children = page.locator(".vi-children tbody td:first-child a")
    expect(children).to_have_text(["notes.md", "plan.txt"])
    if shots:
        shoot(page, "folder")

    # Edit one with a change comment: the comment is in its history and in the search
    children.nth(1).click()
    page.wait_for_url("**/change/")
    page.click(".object-tools a:has-text('Edit text')")
    page.fill("textarea[name=text]", "Plan: build it.\nThen test it.\n")
    page.fill("[name=comment]", "added the quokkatest step")
    page.click("input[name=_save]")
    page.wait_for_url("**/change/")
    history = page.locator(".vi-history tbody tr")
    expect(history).to_have_count(2)
    expect(history.first.locator(".vi-comment")).to_have_text("added the quokkatest step")
    expect(history.nth(1).locator(".vi-comment")).to_have_text("kick-off")
    if shots:
        shoot(page, "item")
    wait_for_index()
    page.goto("/admin/versioned_items/node/search/?q=quokkatest&history=on")
    hits = page.locator(".vi-search-hits > li")
    expect(hits).to_have_count(1)
    expect(hits.first).to_contain_text("projects/plan.txt")
    expect(hits.first.locator(".vi-comment")).to_have_text("added the quokkatest step")
    if shots:
        shoot(page, "search")

    # Rename the folder: ask, see what changes, confirm
    node_page(page, "projects")
    page.click(".object-tools a:has-text('Rename or move')")
    page.fill("input[name=destination]", "archive")
    page.click("input[value='Show what will change']")
    expect(page.locator(".vi-confirm-items")).to_contain_text("becomes archive")
    if shots:
        shoot(page, "move")
    page.click("input[value='Yes, move']")
    page.wait_for_url("**/change/")
    expect(page.locator(".messagelist")).to_contain_text("Moved 1 node.")
    assert api.lookup("archive/plan.txt").comment == "added the quokkatest step"

    # Delete an item, then undelete it
    node_page(page, "archive/notes.md")
    page.click(".object-tools a:has-text('Delete')")
    if shots:
        shoot(page, "delete")
    page.click("input[value='Yes, delete']")
    expect(page.locator(".messagelist")).to_contain_text("Deleted")
    assert api.lookup("archive/notes.md") is None
    node_page(page, "archive/notes.md")
    page.click(".object-tools a:has-text('Undelete')")
    page.click("input[value='Yes, undelete']")
    page.wait_for_url("**/change/")
    expect(page.locator(".messagelist")).to_contain_text("Undeleted 1 item.")
    assert api.open_content(api.lookup("archive/notes.md")).read() == b"# Notes\n"

    # Copy an item
    page.click(".object-tools a:has-text('Copy')")
    page.fill("input[name=destination]", "docs/notes-copy.md")
    page.click("input[value='Show what will change']")
    page.click("input[value='Yes, copy']")
    expect(page.locator(".messagelist")).to_contain_text("Copied")
    assert api.open_content(api.lookup("docs/notes-copy.md")).read() == b"# Notes\n"

    # "Recent actions" on the admin's index and the node's History name the paths
    page.goto("/admin/")
    recent = page.locator("#recent-actions-module")
    for path in ("docs/notes-copy.md", "archive/notes.md", "archive", "projects/plan.txt"):
        expect(recent).to_contain_text(path)
    if shots:
        shoot(page, "index")
    node_page(page, "archive/notes.md")
    page.locator(".object-tools").get_by_role("link", name="History", exact=True).click()
    page.wait_for_url("**/history/")
    rows = page.locator("#change-history tbody tr")
    expect(rows).to_have_count(3)  # the upload, the delete, the undelete (the move is on the folder)
    messages = " ".join(rows.all_inner_texts())
    for text in ("Uploaded projects/notes.md", "Deleted archive/notes.md", "Undeleted archive/notes.md"):
        assert text in messages, messages
    assert re.search(r"writer", messages)
    if shots:
        shoot(page, "history")

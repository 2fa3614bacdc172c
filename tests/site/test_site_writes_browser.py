"""The site's writes end to end in Chromium (driven as in tests/site/test_browser.py): upload
two files into a new folder, edit one with a comment, rename the folder, delete an item and
undelete it from the recycle bin, copy an item; and screenshots of the new pages at 1280 and
390 px wide in /tmp/shots/."""

import os
from pathlib import Path

import pytest
from playwright.sync_api import expect

from versioned_items import api

from .test_browser import CHROMIUM, browser, log_in, page  # noqa: F401  (fixtures)

SHOTS = Path(os.environ.get("VI_SHOTS", "/tmp/shots"))

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not Path(CHROMIUM).exists() and not os.environ.get("CI"), reason=f"{CHROMIUM} is missing"
    ),
]


@pytest.fixture
def demo(transactional_db, django_user_model):
    """The superuser the flows log in as, and one item with history."""
    django_user_model.objects.create_superuser("demo", "demo@example.com", "demo")
    with api.batch():
        api.put("docs/guide.txt", "Step one.\n", user="ann", comment="first draft")
        api.put("docs/guide.txt", "Step one.\nStep two.\n", user="bob", comment="second step")


def test_upload_two_files_into_a_new_folder_edit_rename_delete_undelete_copy(page, demo, tmp_path):  # noqa: F811
    log_in(page, "/browse/")
    # a new folder, then two files uploaded into it with the plain file input
    page.click("a:has-text('New folder')")
    page.fill("input[name=path]", "projects")
    page.click("button:has-text('Create folder')")
    page.wait_for_url("**/browse/projects/")
    expect(page.locator(".vi-messages")).to_contain_text("Created the folder projects.")
    (tmp_path / "plan.txt").write_text("Plan: build it.\n")
    (tmp_path / "notes.md").write_text("# Notes\n")
    page.set_input_files("#vi-upload-files", [str(tmp_path / "plan.txt"), str(tmp_path / "notes.md")])
    page.fill("#vi-upload-comment", "kick-off")
    page.click("#vi-upload button[type=submit]")
    page.wait_for_url("**/browse/projects/")
    expect(page.locator(".vi-messages")).to_contain_text("Uploaded 2 files.")
    names = page.locator("table.vi-listing tbody td:first-child a")
    expect(names).to_have_text(["notes.md", "plan.txt"])

    # edit one with a comment; the comment shows in its history
    names.nth(1).click()
    page.wait_for_url("**/item/projects/plan.txt")
    page.click("a:has-text('Edit text')")
    page.fill("textarea[name=text]", "Plan: build it.\nThen test it.\n")
    page.fill("textarea[name=comment]", "added the testing step")
    page.click("button:has-text('Save')")
    page.wait_for_url("**/item/projects/plan.txt")
    expect(page.locator("pre.vi-text")).to_contain_text("Then test it.")
    history = page.locator("table.vi-history tbody tr")
    expect(history).to_have_count(2)
    expect(history.first.locator(".vi-comment")).to_have_text("added the testing step")
    expect(history.nth(1).locator(".vi-comment")).to_have_text("kick-off")

    # rename the folder: ask, confirm
    page.goto("/browse/projects/")
    page.click("a:has-text('Rename or move folder')")
    page.fill("input[name=destination]", "archive")
    page.click("button:has-text('Show what will change')")
    expect(page.locator("form.vi-card")).to_contain_text("projects becomes archive.")
    page.click("button:has-text('Yes, move')")
    page.wait_for_url("**/browse/archive/")
    expect(names).to_have_text(["notes.md", "plan.txt"])
    assert api.lookup("archive/plan.txt").comment == "added the testing step"

    # delete an item, then undelete it from the recycle bin
    page.click("text=notes.md")
    page.click("a:has-text('Delete')")
    page.fill("textarea[name=comment]", "not needed")
    page.click("button:has-text('Yes, delete')")
    page.wait_for_url("**/browse/archive/")
    expect(names).to_have_text(["plan.txt"])
    page.click("a:has-text('Recycle bin')")
    page.wait_for_url("**/bin/archive")
    row = page.locator("table.vi-bin tbody tr")
    expect(row).to_have_count(1)
    expect(row.first).to_contain_text("notes.md")
    expect(row.first).to_contain_text("not needed")
    expect(row.first).to_contain_text("demo")
    row.first.locator("button:has-text('Undelete')").click()
    page.wait_for_url("**/item/archive/notes.md")
    expect(page.locator(".vi-messages")).to_contain_text("is back")
    expect(page.locator("pre.vi-text")).to_contain_text("# Notes")

    # copy an item
    page.click("a:has-text('Copy')")
    page.fill("input[name=destination]", "docs/notes-copy.md")
    page.click("button[type=submit]:has-text('Copy')")
    page.wait_for_url("**/item/docs/notes-copy.md")
    expect(page.locator(".vi-messages")).to_contain_text("Copied archive/notes.md to docs/notes-copy.md")
    expect(page.locator("pre.vi-text")).to_contain_text("# Notes")


def test_a_rejected_form_shows_its_message(page, demo):  # noqa: F811
    api.put("elsewhere/x.txt", "x")
    log_in(page, "/browse/docs/")
    page.click("a:has-text('Rename or move folder')")
    page.fill("input[name=destination]", "elsewhere")
    page.click("button:has-text('Show what will change')")
    page.click("button:has-text('Yes, move')")
    expect(page.locator("[role=alert]")).to_contain_text("Nothing was changed: that path is taken")
    assert api.lookup("docs/guide.txt") is not None


PAGES = {
    "browse": "/browse/docs/",
    "browse-versions": "/browse/docs/?versions=on",
    "item": "/item/docs/guide.txt",
    "add": "/upload/docs",
    "edit": "/edit/docs/guide.txt",
    "new-version": "/new-version/docs/guide.txt",
    "delete": "/delete/docs/guide.txt",
    "move": "/move/docs",
    "copy": "/copy/docs/guide.txt",
    "bin": "/bin/docs",
    "purge": "/purge/docs/old.txt",
}


#: The elements of the page's content that reach past the window, leaving out those inside a
#: box that scrolls on its own (the header is base.html's, styled elsewhere).
OVERFLOWING = """() => Array.from(document.querySelectorAll('.vi-main *'))
    .filter(e => !e.closest('.vi-scroll') && e.getBoundingClientRect().right > window.innerWidth + 1)
    .map(e => e.tagName + '.' + e.className)"""


def test_screenshots_of_the_new_pages(page, demo):  # noqa: F811
    """Each new page at 1280 and 390 px into /tmp/shots/site-<page>-<width>.png; the page's own
    content never needs horizontal scrolling (tables scroll or stack inside their box)."""
    with api.batch():
        api.put("docs/old.txt", "old\n")
        api.delete("docs/old.txt", user="demo", comment="superseded by guide.txt")
    SHOTS.mkdir(parents=True, exist_ok=True)
    log_in(page, "/browse/docs/")
    wide = {}
    for width in (1280, 390):
        page.set_viewport_size({"width": width, "height": 900})
        for name, target in PAGES.items():
            page.goto(target)
            expect(page.locator("h1")).to_be_visible()
            page.screenshot(path=str(SHOTS / f"site-{name}-{width}.png"), full_page=True)
            overflow = page.evaluate(OVERFLOWING)
            if overflow:
                wide[f"{name}@{width}"] = overflow
    assert wide == {}

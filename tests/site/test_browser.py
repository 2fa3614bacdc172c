"""End to end in Debian's Chromium, driven by Playwright, against the live test server: the site
and the admin as a person uses them. A failing test leaves a screenshot in tests/screenshots/."""

import os
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from playwright.sync_api import expect, sync_playwright

from versioned_items import api

CHROMIUM = "/usr/bin/chromium"
# Without the background-networking flags Chromium keeps calling hosts that this machine's
# closed network refuses; --no-sandbox because CI runs as root.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = Path(__file__).resolve().parent / "screenshots"
JAN, JUN = datetime(2024, 1, 1, tzinfo=UTC), datetime(2024, 6, 1, tzinfo=UTC)

pytestmark = [
    pytest.mark.browser,
    # CI installs Chromium, so there a missing browser fails instead of skipping.
    pytest.mark.skipif(
        not Path(CHROMIUM).exists() and not os.environ.get("CI"), reason=f"{CHROMIUM} is missing"
    ),
]


@pytest.fixture(scope="module")
def browser():
    """One Chromium for the module's tests; closed after them, since Playwright's sync API
    allows one running instance per thread (other modules start their own)."""
    # Playwright's sync API keeps an event loop in this thread, and Django refuses database
    # calls from a thread with an event loop unless told it is safe, which it is here: the
    # test's own calls run between browser steps, never inside them.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()
    del os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"]


@pytest.fixture
def page(browser, live_server, request):
    """A fresh browser tab on the live server; screenshot kept when the test fails."""
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    tab = context.new_page()
    failed_before = request.session.testsfailed
    yield tab
    if request.session.testsfailed > failed_before:
        SCREENSHOTS.mkdir(exist_ok=True)
        tab.screenshot(path=str(SCREENSHOTS / f"{request.node.name}.png"), full_page=True)
    context.close()


@pytest.fixture
def corpus(transactional_db, search_index, django_user_model):
    """A superuser and a small tree with history, committed and indexed."""
    from versioned_items.search.indexing import wait_for_index

    django_user_model.objects.create_superuser("demo", "demo@example.com", "demo")
    with api.batch():
        for i in range(60):
            api.put(f"many/f{i:02}.txt", f"file {i}\n", user="ann")
        old = api.put("docs/guide.txt", "Welcome to the zebracorn guide.\nStep one.\n", user="ann", mtime=JAN)
        new = api.put(
            "docs/guide.txt", "Welcome to the updated guide.\nStep one.\nStep two.\n", user="bob", mtime=JUN
        )
    wait_for_index()
    return {"old": old, "new": new}


def names_of(locator) -> list[str]:
    return [locator.nth(i).inner_text() for i in range(locator.count())]


def log_in(page, next_path="/browse/"):
    page.goto(next_path)
    assert "/accounts/login/" in page.url  # anonymous visitors are sent to log in
    page.fill("input[name=username]", "demo")
    page.fill("input[name=password]", "demo")
    page.click("button[type=submit]")
    page.wait_for_url(f"**{next_path}")


def test_log_in_browse_page_with_the_marker_and_see_bad_input_explained(page, corpus):
    log_in(page, "/browse/")
    page.click("text=many/")
    page.wait_for_url("**/browse/many/")
    names = page.locator("table.vi-listing tbody td:first-child a")
    expect(names).to_have_count(50)
    expect(names.first).to_have_text("f00.txt")
    page.click("text=Next page")
    page.wait_for_url("**/browse/many/?*marker=*")
    expect(names).to_have_count(10)
    assert names_of(names) == [f"f{i}.txt" for i in range(50, 60)]
    expect(page.locator("text=First page")).to_be_visible()
    page.fill("input[name=before]", "the day before yesterday")
    page.click("button:has-text('Apply')")
    expect(page.locator("[role=alert]")).to_contain_text("is not a date or time")


def test_open_history_diff_and_restore_a_version(page, corpus):
    log_in(page, "/item/docs/guide.txt")
    rows = page.locator("table.vi-history tbody tr")
    expect(rows).to_have_count(2)
    rows.first.locator("text=diff").click()
    page.wait_for_url("**/diff/**")
    expect(page.locator(".vi-diff-added", has_text="Step two.")).to_have_count(1)
    expect(page.locator(".vi-diff-removed", has_text="zebracorn")).to_have_count(1)
    page.go_back()
    page.wait_for_url("**/item/docs/guide.txt")
    rows.nth(1).locator("text=restore").click()
    page.wait_for_url(f"**/restore/{corpus['old'].serial}/")
    page.click("text=Yes, restore it")
    page.wait_for_url("**/item/docs/guide.txt")
    expect(page.locator(".vi-messages")).to_contain_text("is current again")
    expect(page.locator("pre.vi-text")).to_contain_text("zebracorn")
    expect(rows).to_have_count(3)
    expect(rows.first.locator(".vi-badge")).to_have_text("current")


def test_search_highlights_then_history_and_as_of(page, corpus):
    log_in(page, "/search/")
    hits = page.locator(".vi-hit")
    search(page, "guide")
    expect(hits).to_have_count(1)
    expect(page.locator(".vi-snippet mark").first).to_have_text(re.compile("guide", re.I))
    search(page, "zebracorn")
    expect(page.locator("text=Nothing matches.")).to_be_visible()  # only the old version has it
    page.check("input[name=history]")
    search(page, "zebracorn")
    expect(hits).to_have_count(1)
    expect(hits.locator("mark")).to_have_text(re.compile("zebracorn", re.I))
    expect(hits.locator("a")).to_have_attribute("href", re.compile(f"version={corpus['old'].serial}$"))
    page.uncheck("input[name=history]")
    page.fill("input[name=before]", "2024-03-01")
    search(page, "guide")
    expect(page.locator(".vi-search-layout .vi-note").first).to_have_text(
        re.compile(r"1 match .*as of 2024-03-01")
    )
    expect(page.locator(".vi-snippet")).to_contain_text("zebracorn")


def search(page, text):
    page.fill("input[name=q]", text)
    with page.expect_navigation():
        page.click("button:has-text('Search')")


def test_admin_restore_from_the_node_page_and_run_the_index_check(page, corpus):
    log_in(page, "/browse/")
    page.goto("/admin/versioned_items/node/?under=docs")
    page.click("#result_list >> text=docs/guide.txt")
    page.wait_for_url("**/admin/versioned_items/node/*/change/")
    page.locator(".vi-history a.vi-restore").first.click()
    page.click("input[value='Yes, restore']")
    page.wait_for_url("**/change/")
    expect(page.locator(".messagelist")).to_contain_text("Restored 1 version.")
    assert api.lookup("docs/guide.txt").source == corpus["old"].serial
    page.goto("/admin/versioned_items/node/")
    page.click("text=Search indexes")
    page.click("text=Check the indexes…")
    page.click("input[value='Yes: Check the indexes']")
    expect(page.locator(".vi-check-result")).to_contain_text("No differences")
    expect(page.locator(".vi-index-status td.vi-num").first).to_have_text("61")


def test_a_reader_sees_only_their_folder_in_browse_and_search_with_full_pages(
    page, corpus, django_user_model, settings
):
    from versioned_items.search.indexing import wait_for_index

    settings.VERSIONED_ITEMS = {**settings.VERSIONED_ITEMS, "DEFAULT_ACCESS": ""}
    with api.batch():
        for i in range(30):
            api.put(f"team/alpha/a{i:02}.txt", f"report alpha {i}\n", user="ann")
            api.put(f"team/beta/b{i:02}.txt", f"report beta {i}\n", user="bob")
    wait_for_index()
    django_user_model.objects.create_user("reader", password="reader")
    api.grant("team/alpha", user="reader")
    page.goto("/browse/")
    page.fill("input[name=username]", "reader")
    page.fill("input[name=password]", "reader")
    page.click("button[type=submit]")
    page.wait_for_url("**/browse/")
    names = page.locator("table.vi-listing tbody td:first-child a")
    assert names_of(names) == ["team/"]  # not docs/ or many/
    page.click("text=team/")
    page.wait_for_url("**/browse/team/")
    assert names_of(names) == ["alpha/"]
    expect(page.locator("table.vi-listing tbody tr").first).to_contain_text("folder, 30 items")
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "reader-browse-1280.png"), full_page=True)
    page.set_viewport_size({"width": 390, "height": 844})
    page.screenshot(path=str(SCREENSHOTS / "reader-browse-390.png"), full_page=True)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto("/search/")
    search(page, "report")
    hits = page.locator(".vi-hit")
    expect(hits).to_have_count(20)  # a full page, although beta's 30 hits match too
    expect(page.locator(".vi-search-layout .vi-note").first).to_have_text(re.compile(r"30 matches"))
    assert all("team/alpha/" in text for text in names_of(hits.locator("a")))
    expect(page.locator("text=bob")).to_have_count(0)  # beta's author: not in the facets either
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "reader-search-1280.png"), full_page=True)
    page.set_viewport_size({"width": 390, "height": 844})
    page.screenshot(path=str(SCREENSHOTS / "reader-search-390.png"), full_page=True)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390

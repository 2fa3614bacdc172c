"""The site's look in Chromium: no sideways scrolling at 390 px, names that wrap at slashes
rather than inside words, a skip link, the reader's dark preference, readable diffs."""

import pytest

from versioned_items import api

from .test_browser import browser, log_in  # noqa: F401  (the same browser, and its fixture)
from .test_browser import pytestmark as browser_marks

pytestmark = browser_marks

LONG = "projects/translations/locale/fr/LC_MESSAGES/django-administration-catalogue.po"


@pytest.fixture
def corpus(transactional_db, django_user_model):
    django_user_model.objects.create_superuser("demo", "demo@example.com", "demo")
    with api.batch():
        api.put(LONG, 'msgid "a"\nmsgstr "b"\n', user="ann")
    api.put(LONG, 'msgid "a"\nmsgstr "c"\n' + "# a long line of text " * 20 + "\n", user="bob")
    return api.versions(LONG).order_by("serial")


def tab(browser, live_server, width, scheme="light"):  # noqa: F811
    context = browser.new_context(
        base_url=live_server.url, viewport={"width": width, "height": 800}, color_scheme=scheme
    )
    context.set_default_timeout(15_000)
    return context, context.new_page()


def sideways(page) -> int:
    return page.evaluate("document.documentElement.scrollWidth - window.innerWidth")


def test_no_page_scrolls_sideways_at_390_px(browser, live_server, corpus):  # noqa: F811
    context, page = tab(browser, live_server, 390)
    old, new = corpus
    try:
        log_in(page, "/browse/")
        for url in [
            "/browse/projects/translations/locale/fr/LC_MESSAGES/",
            f"/item/{LONG}",
            f"/diff/?old={old.serial}&new={new.serial}",
        ]:
            page.goto(url)
            assert sideways(page) == 0, url
        # "Log out" stays on the screen.
        box = page.locator(".vi-user button").bounding_box()
        assert box["x"] + box["width"] <= 390
    finally:
        context.close()


def test_names_do_not_break_at_every_letter(browser, live_server, corpus):  # noqa: F811
    context, page = tab(browser, live_server, 1280)
    try:
        log_in(page, "/browse/")
        page.goto("/browse/projects/translations/locale/fr/LC_MESSAGES/")
        styles = page.evaluate(
            "[...document.querySelectorAll('h1, .vi-crumbs, .vi-listing td')]"
            ".map(e => getComputedStyle(e).wordBreak)"
        )
        assert set(styles) == {"normal"}
        # At 1280 px the title fits on one line: nothing splits LC_MESSAGES.
        height = page.evaluate("document.querySelector('h1').getBoundingClientRect().height")
        line = page.evaluate("parseFloat(getComputedStyle(document.querySelector('h1')).lineHeight) || 40")
        assert height < 1.5 * line
    finally:
        context.close()


def test_skip_link_is_first_and_leads_to_the_main_content(browser, live_server, corpus):  # noqa: F811
    context, page = tab(browser, live_server, 1280)
    try:
        log_in(page, "/browse/")
        page.keyboard.press("Tab")
        focused = page.evaluate("document.activeElement.className")
        assert focused == "vi-skip"
        assert page.locator(".vi-skip").is_visible()
        page.keyboard.press("Enter")
        assert page.evaluate("document.activeElement.id") == "main"
    finally:
        context.close()


def test_the_readers_dark_preference_darkens_the_site_and_its_diffs(browser, live_server, corpus):  # noqa: F811
    old, new = corpus
    for scheme, dark in (("light", False), ("dark", True)):
        context, page = tab(browser, live_server, 1280, scheme)
        try:
            log_in(page, "/browse/")
            page.goto(f"/diff/?old={old.serial}&new={new.serial}")
            body = page.evaluate("getComputedStyle(document.body).backgroundColor")
            added = page.locator(".vi-diff-added td").last
            background = added.evaluate("e => getComputedStyle(e).backgroundColor")
            text = added.evaluate("e => getComputedStyle(e).color")
            assert (body == "rgb(255, 255, 255)") != dark
            # Text and background far apart in lightness either way.
            assert abs(luminance(text) - luminance(background)) > 0.5, (scheme, text, background)
        finally:
            context.close()


def luminance(rgb: str) -> float:
    r, g, b = (int(v) / 255 for v in rgb[rgb.index("(") + 1 : rgb.index(")")].split(",")[:3])
    return 0.2126 * r + 0.7152 * g + 0.0722 * b

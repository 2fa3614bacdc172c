"""The test harness itself: the database chosen by VI_TEST_DB, and the file SQLite database that
other processes can open. If these fail, every other test's result is suspect."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection

EXPECTED_VENDOR = {"sqlite": "sqlite", "postgres": "postgresql"}


def test_vendor_matches_vi_test_db():
    assert connection.vendor == EXPECTED_VENDOR[os.environ.get("VI_TEST_DB", "sqlite")]


@pytest.mark.skipif(connection.vendor != "sqlite", reason="SQLite only")
@pytest.mark.django_db
def test_sqlite_test_database_is_a_file_under_the_run_tmpdir():
    name = Path(connection.settings_dict["NAME"])
    assert name.is_file()
    assert name.is_relative_to(os.environ["VI_TEST_TMPDIR"])
    assert connection.settings_dict["OPTIONS"]["transaction_mode"] == "IMMEDIATE"


def test_files_go_under_the_run_tmpdir():
    tmp = os.environ["VI_TEST_TMPDIR"]
    assert Path(settings.MEDIA_ROOT).is_relative_to(tmp)
    assert Path(settings.HAYSTACK_CONNECTIONS["default"]["PATH"]).is_relative_to(tmp)


@pytest.mark.django_db(transaction=True)
def test_child_process_sees_committed_rows(subprocess_env):
    get_user_model().objects.create_user("harness-child-check")
    code = (
        "import django; django.setup()\n"
        "from django.contrib.auth import get_user_model\n"
        "print(get_user_model().objects.filter(username='harness-child-check').count())\n"
    )
    child = subprocess.run(
        [sys.executable, "-c", code], env=subprocess_env, capture_output=True, text=True, timeout=60
    )
    assert child.returncode == 0, child.stderr
    assert child.stdout.strip() == "1"


# Flags from the machine notes: without the background-networking ones Chromium keeps trying
# hosts that this machine's closed network refuses; --no-sandbox because CI runs as root.
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.mark.browser
# CI installs Chromium, so there a missing browser fails instead of skipping.
@pytest.mark.skipif(
    not Path(CHROMIUM).exists() and not os.environ.get("CI"), reason=f"{CHROMIUM} is not installed"
)
def test_playwright_drives_debian_chromium(live_server):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.goto(f"{live_server.url}/admin/login/")
            assert page.locator("input[name=username]").count() == 1
        finally:
            browser.close()

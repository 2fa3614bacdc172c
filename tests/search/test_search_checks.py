"""System checks of the search app."""

import pytest
from django.core.checks import run_checks

from versioned_items.search import checks

ENGINE = checks.ENGINE


def ids(messages):
    return [m.id for m in messages]


def test_the_test_settings_pass():
    assert checks.check_connections() + checks.check_router() + checks.check_signal_processor() == []
    assert checks.check_connection_entries() == []


def test_missing_connection(settings):
    settings.VERSIONED_ITEMS = {"LATEST_CONNECTION": "nowhere"}
    assert ids(checks.check_connections()) == ["versioned_items_search.E001"]


def test_same_connection_twice(settings):
    settings.VERSIONED_ITEMS = {"LATEST_CONNECTION": "vi_latest", "HISTORY_CONNECTION": "vi_latest"}
    assert ids(checks.check_connections()) == ["versioned_items_search.E002"]


def test_shared_path_and_stock_engine(settings):
    settings.HAYSTACK_CONNECTIONS = {
        "vi_latest": {"ENGINE": ENGINE, "PATH": "/tmp/same"},
        "vi_history": {"ENGINE": "haystack.backends.whoosh_backend.WhooshEngine", "PATH": "/tmp/same"},
    }
    assert ids(checks.check_connections()) == ["versioned_items_search.E003", "versioned_items_search.W001"]


@pytest.mark.parametrize(
    "routers",
    [
        [],
        ["haystack.routers.DefaultRouter", checks.ROUTER],
    ],
)
def test_router_missing_or_after_the_default(settings, routers):
    settings.HAYSTACK_ROUTERS = routers
    assert ids(checks.check_router()) == ["versioned_items_search.E004"]


def test_realtime_signal_processor_warns(settings):
    settings.HAYSTACK_SIGNAL_PROCESSOR = "haystack.signals.RealtimeSignalProcessor"
    assert ids(checks.check_signal_processor()) == ["versioned_items_search.W002"]


def test_a_literal_ellipsis_entry_is_reported(settings):
    # The snippet's `"default": {...}` copied as is: a set, which fails on every search request.
    settings.HAYSTACK_CONNECTIONS = {**settings.HAYSTACK_CONNECTIONS, "default": {...}}
    assert ids(checks.check_connection_entries()) == ["versioned_items_search.E005"]
    assert checks.check_connections() == []  # one report, not a second one that crashes
    assert "versioned_items_search.E005" in ids(run_checks())


@pytest.mark.parametrize(
    "entry, expected",
    [
        ({"PATH": "/tmp/x"}, "versioned_items_search.E005"),
        ({"ENGINE": ENGINE}, "versioned_items_search.E006"),
        ({"ENGINE": ENGINE, "STORAGE": "ram"}, None),
    ],
)
def test_malformed_entries(settings, entry, expected):
    settings.HAYSTACK_CONNECTIONS = {**settings.HAYSTACK_CONNECTIONS, "mine": entry}
    assert ids(checks.check_connection_entries()) == ([expected] if expected else [])


def test_haystack_connections_not_a_dict(settings):
    settings.HAYSTACK_CONNECTIONS = [("default", {})]
    assert ids(checks.check_connection_entries()) == ["versioned_items_search.E005"]

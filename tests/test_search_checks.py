"""System checks of the search app."""

import pytest

from versioned_items.search import checks

ENGINE = checks.ENGINE


def ids(messages):
    return [m.id for m in messages]


def test_the_test_settings_pass():
    assert checks.check_connections() + checks.check_router() + checks.check_signal_processor() == []


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


@pytest.mark.parametrize("routers", [
    [],
    ["haystack.routers.DefaultRouter", checks.ROUTER],
])
def test_router_missing_or_after_the_default(settings, routers):
    settings.HAYSTACK_ROUTERS = routers
    assert ids(checks.check_router()) == ["versioned_items_search.E004"]


def test_realtime_signal_processor_warns(settings):
    settings.HAYSTACK_SIGNAL_PROCESSOR = "haystack.signals.RealtimeSignalProcessor"
    assert ids(checks.check_signal_processor()) == ["versioned_items_search.W002"]

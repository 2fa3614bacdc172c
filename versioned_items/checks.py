"""System checks of versioned_items (ids ``versioned_items.E00x`` / ``W00x``)."""

from django.conf import settings
from django.core.checks import Error, Tags, Warning, register

from .conf import app_settings
from .grants import DEFAULT_ACCESS_CHOICES


@register(Tags.database, deploy=False)
def check_sqlite_transaction_mode(app_configs=None, databases=None, **kwargs):
    """SQLite must start write transactions IMMEDIATE: with the default DEFERRED mode, two
    writers that both read first deadlock, and one gets "database is locked" at once."""
    problems = []
    for alias in databases or []:
        config = settings.DATABASES.get(alias, {})
        if config.get("ENGINE", "").endswith("sqlite3"):
            mode = (config.get("OPTIONS") or {}).get("transaction_mode", "")
            if str(mode).upper() != "IMMEDIATE":
                problems.append(
                    Warning(
                        f"Database {alias!r} is SQLite without transaction_mode IMMEDIATE.",
                        hint="Add 'OPTIONS': {'transaction_mode': 'IMMEDIATE'} so concurrent writers "
                        "queue instead of failing with 'database is locked'.",
                        id="versioned_items.W001",
                    )
                )
    return problems


@register()
def check_storage(app_configs=None, **kwargs):
    alias = app_settings.STORAGE
    if alias not in getattr(settings, "STORAGES", {}):
        return [
            Error(
                f"VERSIONED_ITEMS['STORAGE'] is {alias!r}, which is not a key of settings.STORAGES.",
                hint="Name a storage defined in STORAGES (the default is 'default').",
                id="versioned_items.E001",
            )
        ]
    return []


@register()
def check_default_access(app_configs=None, **kwargs):
    """``DEFAULT_ACCESS`` is read on every permission check; a bad value would make every page
    that checks one fail with ImproperlyConfigured, so it is reported at startup instead."""
    value = app_settings.DEFAULT_ACCESS
    if value in DEFAULT_ACCESS_CHOICES:
        return []
    return [
        Error(
            f"VERSIONED_ITEMS['DEFAULT_ACCESS'] is {value!r}, which is not a level logged-in users "
            "can be given everywhere.",
            hint="Use '' (logged-in users without a grant may do nothing, the default) or 'read' "
            "(they may read every item, its history and content); see docs/permissions.md.",
            id="versioned_items.E002",
        )
    ]

"""System checks of versioned_items.search (ids ``versioned_items_search.E00x`` / ``W00x``)."""

from django.conf import settings
from django.core.checks import Error, Warning, register

from versioned_items.conf import app_settings

ENGINE = "versioned_items.search.backends.WhooshEngine"
TANTIVY_ENGINE = "versioned_items.search.backends.tantivy.TantivyEngine"
# The app's engines: batched writes, text reuse, the rebuild with its atomic swap.
APP_ENGINES = (ENGINE, TANTIVY_ENGINE)
ROUTER = "versioned_items.search.routers.VersionedItemsRouter"


@register()
def check_connections(app_configs=None, **kwargs):
    """Both index connections exist, differ, do not share a folder, and use an app engine."""
    configured = getattr(settings, "HAYSTACK_CONNECTIONS", {})
    if not isinstance(configured, dict) or check_connection_entries():
        return []  # reported by check_connection_entries
    names = {
        "LATEST_CONNECTION": app_settings.LATEST_CONNECTION,
        "HISTORY_CONNECTION": app_settings.HISTORY_CONNECTION,
    }
    problems = []
    for setting, alias in names.items():
        if alias not in configured:
            problems.append(
                Error(
                    f"VERSIONED_ITEMS[{setting!r}] is {alias!r}, which is not a key of HAYSTACK_CONNECTIONS.",
                    hint=f"Add HAYSTACK_CONNECTIONS[{alias!r}] = {{'ENGINE': {ENGINE!r}, 'PATH': ...}} "
                    "(see the Haystack page of the documentation, docs/haystack.md).",
                    id="versioned_items_search.E001",
                )
            )
    if problems:
        return problems
    latest, history = names.values()
    if latest == history:
        return [
            Error(
                f"The latest and history indexes both use the Haystack connection {latest!r}.",
                hint="Give them two connections: one Haystack connection holds one index per model.",
                id="versioned_items_search.E002",
            )
        ]
    paths = [configured[alias].get("PATH") for alias in (latest, history)]
    if paths[0] and paths[0] == paths[1]:
        problems.append(
            Error(
                f"The connections {latest!r} and {history!r} share the PATH {paths[0]!r}.",
                hint="Give each connection a folder of its own.",
                id="versioned_items_search.E003",
            )
        )
    for alias in (latest, history):
        if configured[alias].get("ENGINE") not in APP_ENGINES:
            problems.append(
                Warning(
                    f"Haystack connection {alias!r} does not use one of the app's engines.",
                    hint=f"Use ENGINE {ENGINE!r} (Whoosh) or {TANTIVY_ENGINE!r}: they index about "
                    "ten times faster and swap rebuilt indexes atomically. Other backends work, "
                    "without those.",
                    id="versioned_items_search.W001",
                )
            )
    return problems


WHOOSH_ENGINES = (ENGINE, "haystack.backends.whoosh_backend.WhooshEngine")


@register()
def check_connection_entries(app_configs=None, **kwargs):
    """Every HAYSTACK_CONNECTIONS entry is a dict naming an ENGINE (and a PATH for Whoosh and
    tantivy), and the tantivy engine is used only where tantivy is installed.

    Haystack checks nothing until a connection is first used: then an entry such as
    ``"default": {...}`` (a set holding Ellipsis, copied from a snippet) fails on every request
    that touches search, and ``manage.py check`` said nothing.
    """
    configured = getattr(settings, "HAYSTACK_CONNECTIONS", {})
    if not isinstance(configured, dict):
        return [
            Error(
                f"HAYSTACK_CONNECTIONS is a {type(configured).__name__}, not a dict.",
                hint="Map each connection name to a dict of its options.",
                id="versioned_items_search.E005",
            )
        ]
    problems = []
    for alias, options in configured.items():
        if not isinstance(options, dict) or not isinstance(options.get("ENGINE"), str):
            problems.append(
                Error(
                    f"HAYSTACK_CONNECTIONS[{alias!r}] is {options!r}, not a dict with an 'ENGINE'.",
                    hint=f"Write e.g. {{'ENGINE': {ENGINE!r}, 'PATH': ...}}; a literal {{...}} is a set.",
                    id="versioned_items_search.E005",
                )
            )
        else:
            problems += _engine_problems(alias, options)
    return problems


def _engine_problems(alias: str, options: dict) -> list:
    """A Whoosh or tantivy connection without its folder (E006), or a tantivy one where tantivy
    is not installed (E007)."""
    engine = options["ENGINE"]
    if engine in WHOOSH_ENGINES:
        label, folder = "a Whoosh engine", "whoosh"
        if options.get("STORAGE", "file") != "file":
            return []  # Whoosh's RAM storage needs no folder
    elif engine == TANTIVY_ENGINE:
        label, folder = "the tantivy engine", "tantivy"
        if not _tantivy_installed():
            return [
                Error(
                    f"HAYSTACK_CONNECTIONS[{alias!r}] uses the tantivy engine, but tantivy is not installed.",
                    hint='Install the extra: pip install "versioned-items[tantivy]" (or '
                    '"tantivy>=0.27,<0.28"), or use ENGINE ' + repr(ENGINE) + ".",
                    id="versioned_items_search.E007",
                )
            ]
    else:
        return []
    if options.get("PATH"):
        return []
    return [
        Error(
            f"HAYSTACK_CONNECTIONS[{alias!r}] uses {label} without a 'PATH'.",
            hint=f"Give it the folder of its index, e.g. str(BASE_DIR / {folder!r} / alias).",
            id="versioned_items_search.E006",
        )
    ]


def _tantivy_installed() -> bool:
    try:
        import tantivy  # noqa: F401
    except ImportError:
        return False
    return True


@register()
def check_router(app_configs=None, **kwargs):
    """The app's router comes before Haystack's default router."""
    routers = list(getattr(settings, "HAYSTACK_ROUTERS", []))
    default = "haystack.routers.DefaultRouter"
    if ROUTER not in routers or (default in routers and routers.index(default) < routers.index(ROUTER)):
        return [
            Error(
                f"HAYSTACK_ROUTERS does not list {ROUTER!r} before Haystack's default router.",
                hint=f"Set HAYSTACK_ROUTERS = [{ROUTER!r}, {default!r}], so that nodes and versions "
                "go to their own connections and your own models stay where they are.",
                id="versioned_items_search.E004",
            )
        ]
    return []


@register()
def check_signal_processor(app_configs=None, **kwargs):
    """Haystack's realtime processor must not index the app's models behind the outbox's back."""
    processor = getattr(settings, "HAYSTACK_SIGNAL_PROCESSOR", "")
    if processor.endswith("RealtimeSignalProcessor"):
        return [
            Warning(
                "HAYSTACK_SIGNAL_PROCESSOR is Haystack's RealtimeSignalProcessor.",
                hint="It indexes on every model save, for every model, one commit per save. "
                "versioned_items.search keeps its indexes in step by itself; use a processor "
                "connected to your own models only, or none.",
                id="versioned_items_search.W002",
            )
        ]
    return []

"""Haystack router: each of the app's models to its own connection, everything else untouched.

Add it *before* Haystack's default router, so that a site's own models keep going wherever
they went before::

    HAYSTACK_ROUTERS = [
        "versioned_items.search.routers.VersionedItemsRouter",
        "haystack.routers.DefaultRouter",
    ]

For any other model it returns None, which makes Haystack ask the next router.
"""

from versioned_items.conf import app_settings


class VersionedItemsRouter:
    """Node documents to the latest connection, Version documents to the history connection."""

    def _alias(self, hints) -> str | None:
        from versioned_items.models import Node, Version

        # Haystack passes index= (index writes), instance= (signal processors) or models=
        # (SearchQuerySet reads, a set, empty when the query names no model).
        if hints.get("index") is not None:
            model = hints["index"].get_model()
        elif hints.get("instance") is not None:
            model = type(hints["instance"])
        else:
            models = set(hints.get("models") or ())
            model = models.pop() if len(models) == 1 else None
        if model is Node:
            return app_settings.LATEST_CONNECTION
        if model is Version:
            return app_settings.HISTORY_CONNECTION
        return None

    def for_write(self, **hints):
        return self._alias(hints)

    def for_read(self, **hints):
        return self._alias(hints)

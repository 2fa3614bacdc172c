from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class VersionedItemsSearchConfig(AppConfig):
    name = "versioned_items.search"
    label = "versioned_items_search"
    verbose_name = _("Versioned items search")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Wiring only: the outbox receiver, for the storage app's own signal and model; index
        # creation after this app's migrations; the system checks; the index comparison that
        # vi_check runs with the core's integrity checks; the search pages of the admin and the
        # site (extension points of the core, which never imports this app).
        from django.db.models.signals import post_migrate

        from versioned_items import integrity as core_integrity
        from versioned_items.models import Version
        from versioned_items.signals import versions_changed

        from . import admin, checks, views  # noqa: F401  (checks: registered on import)
        from .integrity import check_indexes, repair_indexes
        from .receivers import create_indexes_after_migrate, record_index_changes

        versions_changed.connect(
            record_index_changes, sender=Version, dispatch_uid="versioned_items_search.outbox"
        )
        post_migrate.connect(
            create_indexes_after_migrate, sender=self, dispatch_uid="versioned_items_search.indexes"
        )
        core_integrity.register_checker("search", check_indexes, repair_indexes)
        admin.register()
        views.register()

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class VersionedItemsConfig(AppConfig):
    name = "versioned_items"
    verbose_name = _("Versioned items")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Wiring only: register the system checks and the URL converters.
        from . import checks, converters  # noqa: F401

        converters.register()

"""Path converters of the app's URLs, registered when the app is ready (``vi_id``)."""


class IdConverter:
    """A serial or id in a URL: at most 18 digits, so that it fits the database's 64-bit
    integers (a longer number matches no URL instead of overflowing a query)."""

    regex = "[0-9]{1,18}"

    def to_python(self, value: str) -> int:
        return int(value)

    def to_url(self, value) -> str:
        return str(value)


def register() -> None:
    """Register the converters (from ``AppConfig.ready``; the admin and the site use them)."""
    from django.urls import register_converter
    from django.urls.converters import get_converters

    if "vi_id" not in get_converters():  # Django 6 refuses a second registration
        register_converter(IdConverter, "vi_id")

"""Template tags of the site's base template: ``{% load versioned_items %}``."""

from django import template

from .. import extensions

register = template.Library()


@register.simple_tag(takes_context=True)
def extension_nav(context) -> list[dict]:
    """The header links that installed extensions add (the search app's "Search")."""
    request = getattr(context, "request", None)  # a RequestContext has it without the processor
    return extensions.site_nav(request) if request is not None else []

"""Template filters for showing paths: ``{% load vi_paths %}``.

Browsers do not wrap a path at its slashes (``/`` is no line-break opportunity), so a long path
either widens the page or, with ``overflow-wrap: anywhere`` alone, breaks inside a name
("LC_MESSA" / "GES"). :func:`breakable` adds ``<wbr>`` after every slash: the path wraps at a
slash first, and inside a name only when one name is wider than the line.
"""

from django import template
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

register = template.Library()


@register.filter(is_safe=True)
def breakable(path) -> SafeString:
    """``path`` HTML-escaped, with ``<wbr>`` after each ``/``: ``a/b`` -> ``a/<wbr>b``."""
    return mark_safe("/<wbr>".join(escape(part) for part in str(path).split("/")))

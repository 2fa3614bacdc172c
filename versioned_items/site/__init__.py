"""The site: pages for people who read and restore items (``versioned_items.site.urls``)."""

"""Who may check, update and rebuild the search indexes: superusers, and users with the
``versioned_items_search.manage_index`` permission."""

from versioned_items.permissions import allowed

#: Check, update and rebuild the search indexes.
MANAGE_INDEX = "versioned_items_search.manage_index"


def can_manage_index(user) -> bool:
    return allowed(user, MANAGE_INDEX)

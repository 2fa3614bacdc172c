"""Who may run the operations that rewrite history or the search indexes, from the admin or
the site. Superusers may do everything; anyone else needs the dedicated permission.

Viewing follows Django's model permissions (``view_node``, ``view_version``); editing a
version's attributes needs ``change_version`` plus the attribute permissions of the inline.
"""

#: Restore an earlier version, or undelete an item (both write a new current version).
RESTORE = "versioned_items.restore_version"
#: Purge old versions of a subtree.
PURGE = "versioned_items.purge_version"
#: Check, update and rebuild the search indexes.
MANAGE_INDEX = "versioned_items_search.manage_index"


def _allowed(user, permission: str) -> bool:
    return bool(user and user.is_active and (user.is_superuser or user.has_perm(permission)))


def can_restore(user) -> bool:
    return _allowed(user, RESTORE)


def can_purge(user) -> bool:
    return _allowed(user, PURGE)


def can_manage_index(user) -> bool:
    return _allowed(user, MANAGE_INDEX)

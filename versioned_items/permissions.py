"""Who may run the operations that rewrite history, from the admin or the site. Superusers may
do everything; anyone else needs the dedicated permission. (The search app's permission to
maintain the indexes is in ``versioned_items.search.permissions``.)

On the site, reading follows :mod:`versioned_items.grants` (model permissions count as
site-wide grants there). In the admin, viewing follows Django's model permissions
(``view_node``, ``view_version``); editing a version's attributes needs ``change_version``
plus the attribute permissions of the inline.
"""

#: Restore an earlier version, or undelete an item (both write a new current version).
RESTORE = "versioned_items.restore_version"
#: Purge old versions of a subtree.
PURGE = "versioned_items.purge_version"


def allowed(user, permission: str) -> bool:
    """Whether an active user is a superuser or has ``permission``."""
    return bool(user and user.is_active and (user.is_superuser or user.has_perm(permission)))


def can_restore(user, path: str | None = None) -> bool:
    """Whether ``user`` may restore: the dedicated permission anywhere, or a ``manage`` grant
    on ``path`` or an ancestor (:mod:`versioned_items.grants`). The other dedicated permission
    (purge) does not let its holder restore."""
    if allowed(user, RESTORE):
        return True
    from .grants import Level, granted_level

    return path is not None and granted_level(user, path) == Level.MANAGE


def can_purge(user) -> bool:
    return allowed(user, PURGE)

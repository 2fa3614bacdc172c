"""Who may run the operations that rewrite history, from the admin or the site: restore (and,
in the admin, undelete) and purge. Both need the ``manage`` level at the path
(:func:`versioned_items.grants.can`), which superusers have everywhere, and so do holders of
the dedicated permissions below: Django's model permissions count as site-wide grants, so the
two never disagree. (The search app's permission to maintain the indexes is in
``versioned_items.search.permissions``.)

Reading and writing follow :mod:`versioned_items.grants` on the site and in the admin alike; the
admin also asks for the Django model permissions that let a user reach its pages
(``view_node``, ``add_node``, ...; see docs/permissions.md).
"""

from . import grants
from .models import Grant

#: Restore an earlier version, or undelete an item: ``manage`` everywhere (grants.MODEL_PERMISSIONS).
RESTORE = "versioned_items.restore_version"
#: Purge old versions of a subtree: ``manage`` everywhere, like :data:`RESTORE`.
PURGE = "versioned_items.purge_version"


def allowed(user, permission: str) -> bool:
    """Whether an active user is a superuser or has the model ``permission``."""
    return bool(user and user.is_active and (user.is_superuser or user.has_perm(permission)))


def can_restore(user, path: str | None = None) -> bool:
    """Whether ``user`` may restore a version of ``path`` (the ``manage`` level there), or,
    with ``path=None``, of some path (to offer the action on a list whose rows are checked
    one by one)."""
    return _manages(user, path)


def can_purge(user, path: str | None = None) -> bool:
    """Whether ``user`` may purge old versions below ``path`` (the ``manage`` level there), or,
    with ``path=None``, below some path."""
    return _manages(user, path)


def _manages(user, path: str | None) -> bool:
    if path is not None:
        return grants.can(user, path, grants.Level.MANAGE)
    if not (user and user.is_authenticated and user.is_active):
        return False
    if grants.site_level(user) == grants.Level.MANAGE:
        return True
    return Grant.objects.filter(grants.principal_q(user), level=grants.Level.MANAGE).exists()

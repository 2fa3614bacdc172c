"""The exception hierarchy of versioned_items.

Every error caused by a caller's input is a :class:`VersionedItemsError`, and its message names
the bad value and what would have been accepted. Management commands turn these into
``CommandError``; the site's views turn them into a message on the page (HTTP 400).
"""


class VersionedItemsError(Exception):
    """Base class of every error this app raises on purpose."""


class InvalidInput(VersionedItemsError, ValueError):
    """An argument was malformed (base class of the specific input errors)."""


class InvalidPath(InvalidInput):
    """A path is empty, too long, or has a control character, an empty, ``.`` or ``..`` segment."""


class InvalidFilter(InvalidInput):
    """An attribute filter expression could not be parsed."""


class InvalidArgument(InvalidInput):
    """A limit, cluster, size range, time or other argument is out of range."""


class InvalidQuery(InvalidInput):
    """A search query could not be parsed."""


class NotFound(VersionedItemsError, LookupError):
    """Base class of the lookup errors."""


class NodeNotFound(NotFound):
    """No node has the given path or id."""


class VersionNotFound(NotFound):
    """No version has the given serial (or none matches the given time and cluster)."""


class Conflict(VersionedItemsError):
    """The operation is not possible in the current state (e.g. removing a node with children)."""


class NodeNotEmpty(Conflict):
    """The node still has children or versions."""


class NodeExists(Conflict):
    """A move or create targets a path that is already taken."""


class ConcurrentUpdate(Conflict):
    """Concurrent writers kept colliding with this operation (a deadlock, a serialization
    failure, a racing insert of the same path) and it was rolled back: nothing was written.

    An outermost API call is retried ``VERSIONED_ITEMS['WRITE_RETRIES']`` times before this is
    raised; inside ``with api.batch():`` (or the caller's own transaction) it is raised at once,
    and the caller may run the whole batch again (``api.batch(body)`` does so itself). See
    :mod:`versioned_items.locking`."""


class ContentError(VersionedItemsError, OSError):
    """Content could not be written to the storage (a full disk, missing permissions); the
    message says why. The call that raised it stored nothing."""


class ContentMissing(ContentError):
    """A content file that a version needs is missing from the storage or has the wrong size
    (``vi_check`` reports it with the versions affected)."""


class IndexUnavailable(VersionedItemsError):
    """The search index is missing or unreadable; rebuild it with ``vi_rebuild_index``."""


class WriteOutsideOperation(VersionedItemsError, RuntimeError):
    """``update()`` or ``delete()`` on a QuerySet of nodes, versions, attributes or statistics
    outside an operation of :mod:`versioned_items.api`: it would bypass the statistics, the
    content references and the search outbox. Use the API (``api.delete``, ``api.purge``,
    ``api.set_attributes``...)."""

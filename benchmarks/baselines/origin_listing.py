"""The origin document's delimiter listing, ported to this schema: one query per common prefix.

Written from the origin's description, not from its code: select the visible latest versions
below the parent in path order, starting after the marker, and walk the rows. An object is
kept. The first path that has the delimiter after the prefix makes a common prefix: it is
reported, the walk stops, and the same query runs again from the first path after everything
that starts with that prefix. So a page with P common prefixes costs P + 1 queries.

The port keeps the origin's algorithm and fixes what the README of the origin documents lists
as plain bugs, so that both listings give the same page: the limit counts objects and prefixes
together and is never exceeded, the restart includes the first path after the prefix, and a
marker that is a common prefix continues after everything below it. Rows
are read as a stream (``QuerySet.iterator``: a server-side cursor on PostgreSQL), as the
origin read them with ``fetchone``; fetching every remaining row per query would be far
slower still.
"""

from django.db import transaction
from django.db.models import F

from versioned_items import paths
from versioned_items.listing import Entry, ListResult
from versioned_items.models import Cluster, Version

CHUNK = 20  # rows fetched at a time; a restart rarely needs more than two


def origin_list(
    parent: str, *, delimiter: str = "/", marker: str | None = None, limit: int = 1000
) -> tuple[ListResult, int]:
    """A page of the listing below ``parent`` and the number of queries it took."""
    # In a transaction: outside one, PostgreSQL's server-side cursors are WITH HOLD and
    # compute every remaining row of each query, which would be far slower than the origin.
    with transaction.atomic():
        return _walk(parent, delimiter, marker, limit)


def _walk(parent, delimiter, marker, limit):
    prefix = paths.subtree_prefix(parent)
    upper = paths.next_prefix(prefix)
    visible = Version.objects.filter(node__current=F("serial")).exclude(cluster=Cluster.DELETED)
    if prefix:
        visible = visible.filter(node__path__gte=prefix, node__path__lt=upper)
    visible = visible.order_by("node__path").values_list("node__path", "serial")
    result = ListResult()
    entries = queries = 0
    start, inclusive = (marker, False) if marker and marker >= prefix else (prefix, True)
    if marker and marker.endswith(delimiter) and marker > prefix:
        # The marker is a common prefix of the previous page: continue after all of it.
        start, inclusive = paths.next_prefix(marker), True
    while True:
        rows = visible.filter(node__path__gte=start) if inclusive else visible.filter(node__path__gt=start)
        queries += 1
        restart = None
        for path, serial in rows.iterator(chunk_size=CHUNK):
            if entries == limit:
                return result, queries
            at = path.find(delimiter, len(prefix))
            if at < 0 or at + len(delimiter) == len(path):
                result.objects.append(Entry(path, serial))
                result.next_marker = path
                entries += 1
                continue
            common = path[: at + len(delimiter)]
            result.prefixes.append(common)
            result.next_marker = common
            entries += 1
            restart = paths.next_prefix(common)
            break
        if restart is None:
            result.next_marker = None  # the rows ran out: this was the last page
            return result, queries
        start, inclusive = restart, True

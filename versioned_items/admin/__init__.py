"""The admin of versioned_items: browse the tree, read a node's history, compare, restore and
undelete versions, edit attributes, purge old history, search, and maintain the indexes.

Nodes and versions cannot be added, edited or deleted through model forms here: every change
goes through :mod:`versioned_items.api` (and :mod:`versioned_items.search.indexing` for the
indexes), which keeps statistics, content references and the search outbox in step. The views
parse input with :mod:`versioned_items.forms`, call the library, and render.

Lists stay fast on large trees: :class:`CountLimitPaginator` never counts a whole table, and
every column of a list comes from the page's one query.
"""

from .nodes import NodeAdmin, outermost
from .versions import AttributeInline, VersionAdmin

__all__ = ["AttributeInline", "NodeAdmin", "VersionAdmin", "outermost"]

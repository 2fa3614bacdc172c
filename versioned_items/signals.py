"""The app's own signals. Handlers live in ``receivers`` modules (see versioned_items.search).

``versions_changed``
    Sent by :func:`versioned_items.operations.operation` once per outermost write operation, *inside* the
    operation's transaction, right before it is committed. Receivers that must act only after
    commit (e.g. index updates) record their work in the same transaction and schedule it with
    ``transaction.on_commit``.

    sender
        :class:`versioned_items.models.Version`
    changes
        A :class:`versioned_items.operations.ChangeSet` with these sets of ids:

        - ``nodes``: node ids whose *latest* document may have changed (current version
          changed, path moved, attributes of the current version changed, node removed);
        - ``versions``: serials added or changed (cluster, attributes, path, validity);
        - ``removed_versions``: serials deleted.
"""

from django.dispatch import Signal

versions_changed = Signal()

"""Haystack's stock path on the same model and documents: the baselines of the search scenarios.

The connections ``stock_latest`` and ``stock_history`` (see :mod:`benchmarks.settings`) use
Haystack's own Whoosh engine; :func:`benchmarks.env.stock_connections` points the app's
SearchIndex classes at them. Everything else is Haystack's code: ``update_index``,
``rebuild_index``, ``SearchQuerySet`` and the realtime signal processor's ``handle_save`` /
``handle_delete``.
"""

from haystack.signals import RealtimeSignalProcessor

from versioned_items.signals import versions_changed


class ApiRealtimeSignalProcessor(RealtimeSignalProcessor):
    """``RealtimeSignalProcessor`` fed by the API's ``versions_changed`` instead of ``post_save``.

    The API changes nodes and earlier versions with UPDATE statements, which send no
    ``post_save``; connected to ``post_save`` alone, the processor would index the new version
    and nothing else. Here the processor's own ``handle_save``/``handle_delete`` run for every
    node and version an operation changed, inside its transaction as ``post_save`` handlers do,
    each with one Haystack ``update`` (one writer, one commit) per object: the same documents
    the app's outbox writes, through Haystack's per-save path.
    """

    def setup(self):
        versions_changed.connect(self.handle_changes, dispatch_uid="benchmarks.stock_realtime")

    def teardown(self):
        versions_changed.disconnect(dispatch_uid="benchmarks.stock_realtime")

    def handle_changes(self, sender, changes, **kwargs):
        from versioned_items.models import Node, Version

        live = set(Node.objects.live().filter(pk__in=changes.nodes).values_list("pk", flat=True))
        for node in Node.objects.filter(pk__in=changes.nodes):
            if node.pk in live:
                self.handle_save(Node, node)
            else:
                self.handle_delete(Node, node)
        for version in Version.objects.filter(serial__in=changes.versions):
            self.handle_save(Version, version)
        for serial in changes.removed_versions:
            self.handle_delete(Version, Version(serial=serial))


def fill_quickly(alias: str, objects) -> int:
    """Put the stock-engine documents of ``objects`` into ``alias`` with one writer and one
    commit, for the ``SearchQuerySet`` baseline when ``update_index`` has not filled it.

    The documents are exactly what the stock backend's ``update`` would write; only the
    per-document searcher and commit are skipped, which does not change the index. Returns the
    number of documents.
    """
    from haystack import connections

    backend = connections[alias].get_backend()
    index = connections[alias].get_unified_index().get_index(type(objects[0])) if objects else None
    backend.setup()
    writer = backend.index.writer()
    for obj in objects:
        doc = index.full_prepare(obj)
        doc = {k: backend._from_python(v) for k, v in doc.items() if k != "boost"}
        writer.add_document(**doc)
    writer.commit()
    return len(objects)

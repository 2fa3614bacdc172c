"""Creating versions: statements and time per version, against ``bulk_create`` of the same rows.

``api.put`` keeps statistics, content references, the current pointer and the search outbox
in step, in one transaction per call; ``Version.objects.bulk_create`` of the same rows is the
floor (one statement per batch, nothing kept in step). Three ways through the API are measured:
a put of a new path (node and folders created), a put that replaces the current version of an
existing path, and puts grouped with ``api.batch``. Index work is held back while measuring
(the apply lock is held, as when another process is applying), so the figures are the
database side only; search has scenarios of its own.
"""

import contextlib
import time

from versioned_items import api
from versioned_items.models import Version, direct_writes

from ..corpus import SyntheticCorpus
from ..env import reset_store
from ..report import Result, ratio
from ..timing import count_queries, ms


def _hold_index_work():
    """Hold the search apply lock (if search is installed) so the applier does not compete."""
    from django.conf import settings

    if "versioned_items.search" not in settings.INSTALLED_APPS:
        return contextlib.nullcontext()
    from versioned_items.search import locks

    return locks.apply_lock()


def _drain():
    from django.conf import settings

    if "versioned_items.search" in settings.INSTALLED_APPS:
        from versioned_items.search.indexing import wait_for_index

        wait_for_index()


def run(options, result: Result) -> None:
    count = options.create_count
    reset_store()
    corpus = SyntheticCorpus(count, 3 * count, seed=options.seed, root="create")
    writes = list(corpus.writes())
    new, updates = writes[:count], writes[count : 2 * count]
    table = result.table(
        f"version create: {count:,} versions per row",
        "how",
        "statements / version",
        "ms / version",
        "ratio to bulk_create",
    )
    rows = {}
    with _hold_index_work():
        for label, batch in (("api.put, new path", new), ("api.put, replace current", updates)):
            statements = 0
            start = time.perf_counter()
            for w in batch:
                n, _ = count_queries(
                    lambda: api.put(
                        w.path,
                        w.data,
                        user=w.user,
                        content_type=w.content_type,
                        attributes=w.attributes,
                        mtime=w.mtime,
                    )
                )
                statements += n
            rows[label] = (statements / len(batch), (time.perf_counter() - start) / len(batch))
        # Grouped: the same kind of updates, api.batch() of 100 per transaction.
        grouped = writes[2 * count : 3 * count]
        start = time.perf_counter()
        statements = 0
        for i in range(0, len(grouped), 100):

            def chunk():
                with api.batch():
                    for w in grouped[i : i + 100]:
                        api.put(
                            w.path,
                            w.data,
                            user=w.user,
                            content_type=w.content_type,
                            attributes=w.attributes,
                            mtime=w.mtime,
                        )

            n, _ = count_queries(chunk)
            statements += n
        rows["api.batch of 100 puts"] = (
            statements / len(grouped),
            (time.perf_counter() - start) / len(grouped),
        )
        # The floor: the same rows in one bulk_create per 1,000.
        template = list(Version.objects.order_by("serial")[: len(new)])
        copies = [
            Version(
                node_id=v.node_id,
                size=v.size,
                mtime=v.mtime,
                muser=v.muser,
                cluster=v.cluster,
                content_type=v.content_type,
                checksum=v.checksum,
            )
            for v in template
        ]
        start = time.perf_counter()
        n, _ = count_queries(lambda: Version.objects.bulk_create(copies, batch_size=1000))
        floor = (n / len(copies), (time.perf_counter() - start) / len(copies))
        # They were only a measurement: remove them again (bulk_create set their serials).
        with direct_writes():
            Version.objects.filter(serial__in=[c.serial for c in copies]).delete()
    _drain()
    for label, (statements, seconds) in rows.items():
        table.add(label, statements, ms(seconds), ratio(seconds, floor[1]))
    table.add("bulk_create, batches of 1,000", floor[0], ms(floor[1]), 1.0)
    result.corpus = {"versions": 3 * count, "bytes/version": sum(len(w.data) for w in writes) // len(writes)}
    result.notes.append("ratio = time per version through the API / time per row of bulk_create")

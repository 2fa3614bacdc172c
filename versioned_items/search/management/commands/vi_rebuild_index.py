import sys

from django.core.management.base import BaseCommand, CommandError

from versioned_items.exceptions import VersionedItemsError
from versioned_items.search import indexing


class Command(BaseCommand):
    help = (
        "Rebuild the latest and history search indexes from the database, in a temporary "
        "location swapped in atomically; the live indexes keep answering until then."
    )

    def add_arguments(self, parser):
        parser.add_argument("--procs", type=int, default=1, help="Indexing processes (default 1).")
        parser.add_argument(
            "--batch-size",
            type=int,
            default=None,
            help="Versions read and indexed per batch (default SEARCH_BATCH_SIZE).",
        )

    def handle(self, procs, batch_size, verbosity, **options):
        if procs < 1 or (batch_size is not None and batch_size < 1):
            raise CommandError("--procs and --batch-size must be at least 1")
        bar = None
        if verbosity > 0 and sys.stderr.isatty():
            from tqdm import tqdm

            bar = tqdm(unit="version", desc="rebuild")

        def progress(done, total):
            bar.total = total
            bar.update(done - bar.n)

        try:
            report = indexing.rebuild(procs=procs, batch_size=batch_size, progress=progress if bar else None)
        except VersionedItemsError as error:
            raise CommandError(str(error)) from error
        finally:
            if bar:
                bar.close()
        if verbosity > 0:
            self.stdout.write(
                f"latest: {report.latest} documents, history: {report.history} documents, "
                f"replayed: {report.replayed} changes made during the rebuild"
            )

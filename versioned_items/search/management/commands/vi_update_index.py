from django.core.management.base import BaseCommand, CommandError

from versioned_items.exceptions import VersionedItemsError
from versioned_items.search import indexing


class Command(BaseCommand):
    help = (
        "Compare the search indexes with the database and fix only the differences: add "
        "missing documents, remove stale ones, rewrite changed ones. Prints counts of each."
    )

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="Report the differences, change nothing.")

    def handle(self, dry_run, verbosity, **options):
        try:
            report = indexing.update_index(dry_run=dry_run)
        except VersionedItemsError as error:
            raise CommandError(str(error)) from error
        verb = "would fix" if dry_run else "fixed"
        if verbosity > 0:
            if not dry_run:
                self.stdout.write(f"outbox: applied {report.applied} pending changes")
            for name in ("latest", "history"):
                diff = getattr(report.diff, name)
                self.stdout.write(
                    f"{name}: {verb} added={len(diff.missing)} removed={len(diff.stale)} "
                    f"updated={len(diff.changed)} (documents={diff.documents}, expected={diff.expected})"
                )

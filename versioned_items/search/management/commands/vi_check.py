from django.core.management.base import BaseCommand, CommandError

from versioned_items.exceptions import VersionedItemsError
from versioned_items.search import indexing


class Command(BaseCommand):
    help = (
        "Report differences between the search indexes and the database, and between the "
        "stored statistics and a recomputation. Exits with status 1 when there are any."
    )

    def add_arguments(self, parser):
        parser.add_argument("--no-apply", action="store_true",
                            help="Do not apply pending index changes first (they then count as differences).")

    def handle(self, no_apply, verbosity, **options):
        try:
            report = indexing.check(apply=not no_apply)
        except VersionedItemsError as error:
            raise CommandError(str(error)) from error
        for name in ("latest", "history"):
            diff = getattr(report.diff, name)
            self.stdout.write(
                f"{name} index: {diff.documents} documents, {diff.expected} expected; "
                f"missing={len(diff.missing)} stale={len(diff.stale)} changed={len(diff.changed)}"
            )
            if verbosity > 1:
                for label in ("missing", "stale", "changed"):
                    for pk in sorted(getattr(diff, label))[:50]:
                        self.stdout.write(f"  {label}: {pk}")
        self.stdout.write(f"statistics: {len(report.statistics)} differences")
        for difference in report.statistics[:50]:
            self.stdout.write(f"  {difference}")
        self.stdout.write(f"outbox: {report.pending} pending, {report.overdue} older than the lag bound")
        rebuilt = indexing.index_status().indexes[0].last_rebuild
        self.stdout.write(f"last rebuild: {rebuilt.isoformat(timespec='seconds') if rebuilt else 'never'}")
        if not report.ok:
            raise CommandError(f"{report.diff.count + len(report.statistics) + report.overdue} differences found")
        self.stdout.write("no differences")

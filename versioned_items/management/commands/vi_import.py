import sys

from django.core.management.base import BaseCommand, CommandError

from versioned_items.exceptions import VersionedItemsError
from versioned_items.importer import count_files, import_directory


class Command(BaseCommand):
    help = (
        "Import a directory tree: new and changed files become versions, files that are gone "
        "get delete markers, unchanged files cost nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument("directory", help="The folder to import.")
        parser.add_argument("--under", default="", help="Path to import below (default: the root).")
        parser.add_argument("--user", default="", help="User name recorded on the new versions.")
        parser.add_argument("--batch-size", type=int, default=200, help="Files per transaction.")

    def handle(self, directory, under, user, batch_size, verbosity, **options):
        bar = None
        if verbosity > 0 and sys.stderr.isatty():
            from tqdm import tqdm

            bar = tqdm(total=count_files(directory), unit="file", desc="import")
        try:
            report = import_directory(
                directory, under=under, user=user, batch_size=batch_size,
                progress=bar.update if bar else None,
            )
        except VersionedItemsError as error:
            raise CommandError(str(error)) from error
        finally:
            if bar:
                bar.close()
        for warning in report.warnings:
            self.stderr.write(self.style.WARNING(warning))
        if verbosity > 0:
            self.stdout.write(str(report))

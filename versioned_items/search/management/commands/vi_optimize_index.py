from django.core.management.base import BaseCommand, CommandError

from versioned_items.exceptions import VersionedItemsError
from versioned_items.search import indexing


class Command(BaseCommand):
    help = "Merge each search index into one segment, which speeds up searches after many commits."

    def handle(self, verbosity, **options):
        try:
            indexing.optimize()
        except VersionedItemsError as error:
            raise CommandError(str(error)) from error
        if verbosity > 0:
            self.stdout.write("optimized the latest and history indexes")

import json

from django.core.management.base import BaseCommand, CommandError

from versioned_items.exceptions import VersionedItemsError
from versioned_items.search import indexing


class Command(BaseCommand):
    help = "Print the stored fields of every document of the latest (or history) index, by path."

    def add_arguments(self, parser):
        parser.add_argument("--history", action="store_true", help="Dump the history index.")
        parser.add_argument("--json", action="store_true", help="One JSON object per line.")

    def handle(self, history, json, verbosity, **options):
        try:
            for doc in indexing.dump(history=history):
                self.stdout.write(_as_json(doc) if json else _as_line(doc))
        except VersionedItemsError as error:
            raise CommandError(str(error)) from error


def _as_json(doc: dict) -> str:
    return json.dumps(doc, default=str, sort_keys=True, ensure_ascii=False)


def _as_line(doc: dict) -> str:
    text = (doc.get("content") or "").replace("\n", " ")
    return (
        f"{doc.get('path_exact', '')}  serial={doc.get('serial')} cluster={doc.get('cluster')} "
        f"mtime={doc.get('mtime')} size={doc.get('size')} type={doc.get('content_type', '')} "
        f"user={doc.get('muser', '')} text={doc.get('text_status')}: {text[:60]!r}"
    )

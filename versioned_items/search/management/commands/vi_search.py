import json
from datetime import datetime

from django.core.management.base import BaseCommand, CommandError
from django.utils.html import strip_tags

from versioned_items import grants
from versioned_items.exceptions import VersionedItemsError
from versioned_items.search.api import search
from versioned_items.validation import make_aware


class Command(BaseCommand):
    help = "Search the latest (or history) index and print the first results."

    def add_arguments(self, parser):
        parser.add_argument("query", help="Whoosh query syntax; '*' for everything.")
        parser.add_argument("--history", action="store_true", help="Search every version.")
        parser.add_argument(
            "--as-of", help="ISO date or time: the versions current then (implies --history)."
        )
        parser.add_argument("--under", help="Only below this path.")
        parser.add_argument("--limit", type=int, default=20, help="Results to print (default 20).")
        parser.add_argument("--json", action="store_true", help="Print the results as JSON.")
        parser.add_argument(
            "--user",
            help="Search as this user: only what their grants let them read (default: everything).",
        )

    def handle(self, query, history, as_of, under, limit, json, user, verbosity, **options):
        try:
            searcher = None if user is None else grants.user_named(user)
            page = search(
                query, history=history, as_of=_time(as_of), under=under, page_size=limit, user=searcher
            )
        except VersionedItemsError as error:
            raise CommandError(str(error)) from error
        if json:
            self.stdout.write(_as_json(page))
            return
        for hit in page:
            snippet = strip_tags(hit.highlights.get("text", ""))
            self.stdout.write(
                f"{hit.path}  serial={hit.serial}  {hit.fields['mtime']:%Y-%m-%d %H:%M}  {snippet}"
            )
        if verbosity > 0:
            self.stdout.write(f"{page.total} matches")
            if page.suggestion:
                self.stdout.write(f"did you mean: {page.suggestion}")


def _time(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise CommandError(
            f"--as-of {value!r} is not an ISO date or time such as 2025-03-01 or 2025-03-01T12:00"
        ) from None
    return make_aware(moment)


def _as_json(page) -> str:
    return json.dumps(
        {
            "total": page.total,
            "suggestion": page.suggestion,
            "hits": [{**hit.fields, "score": hit.score, "highlights": hit.highlights} for hit in page],
        },
        default=str,
        ensure_ascii=False,
    )

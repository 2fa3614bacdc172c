import sys
from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError

from versioned_items import integrity
from versioned_items.exceptions import VersionedItemsError

#: Problems listed at verbosity 1; all of them at 2 and more.
SHOWN = 50


class Command(BaseCommand):
    help = (
        "Check that the tables, the content files and (with versioned_items.search installed) the "
        "search indexes agree: statistics, live versions and current pointers, the tree, reference "
        "counts, missing, short or damaged content, orphaned files. With --fix, repair what the "
        "database allows. Exits with status 1 while problems remain."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--fix",
            action="store_true",
            help="Repair what can be repaired from the database, then check again.",
        )
        parser.add_argument(
            "--verify-content",
            action="store_true",
            help="Also read every content file and compare its SHA-256 (slow).",
        )
        parser.add_argument(
            "--grace",
            type=float,
            metavar="SECONDS",
            default=None,
            help="Unreferenced files younger than this are left alone (default: the ORPHAN_GRACE setting).",
        )

    def handle(self, fix, verify_content, grace, verbosity, **options):
        if grace is not None and grace < 0:
            raise CommandError("--grace must be 0 or more seconds")
        bars = {}

        def progress(step: str, amount: int) -> None:
            if step not in bars:
                from tqdm import tqdm

                bars[step] = tqdm(unit=step, desc=step, leave=False)
            bars[step].update(amount)

        run = integrity.repair if fix else integrity.check
        period = None if grace is None else timedelta(seconds=grace)
        try:
            report = run(
                verify_content=verify_content,
                grace=period,
                progress=progress if verbosity > 0 and sys.stderr.isatty() else None,
            )
        except VersionedItemsError as error:
            raise CommandError(str(error)) from error
        finally:
            for bar in bars.values():
                bar.close()
        if verbosity > 0:
            self.show(report, verbosity)
        if report.problems:
            left = " remain after the repair" if fix else " found"
            raise CommandError(f"{len(report.problems)} problems{left}")

    def show(self, report: integrity.Report, verbosity: int) -> None:
        counts = report.counts
        self.stdout.write(
            f"checked {counts.get('nodes', 0)} nodes, {counts.get('content', 0)} contents, "
            f"{counts.get('files', 0)} content files; left alone: {counts.get('young_files', 0)} "
            f"unreferenced files younger than the grace period"
        )
        for note in report.notes:
            self.stdout.write(note)
        for title, problems in (("repaired", report.repaired), ("problem", report.problems)):
            for problem in problems[: None if verbosity > 1 else SHOWN]:
                self.stdout.write(f"{title}: [{problem.kind}] {problem}")
            if verbosity < 2 and len(problems) > SHOWN:
                self.stdout.write(f"... and {len(problems) - SHOWN} more (-v 2 lists them all)")
        if not report.problems:
            self.stdout.write(self.style.SUCCESS("no problems found"))

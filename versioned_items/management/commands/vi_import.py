import sys

from django.core.management.base import BaseCommand, CommandError

from versioned_items.exceptions import VersionedItemsError
from versioned_items.gitimport import count_commits, import_git
from versioned_items.importer import count_files, import_directory


class Command(BaseCommand):
    help = (
        "Import a directory tree: new and changed files become versions, files that are gone "
        "get delete markers, unchanged files cost nothing. With --git REPO, replay a git "
        "repository's history instead: every commit that touches a file becomes a version of it, "
        "and commits imported before are skipped."
    )

    def add_arguments(self, parser):
        parser.add_argument("directory", nargs="?", help="The folder to import.")
        parser.add_argument("--git", metavar="REPO", help="Replay the history of this git repository.")
        parser.add_argument(
            "--rev", default="HEAD", help="With --git: the branch or commit to replay (default HEAD)."
        )
        parser.add_argument("--under", default="", help="Path to import below (default: the root).")
        parser.add_argument(
            "--user",
            default="",
            help="User name recorded on the new versions (directories; git records each commit's author).",
        )
        parser.add_argument(
            "--batch-size", type=int, default=200, help="Files per transaction (directories)."
        )

    def handle(self, directory, git, rev, under, user, batch_size, verbosity, **options):
        if bool(directory) == bool(git):
            raise CommandError("give either a DIRECTORY or --git REPO")
        bar = None
        try:
            if verbosity > 0 and sys.stderr.isatty():
                from tqdm import tqdm

                total, unit = (count_commits(git, rev), "commit") if git else (count_files(directory), "file")
                bar = tqdm(total=total, unit=unit, desc="import")
            progress = bar.update if bar else None
            if git:
                report = import_git(git, under=under, rev=rev, progress=progress)
            else:
                report = import_directory(
                    directory, under=under, user=user, batch_size=batch_size, progress=progress
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

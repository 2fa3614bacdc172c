"""Corpora: what the benchmarks write. A seeded synthetic one, or a real one (``--git``, ``--dir``).

A corpus is a sequence of :class:`Write` operations (a new version of a path, or a delete) in
the order they happened, plus sample search queries. The same seed gives the same corpus,
byte for byte, on every machine: nothing depends on the clock.

- :class:`SyntheticCorpus`: ``nodes`` items in a three-level tree, ``versions`` writes in all
  (the first ``nodes`` create the items, the rest update random ones). Contents are ~1 KB of
  words drawn from a Zipf-distributed pseudo-word vocabulary, as text, Markdown, HTML, JSON or
  (5%) binary, with two attributes each.
- :class:`GitCorpus`: replays a repository's history, oldest commit first: each added or
  modified file becomes a version (author, author time), each removed file a delete.
- :class:`DirCorpus`: every file of a directory tree, once.
"""

import mimetypes
import random
import re
import subprocess
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

# Synthetic writes happen one second apart from this moment: far enough in the past for a
# million writes, and fixed so that "as of" queries are reproducible.
EPOCH = datetime(2024, 1, 1, tzinfo=UTC)
USERS = ("alice", "bob", "carol", "dave", "erin")
STATUSES = ("draft", "review", "final")
KINDS = (  # extension, content type, share
    ("txt", "text/plain", 40),
    ("md", "text/markdown", 25),
    ("html", "text/html", 15),
    ("json", "application/json", 15),
    ("bin", "application/octet-stream", 5),
)


@dataclass(frozen=True)
class Write:
    """One write: a new version of ``path`` (``data`` not None) or a delete marker."""

    path: str
    data: bytes | None
    content_type: str = ""
    user: str = ""
    attributes: dict = field(default_factory=dict)
    mtime: datetime | None = None


def vocabulary(seed: int, size: int = 8000) -> list[str]:
    """``size`` distinct pseudo-words, the same for the same seed; rank 0 is the most common."""
    rng = random.Random(f"vocabulary-{seed}")
    onsets = [
        "b",
        "c",
        "d",
        "f",
        "g",
        "h",
        "k",
        "l",
        "m",
        "n",
        "p",
        "r",
        "s",
        "t",
        "v",
        "z",
        "br",
        "ch",
        "cr",
        "dr",
        "fl",
        "gr",
        "pl",
        "pr",
        "sh",
        "st",
        "th",
        "tr",
    ]
    vowels = ["a", "e", "i", "o", "u", "ai", "ea", "io", "ou"]
    codas = ["", "", "n", "r", "s", "t", "l", "m", "nd", "rk", "st"]
    words: dict[str, None] = {}
    while len(words) < size:
        syllables = rng.choice((1, 2, 2, 3, 3, 4))
        word = "".join(rng.choice(onsets) + rng.choice(vowels) + rng.choice(codas) for _ in range(syllables))
        words.setdefault(word)
    return list(words)


class SyntheticCorpus:
    """A seeded synthetic corpus of ``nodes`` items and ``versions`` writes (>= nodes)."""

    def __init__(
        self,
        nodes: int,
        versions: int | None = None,
        *,
        seed: int = 1,
        root: str = "corpus",
        text_bytes: int = 1000,
    ):
        self.nodes = nodes
        self.versions = max(versions or nodes, nodes)
        self.seed = seed
        self.root = root
        self.text_bytes = text_bytes
        self.words = vocabulary(seed)
        weights = [1 / (rank + 1) ** 1.07 for rank in range(len(self.words))]
        total, self._cumulative = 0.0, []
        for w in weights:
            total += w
            self._cumulative.append(total)
        # Fan-out of the tree: about 50 items per folder, folders in two levels.
        folders = max(1, self.nodes // 50)
        self._top = max(1, round(folders**0.5))
        self._sub = max(1, -(-folders // self._top))

    def describe(self) -> dict:
        return {"source": f"synthetic (seed {self.seed})", "items": self.nodes, "writes": self.versions}

    def path(self, i: int) -> str:
        rng = random.Random(f"path-{self.seed}-{i}")
        folder = i // 50
        top, sub = folder % self._top, folder // self._top
        ext = rng.choices([k[0] for k in KINDS], [k[2] for k in KINDS])[0]
        name = self.words[rng.randrange(200, len(self.words))]
        return f"{self.root}/t{top:03d}/s{sub:03d}/{name}-{i}.{ext}"

    def content_type(self, path: str) -> str:
        ext = path.rpartition(".")[2]
        return next(ctype for e, ctype, _ in KINDS if e == ext)

    def text(self, rng: random.Random, nbytes: int) -> str:
        # About 7 bytes per word with its space.
        words = rng.choices(self.words, cum_weights=self._cumulative, k=max(1, nbytes // 7))
        lines = [" ".join(words[i : i + 12]) for i in range(0, len(words), 12)]
        return "\n".join(lines)

    def content(self, i: int, version: int) -> tuple[bytes, str]:
        """The bytes and content type of version ``version`` of item ``i``."""
        rng = random.Random(f"content-{self.seed}-{i}-{version}")
        path = self.path(i)
        ctype = self.content_type(path)
        size = max(64, int(rng.gauss(self.text_bytes, self.text_bytes / 4)))
        if ctype == "application/octet-stream":
            return rng.randbytes(size), ctype
        text = self.text(rng, size)
        if ctype == "text/markdown":
            text = f"# {self.words[i % 500].title()}\n\n{text}\n"
        elif ctype == "text/html":
            text = f"<html><body><h1>{self.words[i % 500]}</h1><p>{text}</p></body></html>"
        elif ctype == "application/json":
            import json

            text = json.dumps({"title": self.words[i % 500], "body": text.split("\n")})
        return text.encode(), ctype

    def writes(self) -> Iterator[Write]:
        rng = random.Random(f"writes-{self.seed}")
        versions = [0] * self.nodes
        for w in range(self.versions):
            i = w if w < self.nodes else rng.randrange(self.nodes)
            versions[i] += 1
            data, ctype = self.content(i, versions[i])
            yield Write(
                path=self.path(i),
                data=data,
                content_type=ctype,
                user=USERS[(i + versions[i]) % len(USERS)],
                attributes={"status": STATUSES[(i + versions[i]) % 3], "priority": str(1 + i % 5)},
                mtime=EPOCH + timedelta(seconds=w),
            )

    def queries(self, count: int = 20) -> list[str]:
        """Two-word queries (both words required): a common word (ranks 40-160, in 5-20% of
        ~1 KB documents) and a rarer one (ranks 160-640, in 1-5%); together they match
        well under 1% of the documents, as a query that pages through results would."""
        rng = random.Random(f"queries-{self.seed}")
        return [f"{rng.choice(self.words[40:160])} {rng.choice(self.words[160:640])}" for _ in range(count)]


class GitCorpus:
    """The history of a git repository, replayed oldest first (at most ``limit`` writes)."""

    def __init__(self, repo: str, limit: int | None = None, root: str = "git"):
        self.repo = Path(repo)
        self.limit = limit
        self.root = root
        if not (self.repo / ".git").exists() and not (self.repo / "HEAD").exists():
            raise SystemExit(f"--git {repo}: not a git repository")

    def describe(self) -> dict:
        return {"source": f"git {self.repo}", "at most": self.limit or "all"}

    def writes(self) -> Iterator[Write]:
        log = subprocess.run(
            [
                "git",
                "-C",
                str(self.repo),
                "log",
                "--reverse",
                "--no-merges",
                "--no-renames",
                "--format=%x00%H %at %an",
                "--name-status",
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        reader = subprocess.Popen(
            ["git", "-C", str(self.repo), "cat-file", "--batch"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        count = 0
        last = EPOCH.replace(year=1970)
        try:
            for block in log.split("\x00")[1:]:
                head, *changes = block.strip("\n").split("\n")
                commit, stamp, author = head.split(" ", 2)
                # Author times can go backwards; versions of a path may not.
                mtime = last = max(last, datetime.fromtimestamp(int(stamp), UTC))
                for line in changes:
                    if not line.strip():
                        continue
                    status, _, name = line.partition("\t")
                    path = f"{self.root}/{name}"
                    if status.startswith("D"):
                        yield Write(path=path, data=None, user=author[:150], mtime=mtime)
                    else:
                        data = _cat(reader, f"{commit}:{name}")
                        if data is None:
                            continue
                        yield Write(
                            path=path, data=data, content_type=_guess(name), user=author[:150], mtime=mtime
                        )
                    count += 1
                    if self.limit and count >= self.limit:
                        return
        finally:
            reader.stdin.close()
            reader.wait()

    def queries(self, count: int = 20) -> list[str]:
        return _queries_from(w.data for w in _take(self.writes(), 500) if w.data)[:count]


class DirCorpus:
    """Every regular file below ``folder`` (at most ``limit``), once, in sorted order."""

    def __init__(self, folder: str, limit: int | None = None, root: str = "dir"):
        self.folder = Path(folder)
        self.limit = limit
        self.root = root
        if not self.folder.is_dir():
            raise SystemExit(f"--dir {folder}: not a directory")

    def describe(self) -> dict:
        return {"source": f"dir {self.folder}", "at most": self.limit or "all"}

    def writes(self) -> Iterator[Write]:
        from versioned_items import paths
        from versioned_items.exceptions import InvalidInput

        count = 0
        for file in sorted(p for p in self.folder.rglob("*") if p.is_file() and not p.is_symlink()):
            relative = file.relative_to(self.folder).as_posix()
            if any(part in (".git", ".hg", ".svn", "__pycache__") for part in file.parts):
                continue
            try:
                path = paths.clean_path(f"{self.root}/{relative}")
                data = file.read_bytes()
            except (InvalidInput, OSError):
                continue
            yield Write(path=path, data=data, content_type=_guess(relative), user="import")
            count += 1
            if self.limit and count >= self.limit:
                return

    def queries(self, count: int = 20) -> list[str]:
        return _queries_from(w.data for w in _take(self.writes(), 500))[:count]


def _guess(name: str) -> str:
    return mimetypes.guess_type(name, strict=False)[0] or "application/octet-stream"


def _cat(reader: subprocess.Popen, spec: str) -> bytes | None:
    reader.stdin.write(spec.encode() + b"\n")
    reader.stdin.flush()
    header = reader.stdout.readline().split()
    if len(header) < 3 or header[1] != b"blob":
        return None
    data = reader.stdout.read(int(header[2]))
    reader.stdout.read(1)  # the newline after the object
    return data


def _take(iterator, n):
    for i, item in enumerate(iterator):
        if i >= n:
            return
        yield item


def _queries_from(contents) -> list[str]:
    """Two-word queries from moderately common words of real contents."""
    counts = Counter()
    for data in contents:
        counts.update(set(re.findall(r"[a-z]{4,12}", data.decode("utf-8", "replace").lower())))
    common = [w for w, _ in counts.most_common(200)][20:120] or ["the"]
    rng = random.Random("queries")
    return [f"{rng.choice(common)} {rng.choice(common)}" for _ in range(40)]


def make_corpus(options, nodes: int, versions: int | None = None, root: str = "corpus"):
    """The corpus the command line asked for: ``--git``, ``--dir`` or synthetic."""
    if options.git:
        return GitCorpus(options.git, limit=versions or nodes, root=root)
    if options.dir:
        return DirCorpus(options.dir, limit=versions or nodes, root=root)
    return SyntheticCorpus(nodes, versions, seed=options.seed, root=root)


def load(writes, batch_size: int = 200) -> dict:
    """Write ``writes`` through the service API, ``batch_size`` per transaction (``api.batch``).

    Returns counts: versions written and bytes.
    """
    from versioned_items import api
    from versioned_items.exceptions import VersionedItemsError

    versions = nbytes = 0
    pending: list[Write] = []

    def flush():
        with api.batch():
            for w in pending:
                if w.data is None:
                    try:
                        api.delete(w.path, user=w.user)
                    except VersionedItemsError:
                        continue  # replayed history may delete what it never saw
                else:
                    api.put(
                        w.path,
                        w.data,
                        user=w.user,
                        content_type=w.content_type,
                        attributes=w.attributes,
                        mtime=w.mtime,
                    )
        pending.clear()

    for w in writes:
        pending.append(w)
        versions += 1
        nbytes += len(w.data or b"")
        if len(pending) >= batch_size:
            flush()
    if pending:
        flush()
    return {"versions": versions, "bytes": nbytes}


def store_size() -> dict:
    """Nodes, versions and content bytes in the database now."""
    from django.db.models import Sum

    from versioned_items.models import Node, Version

    return {
        "nodes": Node.objects.count(),
        "versions": Version.objects.count(),
        "bytes": Version.objects.aggregate(s=Sum("size"))["s"] or 0,
    }

"""Peak memory of a large ``api.put`` and ``vi_import``, above the process's baseline.

Each figure comes from a fresh child process (``python -c``, the run's settings and database):
it sets Django up, writes a small version (so that imports, the connection and the search
receivers are loaded), reads its resident size (``VmRSS`` in ``/proc/self/status``), resets
the kernel's peak to it (``echo 5 > /proc/self/clear_refs``), does the one operation, and reads
the peak (``VmHWM``). The figure is peak minus baseline.

- put: ``api.put`` of an open file of ``--memory-mb`` MB;
- import: ``import_directory`` of a folder of two files of half that size each.

Baseline ("before"): the same child run on the code of commit ``BASE_COMMIT`` (the storage
core before content was streamed), exported with ``git archive`` into a temporary folder;
skipped with a note when git or that commit is missing. The store is emptied before every
child, so both codes write the content afresh.

Target: the project's figure is at most 64 MB for each (the content is copied in chunks of
``CONTENT_CHUNK_BYTES``; the old code held whole files).
"""

import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from ..env import REPO_ROOT, child_env, reset_store
from ..report import Result, ratio

BASE_COMMIT = "fc51594"
TARGET_MB = 64
MB = 1 << 20

CHILD = r"""
import json, sys, django

def status(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024

django.setup()
from versioned_items import api
from versioned_items.importer import import_directory

api.put("memory/warm-up.bin", b"warm up")
operation, target = sys.argv[1:]
baseline = status("VmRSS")
try:
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # the peak (VmHWM) starts again from the current size
    reset = True
except OSError:
    reset = False
if operation == "put":
    with open(target, "rb") as f:
        api.put("memory/put.bin", f)
else:
    import_directory(target, under="memory/import")
print(json.dumps({"baseline": baseline, "peak": status("VmHWM"), "reset": reset}))
"""


def run(options, result: Result) -> None:
    size = options.memory_mb * MB
    work = Path(os.environ["VI_BENCH_DIR"]) / "memory"
    tree = work / "tree"
    tree.mkdir(parents=True, exist_ok=True)
    _random_file(work / "put.bin", size)
    for name in ("a.bin", "b.bin"):
        _random_file(tree / name, size // 2)
    operations = [
        ("put", f"api.put of an open {options.memory_mb} MB file", work / "put.bin"),
        ("import", f"vi_import of 2 files of {options.memory_mb // 2} MB", tree),
    ]
    with tempfile.TemporaryDirectory(prefix="vi-bench-base-") as base:
        base_code = _export(BASE_COMMIT, Path(base), result)
        table = result.table(
            f"peak resident memory above the process's baseline (MB), content {options.memory_mb} MB",
            "operation",
            "before",
            "project",
            "before/project",
            "project baseline RSS",
        )
        for operation, label, target in operations:
            before = _measure(operation, target, base_code) if base_code else None
            after = _measure(operation, target, REPO_ROOT)
            above = (after["peak"] - after["baseline"]) / MB
            above_before = (before["peak"] - before["baseline"]) / MB if before else float("nan")
            table.add(label, above_before, above, ratio(above_before, above), after["baseline"] / MB)
            result.target(f"{operation}: peak above baseline", above, "<=", TARGET_MB, " MB")
            if not after["reset"]:
                result.notes.append("the kernel's peak could not be reset: figures include start-up")
    result.corpus = {"content MB": options.memory_mb}
    shutil.rmtree(work, ignore_errors=True)


def _measure(operation: str, target: Path, code: Path) -> dict:
    """Run the child on ``code`` (a source tree) against an empty store; return its answer."""
    reset_store()
    env = child_env()
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(code), os.environ.get("PYTHONPATH")]))
    child = subprocess.run(
        [sys.executable, "-c", CHILD, operation, str(target)],
        env=env,
        cwd=code,
        capture_output=True,
        text=True,
        timeout=3600,
    )
    if child.returncode != 0:
        raise RuntimeError(
            f"memory child failed on {code} (exit {child.returncode}):\n{child.stderr[-4000:]}"
        )
    return json.loads(child.stdout.strip().splitlines()[-1])


def _export(commit: str, folder: Path, result: Result) -> Path | None:
    """The source tree of ``commit`` in ``folder`` (git archive), or None with a note."""
    archive = folder / "source.tar"
    with open(archive, "wb") as out:
        done = subprocess.run(
            ["git", "-C", str(REPO_ROOT), "archive", commit], stdout=out, stderr=subprocess.PIPE, text=True
        )
    if done.returncode != 0:
        result.notes.append(f"no 'before' figures: git archive {commit} failed ({done.stderr.strip()})")
        return None
    with tarfile.open(archive) as tar:
        tar.extractall(folder / "tree", filter="data")
    return folder / "tree"


def _random_file(path: Path, size: int) -> None:
    """``size`` random bytes (they neither compress nor repeat), written a chunk at a time."""
    if path.exists() and path.stat().st_size == size:
        return
    with open(path, "wb") as f:
        for start in range(0, size, MB):
            f.write(os.urandom(min(MB, size - start)))

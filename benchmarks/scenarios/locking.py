"""What the locking discipline costs: ``api.put``, ``api.batch`` of 100 puts, and a mixed
workload of 4 and 8 processes, on the code before it (``BASE_COMMIT``, exported with
``git archive`` as in the memory scenario) and on this checkout, side by side in one run.

Each figure comes from fresh child processes (``benchmarks.locking_worker``) on an emptied
store. The mixed workload: every process does put, delete, undelete, copy, purge of a shared
folder and remove_version on overlapping paths; the figure is the wall time of the slowest
process, and the errors callers saw are counted (the old code let database errors through).
Meaningful on PostgreSQL (``--db postgres``); on SQLite writers are serialized anyway.
"""

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from ..env import REPO_ROOT, child_env, reset_store
from ..report import Result, ratio
from .memory import _export

BASE_COMMIT = "b95e8a4"


def _run(code: Path, *args, processes: int = 1) -> list[dict]:
    import json

    env = child_env()
    env["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(code), str(REPO_ROOT), os.environ.get("PYTHONPATH")])
    )
    children = [
        subprocess.Popen(
            [sys.executable, "-m", "benchmarks.locking_worker", *map(str, args), str(w)],
            env=env,
            cwd=code,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for w in range(processes)
    ]
    answers = []
    for child in children:
        out, err = child.communicate(timeout=3600)
        if child.returncode != 0:
            raise RuntimeError(f"locking worker failed on {code}:\n{err[-4000:]}")
        answers.append(json.loads(out.strip().splitlines()[-1]))
    return answers


def run(options, result: Result) -> None:
    count = options.create_count
    with tempfile.TemporaryDirectory(prefix="vi-bench-base-") as base:
        before_code = _export(BASE_COMMIT, Path(base), result)
        # The worker module is new: the old tree gets this checkout's copy of it.
        if before_code is not None:
            (before_code / "benchmarks" / "locking_worker.py").write_text(
                (REPO_ROOT / "benchmarks" / "locking_worker.py").read_text()
            )
        table = result.table(
            f"locking cost ({options.db}): ms, {count} operations per process",
            "workload",
            "before",
            "project",
            "project/before",
            "errors before",
            "errors project",
        )
        workloads = [
            ("api.put", "put", 1),
            ("api.batch of 100 puts", "batch", 1),
            ("mixed, 4 processes", "mixed", 4),
            ("mixed, 8 processes", "mixed", 8),
        ]
        for label, kind, processes in workloads:
            figures = []
            for code in (before_code, REPO_ROOT):
                if code is None:
                    figures.append((float("nan"), 0))
                    continue
                reset_store()
                answers = _run(code, kind, count, processes=processes)
                figures.append((max(a["seconds"] for a in answers) * 1000, sum(a["errors"] for a in answers)))
            (before, before_errors), (after, after_errors) = figures
            table.add(label, before, after, ratio(after, before), before_errors, after_errors)
            result.target(f"{label}: errors callers saw", after_errors, "<=", 0, "")
    result.corpus = {"operations per process": count}

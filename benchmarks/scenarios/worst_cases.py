"""The worst cases of issue 10, as times: requests any logged-in user can make, each run in a
fresh child process on the project's code and on the code before the limits (``BASE_COMMIT``,
exported with ``git archive`` as the memory scenario does), with a per-case timeout so that
the old code's hangs are reported as "> N s" instead of hanging the benchmark. Where tantivy
is installed, the project's search cases run on its tantivy engine too (a third child per
case, with the same corpus in the tantivy indexes; the smoke run, which only proves that the
scenario runs, times the first of them).

- suggestion of one 1,000/2,000/5,000-character word, and of 400 CJK characters
  (``search(word, suggest=True)`` on the latest index);
- ``*a*`` and ``*e* OR *i* OR *o*`` over a corpus with many distinct terms;
- a diff of two 40,000-line versions with few distinct lines (``diffs.diff_lines``);
- an attribute filter of 500 terms (``api.list_latest(filter=...)``).

The project's answer to most of them is a refusal that names the limit (docs/limits.md): the
table says how each case ended (``ok``, or the error's class) and how long that took. No
targets: the bounds themselves are asserted by counting work in tests/search/test_bounds.py.
"""

import json
import os
import random
import subprocess
import sys
import tempfile
from pathlib import Path

from .. import engines
from ..env import REPO_ROOT, child_env, end_sessions
from ..report import Result
from .memory import _export

NEEDS_SEARCH = True
BASE_COMMIT = "b95e8a4"

CHILD_APP = "vi-bench-worst-case"  # its server sessions, by application_name

CHILD = r"""
import json, sys, time, django

django.setup()
case, argument = sys.argv[1], json.loads(sys.argv[2])
if case == "search":
    from versioned_items.search.api import search
    call = lambda: search(argument, suggest=True, highlight=False)
elif case == "diff":
    from versioned_items.diffs import diff_lines
    old = [f"line {n % 7}" for n in range(argument)]
    new = [f"line {n % 5}" for n in range(argument)]
    call = lambda: diff_lines(old, new)
else:
    from versioned_items import api
    call = lambda: api.list_latest(filter=", ".join(f"k{n}=v{n}" for n in range(argument)))
start = time.perf_counter()
try:
    call()
    outcome = "ok"
except Exception as error:
    outcome = type(error).__name__
print(json.dumps({"seconds": time.perf_counter() - start, "outcome": outcome}))
"""

CASES = [
    ("suggestion, one 1,000-character word", "search", "w" * 1000),
    ("suggestion, one 2,000-character word", "search", "w" * 2000),
    ("suggestion, one 5,000-character word", "search", "w" * 5000),
    ("suggestion, 400 CJK characters", "search", "漢字" * 200),
    ("*a*", "search", "*a*"),
    ("*e* OR *i* OR *o*", "search", "*e* OR *i* OR *o*"),
    ("diff of 40,000 lines, 12 distinct", "diff", 40_000),
    ("attribute filter of 500 terms", "filter", 500),
]


def run(options, result: Result) -> None:
    timeout = 10.0 if options.smoke else 120.0  # a child's whole run, Django's start-up included
    items, words_per_item = (20, 100) if options.smoke else (options.size, 160)
    distinct = _load_corpus(items, words_per_item, options.seed)
    result.corpus = {"items": items, "distinct words": distinct}
    tantivy = engines.TANTIVY in engines.available()
    if tantivy:
        from versioned_items.search import indexing

        with engines.serving(engines.TANTIVY):
            indexing.update_index()  # the corpus, in the tantivy indexes too
    else:
        result.notes.append(engines.skipped_note())
    with tempfile.TemporaryDirectory(prefix="vi-bench-base-") as base:
        base_code = _export(BASE_COMMIT, Path(base), result)
        table = result.table(
            f"worst cases: seconds (outcome), timeout {timeout:g} s per case",
            "case",
            "before s",
            "before outcome",
            "project s",
            "project outcome",
            "tantivy engine s",
            "tantivy engine outcome",
        )
        on_tantivy_cases = [label for label, case, _ in CASES if case == "search" and tantivy]
        if options.smoke:
            on_tantivy_cases = on_tantivy_cases[:1]
        for label, case, argument in CASES:
            before = _measure(case, argument, base_code, timeout) if base_code else {}
            after = _measure(case, argument, REPO_ROOT, timeout)
            on_tantivy = (
                _measure(case, argument, REPO_ROOT, timeout, engines.child_env_of(engines.TANTIVY))
                if label in on_tantivy_cases
                else {}
            )
            table.add(
                label,
                before.get("shown", "-"),
                before.get("outcome", "-"),
                after["shown"],
                after["outcome"],
                on_tantivy.get("shown", "-"),
                on_tantivy.get("outcome", "-"),
            )


def _load_corpus(items: int, words_per_item: int, seed: int) -> int:
    """Items of random words (most of them distinct terms); returns the number of words."""
    from versioned_items import api
    from versioned_items.search.indexing import wait_for_index

    rng = random.Random(seed)
    letters = "abcdefghijklmnopqrstuvwxyz"
    words = set()
    for n in range(items):
        text = " ".join("".join(rng.choices(letters, k=rng.randint(5, 9))) for _ in range(words_per_item))
        words.update(text.split())
        api.put(f"worst/{n}.txt", text.encode(), user="bench")
    wait_for_index()
    return len(words)


def _measure(case: str, argument, code: Path, timeout: float, extra_env: dict | None = None) -> dict:
    """Run one case in a child on ``code`` (with ``extra_env``): its seconds ("> N" past the
    timeout) and outcome."""
    env = child_env(PGAPPNAME=CHILD_APP, **(extra_env or {}))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(code), os.environ.get("PYTHONPATH")]))
    try:
        child = subprocess.run(
            [sys.executable, "-c", CHILD, case, json.dumps(argument)],
            env=env,
            cwd=code,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        end_sessions(CHILD_APP)  # its statement would go on running on the server
        return {"shown": f"> {timeout:g}", "outcome": "timed out"}
    if child.returncode != 0:
        raise RuntimeError(
            f"worst-case child failed on {code} (exit {child.returncode}):\n{child.stderr[-4000:]}"
        )
    answer = json.loads(child.stdout.strip().splitlines()[-1])
    answer["shown"] = round(answer["seconds"], 3)
    return answer

"""``python -m benchmarks``: run the scenarios and print their tables. See ``--help``."""

import argparse
import importlib
import shlex
import sys
import time
import traceback

from . import SCENARIOS
from .env import Run
from .report import Result, machine, write_json

# The 1M latency size indexes 1.25M documents: about an hour here with the Whoosh engine, so on
# that engine it runs only on demand (--latency-sizes 10000,100000,1000000); the tantivy engine
# runs it in every full run.
FULL = {
    "size": 5000,
    "listing_sizes": [10_000, 100_000, 1_000_000],
    "latency_sizes": [10_000, 100_000],
    "tantivy_latency_sizes": [10_000, 100_000, 1_000_000],
    "create_count": 500,
    "realtime_count": 100,
    "repeat": 5,
    "queries": 20,
    "memory_mb": 200,
    "asof_size": 100_000,
}
SMOKE = {
    "size": 150,
    "listing_sizes": [3000, 6000],
    "latency_sizes": [300, 600],
    "tantivy_latency_sizes": [300, 600],
    "create_count": 20,
    "realtime_count": 10,
    "repeat": 2,
    "queries": 5,
    "memory_mb": 20,
    "asof_size": 150,
}


def sizes(text: str) -> list[int]:
    return [int(float(s)) for s in text.replace("_", "").split(",") if s.strip()]


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Benchmarks of versioned_items side by side with their baselines.",
    )
    parser.add_argument(
        "--smoke", action="store_true", help="tiny sizes (seconds): checks that every scenario runs"
    )
    parser.add_argument(
        "--scenario",
        action="append",
        choices=list(SCENARIOS),
        metavar="NAME",
        help=f"run only these (repeatable): {', '.join(SCENARIOS)}",
    )
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--git", metavar="REPO", help="replay this git repository's history as the corpus")
    source.add_argument("--dir", metavar="DIR", help="import this directory tree as the corpus")
    parser.add_argument(
        "--db",
        choices=["sqlite", "postgres"],
        default="sqlite",
        help="database (postgres: reached through PGHOST etc.; default sqlite)",
    )
    parser.add_argument("--seed", type=int, default=1, help="seed of the synthetic corpus (default 1)")
    parser.add_argument("--size", type=int, help="versions written by the indexing and search scenarios")
    parser.add_argument("--asof-size", type=int, help="versions of the asof scenario's corpus (full: 100k)")
    parser.add_argument(
        "--listing-sizes", type=sizes, help="comma-separated node counts for the listing scenario"
    )
    parser.add_argument(
        "--latency-sizes",
        type=sizes,
        help="comma-separated version counts for the latency scenario, Whoosh engine (full: 10k,100k)",
    )
    parser.add_argument(
        "--tantivy-latency-sizes",
        type=sizes,
        help="the same for the tantivy engine (full: 10k,100k,1M)",
    )
    parser.add_argument("--create-count", type=int, help="versions per row of the create scenario")
    parser.add_argument(
        "--realtime-count", type=int, help="single-version transactions per process (realtime)"
    )
    parser.add_argument("--repeat", type=int, help="repetitions of each timed call (the best counts)")
    parser.add_argument("--queries", type=int, help="distinct queries per search measurement")
    parser.add_argument(
        "--memory-mb", type=int, help="content size in MB of the memory scenario's put and import"
    )
    parser.add_argument("--workdir", help="work folder (default: a new temporary folder)")
    parser.add_argument("--keep", action="store_true", help="keep the work folder and database afterwards")
    options = parser.parse_args(argv)
    for key, value in (SMOKE if options.smoke else FULL).items():
        if getattr(options, key) is None:
            setattr(options, key, value)
    return options


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    options = parse(argv)
    names = options.scenario or list(SCENARIOS)
    run = Run(options.db, options.workdir, options.keep).start()
    from django.conf import settings

    info = machine()
    print(
        f"versioned_items benchmarks: {options.db}, {info['cores']} cores, {info['ram']} RAM, "
        f"Python {info['python']}, {'smoke' if options.smoke else 'full'} sizes, seed {options.seed}"
    )
    results, failed = [], []
    try:
        for name in names:
            module = importlib.import_module(f"benchmarks.scenarios.{SCENARIOS[name]}")
            result = Result(scenario=name, db=options.db)
            if getattr(module, "NEEDS_SEARCH", False) and not settings.SEARCH:
                result.notes.append("skipped: versioned_items.search is not available in this checkout")
                print(result.render(), flush=True)
                continue
            start = time.perf_counter()
            try:
                module.run(options, result)
            except Exception:
                failed.append(name)
                result.notes.append("FAILED:\n" + traceback.format_exc())
            result.seconds = time.perf_counter() - start
            results.append(result)
            print(result.render() + "\n", flush=True)
    finally:
        run.stop()
    command = "python -m benchmarks " + shlex.join(argv)
    path = write_json(results, command, options.db)
    missed = [f"{r.scenario}: {t.name}" for r in results for t in r.targets if not t.met]
    print(f"results: {path}")
    print(f"targets: {sum(len(r.targets) for r in results) - len(missed)} met, {len(missed)} missed")
    if failed:
        print(f"FAILED scenarios: {', '.join(failed)}", file=sys.stderr)
        return 1
    # A missed target is a finding, not a crash: the smoke run only proves the scenarios run.
    return 0


if __name__ == "__main__":
    sys.exit(main())

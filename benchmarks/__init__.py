"""Benchmarks of versioned_items side by side with their baselines (``python -m benchmarks``).

Each scenario is a module of :mod:`benchmarks.scenarios` with ``run(options, result)``; those
that need the search app say ``NEEDS_SEARCH = True``. Modules are imported after Django is set
up, in the order below, which is the order of a full run.
"""

#: scenario name -> module in benchmarks.scenarios
SCENARIOS = {
    "listing": "listing",
    "create": "create",
    "import": "import_",
    "search": "search",
    "asof": "asof",
    "rebuild": "rebuild",
    "realtime": "realtime",
    "latency": "latency",
    "memory": "memory",
    "upload_memory": "upload_memory",
    "locking": "locking",
    "worst_cases": "worst_cases",
    "tantivy": "tantivy",
    "grants": "grants",
}

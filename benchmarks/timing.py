"""Small timing helpers: repeat a call, count its queries, take percentiles."""

import statistics
import time

from django.db import connection
from django.test.utils import CaptureQueriesContext


def best_of(func, repeat: int = 5, budget: float = 30.0) -> tuple[float, object]:
    """The fastest of ``repeat`` runs of ``func()`` (fewer if ``budget`` seconds run out), and
    the last result."""
    times, result, spent = [], None, 0.0
    for _ in range(repeat):
        start = time.perf_counter()
        result = func()
        elapsed = time.perf_counter() - start
        times.append(elapsed)
        spent += elapsed
        if spent > budget:
            break
    return min(times), result


def count_queries(func) -> tuple[int, object]:
    """The number of SQL statements ``func()`` ran (transaction control excluded), and its result."""
    # The log keeps the last 9,000 statements; a full log would make every count 0.
    connection.queries_log.clear()
    with CaptureQueriesContext(connection) as captured:
        result = func()
    skip = ("BEGIN", "COMMIT", "SAVEPOINT", "RELEASE SAVEPOINT", "ROLLBACK")
    return sum(1 for q in captured.captured_queries if not q["sql"].upper().startswith(skip)), result


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(p) - 1]


def ms(seconds: float) -> float:
    return seconds * 1000

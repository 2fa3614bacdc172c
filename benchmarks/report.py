"""Tables, targets and the JSON results of a run.

Every scenario returns a :class:`Result`: tables of absolute figures (with the ratio of the
project to its baseline) and targets. A target compares a measured ratio with a threshold and is
MET or MISSED; nothing here knows the expected figures, so a benchmark can fail.
"""

import json
import math
import platform
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

RESULTS_DIR = Path(__file__).resolve().parent / "results"


@dataclass
class Target:
    """``value op threshold``, e.g. speed-up >= 8."""

    name: str
    value: float
    op: str  # ">=" or "<="
    threshold: float
    unit: str = "x"

    @property
    def met(self) -> bool:
        if self.value is None or math.isnan(self.value):
            return False
        return self.value >= self.threshold if self.op == ">=" else self.value <= self.threshold

    def line(self) -> str:
        status = "MET   " if self.met else "MISSED"
        target = f"{self.op} {fmt(self.threshold)}{self.unit}"
        return f"  {status} {self.name}: {fmt(self.value)}{self.unit} (target {target})"


@dataclass
class Table:
    title: str
    columns: list[str]
    rows: list[list] = field(default_factory=list)

    def add(self, *row) -> None:
        self.rows.append(list(row))

    def render(self) -> str:
        cells = [self.columns] + [[fmt(c) for c in row] for row in self.rows]
        widths = [max(len(str(r[i])) for r in cells) for i in range(len(self.columns))]
        lines = [self.title]
        for n, row in enumerate(cells):
            lines.append(
                "  "
                + "  ".join(
                    str(c).ljust(w) if i == 0 else str(c).rjust(w)
                    for i, (c, w) in enumerate(zip(row, widths, strict=True))
                )
            )
            if n == 0:
                lines.append("  " + "  ".join("-" * w for w in widths))
        return "\n".join(lines)


@dataclass
class Result:
    scenario: str
    db: str
    corpus: dict = field(default_factory=dict)
    tables: list[Table] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def table(self, title: str, *columns: str) -> Table:
        table = Table(title, list(columns))
        self.tables.append(table)
        return table

    def target(self, name: str, value: float, op: str, threshold: float, unit: str = "x") -> Target:
        target = Target(name, value, op, threshold, unit)
        self.targets.append(target)
        return target

    def render(self) -> str:
        head = f"== {self.scenario} ({self.db}) =="
        if self.corpus:
            head += "\n  corpus: " + ", ".join(f"{k} {fmt(v)}" for k, v in self.corpus.items())
        parts = [head] + [t.render() for t in self.tables]
        if self.targets:
            parts.append("targets:\n" + "\n".join(t.line() for t in self.targets))
        parts += [f"  note: {n}" for n in self.notes]
        parts.append(f"  ({self.seconds:.1f} s)")
        return "\n".join(parts)


def fmt(value) -> str:
    """Numbers with 3 significant digits (thousands separated), everything else as is."""
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if math.isnan(value):
            return "n/a"
        if value == 0:
            return "0"
        if abs(value) >= 1000:
            return f"{value:,.0f}"
        return f"{value:.3g}"
    return str(value)


def ratio(project: float, baseline: float) -> float:
    return project / baseline if baseline else float("nan")


def machine() -> dict:
    import os

    try:
        with open("/proc/meminfo") as f:
            kb = int(next(line for line in f if line.startswith("MemTotal")).split()[1])
        ram = f"{kb / 1024 / 1024:.0f} GiB"
    except (OSError, StopIteration, ValueError):
        ram = "?"
    return {
        "cores": os.cpu_count(),
        "ram": ram,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def write_json(results: list[Result], command: str, db: str, stamp: str | None = None) -> Path:
    """Write the run to ``benchmarks/results/<time>-<db>.json``; return the file."""
    import django
    import whoosh

    RESULTS_DIR.mkdir(exist_ok=True)
    now = datetime.now(UTC)
    stamp = stamp or now.strftime("%Y%m%dT%H%M%SZ")
    path = RESULTS_DIR / f"{stamp}-{db}.json"
    data = {
        "date": now.isoformat(timespec="seconds"),
        "command": command,
        "db": db,
        "machine": machine() | {"django": django.get_version(), "whoosh": whoosh.versionstring()},
        "results": [
            asdict(r) | {"targets": [asdict(t) | {"met": t.met} for t in r.targets]} for r in results
        ],
    }
    path.write_text(json.dumps(data, indent=2, default=str))
    return path

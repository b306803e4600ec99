"""The bench's results: rows of (figure, ceiling, ratio), rendered as Markdown and JSON (pure)."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from typing import Any

from bench.stats import ratio

HIGHER: str = "higher"
LOWER: str = "lower"


@dataclass
class Row:
    """One measured figure beside its ceiling, both from the same run."""

    id: str
    group: str
    measure: str
    unit: str
    figure: float | None
    ceiling: float | None
    ceiling_is: str
    better: str = HIGHER
    """``higher`` (throughput: ratio in %) or ``lower`` (latency, cost: ratio as a multiple)."""
    note: str = ""

    @property
    def ratio(self) -> float | None:
        return ratio(self.figure, self.ceiling)

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "ratio": self.ratio}


@dataclass(frozen=True)
class Target:
    """A goal on one row's ratio or figure (reported, never enforced)."""

    row_id: str
    text: str
    at_least_ratio: float | None = None
    at_most_figure: float | None = None

    def verdict(self, rows: dict[str, Row]) -> tuple[str, str]:
        """(``met``/``not met``/``not measured``, what was measured)."""
        row = rows.get(self.row_id)
        if row is None or row.figure is None or math.isnan(row.figure):
            return "not measured", "-"
        if self.at_least_ratio is not None:
            value = row.ratio
            if value is None:
                return "not measured", "-"
            ok = value >= self.at_least_ratio
            return ("met" if ok else "not met"), format_ratio(value, HIGHER)
        assert self.at_most_figure is not None
        ok = row.figure <= self.at_most_figure
        return ("met" if ok else "not met"), format_number(row.figure, row.unit)


@dataclass
class Report:
    """Everything one run found; :func:`render_markdown` and :meth:`to_json` show it."""

    title: str
    command: str
    started_at: str
    duration_s: float
    machine: dict[str, Any]
    versions: dict[str, str]
    settings: dict[str, Any]
    rows: list[Row] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)
    checks: list[str] = field(default_factory=list)
    """Sanity checks of the harness itself (the load generator keeps its rate, counts add up)."""
    notes: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        body = {
            "title": self.title,
            "command": self.command,
            "started_at": self.started_at,
            "duration_s": self.duration_s,
            "machine": self.machine,
            "versions": self.versions,
            "settings": self.settings,
            "rows": [r.to_json() for r in self.rows],
            "targets": [
                {"row": t.row_id, "target": t.text, "verdict": t.verdict(self.by_id())[0]}
                for t in self.targets
            ],
            "checks": self.checks,
            "notes": self.notes,
            "details": self.details,
        }
        return json.dumps(_finite(body), indent=2, sort_keys=False) + "\n"

    def by_id(self) -> dict[str, Row]:
        return {r.id: r for r in self.rows}


def _finite(value: Any) -> Any:
    """JSON has no NaN: ``nan`` becomes ``null``."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def format_number(value: float | None, unit: str) -> str:
    """``1234.5, "events/s"`` -> ``1,234 events/s``; ms with 3 significant digits."""
    if value is None or math.isnan(value):
        return "-"
    if unit == "ms":
        text = f"{value:.3g}" if value < 100 else f"{value:.0f}"
        if "e" in text:
            text = f"{value:.2f}"
        return f"{text} ms"
    if unit in ("CPU s", "s"):
        return f"{value:.2f} {unit}"
    if unit == "MiB":
        return f"{value:.0f} MiB"
    return f"{value:,.0f} {unit}"


def format_ratio(value: float | None, better: str) -> str:
    """A throughput ratio as a percentage, a latency or cost ratio as a multiple."""
    if value is None or math.isnan(value):
        return "-"
    if better == HIGHER:
        return f"{value * 100:.0f} %"
    return f"{value:.2f}x"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(report: Report) -> str:
    """The report as Markdown: settings, the rows by group, targets, checks, notes."""
    m, v = report.machine, report.versions
    lines = [
        f"# {report.title}",
        "",
        f"Started {report.started_at}, took {report.duration_s / 60:.1f} min: `{report.command}`",
        "",
        f"**Machine:** {m.get('cores')} cores ({m.get('cpu_model')}), "
        f"{m.get('memory_gib', 0):.1f} GiB memory, {m.get('os')}; load average "
        f"{m.get('load_before')} before, {m.get('load_after')} after. Shared with other work: "
        "read each figure against the ceiling beside it, measured in the same run.",
        "",
        "**Versions:** " + ", ".join(f"{k} {val}" for k, val in v.items()),
        "",
        "**Settings:** " + ", ".join(f"{k}={val}" for k, val in report.settings.items()),
        "",
        "| measure | figure | ceiling | the ceiling is | ratio |",
        "| --- | ---: | ---: | --- | ---: |",
    ]
    group = None
    for row in report.rows:
        if row.group != group:
            group = row.group
            lines.append(f"| **{_cell(group)}** | | | | |")
        measure = row.measure + (f" ({row.note})" if row.note else "")
        lines.append(
            f"| {_cell(measure)} | {format_number(row.figure, row.unit)} "
            f"| {format_number(row.ceiling, row.unit)} | {_cell(row.ceiling_is)} "
            f"| {format_ratio(row.ratio, row.better)} |"
        )
    lines.append("")
    lines.append(
        "Ratio: figure ÷ ceiling; in % where higher is better, as a multiple where lower is."
    )
    if report.targets:
        rows = report.by_id()
        lines += ["", "## Targets", "", "| target | measured | verdict |", "| --- | ---: | --- |"]
        for target in report.targets:
            verdict, measured = target.verdict(rows)
            lines.append(f"| {_cell(target.text)} | {measured} | {verdict} |")
    if report.checks:
        lines += ["", "## Checks of the harness", ""]
        lines += [f"- {check}" for check in report.checks]
    if report.notes:
        lines += ["", "## Notes", ""]
        lines += [f"- {note}" for note in report.notes]
    lines.append("")
    return "\n".join(lines)

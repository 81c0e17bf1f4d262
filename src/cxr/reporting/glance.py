"""The report's first screen: every trained model's test AUROC with its 95% interval beside
chance and the paper's number, and a plain verdict, so a reader sees at once what learned."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

from cxr.core.readers import read_csv_rows
from cxr.layout import Layout
from cxr.reporting.discovery import Stage
from cxr.reporting.document import Heading, Paragraph, Table
from cxr.reporting.tables import fmt

#: The headline metric every evaluation has, and what no skill scores on it.
METRIC, CHANCE = "auroc_macro", 0.5


def verdict(low: float | None, high: float | None) -> str:
    """``learned`` when the whole interval lies above chance, ``worse than chance`` when it
    lies below, else ``not distinguishable from chance``; an interval of one point (every
    resample alike) says the test side is too small to tell."""
    if low is None or high is None:
        return "no interval"
    if low == high:
        return "too few test images to tell"
    if low > CHANCE:
        return "learned"
    if high < CHANCE:
        return "worse than chance"
    return "not distinguishable from chance"


def _interval(text: str | None) -> tuple[float | None, float | None]:
    with contextlib.suppress(TypeError, ValueError):
        low, high = json.loads(text or "")
        return float(low), float(high)
    return None, None


def glance(stages: list[Stage], layout: Layout) -> list:
    """A heading, how to read the table, and one row per evaluated model."""
    rows = []
    for stage in stages:
        for column in stage.columns:
            path = Path(layout.evaluation(stage.study, stage.name, column)) / "headline.csv"
            if not path.is_file():
                continue
            found = read_csv_rows(path, ("metric", "value"))
            row = next((r for r in found if r["metric"] == METRIC), None)
            if row is None:
                continue
            low, high = _interval(row.get("ci"))
            papers = [
                f"{k} {fmt(v)}" for k, v in row.items() if k not in ("metric", "value", "ci") and v
            ]
            rows.append(
                [
                    stage.study,
                    stage.name,
                    column,
                    f"{fmt(row.get('value'))} {fmt(row.get('ci'))}".strip(),
                    fmt(CHANCE, 1),
                    "; ".join(papers) or "–",
                    verdict(low, high),
                ]
            )
    if not rows:
        return []
    learned = sum(r[-1] == "learned" for r in rows)
    header = ["study", "stage", "model", "test AUROC [95% CI]", "chance", "paper", "verdict"]
    return [
        Heading("At a glance: what learned", 2),
        Paragraph(
            f"{learned} of {len(rows)} models learned: their test AUROC (macro over outputs) "
            "lies above chance with its whole 95% bootstrap interval. Each study's section "
            "below has the other metrics, the baselines and the figures."
        ),
        Table(header, rows, "Test AUROC of every model beside chance and the paper's number."),
    ]

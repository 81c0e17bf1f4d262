"""Whether transfer helped: a stage started from an earlier stage of its own study, beside a
stage trained on the same dataset, split and folds without it (seed 000's Model C beside
Model B). Overlapping 95% intervals say the two are not distinguishable."""

from __future__ import annotations

from cxr.layout import Layout
from cxr.reporting.discovery import Stage
from cxr.reporting.provenance import data_of
from cxr.reporting.scores import Score, headline_of


def _parent(stage: Stage) -> str | None:
    """The stage of its own study it started from (None: none, or another study's model)."""
    begun = (stage.run.get("data") or {}).get("init_stage")
    if isinstance(begun, dict) and begun.get("study") == stage.study:
        return begun.get("stage")
    return None


def transfer_pairs(stages: list[Stage]) -> list[tuple[Stage, Stage]]:
    """(transferred, trained alone) pairs: same study, dataset, split and split columns."""
    pairs = []
    for stage in stages:
        if _parent(stage) is None:
            continue
        data = stage.run.get("data") or {}
        for other in stages:
            theirs = other.run.get("data") or {}
            if (
                other is not stage
                and other.study == stage.study
                and _parent(other) is None
                and data.get("dataset") is not None
                and theirs.get("dataset") == data.get("dataset")
                and theirs.get("split") == data.get("split")
                and other.columns == stage.columns
            ):
                pairs.append((stage, other))
    return pairs


def outcome(transferred: Score, alone: Score) -> str:
    """``helped`` / ``hurt`` when the intervals do not overlap, else ``not distinguishable``."""
    if None in (transferred.low, transferred.high, alone.low, alone.high):
        return "no interval"
    if transferred.low > alone.high:  # type: ignore[operator]
        return "helped"
    if transferred.high < alone.low:  # type: ignore[operator]
        return "hurt"
    return "not distinguishable"


def transfer_sentences(stages: list[Stage], layout: Layout, scale: str | None) -> list[str]:
    """One sentence per pair: both headline metrics with their intervals, and the outcome."""
    at = f"this {scale} scale" if scale else "this scale"
    sentences = []
    for stage, other in transfer_pairs(stages):
        ours, theirs = headline_of(stage, layout), headline_of(other, layout)
        if ours is None or theirs is None or ours.headline is None or theirs.headline is None:
            continue
        mine, alone = ours.headline, theirs.headline
        parent = _parent(stage)
        source = next(
            (data_of(s, layout)[0] for s in stages if s.study == stage.study and s.name == parent),
            None,
        )
        dataset = data_of(stage, layout)[0]
        start = f"{parent} ({source})" if isinstance(source, str) else str(parent)
        said = {
            "helped": f"The intervals do not overlap: at {at}, transfer from {start} helped",
            "hurt": f"The intervals do not overlap: at {at}, transfer from {start} hurt",
            "not distinguishable": f"The intervals overlap: at {at}, transfer from {start} is "
            f"not distinguishable from training on {dataset} alone",
            "no interval": "Without both intervals this cannot tell whether transfer helped",
        }[outcome(mine, alone)]
        sentences.append(
            f"**Transfer ({stage.study}):** {stage.name} (started from {parent}) "
            f"{mine.metric} {mine.ours()} vs {other.name} (no transfer) {alone.ours()} "
            f"({ours.label}). {said}."
        )
    return sentences

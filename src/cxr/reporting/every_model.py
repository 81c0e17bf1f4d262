"""Below the first screen: every model's test AUROC (and, multi-class, accuracy) with its 95%
interval and verdict, a k-fold stage pooled into one row, a cascade's end-to-end accuracy
against its majority baseline, and where the headline models' CAMs point."""

from __future__ import annotations

from pathlib import Path

from cxr.core.readers import read_json_object
from cxr.layout import Layout
from cxr.reporting.discovery import Stage
from cxr.reporting.document import Heading, Paragraph, Table
from cxr.reporting.end_to_end import end_to_end_score
from cxr.reporting.glance import cam_folder, headline_stages
from cxr.reporting.scores import Score, evaluated, evaluation_folders
from cxr.reporting.tables import fmt

LOCALISED = "a localisation.json written by cxr cam"


def _papers(*scores: Score | None) -> str:
    cells = [f"{p} {s.metric} {fmt(v)}" for s in scores if s is not None for p, v in s.papers]
    return "; ".join(cells) or "–"


def _short(verdict: str) -> str:
    """A verdict without the baseline its column names: ``not distinguishable``, ``worse``."""
    return verdict.removesuffix(" from baseline").removesuffix(" than baseline")


def _row(study: str, stage: str, model: str, auroc: Score | None, acc: Score | None) -> list:
    cells = [study, stage, model]
    cells += [auroc.ours(), _short(auroc.verdict)] if auroc is not None else ["–", ""]
    if acc is not None:
        cells += [acc.ours(), fmt(acc.baseline) or "unknown", _short(acc.verdict)]
    else:
        cells += ["–", "", ""]
    return [*cells, _papers(auroc, acc)]


def model_rows(stages: list[Stage], layout: Layout) -> list[list[str]]:
    """A row per evaluated model (per k-fold stage, its pooled row when it has one), and after a
    cascade study's stages its end-to-end accuracy."""
    rows = []
    for study in dict.fromkeys(s.study for s in stages):
        for stage in (s for s in stages if s.study == study):
            for label, folder in evaluation_folders(stage, layout):
                found = evaluated(stage, label, folder)
                if found is not None:
                    rows.append(_row(study, stage.name, label, found.auroc, found.accuracy))
        cascade = end_to_end_score(layout, study)
        if cascade is not None:
            rows.append(_row(study, "the cascade end to end", "held-out set", None, cascade))
    return rows


def every_model(stages: list[Stage], layout: Layout, headlines: dict[str, str]) -> list:
    """A heading, how to read the table, the table, and the CAMs' pointing game."""
    rows = model_rows(stages, layout)
    if not rows:
        return []
    learned = sum(r[4] == "learned" or r[7] == "learned" for r in rows)
    header = ["study", "stage", "model", "AUROC [95% CI]", "vs chance 0.5"]
    header += ["accuracy [95% CI]", "majority share", "vs majority", "paper"]
    caption = (
        "Every model's test AUROC (macro over its outputs) against chance and, for a "
        "multi-class model, its accuracy against the majority class's share of the test set; "
        "a k-fold stage's folds pooled into one row where they were evaluated pooled."
    )
    blocks: list = [
        Heading("Every model", 2),
        Paragraph(
            f"{learned} of {len(rows)} rows learned: a metric's whole 95% bootstrap interval "
            "lies above its baseline. Each stage's section below has the other metrics, the "
            "per-fold numbers and every figure."
        ),
        Table(header, rows, caption),
    ]
    pointing = pointing_sentence(stages, layout, headlines)
    return blocks + ([Paragraph(pointing)] if pointing else [])


def _all_row(rows: object) -> dict | None:
    """The ``all`` row of a localisation.json table (a list of per-finding rows)."""
    if not isinstance(rows, list):
        return None
    return next((r for r in rows if isinstance(r, dict) and r.get("finding") == "all"), None)


def pointing_game(folder: Path) -> tuple[int, float, float | None] | None:
    """(boxes, the CAMs' pointing game, a centred blob's on the same boxes or None) of a CAM
    folder's localisation.json (None without one, or without boxes)."""
    path = folder / "localisation.json"
    if not path.is_file():
        return None
    found = read_json_object(path, LOCALISED)
    ours, blob = _all_row(found.get("findings")), _all_row(found.get("centred_blob"))
    if ours is None or not ours.get("boxes") or ours.get("pointing_game") is None:
        return None
    theirs = blob.get("pointing_game") if blob else None
    return int(ours["boxes"]), float(ours["pointing_game"]), theirs


def pointing_sentence(stages: list[Stage], layout: Layout, headlines: dict[str, str]) -> str:
    """``CAM pointing game X vs centred blob Y`` of each headline model with scored boxes."""
    parts = []
    for study, stage in headline_stages(stages, layout, headlines).items():
        folder = cam_folder(stage, layout) if isinstance(stage, Stage) else None
        scored = pointing_game(folder) if folder is not None else None
        if scored is None or not isinstance(stage, Stage):
            continue
        boxes, ours, blob = scored
        versus = f"vs centred blob {fmt(blob)}" if blob is not None else "(no centred-blob score)"
        parts.append(f"{study}/{stage.name} ({folder.name}) {fmt(ours)} {versus}, {boxes} boxes")
    if not parts:
        return ""
    return (
        "**CAM pointing game** of the headline models (share of ground-truth boxes holding the "
        "heatmap's peak; a centred blob that ignores the image is the baseline): "
        + "; ".join(parts)
        + "."
    )

"""The report's first screen: one row per study (its headline model's test metric with its 95%
interval, the baseline no skill beats, the paper's number, a plain verdict), whether transfer
helped, and each headline model's ROC curves and CAM grid as thumbnails.

A study's headline stage is the one ``--headlines-json`` names, else its last. The pretraining
stand-ins (models of the synthetic corpus) are no study of a paper: they are left out here.
"""

from __future__ import annotations

from pathlib import Path

from cxr.layout import POOLED, Layout
from cxr.reporting.discovery import Stage, relative
from cxr.reporting.document import Image, Paragraph, Table
from cxr.reporting.scores import Evaluated, headline_of, is_stand_in
from cxr.reporting.sections import CAM_GRID, Sections
from cxr.reporting.transfer import transfer_sentences


def headline_stages(
    stages: list[Stage], layout: Layout, headlines: dict[str, str]
) -> dict[str, Stage | str]:
    """Each study's headline stage (the stand-ins' study left out), or the name of a headline
    stage the study does not have."""
    out: dict[str, Stage | str] = {}
    for study in dict.fromkeys(s.study for s in stages):
        own = [s for s in stages if s.study == study]
        if all(is_stand_in(s, layout) for s in own):
            continue
        name = headlines.get(study, own[-1].name)
        out[study] = next((s for s in own if s.name == name), name)
    return out


def cam_folder(stage: Stage, layout: Layout) -> Path | None:
    """The CAM folder of a stage's headline model: its pooled one, else its first column's."""
    for column in [POOLED, *stage.columns]:
        folder = Path(layout.cam(stage.study, stage.name, column))
        if folder.is_dir():
            return folder
    return None


def compared_figure(stage: Stage, layout: Layout) -> Path | None:
    """The first CAM comparison that draws the stage (beside other stages), if any: the maps
    of a stage that draws none of its own (``cam: {enabled: false}``)."""
    tree = Path(layout.cam_compare_tree(stage.study))
    pairs = [p for p in sorted(tree.glob("*_vs_*")) if stage.name in p.name.split("_vs_")]
    return next((f for pair in pairs for f in sorted(pair.glob("*.png"))), None)


def model_name(found: Evaluated) -> str:
    """``model_c, pooled over 3 folds`` (a ``split`` model: its stage's name only)."""
    label = found.label
    return found.stage.name if label == "split" else f"{found.stage.name}, {label}"


def baseline_text(metric: str, baseline: float | None) -> str:
    if baseline is None:
        return "unknown"
    return f"chance {baseline:g}" if metric == "AUROC" else f"majority {baseline:.3f}"


def first_screen(stages: list[Stage], sections: Sections, headlines: dict[str, str]) -> list:
    """The study table, how many learned and whether transfer helped, and the thumbnails."""
    layout = sections.layout
    rows, shown = [], {}
    for study, stage in headline_stages(stages, layout, headlines).items():
        if isinstance(stage, str):
            sections.problems.append(f"missing headline stage {study}/{stage}")
            rows.append([study, f"{stage} (no such stage)", "", "", "", "", "missing"])
            continue
        found = headline_of(stage, layout)
        score = found.headline if found is not None else None
        if found is None or score is None:
            rows.append([study, stage.name, "", "", "", "", "no evaluation"])
            continue
        shown[study] = found
        said = f"**{score.verdict}**" if score.verdict == "learned" else score.verdict
        base = baseline_text(score.metric, score.baseline)
        rows.append(
            [study, model_name(found), score.metric, score.ours(), base, score.paper(), said]
        )
    if not rows:
        return []
    learned = sum(r[-1] == "**learned**" for r in rows)
    header = ["study", "headline model", "metric", "ours [95% CI]", "baseline", "paper", "verdict"]
    caption = (
        "Each study's headline model on its test set: ours with its 95% bootstrap interval "
        "against the baseline no skill beats (AUROC: chance; accuracy: the majority class's "
        "share of the test set), beside the paper's number."
    )
    said = (
        f"{learned} of {len(rows)} studies learned (the headline model's whole 95% interval "
        "above its baseline)."
    )
    blocks: list = [Table(header, rows, caption), Paragraph(said)]
    blocks += [Paragraph(s) for s in transfer_sentences(stages, layout, sections.scale)]
    return blocks + thumbnails(shown, sections)


def thumbnails(shown: dict[str, Evaluated], sections: Sections) -> list:
    """A column per study: its headline model's ROC curves, then its CAM grid."""
    if not shown:
        return []

    def image(path: Path | None, what: str, study: str) -> Image | str:
        if path is None or not path.is_file():
            return f"no {what}"
        return Image(f"{what} of {study}", relative(path, sections.out_dir), path)

    roc, cam = ["ROC"], ["CAM grid"]
    for study, found in shown.items():
        roc.append(image(found.folder / "roc.png", "ROC", study))
        folder = cam_folder(found.stage, sections.layout)
        grid = folder / CAM_GRID if folder else compared_figure(found.stage, sections.layout)
        cam.append(image(grid, "CAM grid", study))
    caption = (
        "The headline models' ROC curves on the test set and their CAM grids (test images with "
        "the heatmap of their top outputs; a stage that draws no maps of its own: its CAM "
        "comparison); each links to the full figure."
    )
    return [Table(["", *shown], [roc, cam], caption)]

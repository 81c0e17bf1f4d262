"""A stage's section of the report: its settings and data, its fold summary, each model's test
tables, the localisation of its CAMs, its figures and the CAM comparisons ending with it.

Whatever a stage should have and does not (a figure, a table) is named where it belongs and
gathered in ``problems``, never left out silently.
"""

from __future__ import annotations

from pathlib import Path

from cxr.layout import POOLED, Layout
from cxr.reporting.captions import data_text, settings_text
from cxr.reporting.discovery import Stage, relative, subfolders
from cxr.reporting.document import Heading, Link, Paragraph, Table
from cxr.reporting.tables import (
    finding_table,
    fmt,
    fold_metrics,
    headline_cells,
    headline_table,
    localisation_table,
    md_table,
)

FIGURES = {
    "roc.png": "ROC",
    "pr.png": "PR",
    "confusion.png": "confusion",
    "reliability.png": "reliability",
}
CAM_GRID = "cam_grid.png"


class Sections:
    """Builds the report's blocks from the results tree of ``layout``, with links relative to
    ``out_dir`` (the report's folder)."""

    def __init__(self, layout: Layout, out_dir: Path, sources: dict, scale: str | None) -> None:
        self.layout, self.out_dir = layout, out_dir
        self.base = Path(layout.results).parent  # what messages name paths relative to
        self.sources, self.scale = sources, scale
        self.problems: list[str] = []

    def link(self, path: Path, text: str) -> Link | str:
        if path.is_file():
            return Link(text, relative(path, self.out_dir))
        self.problems.append(f"missing {relative(path, self.base)}")
        return f"**missing** ({path.name})"

    def caption(self, stage: Stage, what: str) -> str:
        return (
            f"{stage.study} / {stage.name}: {what} "
            f"{settings_text(stage, self.layout, self.scale)} "
            f"{data_text(stage, self.layout, self.sources, short=True)}"
        )

    def missing(self, path: Path, what: str) -> Paragraph:
        self.problems.append(f"missing {relative(path, self.base)} ({what})")
        return Paragraph(f"**Missing:** `{relative(path, self.base)}` ({what}).")

    def evaluation(self, stage: Stage, column: str) -> Path:
        return Path(self.layout.evaluation(stage.study, stage.name, column))

    def stage_blocks(self, stage: Stage) -> list:
        blocks: list = [Heading(f"{stage.study} / {stage.name}", 2)]
        blocks.append(Paragraph(settings_text(stage, self.layout, self.scale)))
        blocks.append(Paragraph(data_text(stage, self.layout, self.sources)))
        for item in stage.missing:
            self.problems.append(f"missing {item}")
            blocks.append(Paragraph(f"**Missing:** {item}."))
        if not stage.columns:
            return blocks
        if stage.folds is not None:
            blocks += self.fold_summary(stage, stage.folds)
        if len(stage.columns) > 1:
            blocks += self.per_model(stage)
        for column in self.evaluated(stage):
            blocks += self.column_blocks(stage, column)
        blocks += self.localisation(stage)
        blocks += self.figures(stage)
        blocks += self.comparisons(stage)
        return blocks

    def evaluated(self, stage: Stage) -> list[str]:
        """The stage's split columns, after its folds' pooled evaluation when it has one."""
        pooled = self.evaluation(stage, POOLED).is_dir()
        return [*stage.columns, POOLED] if pooled else stage.columns

    def fold_summary(self, stage: Stage, folds: Path) -> list:
        table = folds / "table.md"
        if not table.is_file():
            return [self.missing(table, "the fold summary table")]
        title, header, rows = md_table(table)
        header = header[:]
        if header and not header[0]:
            header[0] = "rows"
        papers = (
            f" beside {', '.join(r[0] for r in rows[1:])}, as published."
            if len(rows) > 1
            else " (the stage names no paper to compare with)."
        )
        what = f"{title or 'mean ± std over the folds'}: our folds ('ours')" + papers
        blocks = [Heading("Fold summary", 3), Table(header, rows, self.caption(stage, what))]
        summary = folds / "folds.json"
        if summary.is_file():
            metrics = fold_metrics(summary)
            rows = [
                [k, f"{fmt(m['mean'])} ± {fmt(m.get('std'))}", str(m.get("n", ""))]
                for k, m in metrics.items()
                if "/" not in k
            ]
            if rows:
                what = (
                    "overall metrics over the folds (mean ± sample std; folds = how many folds "
                    "define it)."
                )
                header = ["metric", "mean ± std", "folds"]
                blocks.append(Table(header, rows, self.caption(stage, what)))
        return blocks

    def per_model(self, stage: Stage) -> list:
        """The headline metrics of every model of the stage side by side."""
        values: dict[str, dict[str, str]] = {}
        for column in stage.columns:
            path = self.evaluation(stage, column) / "headline.csv"
            cells = headline_cells(path) if path.is_file() else {}
            if cells:
                values[column] = cells
        if not values:
            return []
        metrics = list(dict.fromkeys(m for cells in values.values() for m in cells))
        rows = [[c] + [values.get(c, {}).get(m, "") for m in metrics] for c in stage.columns]
        caption = self.caption(stage, "headline test metrics of each model (95% CI in brackets).")
        return [Heading("Per model", 3), Table(["model", *metrics], rows, caption)]

    def column_blocks(self, stage: Stage, column: str) -> list:
        blocks: list = [Heading(f"{stage.name} / {column}: test set", 3)]
        folder = self.evaluation(stage, column)
        if not folder.is_dir():
            return [*blocks, self.missing(folder, "the evaluation")]
        headline = folder / "headline.csv"
        if headline.is_file():
            header, rows, papers = headline_table(headline)
            beside = f" beside {', '.join(papers)}" if papers else " (no paper numbers named)"
            what = f"headline metrics of {column}, ours{beside}."
            blocks.append(Table(header, rows, self.caption(stage, what)))
        else:
            blocks.append(self.missing(headline, "the headline table"))
        findings = folder / "metrics.csv"
        if findings.is_file():
            header, rows, papers = finding_table(findings)
            beside = f"; published numbers beside ours: {', '.join(papers)}" if papers else ""
            what = f"per-finding AUROC of {column} with its 95% bootstrap interval{beside}."
            blocks.append(Table(header, rows, self.caption(stage, what)))
        else:
            blocks.append(self.missing(findings, "the per-finding table"))
        return blocks

    def localisation(self, stage: Stage) -> list:
        header: list[str] = []
        rows = []
        for column in stage.columns:
            path = Path(self.layout.cam(stage.study, stage.name, column)) / "localisation.csv"
            if not path.is_file():
                continue
            shown, cells = localisation_table(path)
            header = header or ["model", "finding", *shown]
            rows += [[column, *row] for row in cells]
        if not rows:
            cam = Path(self.layout.cam_tree(stage.study, stage.name))
            if stage.run.get("recipe", {}).get("architecture") == "logreg" or not cam.is_dir():
                return []
            return [self.missing(cam, "localisation tables")]
        blob = (
            "; scorer centred_blob: a centred heatmap that ignores the image, on the same boxes"
            if "scorer" in header
            else ""
        )
        caption = self.caption(
            stage,
            "localisation of the class activation maps against the ground-truth boxes "
            "(pointing game; share of boxes with IoBB / IoU at or above the threshold; "
            f"paper_ columns: the published numbers{blob}).",
        )
        return [Heading("Localisation", 3), Table(header, rows, caption)]

    def figures(self, stage: Stage) -> list:
        has_cam = Path(self.layout.cam_tree(stage.study, stage.name)).is_dir()
        header = ["model", *FIGURES.values()] + (["CAM grid"] if has_cam else [])
        rows = []
        for column in self.evaluated(stage):
            folder = self.evaluation(stage, column)
            row = [column] + [self.link(folder / f, label) for f, label in FIGURES.items()]
            if has_cam and column == POOLED:
                row.append("–")  # CAMs are drawn per fold
            elif has_cam:
                cam = Path(self.layout.cam(stage.study, stage.name, column))
                row.append(self.link(cam / CAM_GRID, "CAM grid"))
            rows.append(row)
        caption = self.caption(stage, "the figures of each model (links; 'missing' when absent).")
        return [Heading("Figures", 3), Table(header, rows, caption)]

    def comparisons(self, stage: Stage) -> list:
        """The CAM comparisons (``cxr cam-compare``) whose last stage is this one: a link per
        split column that every compared stage trained."""
        study, blocks = stage.study, []
        for pair in subfolders(Path(self.layout.cam_compare_tree(study))):
            names = pair.split("_vs_")
            if names[-1] != stage.name:
                continue
            columns = [
                c
                for c in stage.columns
                if all(Path(self.layout.model(study, n, c)).is_dir() for n in names)
            ]
            figure = self.layout.cam_compare
            rows = [[c, self.link(Path(figure(study, pair, c)), "heatmaps")] for c in columns]
            caption = (
                f"{study}: the heatmaps of {', '.join(names[:-1])} and {names[-1]} side "
                "by side on the same test images of each split column (rows: images; first "
                "column: the image with its ground truth, a JSRT nodule circled; then each "
                "stage's heatmap of the positive class with its probability). "
                f"{data_text(stage, self.layout, self.sources, short=True)}"
            )
            blocks += [Heading(f"CAMs compared: {' vs '.join(names)}", 3)]
            blocks += [Table(["model", "figure"], rows, caption)]
        return blocks

"""Gather the evaluation, fold and CAM outputs of every trained study into one report.

The results tree is read as ``cxr evaluate``, ``cxr summarize-folds``, ``cxr cam`` and
``cxr train`` wrote it::

    <results>/models/<study>/<stage>/<column>/run.json
    <results>/evaluation/<study>/<stage>/<column>/{headline.csv, metrics.csv, *.png}
    <results>/evaluation/<study>/<stage>/folds/{folds.json, table.csv}
    <results>/cam/<study>/<stage>/<column>/{localisation.csv, cam_grid.png}
    <results>/cam_compare/<study>/<stage>_vs_<stage>/<column>.png   (cxr cam-compare)

Studies and stages are discovered there (or taken, in order, from ``expected``). Whatever a
stage should have and does not (a figure, a table) is named in the report, never left out
silently.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from cxr.core.readers import read_csv_rows, read_json_object, read_text, value_at
from cxr.reporting.document import Bullets, Document, Heading, Link, Paragraph, Table
from cxr.reporting.timings import read_benchmarks, study_of

FIGURES = {
    "roc.png": "ROC",
    "pr.png": "PR",
    "confusion.png": "confusion",
    "reliability.png": "reliability",
}
CAM_GRID = "cam_grid.png"
#: The folders of <results> whose <study>/<stage> subfolders make the report's stages.
KINDS = ("models", "evaluation", "cam")
END_TO_END = "end_to_end"  # <results>/evaluation/<study>/end_to_end/ (cxr cascade-evaluate)
COMPARE = "cam_compare"  # <results>/cam_compare/<study>/<stage>_vs_<stage>/<column>.png
#: Localisation columns shown (the CSV has every threshold; these are the papers' usual ones).
LOCALISATION = ["boxes", "pointing_game", "iobb_acc@0.1", "iobb_acc@0.5", "iou_acc@0.5"]
LOCALISATION_MEANS = ["mean_iobb", "mean_iou"]
RUN = "a run.json written by cxr train"
METRICS = "a metrics.json written by cxr evaluate"


@dataclass
class Stage:
    study: str
    name: str
    columns: list[str] = field(default_factory=list)  # "split" or "fold_<i>", in order
    folds: Path | None = None  # the fold summary folder, if any
    run: dict = field(default_factory=dict)  # run.json of its first trained column
    missing: list[str] = field(default_factory=list)


def _column_key(column: str) -> tuple[int, int, str]:
    match = re.fullmatch(r"fold_(\d+)", column)
    return (1, int(match.group(1)), column) if match else (0, 0, column)


def _subfolders(folder: Path) -> list[str]:
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def discover(results: Path, expected: dict[str, list[str]] | None = None) -> list[Stage]:
    """Every (study, stage) with results, in the expected order when one is given."""
    found: dict[str, list[str]] = {}
    for kind in KINDS:
        for study in _subfolders(results / kind):
            stages = found.setdefault(study, [])
            listed = _subfolders(results / kind / study)
            stages += [s for s in listed if s not in stages and s != END_TO_END]
    plan = expected if expected is not None else {s: sorted(found[s]) for s in sorted(found)}
    stages = []
    for study, names in plan.items():
        for name in names:
            stages.append(_stage(results, study, name))
    return stages


def _stage(results: Path, study: str, name: str) -> Stage:
    stage = Stage(study, name)
    columns = set()
    for kind in KINDS:
        columns |= {c for c in _subfolders(results / kind / study / name) if c != "folds"}
    stage.columns = sorted(columns, key=_column_key)
    folds = results / "evaluation" / study / name / "folds"
    if folds.is_dir():
        stage.folds = folds
    elif any(c.startswith("fold_") for c in stage.columns):
        stage.missing.append(f"{_rel(folds, results.parent)} (the fold summary)")
    if not stage.columns:
        stage.missing.append(f"every output of {study}/{name} (no model, evaluation or CAM)")
    for column in stage.columns:
        run = results / "models" / study / name / column / "run.json"
        if run.is_file():
            stage.run = read_run(run)
            break
    else:
        if stage.columns:
            stage.missing.append(
                f"{_rel(results / 'models' / study / name, results.parent)}/*/run.json (the recipe)"
            )
    return stage


def read_run(path: Path) -> dict:
    """A run.json, checked to have the shape the captions read."""
    run = read_json_object(path, RUN)
    shapes = {"recipe": dict, "data": dict, "epochs_run": int, "best_epoch": int}
    wrong = [
        k
        for k, kind in shapes.items()
        if k in run and (not isinstance(run[k], kind) or isinstance(run[k], bool))
    ]
    data = run.get("data") if isinstance(run.get("data"), dict) else {}
    wrong += [
        f"data.{k}" for k in ("folder", "split", "init") if not isinstance(data.get(k), str | None)
    ]
    if wrong:
        raise ValueError(f"{path}: {', '.join(wrong)} of the wrong type: not {RUN}")
    return run


def _rel(path: Path, base: Path) -> str:
    return os.path.relpath(path, base).replace(os.sep, "/")


def fmt(value: object, digits: int = 3) -> str:
    """A number with ``digits`` decimals, an interval as [low, high], empty as ''."""
    if value is None or value == "":
        return ""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            with contextlib.suppress(ValueError):
                low, high = json.loads(text)
                return f"[{fmt(low, digits)}, {fmt(high, digits)}]"
        try:
            value = float(text)
        except ValueError:
            return text
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer() and digits == 0):
        return str(int(value))
    if isinstance(value, float):
        return "" if value != value else f"{value:.{digits}f}"
    return str(value)


# --- settings and data provenance: what every caption says -----------------------------------


def data_of(stage: Stage, results: Path) -> tuple[str | None, str | None]:
    """(dataset, preset) of the stage: from run.json's tensor folder, else evaluation's labels."""
    folder = (stage.run.get("data") or {}).get("folder")
    if not folder:
        for column in stage.columns:
            metrics = results / "evaluation" / stage.study / stage.name / column / "metrics.json"
            if metrics.is_file():
                alignment = read_json_object(metrics, METRICS).get("alignment")
                labels = alignment.get("labels") if isinstance(alignment, dict) else None
                folder = str(Path(labels).parent) if isinstance(labels, str) else None
                break
    if not folder:
        return None, None
    path = Path(folder)
    return path.parent.name, path.name


def settings_text(stage: Stage, results: Path, scale: str | None) -> str:
    recipe = stage.run.get("recipe") or {}
    if not recipe:
        return "Settings: unknown (no run.json)."

    def get(key: str) -> str:
        value = recipe.get(key)
        return "–" if value in (None, "") else str(value)

    epochs = get("epochs")
    if "epochs_run" in stage.run:
        epochs += f" (ran {stage.run['epochs_run']}"
        if "best_epoch" in stage.run:
            epochs += f", best {int(stage.run['best_epoch']) + 1}"
        epochs += ")"
    _, preset = data_of(stage, results)
    split = (stage.run.get("data") or {}).get("split")
    init = get("init")
    start = (stage.run.get("data") or {}).get("init")
    if start:  # init_from: results/models/<study>/<stage>/<column>/model.pt
        bits = Path(start).parts
        init += f" then {bits[-3]}/{bits[-2]}" if len(bits) >= 3 else f" then {start}"
    parts = [
        f"architecture {get('architecture')}",
        f"init {init}",
        f"transfer {get('transfer')}",
        f"epochs {epochs}",
        f"input {get('input_size')} px",
        f"scale {scale or 'unknown'}",
    ]
    if preset:
        parts.append(f"preset {preset}")
    if split:
        parts.append(f"split {Path(split).stem}")
    return "Settings: " + ", ".join(parts) + "."


def data_text(stage: Stage, results: Path, sources: dict[str, str], short: bool = False) -> str:
    dataset, _ = data_of(stage, results)
    if dataset is None:
        return "Data: unknown dataset."
    source = sources.get(dataset)
    if short:
        what = {"synthetic": "synthetic miniature", "real": "real data"}
        return f"Data: {dataset} ({what.get(source, 'source not given')})."
    if source == "synthetic":
        return (
            f"Data: {dataset}, SYNTHETIC (cxr's generated miniature): our numbers show the "
            "pipeline works, they are not comparable to the papers' numbers on the real data."
        )
    if source == "real":
        return f"Data: {dataset}, real (the downloaded dataset)."
    return f"Data: {dataset}, source not given (synthetic or real unknown)."


# --- tables ----------------------------------------------------------------------------------


def _paper_columns(header: list[str], rows: list[dict], known: set[str]) -> list[str]:
    """Header columns that are not ours, and hold at least one number."""
    return [c for c in header if c not in known and any(r.get(c) for r in rows)]


def headline_table(path: Path) -> tuple[list[str], list[list[str]], list[str]]:
    rows = read_csv_rows(path, ("metric", "value"))
    header = list(rows[0].keys()) if rows else ["metric", "value", "ci"]
    papers = _paper_columns(header, rows, {"metric", "value", "ci"})
    out = [
        [r["metric"], fmt(r.get("value")), fmt(r.get("ci"))] + [fmt(r[p]) for p in papers]
        for r in rows
    ]
    return ["metric", "ours", "ours 95% CI"] + papers, out, papers


def finding_table(path: Path) -> tuple[list[str], list[list[str]], list[str]]:
    """AUROC with its interval per finding, and each paper's numbers beside ours."""
    rows = read_csv_rows(path, ("finding", "auroc"))
    header = list(rows[0].keys()) if rows else []
    paper_cols = [c for c in header if any(c.endswith(" " + m) for m in _metrics(header))]
    paper_cols = [c for c in paper_cols if any(r.get(c) for r in rows)]
    metrics = []  # ours, then the papers' numbers of the same metric
    for metric in ["auroc"] + [m for m in _metrics(header) if m != "auroc"]:
        beside = [c for c in paper_cols if c.endswith(" " + metric)]
        if metric == "auroc" or beside:
            metrics.append((metric, beside))
    cols = ["finding", "images", "positives"]
    for metric, beside in metrics:
        cols += ["AUROC [95% CI]" if metric == "auroc" else metric] + beside
    out = []
    for r in rows:
        cells = [r.get("finding", ""), fmt(r.get("images"), 0), fmt(r.get("positives"), 0)]
        for metric, beside in metrics:
            if metric == "auroc":
                ci = ""
                if r.get("auroc_low") and r.get("auroc_high"):
                    ci = f" [{fmt(r['auroc_low'])}, {fmt(r['auroc_high'])}]"
                auroc = fmt(r.get("auroc")) + ci
                cells.append(
                    auroc or ("undefined (one class only)" if r.get("auroc") == "" else "")
                )
            else:
                cells.append(fmt(r.get(metric)))
            cells += [fmt(r.get(c)) for c in beside]
        out.append(cells)
    papers = sorted({c.rsplit(" ", 1)[0] for c in paper_cols})
    return cols, out, papers


def _metrics(header: list[str]) -> list[str]:
    """Our metric columns of metrics.csv: single words (paper columns have a paper's name)."""
    skip = {"finding", "images", "positives", "auroc_low", "auroc_high"}
    return [c for c in header if " " not in c and c not in skip]


def fold_metrics(path: Path) -> dict[str, dict]:
    """``{metric: {"mean", "std", "n"}}`` of a folds.json (``cxr summarize-folds``)."""
    what = "a folds.json written by cxr summarize-folds"
    metrics = value_at(read_json_object(path, what), path, "metrics", what)
    if not isinstance(metrics, dict) or not all(
        isinstance(v, dict) and "mean" in v for v in metrics.values()
    ):
        raise ValueError(f"{path}: its metrics lack a mean each: not {what}")
    return metrics


def md_table(path: Path) -> tuple[str, list[str], list[list[str]]]:
    """(title, header, rows) of a Markdown file holding one table (a fold summary)."""
    title, header, rows = "", [], []
    for line in read_text(path).splitlines():
        if line.startswith("#") and not title:
            title = line.lstrip("#").strip()
        elif line.startswith("|"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if all(set(c) <= set("-: ") for c in cells):
                continue
            if header:
                rows.append(cells)
            else:
                header = cells
    return title, header, rows


# --- the report --------------------------------------------------------------------------------


class _Builder:
    def __init__(self, results: Path, out_dir: Path, sources: dict, scale: str | None) -> None:
        self.results, self.out_dir = results, out_dir
        self.sources, self.scale = sources, scale
        self.problems: list[str] = []

    def link(self, path: Path, text: str) -> Link | str:
        if path.is_file():
            return Link(text, _rel(path, self.out_dir))
        self.problems.append(f"missing {_rel(path, self.results.parent)}")
        return f"**missing** ({path.name})"

    def caption(self, stage: Stage, what: str) -> str:
        return (
            f"{stage.study} / {stage.name}: {what} "
            f"{settings_text(stage, self.results, self.scale)} "
            f"{data_text(stage, self.results, self.sources, short=True)}"
        )

    def missing(self, path: Path, what: str) -> Paragraph:
        self.problems.append(f"missing {_rel(path, self.results.parent)} ({what})")
        return Paragraph(f"**Missing:** `{_rel(path, self.results.parent)}` ({what}).")

    def stage_blocks(self, stage: Stage) -> list:
        blocks: list = [Heading(f"{stage.study} / {stage.name}", 2)]
        blocks.append(Paragraph(settings_text(stage, self.results, self.scale)))
        blocks.append(Paragraph(data_text(stage, self.results, self.sources)))
        for item in stage.missing:
            self.problems.append(f"missing {item}")
            blocks.append(Paragraph(f"**Missing:** {item}."))
        if not stage.columns:
            return blocks
        evaluation = self.results / "evaluation" / stage.study / stage.name
        if stage.folds is not None:
            blocks += self.fold_summary(stage)
        if len(stage.columns) > 1:
            blocks += self.per_fold(stage, evaluation)
        for column in stage.columns:
            blocks += self.column_blocks(stage, column, evaluation / column)
        blocks += self.localisation(stage)
        blocks += self.figures(stage)
        blocks += self.comparisons(stage)
        return blocks

    def fold_summary(self, stage: Stage) -> list:
        table = stage.folds / "table.md"
        if not table.is_file():
            return [self.missing(table, "the fold summary table")]
        title, header, rows = md_table(table)
        header = header[:]
        if header and not header[0]:
            header[0] = "rows"
        blocks = [Heading("Fold summary", 3)]
        blocks.append(
            Table(
                header,
                rows,
                self.caption(
                    stage,
                    f"{title or 'mean ± std over the folds'}: our folds ('ours')"
                    + (
                        f" beside {', '.join(r[0] for r in rows[1:])}, as published."
                        if len(rows) > 1
                        else " (the stage names no paper to compare with)."
                    ),
                ),
            )
        )
        summary = stage.folds / "folds.json"
        if summary.is_file():
            metrics = fold_metrics(summary)
            keep = [k for k in metrics if "/" not in k]
            rows = [
                [
                    k,
                    f"{fmt(metrics[k]['mean'])} ± {fmt(metrics[k].get('std'))}",
                    str(metrics[k].get("n", "")),
                ]
                for k in keep
            ]
            if rows:
                blocks.append(
                    Table(
                        ["metric", "mean ± std", "folds"],
                        rows,
                        self.caption(
                            stage,
                            "overall metrics over the folds (mean ± sample std; folds = how "
                            "many folds define it).",
                        ),
                    )
                )
        return blocks

    def per_fold(self, stage: Stage, evaluation: Path) -> list:
        metrics: list[str] = []
        values: dict[str, dict[str, str]] = {}
        for column in stage.columns:
            path = evaluation / column / "headline.csv"
            if not path.is_file():
                continue
            for r in read_csv_rows(path, ("metric", "value")):
                if r["metric"] not in metrics:
                    metrics.append(r["metric"])
                ci = f" {fmt(r['ci'])}" if r.get("ci") else ""
                values.setdefault(column, {})[r["metric"]] = fmt(r.get("value")) + ci
        if not values:
            return []
        rows = [[c] + [values.get(c, {}).get(m, "") for m in metrics] for c in stage.columns]
        caption = self.caption(stage, "headline test metrics of each model (95% CI in brackets).")
        return [Heading("Per model", 3), Table(["model", *metrics], rows, caption)]

    def column_blocks(self, stage: Stage, column: str, folder: Path) -> list:
        blocks: list = [Heading(f"{stage.name} / {column}: test set", 3)]
        if not folder.is_dir():
            return [*blocks, self.missing(folder, "the evaluation")]
        headline = folder / "headline.csv"
        if headline.is_file():
            header, rows, papers = headline_table(headline)
            beside = f" beside {', '.join(papers)}" if papers else " (no paper numbers named)"
            blocks.append(
                Table(
                    header,
                    rows,
                    self.caption(
                        stage,
                        f"headline metrics of {column}, ours{beside}.",
                    ),
                )
            )
        else:
            blocks.append(self.missing(headline, "the headline table"))
        findings = folder / "metrics.csv"
        if findings.is_file():
            header, rows, papers = finding_table(findings)
            beside = f"; published numbers beside ours: {', '.join(papers)}" if papers else ""
            blocks.append(
                Table(
                    header,
                    rows,
                    self.caption(
                        stage,
                        f"per-finding AUROC of {column} with its 95% bootstrap interval{beside}.",
                    ),
                )
            )
        else:
            blocks.append(self.missing(findings, "the per-finding table"))
        return blocks

    def localisation(self, stage: Stage) -> list:
        cam = self.results / "cam" / stage.study / stage.name
        header: list[str] = []
        rows = []
        for column in stage.columns:
            path = cam / column / "localisation.csv"
            if not path.is_file():
                continue
            data = read_csv_rows(path, ("finding",))
            cols = list(data[0].keys()) if data else []
            papers = [c for c in cols if c.startswith("paper_") and any(r.get(c) for r in data)]
            shown = [c for c in LOCALISATION + LOCALISATION_MEANS if c in cols] + papers
            header = header or ["model", "finding", *shown]
            for r in data:
                rows.append(
                    [
                        column,
                        r.get("finding", ""),
                        *[fmt(r.get(c), 0 if c == "boxes" else 3) for c in shown],
                    ]
                )
        if not rows:
            if stage.run.get("recipe", {}).get("architecture") == "logreg" or not cam.is_dir():
                return []
            return [self.missing(cam, "localisation tables")]
        caption = self.caption(
            stage,
            "localisation of the class activation maps against the ground-truth boxes "
            "(pointing game; share of boxes with IoBB / IoU at or above the threshold; "
            "paper_ columns: the published numbers).",
        )
        return [Heading("Localisation", 3), Table(header, rows, caption)]

    def figures(self, stage: Stage) -> list:
        evaluation = self.results / "evaluation" / stage.study / stage.name
        cam = self.results / "cam" / stage.study / stage.name
        has_cam = cam.is_dir()
        header = ["model", *FIGURES.values()] + (["CAM grid"] if has_cam else [])
        rows = []
        for column in stage.columns:
            row = [column] + [
                self.link(evaluation / column / f, label) for f, label in FIGURES.items()
            ]
            if has_cam:
                row.append(self.link(cam / column / CAM_GRID, "CAM grid"))
            rows.append(row)
        caption = self.caption(stage, "the figures of each model (links; 'missing' when absent).")
        return [Heading("Figures", 3), Table(header, rows, caption)]

    def comparisons(self, stage: Stage) -> list:
        """The CAM comparisons (``cxr cam-compare``) whose last stage is this one: a link per
        split column that every compared stage trained."""
        root, blocks = self.results / COMPARE / stage.study, []
        for pair in _subfolders(root):
            names = pair.split("_vs_")
            if names[-1] != stage.name:
                continue
            models = self.results / "models" / stage.study
            columns = [c for c in stage.columns if all((models / n / c).is_dir() for n in names)]
            rows = [[c, self.link(root / pair / f"{c}.png", "heatmaps")] for c in columns]
            caption = (
                f"{stage.study}: the heatmaps of {', '.join(names[:-1])} and {names[-1]} side "
                "by side on the same test images of each split column (rows: images; first "
                "column: the image with its ground truth, a JSRT nodule circled; then each "
                "stage's heatmap of the positive class with its probability). "
                f"{data_text(stage, self.results, self.sources, short=True)}"
            )
            blocks += [Heading(f"CAMs compared: {' vs '.join(names)}", 3)]
            blocks += [Table(["model", "figure"], rows, caption)]
        return blocks

    @staticmethod
    def cascade_sets(path: Path) -> tuple[dict[str, int], dict]:
        """Images per source of the held-out set, and the whole report of ``cxr cascade-sets``
        (checked to hold what the report reads)."""
        what = "a report written by cxr cascade-sets"
        made = read_json_object(path, what)
        for key in ("preset", "chest_fraction", "sets", "dropped_across_train_and_val"):
            value_at(made, path, key, what)
        dropped = value_at(made, path, "dropped_near_duplicates_of_heldout", what)
        by_source = value_at(made, path, "sets.cascade_heldout.by_source", what)
        if not isinstance(by_source, dict) or not isinstance(dropped, list | dict):
            raise ValueError(f"{path}: its held-out counts are of the wrong type: not {what}")
        try:
            held = {n: sum(v.values()) for n, v in sorted(by_source.items())}
        except (AttributeError, TypeError) as err:
            raise ValueError(f"{path}: held-out counts that are not numbers: not {what}") from err
        return held, made

    def end_to_end(self, study: str) -> list:
        """A cascade study's end-to-end table (``cxr cascade-evaluate``), if it has one."""
        folder = self.results / "evaluation" / study / END_TO_END
        if not folder.is_dir():
            return []
        blocks: list = [Heading(f"{study} / the cascade end to end", 2)]
        settings = "Settings: each module's, in its section above."
        metrics, what = folder / "metrics.json", "a metrics.json written by cxr cascade-evaluate"
        preset = ""
        if metrics.is_file():
            heldout = value_at(read_json_object(metrics, what), metrics, "heldout", what)
            preset = Path(str(heldout)).name
        made_path = self.results / "metrics" / "cascade" / f"{preset}.json"
        if preset and made_path.is_file():
            held, made = self.cascade_sets(made_path)
            kinds = sorted({self.sources[n] for n in made["sets"] if n in self.sources})
            kinds = kinds or ["source not given"]
            settings = (
                f"Settings: each module's, in its section above; preset {made['preset']}, "
                f"chest fraction {made['chest_fraction']}. Data: {', '.join(kinds)}."
            )
            blocks.append(
                Paragraph(
                    f"Held-out mixed set ({made['preset']}): "
                    + ", ".join(f"{n} {v}" for n, v in held.items())
                    + f" images, every source's test side; data: {', '.join(kinds)}. "
                    f"{len(made['dropped_near_duplicates_of_heldout'])} training image(s) were "
                    "left out of every module for sharing a patient or a picture with a "
                    f"held-out image, {made['dropped_across_train_and_val']} for crossing "
                    "training and validation."
                )
            )
        table = folder / "table.md"
        if not table.is_file():
            return [*blocks, self.missing(table, "the end-to-end table")]
        title, header, rows = md_table(table)
        caption = (
            f"{study}: {title}. An image is right when every module it should pass is right: "
            "Module I (X-ray or not), Module II (its type), and for a chest X-ray with labels, "
            "Module III's verdict (any finding at its threshold, or none). Paper: 0.91 end "
            f"to end. {settings}"
        )
        blocks.append(Table(header, rows, caption))
        link = self.link(folder / "routes.png", "routes.png")
        what = (
            f"{study}: each held-out image's true type (rows) against where the cascade sent "
            f"it. {settings}"
        )
        blocks.append(Table(["figure"], [[link]], what))
        return blocks


def nothing_found(results: Path, stages: list[Stage]) -> str:
    """Why there is nothing to report: no study under ``results``, or none of those expected."""
    if stages:
        found = sorted({study for kind in KINDS for study in _subfolders(results / kind)})
        text = (
            f"{results}: no expected stage has a model, evaluation or CAM (missing: "
            f"{', '.join(f'{s.study}/{s.name}' for s in stages)}; studies found: "
            f"{', '.join(found) or 'none'})"
        )
    else:
        text = f"{results}: no study found (no model, evaluation or CAM under {', '.join(KINDS)})"
    for guess in (results / "results", results.parent):
        if guess != results and any((guess / kind).is_dir() for kind in KINDS):
            return text + f"; did you mean --results {guess}?"
    return text


def timing_blocks(logs: Path, studies: list[str]) -> list:
    jobs = read_benchmarks(logs)
    blocks: list = [Heading("How long each job took", 2)]
    if not jobs:
        return [*blocks, Paragraph(f"No benchmark files under `{logs}`.")]
    groups: dict[str, list] = defaultdict(list)
    for job in jobs:
        groups[study_of(job, studies) or "(data preparation, shared)"].append(job)
    order = [s for s in studies if s in groups] + [g for g in groups if g not in studies]
    rows = []
    for group in order:
        longest = max(groups[group], key=lambda j: j.seconds)
        rows.append(
            [
                group,
                str(len(groups[group])),
                fmt(sum(j.seconds for j in groups[group]), 1),
                f"{longest.rule} {longest.target} ({fmt(longest.seconds, 1)} s)",
            ]
        )
    blocks.append(
        Table(
            ["study", "jobs", "total s", "longest job"],
            rows,
            f"Wall-clock seconds of the jobs with a benchmark file under `{logs}` "
            "(Snakemake's `benchmark:`; column `s`), grouped by study.",
        )
    )
    for group in [s for s in studies if s in groups]:
        rows = [
            [j.rule, j.target, fmt(j.seconds, 1), fmt(j.max_rss_mb, 0)]
            for j in sorted(groups[group], key=lambda j: (j.rule, j.target))
        ]
        blocks.append(
            Table(
                ["rule", "job", "s", "max RSS MB"],
                rows,
                f"Jobs of {group}: seconds and peak memory of each.",
            )
        )
    return blocks


def build_report(
    results: Path,
    out_dir: Path,
    *,
    sources: dict[str, str] | None = None,
    scale: str | None = None,
    expected: dict[str, list[str]] | None = None,
    logs: Path | None = None,
) -> tuple[Document, list[str]]:
    """The report's document, and the list of what was missing (also named in it)."""
    sources = sources or {}
    builder = _Builder(Path(results), Path(out_dir), sources, scale)
    stages = discover(Path(results), expected)
    if expected != {} and not any(s.columns for s in stages):
        raise ValueError(nothing_found(Path(results), stages))
    doc = Document("cxr report")
    studies = list(dict.fromkeys(s.study for s in stages))
    body = [
        block
        for study in studies
        for block in [
            *(b for stage in stages if stage.study == study for b in builder.stage_blocks(stage)),
            *builder.end_to_end(study),
        ]
    ]
    synthetic = sorted(d for d, s in sources.items() if s == "synthetic")
    real = sorted(d for d, s in sources.items() if s == "real")
    intro = [
        f"Results: `{results}`; scale: {scale or 'unknown'}.",
        "Studies: "
        + (
            ", ".join(f"{s} ({', '.join(x.name for x in stages if x.study == s)})" for s in studies)
            or "none found"
        )
        + ".",
        "Synthetic datasets (cxr's miniatures): " + (", ".join(synthetic) or "none") + ".",
        "Real datasets: " + (", ".join(real) or "none") + ".",
    ]
    if expected is not None:
        extra = sorted(set(_subfolders(Path(results) / "evaluation")) - set(expected))
        if extra:
            intro.append(
                "Left out (in the results tree, not in the configuration): "
                + ", ".join(extra)
                + "."
            )
    doc.add(Bullets(intro))
    timings = timing_blocks(Path(logs), studies) if logs is not None else []
    problems = list(dict.fromkeys(builder.problems))
    doc.add(Heading("Missing outputs", 2))
    if problems:
        doc.add(Bullets(problems))
    elif stages:
        doc.add(Paragraph("None: every expected output is here."))
    else:
        doc.add(Paragraph("None expected: the configuration names no study (--studies-json {})."))
    for block in body + timings:
        doc.add(block)
    return doc, problems

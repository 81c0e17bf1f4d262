"""The tables the pipeline writes, read into rows of formatted cells for the report.

``headline.csv`` and ``metrics.csv`` (``cxr evaluate``), ``folds.json`` and ``table.md``
(``cxr summarize-folds``, ``cxr cascade-evaluate``): each with our numbers and, where the
table has them, the papers' numbers beside ours.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

from cxr.core.readers import read_csv_rows, read_json_object, read_text, value_at

#: Localisation columns shown (the CSV has every threshold; these are the papers' usual ones).
LOCALISATION = ["boxes", "pointing_game", "iobb_acc@0.1", "iobb_acc@0.5", "iou_acc@0.5"]
LOCALISATION_MEANS = ["mean_iobb", "mean_iou"]


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


def headline_cells(path: Path) -> dict[str, str]:
    """``{metric: "value [low, high]"}`` of a headline.csv: one model's row of a comparison."""
    cells = {}
    for r in read_csv_rows(path, ("metric", "value")):
        ci = f" {fmt(r['ci'])}" if r.get("ci") else ""
        cells[r["metric"]] = fmt(r.get("value")) + ci
    return cells


def localisation_table(path: Path) -> tuple[list[str], list[list[str]]]:
    """(columns shown, rows: the finding then those columns) of a localisation.csv (cxr cam):
    who scored (``scorer``: the model or a centred blob, where the table has it), the usual
    thresholds, the means, and the papers' numbers (``paper_`` columns)."""
    data = read_csv_rows(path, ("finding",))
    cols = list(data[0].keys()) if data else []
    papers = [c for c in cols if c.startswith("paper_") and any(r.get(c) for r in data)]
    scorer = ["scorer"] if "scorer" in cols else []
    shown = scorer + [c for c in LOCALISATION + LOCALISATION_MEANS if c in cols] + papers
    rows = [
        [r.get("finding", ""), *[fmt(r.get(c), 0 if c == "boxes" else 3) for c in shown]]
        for r in data
    ]
    return shown, rows

"""The uniform image index every dataset is ingested into, and the manifest that accounts for it.

One row per image. Core columns are the same for every dataset; label columns are either one
float column per finding (``finding_<Name>``: 1 positive, 0 negative, NaN unknown) for
multi-label datasets, or the ``label`` column (a class name) for single-label ones, or both.
Dataset-specific extras (``follow_up``, ``subtlety``, ...) may follow the core columns.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from cxr.core.atomic import atomic_path, check_replaceable

#: Core columns and their pandas dtypes, in order.
CORE_COLUMNS: dict[str, str] = {
    "dataset": "string",  # dataset name, e.g. "nih"
    "image_id": "string",  # unique within the dataset, e.g. "00000003_001.png"
    "path": "string",  # path of the image file relative to the dataset root, "/"-separated
    "patient_id": "string",  # <NA> where the dataset has none
    "study_id": "string",  # <NA> where the dataset has none
    "view": "string",  # "PA" / "AP" / <NA>
    "body_part": "string",  # "chest", "wrist", ... or "not_xray"
    "source_split": "string",  # the dataset's own split: "train_val", "test", "train", "valid"...
    "label": "string",  # class name for single-label datasets, <NA> otherwise
    "boxes": "string",  # JSON list of {"label","x","y","w","h"} in this image's pixels, or <NA>
    "age": "float64",  # years, NaN where unknown
    "sex": "string",  # "M" / "F" / <NA>
    "width": "int64",  # pixel width of the stored image file
    "height": "int64",  # pixel height of the stored image file
    "mode": "string",  # pixel mode of the file: "L", "RGB", "RGBA", "LA", "I;16", "raw12be", ...
}

FINDING_PREFIX = "finding_"

#: Manifest columns: every file and every label row found, kept or left out with a reason.
MANIFEST_COLUMNS = ["kind", "item", "status", "reason"]


class IngestError(ValueError):
    """Input that cannot be ingested at all (missing label file, unreadable root, ...)."""


def finding_column(name: str) -> str:
    """Column name holding the 1/0/NaN label of finding ``name``."""
    return f"{FINDING_PREFIX}{name}"


def finding_columns(index: pd.DataFrame) -> list[str]:
    """The finding columns of an index, in order."""
    return [c for c in index.columns if c.startswith(FINDING_PREFIX)]


def boxes_to_json(boxes: list[dict] | None) -> str | None:
    """Serialise boxes (dicts with label, x, y, w, h) for the ``boxes`` column."""
    if not boxes:
        return None
    keys = ("label", "x", "y", "w", "h")
    return json.dumps(
        [{k: (b[k] if k == "label" else round(float(b[k]), 3)) for k in keys} for b in boxes]
    )


def boxes_from_json(value: object) -> list[dict]:
    """Inverse of :func:`boxes_to_json`; an empty list for a missing value."""
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA:
        return []
    return json.loads(str(value))


@dataclass
class Manifest:
    """Accounts for every file and label row an ingester met: kept, or skipped with a reason."""

    rows: list[tuple[str, str, str, str]] = field(default_factory=list)

    def keep(self, kind: str, item: str | Path, note: str = "") -> None:
        """Record ``item`` (a file path or label-row id) of ``kind`` as kept."""
        self._add(kind, item, "kept", note)

    def skip(self, kind: str, item: str | Path, reason: str) -> None:
        """Record ``item`` of ``kind`` as left out, saying why."""
        self._add(kind, item, "skipped", reason)

    def _add(self, kind: str, item: str | Path, status: str, reason: str) -> None:
        """Append a row; bytes of names that are not UTF-8 become ``\\xff`` escapes (CSV-safe)."""
        item, reason = (
            str(text).encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
            for text in (item, reason)
        )
        self.rows.append((kind, item, status, reason))

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.rows, columns=MANIFEST_COLUMNS)

    def counts(self) -> dict[str, dict[str, int]]:
        """``{kind: {"kept": n, "<reason>": n, ...}}`` for summaries."""
        out: dict[str, Counter] = {}
        for kind, _item, status, reason in self.rows:
            out.setdefault(kind, Counter())["kept" if status == "kept" else reason] += 1
        return {k: dict(sorted(v.items())) for k, v in sorted(out.items())}


def build_index(rows: list[dict], dataset: str) -> pd.DataFrame:
    """Turn ingester rows into a typed index: core columns first, then findings, then extras.

    Raises :class:`IngestError` on duplicate image ids or a missing core value that every
    row must have (image_id, path, width, height, mode).
    """
    frame = pd.DataFrame(rows)
    if frame.empty:
        frame = pd.DataFrame(columns=list(CORE_COLUMNS))
    frame["dataset"] = dataset
    for col in CORE_COLUMNS:
        if col not in frame:
            frame[col] = None
    for col in ("image_id", "path", "width", "height", "mode"):
        missing = frame[col].isna()
        if missing.any():
            raise IngestError(f"{dataset}: {int(missing.sum())} rows lack {col!r}")
    dup = frame["image_id"].duplicated(keep=False)
    if dup.any():
        ids = sorted(frame.loc[dup, "image_id"].unique())[:10]
        raise IngestError(f"{dataset}: duplicate image ids in the index: {ids}")
    findings = [c for c in frame.columns if c.startswith(FINDING_PREFIX)]
    extras = [c for c in frame.columns if c not in CORE_COLUMNS and c not in findings]
    frame = frame[[*CORE_COLUMNS, *findings, *extras]]
    frame = frame.astype({**CORE_COLUMNS, **dict.fromkeys(findings, "float64")})
    return frame.reset_index(drop=True)


def summarize(index: pd.DataFrame, manifest: Manifest) -> dict:
    """Small JSON-able summary of an ingested dataset (counts per label, view, split, manifest)."""
    summary: dict = {
        "dataset": str(index["dataset"].iloc[0]) if len(index) else None,
        "images": len(index),
        "patients": int(index["patient_id"].nunique()),
        "studies": int(index["study_id"].nunique()),
        "images_with_boxes": int(index["boxes"].notna().sum()),
    }
    for col in ("view", "body_part", "source_split", "label", "mode"):
        counts = index[col].value_counts(dropna=True)
        if len(counts):
            summary[col] = {str(k): int(v) for k, v in counts.sort_index().items()}
    findings = finding_columns(index)
    if findings:
        summary["positives"] = {
            c.removeprefix(FINDING_PREFIX): int((index[c] == 1).sum()) for c in findings
        }
    summary["manifest"] = manifest.counts()
    return summary


def manifest_path(index_path: str | Path) -> Path:
    """The manifest written beside an index: ``X.parquet`` -> ``X.manifest.csv``."""
    index_path = Path(index_path)
    return index_path.with_name(index_path.name.removesuffix(".parquet") + ".manifest.csv")


def write_index(
    index: pd.DataFrame, manifest: Manifest, out: str | Path, summary_path: str | Path | None = None
) -> dict:
    """Write index (parquet), manifest (CSV beside it) and summary (JSON), each atomically.

    The summary goes to ``summary_path``, by default beside the index as ``X.summary.json``.
    """
    index_path = Path(out)
    if summary_path is None:
        stem = index_path.name.removesuffix(".parquet")
        summary_path = index_path.with_name(f"{stem}.summary.json")
    summary = summarize(index, manifest)
    paths = (manifest_path(index_path), Path(summary_path), index_path)
    if len({p.resolve() for p in paths}) < len(paths):
        raise ValueError(
            f"{summary_path}: the summary, the index and its manifest need three different paths"
        )
    for path in paths:
        check_replaceable(path)  # all or nothing: refuse before writing any of the three
    with atomic_path(manifest_path(index_path)) as tmp:
        manifest.to_frame().to_csv(tmp, index=False)
    with atomic_path(summary_path) as tmp:
        tmp.write_text(json.dumps(summary, indent=2) + "\n")
    with atomic_path(index_path) as tmp:
        index.to_parquet(tmp, index=False)
    return summary


def read_index(path: str | Path) -> pd.DataFrame:
    """Read an index written by :func:`write_index`, with the core column dtypes."""
    index = pd.read_parquet(path)
    return index.astype({c: t for c, t in CORE_COLUMNS.items() if c in index})

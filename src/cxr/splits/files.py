"""Files in and out of the split steps: split tables and leakage reports.

The near-duplicate search (and with it torch) is imported only by the steps that search, so
that reading a split table stays cheap for evaluation jobs.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from cxr.core.atomic import atomic_path, check_replaceable
from cxr.data.index import read_index
from cxr.data.preprocess import INDEX_FILE, load_tensor
from cxr.splits.assign import Scheme, make_splits, split_columns
from cxr.splits.dedup import content_digest
from cxr.splits.leakage import check_leakage


def read_data(data: str | Path) -> tuple[pd.DataFrame, np.ndarray]:
    """The index and memory-mapped tensor of a preprocessed folder; fails if it holds none."""
    path = Path(data) / INDEX_FILE
    if not path.is_file():
        raise ValueError(f"{data}: not a folder written by cxr preprocess (no {INDEX_FILE})")
    try:
        index = read_index(path)
    except Exception as err:  # pyarrow raises many types for a file that is not Parquet
        raise ValueError(f"{path}: cannot read this index ({err}); rerun cxr preprocess") from err
    tensor = load_tensor(data)
    if len(index) != len(tensor):
        raise ValueError(f"{data}: index has {len(index)} rows but the tensor {len(tensor)}")
    if index.empty:
        raise ValueError(f"{data}: holds no image, nothing to split")
    return index, tensor


def write_duplicates(data: str | Path, out: str | Path) -> pd.DataFrame:
    """The near-duplicate groups of a preprocessed dataset: a table at ``out`` (CSV) and a
    figure of some groups beside it (``out`` with ``.png``); returns the table."""
    from cxr.splits.near_duplicates import draw_groups, group_table, near_duplicate_groups

    out = Path(out)
    figure = out.with_suffix(".png")
    if figure == out:
        raise ValueError(
            f"{out}: the table and its figure would both be written to this file; name the "
            "table .csv (the figure goes beside it as .png)"
        )
    for target in (out, figure):
        check_replaceable(target)  # refuse before the search, and before writing either
    index, tensor = read_data(data)
    labels, pairs = near_duplicate_groups(tensor)
    table = group_table(index["image_id"].tolist(), labels, pairs)
    with atomic_path(out) as tmp:
        table.to_csv(tmp, index=False)
    with atomic_path(figure) as tmp:
        draw_groups(tensor, table, index["image_id"].tolist(), tmp)
    return table


def read_duplicate_groups(table: str | Path, image_ids: Sequence[str]) -> np.ndarray:
    """The near-duplicate component of each image (in the order of ``image_ids``) from the
    table ``cxr duplicates`` wrote of the same tensors: its groups, every other image alone."""
    try:
        groups = pd.read_csv(table, dtype=str, keep_default_na=False)
    except Exception as err:  # pandas raises many types for a file that is not CSV
        raise ValueError(f"{table}: cannot read this duplicates table ({err})") from err
    if "image_ids" not in groups.columns:
        raise ValueError(f"{table}: no image_ids column; not a table written by cxr duplicates")
    row = {image_id: i for i, image_id in enumerate(image_ids)}
    labels = np.arange(len(row))
    for members in groups["image_ids"]:
        ids = members.split("|")
        if unknown := [i for i in ids if i not in row]:
            raise ValueError(
                f"{table}: image {unknown[0]!r} is not in the data; was the table made from "
                "other tensors? Rerun cxr duplicates on them"
            )
        labels[[row[i] for i in ids]] = row[ids[0]]
    return labels


def _duplicate_groups(
    tensor: np.ndarray, index: pd.DataFrame, duplicates: str | Path | None
) -> np.ndarray:
    """The near-duplicate component of each image: read from ``duplicates`` when given, else
    searched for."""
    if duplicates is not None:
        return read_duplicate_groups(duplicates, index["image_id"].tolist())
    from cxr.splits.near_duplicates import near_duplicate_groups

    return near_duplicate_groups(tensor)[0]


def write_splits(
    data: str | Path, scheme: Scheme, out: str | Path, duplicates: str | Path | None = None
) -> dict:
    """Split the preprocessed dataset in ``data``, keeping near-duplicates (from the
    ``duplicates`` table, else searched for) on one side; returns images per side of each
    column."""
    index, tensor = read_data(data)
    splits = make_splits(index, scheme, _duplicate_groups(tensor, index, duplicates))
    with atomic_path(out) as tmp:
        splits.to_parquet(tmp, index=False)
    return {c: splits[c].value_counts().to_dict() for c in split_columns(splits)}


def read_split_table(path: str | Path) -> pd.DataFrame:
    """A split table from Parquet or CSV (any tool's), naming the file if it cannot be read."""
    path = Path(path)
    try:
        if path.suffix.lower() == ".csv":
            return pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
        return pd.read_parquet(path)
    except Exception as err:  # pyarrow and pandas raise many types for a corrupt file
        raise ValueError(f"{path}: cannot read this split table ({err})") from err


def check_split_file(
    split: str | Path, data: str | Path, out: str | Path, duplicates: str | Path | None = None
) -> dict:
    """Check a split table against its preprocessed data (near-duplicates from the
    ``duplicates`` table, else searched for); writes the report only if clean."""
    index, tensor = read_data(data)
    digests = pd.Series([content_digest(img) for img in tensor])
    near = pd.Series(_duplicate_groups(tensor, index, duplicates))
    try:
        report = check_leakage(read_split_table(split), index, digests, near)
    except ValueError as err:
        raise type(err)(f"{split}: {err}") from None
    with atomic_path(out) as tmp:
        tmp.write_text(json.dumps(report, indent=2) + "\n")
    return report

"""Files in and out of the split steps: split tables and leakage reports."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from cxr.atomic import atomic_path
from cxr.dedup import content_digest, dhashes, duplicate_groups
from cxr.index import read_index
from cxr.leakage import check_leakage
from cxr.preprocess import INDEX_FILE, load_tensor
from cxr.splits import Scheme, make_splits, split_columns

#: Hamming distance (of 256 bits) at or under which two images are near-duplicates.
NEAR_DUPLICATE_BITS = Scheme.near_duplicate_bits


def read_data(data: str | Path) -> tuple[pd.DataFrame, np.ndarray]:
    """The index and memory-mapped tensor of a preprocessed folder; fails if it holds none."""
    index = read_index(Path(data) / INDEX_FILE)
    tensor = load_tensor(data)
    if len(index) != len(tensor):
        raise ValueError(f"{data}: index has {len(index)} rows but the tensor {len(tensor)}")
    if index.empty:
        raise ValueError(f"{data}: holds no image, nothing to split")
    return index, tensor


def near_duplicate_components(tensor: np.ndarray, bits: int = NEAR_DUPLICATE_BITS) -> np.ndarray:
    """The near-duplicate component of every image of a preprocessed tensor."""
    return duplicate_groups(dhashes(tensor), bits)


def write_splits(data: str | Path, scheme: Scheme, out: str | Path) -> dict:
    """Split the preprocessed dataset in ``data``; returns images per side of each column."""
    index, tensor = read_data(data)
    splits = make_splits(
        index, scheme, near_duplicate_components(tensor, scheme.near_duplicate_bits)
    )
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


def check_split_file(split: str | Path, data: str | Path, out: str | Path) -> dict:
    """Check a split table against its preprocessed data; writes the report only if clean."""
    index, tensor = read_data(data)
    digests = pd.Series([content_digest(img) for img in tensor])
    near = pd.Series(near_duplicate_components(tensor))
    try:
        report = check_leakage(read_split_table(split), index, digests, near)
    except ValueError as err:
        raise type(err)(f"{split}: {err}") from None
    with atomic_path(out) as tmp:
        tmp.write_text(json.dumps(report, indent=2) + "\n")
    return report

"""Files in and out of the split steps: split tables and leakage reports."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from cxr.atomic import atomic_path
from cxr.dedup import content_digest, dhashes
from cxr.index import read_index
from cxr.leakage import check_leakage
from cxr.preprocess import INDEX_FILE, load_tensor
from cxr.splits import Scheme, make_splits, split_columns


def write_splits(data: str | Path, scheme: Scheme, out: str | Path) -> dict:
    """Split the preprocessed dataset in ``data``; returns images per side of each column."""
    index = read_index(Path(data) / INDEX_FILE)
    hashes = None if index["patient_id"].notna().all() else dhashes(load_tensor(data))
    splits = make_splits(index, scheme, hashes)
    with atomic_path(out) as tmp:
        splits.to_parquet(tmp, index=False)
    return {c: splits[c].value_counts().to_dict() for c in split_columns(splits)}


def check_split_file(split: str | Path, data: str | Path, out: str | Path) -> dict:
    """Check a split table against its preprocessed data; writes the report only if clean."""
    index = read_index(Path(data) / INDEX_FILE)
    tensor = load_tensor(data)
    digests = pd.Series([content_digest(img) for img in tensor])
    report = check_leakage(pd.read_parquet(split), index, digests)
    with atomic_path(out) as tmp:
        tmp.write_text(json.dumps(report, indent=2) + "\n")
    return report

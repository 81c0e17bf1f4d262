"""`cxr check-leakage`: prove that nothing crosses splits, or fail naming what does.

Checked independently of how the split was made, for every split column:
- the same patient (from the index) on two sides;
- the same group (patient or near-duplicate group, from the split table) on two sides;
- the same exact pixel content (digest of the preprocessed image) on two sides;
- the same image id twice.
The report gives images, patients and positives per label for each split, and the overlaps.
"""

from __future__ import annotations

import pandas as pd

from cxr.index import FINDING_PREFIX, finding_columns
from cxr.splits import UNUSED, split_columns


class LeakageError(ValueError):
    """Something crosses splits; the message names it."""


def crossing(keys: pd.Series, split: pd.Series, limit: int = 20) -> dict[str, dict[str, int]]:
    """Keys found on more than one side: ``{key: {split: images}}`` (first ``limit``)."""
    used = split != UNUSED
    frame = pd.DataFrame({"key": keys[used], "split": split[used]}).dropna()
    counts = frame.groupby(["key", "split"]).size().unstack(fill_value=0)
    crossed = counts[(counts > 0).sum(axis=1) > 1].head(limit)
    return {str(k): {s: int(n) for s, n in row.items() if n} for k, row in crossed.iterrows()}


def describe(index: pd.DataFrame, split: pd.Series) -> dict:
    """Images, patients and positives per label (or images per class) of each side."""
    out = {}
    for side in sorted(split.unique()):
        rows = index[(split == side).to_numpy()]
        entry = {"images": len(rows), "patients": int(rows["patient_id"].nunique())}
        findings = finding_columns(rows)
        if findings:
            entry["positives"] = {
                c.removeprefix(FINDING_PREFIX): int((rows[c] == 1).sum()) for c in findings
            }
        elif rows["label"].notna().any():
            entry["classes"] = {str(k): int(v) for k, v in rows["label"].value_counts().items()}
        out[str(side)] = entry
    return out


def check_leakage(splits: pd.DataFrame, index: pd.DataFrame, digests: pd.Series) -> dict:
    """Report of a split table against its index; raises :class:`LeakageError` on any leak.

    ``digests`` holds the exact-content digest of each image, aligned with ``index``.
    """
    index = index.set_index("image_id", drop=False).loc[splits["image_id"]]
    digests = pd.Series(digests.to_numpy(), index=index.index)
    report: dict = {"images": len(splits), "splits": {}}
    problems = []
    if splits["image_id"].duplicated().any():
        dup = splits.loc[splits["image_id"].duplicated(), "image_id"].head(20).tolist()
        problems.append(f"image ids listed twice: {dup}")
    for column in split_columns(splits):
        side = pd.Series(splits[column].to_numpy(), index=index.index)
        overlap = {
            "patients": crossing(index["patient_id"], side),
            "groups": crossing(pd.Series(splits["group"].to_numpy(), index=index.index), side),
            "identical_images": crossing(digests, side),
        }
        for kind, found in overlap.items():
            for key, sides in found.items():
                where = ", ".join(f"{s} ({n} images)" for s, n in sides.items())
                problems.append(f"{column}: {kind[:-1].replace('_', ' ')} {key} is in {where}")
        report["splits"][column] = {
            "sides": describe(index, side),
            "overlap": {kind: len(found) for kind, found in overlap.items()},
        }
    if problems:
        shown = "\n  ".join(problems[:30])
        more = f"\n  ... and {len(problems) - 30} more" if len(problems) > 30 else ""
        raise LeakageError(f"{len(problems)} leak(s) across splits:\n  {shown}{more}")
    return report

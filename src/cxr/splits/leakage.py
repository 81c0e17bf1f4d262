"""`cxr check-leakage`: prove that nothing crosses splits, or fail naming what does.

Checked independently of how the split was made, so a table from any tool gets the same check.
First the table itself (one line per problem): an ``image_id`` column, at least one split
column (``split`` or ``fold_<i>``), only the side names train / val / test / unused, every
image of the data exactly once and no image the data does not have. Then, for every split
column, joined on image id, what must never be on two sides:

- the same patient (from the index);
- the same exact pixel content (digest of the preprocessed image);
- near-duplicate images (re-derived from the preprocessed tensor);
- the same group, where the table carries a ``group`` column (as ``cxr split`` writes).

The report gives images, patients and positives per label for each side, and the overlaps.
"""

from __future__ import annotations

import pandas as pd

from cxr.data.index import FINDING_PREFIX, finding_columns
from cxr.splits.assign import SIDES, UNUSED, split_columns

#: Largest number of problems spelled out in an error message.
SHOWN = 30


class SplitTableError(ValueError):
    """The split table is malformed or does not cover the data; the message lists why."""


class LeakageError(ValueError):
    """Something crosses splits; the message names it."""


def _listing(problems: list[str], headline: str) -> str:
    shown = "\n  ".join(problems[:SHOWN])
    more = f"\n  ... and {len(problems) - SHOWN} more" if len(problems) > SHOWN else ""
    return f"{headline}:\n  {shown}{more}"


def _some(values: pd.Series | list, k: int = 5) -> str:
    values = list(values)
    more = f" and {len(values) - k} more" if len(values) > k else ""
    return ", ".join(map(str, values[:k])) + more


def validate_split_table(splits: pd.DataFrame, image_ids: pd.Series) -> list[str]:
    """Problems of a split table against the data's image ids, one line each (empty: valid)."""
    if "image_id" not in splits:
        return [f"no 'image_id' column (columns: {', '.join(map(str, splits.columns))})"]
    problems = []
    columns = split_columns(splits)
    if not columns:
        problems.append(
            "no split column: expected 'split' or 'fold_0', 'fold_1', ... "
            f"(columns: {', '.join(map(str, splits.columns))})"
        )
    ids = splits["image_id"].astype("string")
    listed_twice = ids[ids.duplicated()].unique()
    if len(listed_twice):
        problems.append(
            f"{len(listed_twice)} image id(s) listed twice or more: {_some(listed_twice)}"
        )
    known = set(image_ids)
    unknown = ids[~ids.isin(known)].unique()
    if len(unknown):
        problems.append(f"{len(unknown)} image id(s) not in the data: {_some(unknown)}")
    missing = sorted(known - set(ids))
    if missing:
        problems.append(f"{len(missing)} image(s) of the data have no row: {_some(missing)}")
    for column in columns:
        sides = splits[column]
        if sides.isna().any():
            problems.append(f"{column}: {int(sides.isna().sum())} row(s) have no side")
        bad = sides.dropna()[~sides.dropna().isin(SIDES)].value_counts()
        if len(bad):
            found = ", ".join(f"{k!r} ({v} rows)" for k, v in bad.items())
            problems.append(f"{column}: unknown side name(s) {found}; use {', '.join(SIDES)}")
        for side in ("train", "test"):
            if not (sides == side).any():
                problems.append(f"{column}: no image is in {side!r}")
    return problems


def crossing(keys: pd.Series, side: pd.Series) -> dict[str, dict[str, list[str]]]:
    """Keys found on more than one side: ``{key: {side: [image ids]}}``.

    ``keys`` and ``side`` share an index of image ids; missing keys and unused images are
    ignored.
    """
    frame = pd.DataFrame({"key": keys, "side": side})
    frame = frame[(frame["side"] != UNUSED) & frame["key"].notna()]
    n_sides = frame.groupby("key")["side"].transform("nunique")
    crossed = frame[n_sides > 1]
    out: dict[str, dict[str, list[str]]] = {}
    for (key, s), rows in crossed.groupby(["key", "side"], sort=True):
        out.setdefault(str(key), {})[str(s)] = sorted(map(str, rows.index))
    return out


def describe(index: pd.DataFrame, side: pd.Series) -> dict:
    """Images, patients and positives per label (or images per class) of each side."""
    out = {}
    for name in sorted(side.unique()):
        rows = index[(side == name).to_numpy()]
        entry = {"images": len(rows), "patients": int(rows["patient_id"].nunique())}
        findings = finding_columns(rows)
        if findings:
            entry["positives"] = {
                c.removeprefix(FINDING_PREFIX): int((rows[c] == 1).sum()) for c in findings
            }
        elif rows["label"].notna().any():
            entry["classes"] = {str(k): int(v) for k, v in rows["label"].value_counts().items()}
        out[str(name)] = entry
    return out


_WHAT = {
    "patients": "patient {key}",
    "groups": "group {key}",
    "identical_images": "identical images",
    "near_duplicates": "near-duplicate images",
}


def _problem(column: str, kind: str, key: str, sides: dict[str, list[str]]) -> str:
    where = ", ".join(f"{s} ({_some(ids, 3)})" for s, ids in sides.items())
    return f"{column}: {_WHAT[kind].format(key=key)} is in {where}"


def check_leakage(
    splits: pd.DataFrame,
    index: pd.DataFrame,
    digests: pd.Series,
    near_groups: pd.Series | None = None,
) -> dict:
    """Report of a split table against its data; raises on a malformed table or any leak.

    ``digests`` (exact pixel content) and ``near_groups`` (near-duplicate component) hold one
    value per image, in the row order of ``index``. Everything is joined on ``image_id``.
    """
    problems = validate_split_table(splits, index["image_id"])
    if problems:
        raise SplitTableError(_listing(problems, f"{len(problems)} problem(s) in the split table"))
    by_id = index.set_index("image_id", drop=False)
    evidence = {
        "patients": by_id["patient_id"],
        "identical_images": pd.Series(digests.to_numpy(), index=by_id.index),
    }
    if near_groups is not None:
        evidence["near_duplicates"] = pd.Series(near_groups.to_numpy(), index=by_id.index)
    if "group" in splits:
        evidence["groups"] = splits.set_index("image_id")["group"]
    table = splits.set_index("image_id")
    report: dict = {"images": len(splits), "splits": {}}
    for column in split_columns(splits):
        side = table[column].reindex(by_id.index)
        overlap = {kind: crossing(keys, side) for kind, keys in evidence.items()}
        problems += [
            _problem(column, kind, key, sides)
            for kind, found in overlap.items()
            for key, sides in found.items()
        ]
        report["splits"][column] = {
            "sides": describe(by_id, side),
            "overlap": {kind: len(found) for kind, found in sorted(overlap.items())},
        }
    if problems:
        raise LeakageError(_listing(problems, f"{len(problems)} leak(s) across splits"))
    return report

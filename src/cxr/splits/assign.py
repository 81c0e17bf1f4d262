"""`cxr split`: leak-proof train / validation / test assignments, stored as data.

Every image belongs to a *group* that must never cross splits: the images linked to it by a
shared patient id (NIH, MURA) or by being exact or near-duplicate pictures (found in the
preprocessed tensor), transitively. Methods:

- ``official``: the dataset's own split (NIH train_val/test lists, MURA train/valid, the
  ImageFolder split folders), validation carved from the training part by group;
- ``random``: seeded ratios (e.g. 0.7/0.2/0.1), stratified by label where possible;
- ``balanced``: seed 000's NIH nodule split, balanced positive/negative validation and test;
- ``kfold``: k stratified group folds; fold i tests on fold i, validates on fold i+1.

The output has one row per image: ``image_id``, ``group``, ``patient_id``, and one split column
per assignment (``split``, or ``fold_0`` ... ``fold_{k-1}``) holding train / val / test /
unused ("unused": kept out on purpose, e.g. to balance seed 000's test set).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from cxr.core.settings import from_mapping
from cxr.data.index import finding_columns

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")
UNUSED = "unused"
#: Every side name a split table may hold.
SIDES = (*SPLITS, UNUSED)
METHODS = ("official", "random", "balanced", "kfold")
_OFFICIAL = {
    "train": "train",
    "train_val": "train",
    "val": "val",
    "valid": "test",
    "validation": "val",
    "test": "test",
}


@dataclass(frozen=True)
class Scheme:
    """How to split, as written in params.yaml under ``split.<dataset>.<name>``."""

    method: str
    ratios: tuple[float, ...] = (0.7, 0.1, 0.2)
    val_fraction: float = 0.1
    folds: int = 10
    label: str = ""
    val_positives: float = 0.163
    test_positives: float = 0.042
    seed: int = 0

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"unknown split method {self.method!r}; choose one of {METHODS}")
        if self.method == "random" and (
            len(self.ratios) != 3 or abs(sum(self.ratios) - 1) > 1e-6 or min(self.ratios) < 0
        ):
            raise ValueError(f"ratios must be 3 non-negative numbers summing to 1: {self.ratios}")

    @classmethod
    def from_dict(cls, cfg: dict, seed: int = 0) -> Scheme:
        """A scheme from its params.yaml / JSON form (``seed`` unless it sets its own)."""
        return from_mapping(cls, cfg, "split scheme", seed=seed)


def groups_of(index: pd.DataFrame, duplicates: np.ndarray) -> pd.Series:
    """The group of every image: images sharing a patient or a duplicate component, joined.

    ``duplicates`` holds the near-duplicate component of every image (same row order), so two
    copies of one picture filed under two patient ids (a labelling error) share a group. A
    group is named after its patients (``patient:<id>``, several joined by ``+``), or
    ``dup:<component>`` where none of its images has a patient id.
    """
    n = len(index)
    patient_codes = pd.factorize(index["patient_id"])[0]  # -1 where unknown
    rows = np.arange(n)
    first_of_patient = pd.Series(rows).groupby(patient_codes).transform("first").to_numpy()
    first_of_dup = pd.Series(rows).groupby(duplicates).transform("first").to_numpy()
    known = patient_codes >= 0
    edges = np.concatenate([[rows[known], first_of_patient[known]], [rows, first_of_dup]], axis=1)
    graph = coo_matrix((np.ones(edges.shape[1], bool), (edges[0], edges[1])), shape=(n, n))
    component = connected_components(graph, directed=False)[1]
    patients = index["patient_id"].astype(object).where(known, None)
    names = (
        pd.Series(patients.to_numpy())
        .groupby(component)
        .agg(lambda p: "+".join(f"patient:{x}" for x in sorted(set(p.dropna()))))
    )
    group = [names[c] or f"dup:{c}" for c in component]
    return pd.Series(group, index=index.index, name="group", dtype=object)


def check_sides(splits: pd.DataFrame, scheme: Scheme) -> None:
    """Fail, naming the side, if a side the scheme asks for got no image."""
    wanted = set(SPLITS)
    if scheme.method == "random":
        wanted = {s for s, r in zip(SPLITS, scheme.ratios, strict=True) if r > 0}
    elif scheme.method == "official" and scheme.val_fraction == 0:
        wanted.discard("val")
    for column in split_columns(splits):
        counts = splits[column].value_counts()
        empty = sorted(s for s in wanted if counts.get(s, 0) == 0)
        if empty:
            raise ValueError(
                f"{column}: no image went to {' or '.join(empty)} ({len(splits)} images in "
                f"{splits['group'].nunique()} groups: {counts.to_dict()}); the dataset is too "
                "small for this scheme, or its groups too large"
            )


def label_matrix(index: pd.DataFrame) -> np.ndarray:
    """Per-image targets to stratify on: finding columns (NaN as 0) or one-hot classes."""
    findings = finding_columns(index)
    if findings:
        return np.nan_to_num(index[findings].to_numpy(float))
    if index["label"].notna().any():
        return pd.get_dummies(index["label"]).to_numpy(float)
    return np.zeros((len(index), 0))


def assign_groups(
    groups: pd.Series, labels: np.ndarray, ratios: tuple[float, ...], seed: int
) -> np.ndarray:
    """Greedy stratified group assignment to ``len(ratios)`` parts; returns a part per image.

    Groups are visited largest first (ties in a seeded random order); each goes to the part
    furthest below its target share of the group's positive labels, or of images when the
    group has none. Large cohorts land within one group of the target ratios.
    """
    codes, uniques = pd.factorize(groups)
    n_groups = len(uniques)
    sizes = np.bincount(codes, minlength=n_groups).astype(float)
    positives = np.zeros((n_groups, labels.shape[1]))
    np.add.at(positives, codes, labels)
    target = np.asarray(ratios, float)[:, None]
    want_images, want_pos = target * sizes.sum(), target * positives.sum(axis=0)
    have_images, have_pos = np.zeros(len(ratios)), np.zeros((len(ratios), labels.shape[1]))
    rng = np.random.default_rng(seed)
    order = sorted(rng.permutation(n_groups), key=lambda g: -sizes[g])
    part_of_group = np.empty(n_groups, int)
    for g in order:
        has = positives[g] > 0
        if has.any():
            deficit = ((want_pos[:, has] - have_pos[:, has]) / want_pos[:, has]).sum(axis=1)
        else:
            deficit = (want_images[:, 0] - have_images) / np.maximum(want_images[:, 0], 1)
        deficit[target[:, 0] == 0] = -np.inf
        part = int(np.argmax(deficit))
        part_of_group[g] = part
        have_images[part] += sizes[g]
        have_pos[part] += positives[g]
    return part_of_group[codes]


def split_official(index: pd.DataFrame, groups: pd.Series, scheme: Scheme) -> pd.Series:
    """The dataset's own split; validation carved by group from a train part that lacks one."""
    source = index["source_split"].str.lower().map(_OFFICIAL)
    if source.isna().all():
        raise ValueError(
            "this dataset has no official split (no source_split); use method random or kfold"
        )
    split = keep_groups_on_one_side(source.fillna(UNUSED), groups, index["image_id"])
    if not (split == "val").any() and scheme.val_fraction > 0:
        train = split == "train"
        parts = assign_groups(
            groups[train],
            label_matrix(index[train]),
            (1 - scheme.val_fraction, scheme.val_fraction),
            scheme.seed,
        )
        split[train] = np.where(parts == 1, "val", "train")
    return split


def keep_groups_on_one_side(split: pd.Series, groups: pd.Series, image_ids: pd.Series) -> pd.Series:
    """A group the dataset's own split puts on several sides (a copy of a test image among
    the training images) stays on its most held-out side; its other images become unused."""
    rank = split.map({"test": 0, "val": 1, "train": 2, UNUSED: 3})
    best = rank.groupby(groups).transform("min")
    moved = (rank != best) & (rank < 3)
    if moved.any():
        examples = ", ".join(image_ids[moved].head(5).astype(str))
        log.warning(
            "%d image(s) share a patient or a picture with a held-out image and are left unused "
            "to prevent a leak (the dataset's own split disagrees): %s",
            int(moved.sum()),
            examples,
        )
    return split.where(~moved, UNUSED)


def split_random(index: pd.DataFrame, groups: pd.Series, scheme: Scheme) -> pd.Series:
    parts = assign_groups(groups, label_matrix(index), scheme.ratios, scheme.seed)
    return pd.Series(np.asarray(SPLITS)[parts], index=index.index)


def split_kfold(index: pd.DataFrame, groups: pd.Series, scheme: Scheme) -> pd.DataFrame:
    """``fold_i`` columns: test on fold i, validate on fold i+1, train on the rest."""
    k = scheme.folds
    if k < 3:
        raise ValueError(f"k-fold needs at least 3 folds (train, val, test), got {k}")
    fold = assign_groups(groups, label_matrix(index), (1 / k,) * k, scheme.seed)
    columns = {}
    for i in range(k):
        col = np.full(len(index), "train", dtype=object)
        col[fold == i] = "test"
        col[fold == (i + 1) % k] = "val"
        columns[f"fold_{i}"] = col
    return pd.DataFrame(columns, index=index.index)


def split_balanced(index: pd.DataFrame, groups: pd.Series, scheme: Scheme) -> pd.Series:
    """Seed 000: validation and test with as many negatives as positives of ``label``.

    Positive groups (any positive image) are drawn at random until validation and test hold
    their share of the positive images; negative-only groups are drawn until each side has as
    many negative images. Images of a chosen group that would unbalance a side are "unused".
    """
    column = f"finding_{scheme.label}"
    if column not in index:
        raise ValueError(f"balanced split: no finding {scheme.label!r} in this dataset")
    positive = index[column].fillna(0).to_numpy() == 1
    group_has_pos = pd.Series(positive, index=index.index).groupby(groups).transform("any")
    rng = np.random.default_rng(scheme.seed)
    split = pd.Series("train", index=index.index, dtype=object)
    total_pos = int(positive.sum())
    quota = {
        "val": round(scheme.val_positives * total_pos),
        "test": round(scheme.test_positives * total_pos),
    }
    pos_groups = rng.permutation(groups[group_has_pos.to_numpy()].unique())
    neg_groups = rng.permutation(groups[~group_has_pos.to_numpy()].unique())
    members = groups.groupby(groups).groups
    for side in ("val", "test"):
        got = 0
        while got < quota[side] and len(pos_groups):
            g, pos_groups = pos_groups[0], pos_groups[1:]
            rows = np.asarray(members[g])  # positions: make_splits resets the index
            split[rows] = np.where(positive[rows], side, UNUSED)
            got += int(positive[rows].sum())
        need = got
        while need > 0 and len(neg_groups):
            g, neg_groups = neg_groups[0], neg_groups[1:]
            rows = list(members[g])
            take, rest = rows[:need], rows[need:]
            split[take] = side
            split[rest] = UNUSED
            need -= len(take)
    return split


def make_splits(
    index: pd.DataFrame, scheme: Scheme, duplicates: np.ndarray | None = None
) -> pd.DataFrame:
    """One row per image: ``image_id``, ``group``, ``patient_id`` and the split column(s).

    ``duplicates``: the near-duplicate component of each image (row order of ``index``);
    None when no two images are known to be copies.
    """
    index = index.reset_index(drop=True)
    groups = groups_of(index, np.arange(len(index)) if duplicates is None else duplicates)
    out = pd.DataFrame(
        {"image_id": index["image_id"], "group": groups, "patient_id": index["patient_id"]}
    )
    if scheme.method == "kfold":
        out = pd.concat([out, split_kfold(index, groups, scheme)], axis=1)
    else:
        method = {"official": split_official, "random": split_random, "balanced": split_balanced}
        out["split"] = method[scheme.method](index, groups, scheme).to_numpy()
    check_sides(out, scheme)
    return out


def split_columns(splits: pd.DataFrame) -> list[str]:
    """The assignment columns of a split table (``split`` or ``fold_<i>``)."""
    return [c for c in splits.columns if c == "split" or c.startswith("fold_")]

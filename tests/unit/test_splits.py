"""Splits: groups never cross, ratios and stratification hold, duplicates stay together,
and the leakage check catches a planted leak."""

from __future__ import annotations

import cv2
import numpy as np
import pandas as pd
import pytest

from cxr.splits.assign import Scheme, make_splits, split_columns
from cxr.splits.dedup import content_digest
from cxr.splits.leakage import LeakageError, check_leakage
from cxr.splits.near_duplicates import near_duplicate_groups


def patient_index(n_patients: int = 200, seed: int = 0) -> pd.DataFrame:
    """An NIH-like index: 1-6 images per patient, a rare finding that persists per patient."""
    rng = np.random.default_rng(seed)
    rows = []
    for p in range(n_patients):
        sick = rng.random() < 0.15
        for k in range(int(rng.integers(1, 7))):
            rows.append(
                {
                    "image_id": f"{p:08d}_{k:03d}.png",
                    "patient_id": str(p),
                    "finding_Nodule": float(sick and rng.random() < 0.8),
                    "source_split": "test" if p % 5 == 0 else "train_val",
                    "label": None,
                }
            )
    return pd.DataFrame(rows)


def sides_of_groups(splits: pd.DataFrame, column: str) -> pd.Series:
    used = splits[splits[column] != "unused"]
    return used.groupby("group")[column].nunique()


@pytest.mark.parametrize(
    "scheme",
    [
        Scheme("random", ratios=(0.7, 0.2, 0.1)),
        Scheme("official", val_fraction=0.1),
        Scheme("kfold", folds=5),
        Scheme("balanced", label="Nodule", val_positives=0.2, test_positives=0.1),
    ],
    ids=lambda s: s.method,
)
def test_no_patient_is_ever_on_two_sides(scheme: Scheme) -> None:
    splits = make_splits(patient_index(), scheme)
    for column in split_columns(splits):
        assert (sides_of_groups(splits, column) == 1).all()


def test_random_split_follows_the_ratios_and_stratifies() -> None:
    index = patient_index(600)
    splits = make_splits(index, Scheme("random", ratios=(0.7, 0.2, 0.1), seed=3))
    share = splits["split"].value_counts(normalize=True)
    assert share["train"] == pytest.approx(0.7, abs=0.03)
    assert share["val"] == pytest.approx(0.2, abs=0.03)
    assert share["test"] == pytest.approx(0.1, abs=0.03)
    positives = index.groupby(splits["split"].to_numpy())["finding_Nodule"].sum()
    assert positives["test"] / positives.sum() == pytest.approx(0.1, abs=0.04)


def test_splits_are_deterministic_for_a_seed() -> None:
    index = patient_index()
    a = make_splits(index, Scheme("random", seed=1))
    b = make_splits(index, Scheme("random", seed=1))
    c = make_splits(index, Scheme("random", seed=2))
    assert a.equals(b)
    assert not a["split"].equals(c["split"])


def test_official_split_keeps_the_test_list_and_carves_validation_by_patient() -> None:
    index = patient_index()
    splits = make_splits(index, Scheme("official", val_fraction=0.15))
    official_test = index["source_split"] == "test"
    assert (splits.loc[official_test, "split"] == "test").all()
    assert set(splits.loc[~official_test, "split"]) == {"train", "val"}
    val_share = (splits["split"] == "val").sum() / (~official_test).sum()
    assert val_share == pytest.approx(0.15, abs=0.04)


def test_official_split_needs_an_official_split() -> None:
    index = patient_index().assign(source_split=None)
    with pytest.raises(ValueError, match="no official split"):
        make_splits(index, Scheme("official"))


def test_balanced_split_has_as_many_negatives_as_positives_in_val_and_test() -> None:
    index = patient_index(400)
    splits = make_splits(
        index, Scheme("balanced", label="Nodule", val_positives=0.2, test_positives=0.1)
    )
    positive = index["finding_Nodule"] == 1
    for side, share in (("val", 0.2), ("test", 0.1)):
        on_side = splits["split"] == side
        pos, neg = (on_side & positive).sum(), (on_side & ~positive).sum()
        assert pos == neg > 0
        assert pos / positive.sum() == pytest.approx(share, abs=0.05)
    assert (splits.loc[positive, "split"] != "unused").sum() > 0.9 * positive.sum() - 1


def test_kfold_tests_each_group_exactly_once() -> None:
    splits = make_splits(patient_index(), Scheme("kfold", folds=4))
    columns = split_columns(splits)
    assert columns == ["fold_0", "fold_1", "fold_2", "fold_3"]
    tested = (splits[columns] == "test").sum(axis=1)
    assert (tested == 1).all()
    validated = (splits[columns] == "val").sum(axis=1)
    assert (validated == 1).all()


def cv2_blur(img: np.ndarray) -> np.ndarray:
    return cv2.GaussianBlur(img, (0, 0), 3)


def test_duplicates_without_patient_ids_stay_on_one_side() -> None:
    rng = np.random.default_rng(1)
    images = np.stack([cv2_blur(rng.integers(0, 255, (32, 32), dtype=np.uint8)) for _ in range(40)])
    images[30:] = images[:10]  # ten exact duplicates
    index = pd.DataFrame(
        {
            "image_id": [f"i{k}" for k in range(40)],
            "patient_id": None,
            "label": ["a", "b"] * 20,
            "source_split": None,
        }
    )
    components = near_duplicate_groups(images)[0]
    splits = make_splits(index, Scheme("random", ratios=(0.5, 0.25, 0.25)), components)
    for k in range(10):
        assert splits.loc[k, "split"] == splits.loc[30 + k, "split"]
        assert splits.loc[k, "group"] == splits.loc[30 + k, "group"]


def test_leakage_check_passes_a_clean_split_and_reports_it() -> None:
    index = patient_index()
    splits = make_splits(index, Scheme("random"))
    digests = pd.Series([f"d{i}" for i in range(len(index))])
    report = check_leakage(splits, index, digests)
    sides = report["splits"]["split"]["sides"]
    assert sum(s["images"] for s in sides.values()) == len(index)
    assert report["splits"]["split"]["overlap"] == {
        "groups": 0,
        "identical_images": 0,
        "patients": 0,
    }
    assert sides["train"]["positives"]["Nodule"] > 0


def test_leakage_check_names_a_planted_patient_leak() -> None:
    index = patient_index()
    splits = make_splits(index, Scheme("random"))
    victim = (
        splits[splits["split"] == "train"]
        .groupby("patient_id")
        .filter(lambda g: len(g) > 1)["patient_id"]
        .iloc[0]
    )
    row = splits.index[splits["patient_id"] == victim][0]
    splits.loc[row, "split"] = "test"
    digests = pd.Series([f"d{i}" for i in range(len(index))])
    with pytest.raises(LeakageError, match=rf"patient {victim} is in"):
        check_leakage(splits, index, digests)


def test_leakage_check_finds_identical_pixels_even_in_other_groups() -> None:
    index = patient_index(50)
    splits = make_splits(index, Scheme("random"))
    digests = pd.Series([f"d{i}" for i in range(len(index))])
    a = splits.index[splits["split"] == "train"][0]
    b = splits.index[splits["split"] == "test"][0]
    digests[b] = digests[a]  # the same picture filed under two patients
    with pytest.raises(LeakageError, match="identical image"):
        check_leakage(splits, index, digests)


def test_content_digest_tells_exact_copies() -> None:
    img = np.arange(16, dtype=np.uint8).reshape(4, 4)
    assert content_digest(img) == content_digest(img.copy())
    assert content_digest(img) != content_digest(img.T)

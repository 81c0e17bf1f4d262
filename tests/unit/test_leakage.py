"""The leakage check joins on image id, validates the table, and re-derives what may leak;
`cxr split` keeps copies filed under two patients together, so it passes its own check."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from cxr.data.index import build_index
from cxr.data.preprocess import INDEX_FILE, TENSOR_FILE
from cxr.splits.assign import Scheme
from cxr.splits.files import (
    check_split_file,
    read_duplicate_groups,
    write_duplicates,
    write_splits,
)
from cxr.splits.leakage import LeakageError, SplitTableError


def write_preprocessed(folder: Path, patients: list[str | None], copies: dict[int, int]) -> None:
    """A preprocessed folder of distinct smooth images; ``copies`` maps row -> row it copies."""
    rng = np.random.default_rng(0)
    tensor = np.stack(
        [
            cv2.GaussianBlur(rng.integers(0, 255, (32, 32), dtype=np.uint8), (0, 0), 2)
            for _ in patients
        ]
    )
    for row, original in copies.items():
        tensor[row] = tensor[original]
    rows = [
        {
            "image_id": f"img{i:03d}.png",
            "path": f"img{i:03d}.png",
            "patient_id": p,
            "width": 32,
            "height": 32,
            "mode": "L",
            "label": "ab"[i % 2],
            "finding_Nodule": float(i % 4 == 0),
        }
        for i, p in enumerate(patients)
    ]
    folder.mkdir(parents=True)
    np.save(folder / TENSOR_FILE, tensor)
    build_index(rows, "nih").to_parquet(folder / INDEX_FILE, index=False)


@pytest.fixture
def data(tmp_path: Path) -> Path:
    """40 images of 20 patients; img039 is an exact copy of img000 under another patient."""
    folder = tmp_path / "data"
    write_preprocessed(folder, [str(i // 2) for i in range(39)] + ["999"], {39: 0})
    return folder


def split_table(data: Path, sides: dict[str, str]) -> pd.DataFrame:
    ids = pd.read_parquet(data / INDEX_FILE)["image_id"]
    return pd.DataFrame({"image_id": ids, "split": ids.map(sides).fillna("train")})


def check(tmp_path: Path, table: pd.DataFrame, data: Path, name: str = "s.parquet") -> dict:
    path = tmp_path / name
    if name.endswith(".csv"):
        table.to_csv(path, index=False)
    else:
        table.to_parquet(path, index=False)
    return check_split_file(path, data, tmp_path / "report.json")


def test_cxr_split_keeps_a_copy_filed_under_another_patient_with_its_original(
    tmp_path: Path, data: Path
) -> None:
    for scheme in (Scheme("random", ratios=(0.5, 0.25, 0.25)), Scheme("kfold", folds=4)):
        write_splits(data, scheme, tmp_path / "split.parquet")
        splits = pd.read_parquet(tmp_path / "split.parquet").set_index("image_id")
        assert splits.loc["img000.png", "group"] == splits.loc["img039.png", "group"]
        assert splits.loc["img001.png", "group"] == splits.loc["img039.png", "group"]
        report = check_split_file(tmp_path / "split.parquet", data, tmp_path / "r.json")
        assert all(c["overlap"]["identical_images"] == 0 for c in report["splits"].values())


def test_split_and_check_read_the_duplicates_table_instead_of_searching_again(
    tmp_path: Path,
) -> None:
    """What `cxr duplicates` found is what split and check use: the same table as a search."""
    folder = tmp_path / "data"
    write_preprocessed(folder, [None] * 40, {})  # no patient ids: only pictures group
    tensor = np.load(folder / TENSOR_FILE)
    tensor[39] = np.clip(tensor[5].astype(int) + 3, 0, 255)  # a brightened copy of img005
    np.save(folder / TENSOR_FILE, tensor)
    table = tmp_path / "duplicates.csv"
    write_duplicates(folder, table)
    ids = pd.read_parquet(folder / INDEX_FILE)["image_id"].tolist()
    labels = read_duplicate_groups(table, ids)
    assert labels[39] == labels[5] and len(set(labels)) == 39
    scheme = Scheme("kfold", folds=4)
    write_splits(folder, scheme, tmp_path / "searched.parquet")
    write_splits(folder, scheme, tmp_path / "read.parquet", duplicates=table)
    read = pd.read_parquet(tmp_path / "read.parquet")
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "searched.parquet"), read)
    check_split_file(tmp_path / "read.parquet", folder, tmp_path / "r.json", duplicates=table)
    leaky = split_table(folder, {"img039.png": "test"})  # img005 stays in train
    leaky.to_parquet(tmp_path / "leaky.parquet", index=False)
    with pytest.raises(LeakageError, match="near-duplicate images is in test"):
        check_split_file(tmp_path / "leaky.parquet", folder, tmp_path / "r2.json", table)


def test_a_duplicates_table_of_other_data_is_refused(tmp_path: Path, data: Path) -> None:
    table = tmp_path / "duplicates.csv"
    table.write_text("group,size,image_ids,max_distance\n3,2,img000.png|other.png,0.0\n")
    with pytest.raises(ValueError, match=r"image 'other\.png' is not in the data"):
        write_splits(data, Scheme("kfold", folds=4), tmp_path / "s.parquet", duplicates=table)
    table.write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="no image_ids column"):
        read_duplicate_groups(table, ["img000.png"])


def test_a_reordered_table_cannot_hide_an_identical_image_on_two_sides(
    tmp_path: Path, data: Path
) -> None:
    table = split_table(data, {"img039.png": "test", "img010.png": "val", "img011.png": "val"})
    table = table.sample(frac=1.0, random_state=3)  # rows in another order than the data
    with pytest.raises(LeakageError) as err:
        check(tmp_path, table, data)
    message = str(err.value)
    assert "identical images is in test (img039.png), train (img000.png)" in message
    assert "near-duplicate images is in test (img039.png), train (img000.png)" in message
    assert not (tmp_path / "report.json").exists()


def test_a_re_encoded_copy_on_another_side_is_found_by_the_near_duplicate_check(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "data"
    write_preprocessed(folder, [str(i // 2) for i in range(40)], {})
    tensor = np.load(folder / TENSOR_FILE)
    copy = np.clip(np.roll(tensor[0], 1, axis=1).astype(int) * 1.05 + 6, 0, 255).astype(np.uint8)
    _, jpeg = cv2.imencode(".jpg", copy, [cv2.IMWRITE_JPEG_QUALITY, 80])
    tensor[39] = cv2.imdecode(jpeg, cv2.IMREAD_GRAYSCALE)  # a re-upload of img000 (patient 19)
    np.save(folder / TENSOR_FILE, tensor)
    with pytest.raises(LeakageError) as err:
        check(tmp_path, split_table(folder, {"img039.png": "test", "img010.png": "val"}), folder)
    message = str(err.value)
    assert "near-duplicate images is in test (img039.png), train (img000.png)" in message
    assert "identical images" not in message


def test_sides_are_named_by_image_id_whatever_the_row_order(tmp_path: Path, data: Path) -> None:
    table = split_table(data, {"img002.png": "test", "img003.png": "val"})
    table = table.iloc[::-1]
    with pytest.raises(
        LeakageError, match=r"patient 1 is in test \(img002.png\), val \(img003.png\)"
    ):
        check(tmp_path, table, data)


def test_a_clean_table_from_another_tool_passes_as_csv(tmp_path: Path, data: Path) -> None:
    sides = {f"img{i:03d}.png": "test" for i in (0, 1, 39)} | {"img002.png": "val"}
    sides["img003.png"] = "val"
    report = check(tmp_path, split_table(data, sides).sample(frac=1.0), data, "s.csv")
    assert report["splits"]["split"]["sides"]["test"]["images"] == 3
    assert json.loads((tmp_path / "report.json").read_text()) == report


@pytest.mark.parametrize(
    ("edit", "problem"),
    [
        (lambda t: t.replace({"val": "validation"}), r"unknown side name\(s\) 'validation'"),
        (lambda t: t.replace({"test": "Test"}), r"unknown side name\(s\) 'Test'"),
        (lambda t: t.drop(columns="split"), "no split column"),
        (lambda t: t.rename(columns={"image_id": "Image Index"}), "no 'image_id' column"),
        (lambda t: t.iloc[3:], r"3 image\(s\) of the data have no row: img000.png"),
        (
            lambda t: pd.concat([t, t.iloc[:1].assign(image_id="ghost.png")]),
            r"1 image id\(s\) not in the data: ghost.png",
        ),
        (lambda t: pd.concat([t, t.iloc[:2]]), r"2 image id\(s\) listed twice or more"),
        (lambda t: t.replace({"test": "val"}), "split: no image is in 'test'"),
    ],
    ids=[
        "validation",
        "Test",
        "no-split-column",
        "no-image-id",
        "rows-missing",
        "unknown-image",
        "listed-twice",
        "no-test",
    ],
)
def test_a_malformed_split_table_is_refused_naming_the_problem(
    tmp_path: Path, data: Path, edit, problem: str
) -> None:
    table = edit(
        split_table(
            data,
            {"img010.png": "test", "img011.png": "test", "img012.png": "val", "img013.png": "val"},
        )
    )
    with pytest.raises(SplitTableError, match=problem):
        check(tmp_path, table, data)


def test_every_problem_of_a_table_gets_its_own_line(tmp_path: Path, data: Path) -> None:
    table = split_table(data, {"img010.png": "Test"}).iloc[1:]
    with pytest.raises(SplitTableError) as err:
        check(tmp_path, table, data)
    lines = str(err.value).splitlines()
    assert "3 problem(s) in the split table" in lines[0]
    assert len(lines) == 4


def test_a_split_with_an_empty_side_fails_naming_it(tmp_path: Path) -> None:
    write_preprocessed(tmp_path / "d", ["1", "1", "1", "2", "2", "2"], {})
    with pytest.raises(ValueError, match="no image went to"):
        write_splits(tmp_path / "d", Scheme("random", ratios=(0.8, 0.1, 0.1)), tmp_path / "s")
    assert not (tmp_path / "s").exists()


def test_official_split_leaves_a_training_copy_of_a_test_image_unused(tmp_path: Path) -> None:
    folder = tmp_path / "d"
    write_preprocessed(folder, [None] * 30, {29: 0})
    index = pd.read_parquet(folder / INDEX_FILE)
    index["source_split"] = ["test"] + ["train"] * 20 + ["test"] * 8 + ["train"]
    index.to_parquet(folder / INDEX_FILE, index=False)
    write_splits(folder, Scheme("official", val_fraction=0.2), tmp_path / "s.parquet")
    splits = pd.read_parquet(tmp_path / "s.parquet").set_index("image_id")["split"]
    assert splits["img000.png"] == "test"
    assert splits["img029.png"] == "unused"
    check_split_file(tmp_path / "s.parquet", folder, tmp_path / "r.json")

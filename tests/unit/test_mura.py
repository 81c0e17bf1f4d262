"""MURA v1.1 miniature: the real CSV quirks, and the ingester's round trip and manifest."""

from __future__ import annotations

import csv
import re
import shutil
from pathlib import Path

import pytest
from PIL import Image

from cxr.ingest import ingest
from cxr.ingest.mura import (
    DISAGREE_REASON,
    HIDDEN_REASON,
    MALFORMED_REASON,
    NO_FILE_REASON,
    NOT_LISTED_REASON,
    STUDY_ROW_SKIPPED_REASON,
)
from cxr.synth import synthesize

N, SIZE, SEED = 60, 64, 0
ROOT = "MURA-v1.1"
IMAGE = re.compile(
    r"MURA-v1\.1/(train|valid)/XR_(ELBOW|FINGER|FOREARM|HAND|HUMERUS|SHOULDER|WRIST)/"
    r"patient(\d{5})/study([1-4])_(positive|negative)/image([1-9]\d*)\.png"
)


@pytest.fixture(scope="module")
def parent(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder holding ``MURA-v1.1/`` (the CSV paths are relative to it)."""
    return synthesize("mura", tmp_path_factory.mktemp("mura") / "parent", N, SIZE, SEED)


def rows(parent: Path, name: str) -> list[list[str]]:
    with open(parent / ROOT / name, newline="") as fh:
        return list(csv.reader(fh))


def image_paths(parent: Path, split: str) -> list[str]:
    return [r[0] for r in rows(parent, f"{split}_image_paths.csv")]


def patients(paths: list[str]) -> set[int]:
    return {int(IMAGE.fullmatch(p).group(3)) for p in paths}


def test_csvs_have_no_header_and_the_real_shape(parent: Path) -> None:
    for split in ("train", "valid"):
        image_rows = rows(parent, f"{split}_image_paths.csv")
        study_rows = rows(parent, f"{split}_labeled_studies.csv")
        first_line = (parent / ROOT / f"{split}_image_paths.csv").read_text().splitlines()[0]
        assert first_line.startswith(f"{ROOT}/{split}/XR_")  # a data row, not a header
        assert all(len(r) == 1 and IMAGE.fullmatch(r[0]) for r in image_rows)
        assert all(len(r) == 2 and r[0].endswith("/") and r[1] in ("0", "1") for r in study_rows)
        for folder, label in study_rows:
            assert (label == "1") == folder.endswith("_positive/")
        assert {p.rsplit("/", 1)[0] + "/" for p in image_paths(parent, split)} == {
            r[0] for r in study_rows
        }
    train = image_paths(parent, "train")
    assert train != sorted(train)  # rows are not sorted


def test_files_match_the_csvs(parent: Path) -> None:
    listed = image_paths(parent, "train") + image_paths(parent, "valid")
    on_disk = sorted(p.relative_to(parent).as_posix() for p in parent.rglob("*.png"))
    assert len(listed) == N
    assert sorted(listed) == on_disk
    modes = {Image.open(parent / p).mode for p in listed}
    assert modes == {"L", "RGB"}
    sizes = [Image.open(parent / p).size for p in listed]
    assert max(max(s) for s in sizes) <= SIZE
    assert len({w / h for w, h in sizes}) > N // 2  # aspect varies


def test_real_layout_pitfalls(parent: Path) -> None:
    train, valid = image_paths(parent, "train"), image_paths(parent, "valid")
    assert any(p.endswith("/image10.png") for p in train + valid)
    assert min(patients(valid)) > max(patients(train))
    assert min(patients(train)) == 1
    parts_of: dict[str, set[str]] = {}
    for p in train + valid:
        m = IMAGE.fullmatch(p)
        parts_of.setdefault(m.group(3), set()).add(m.group(2))
    assert max(len(parts) for parts in parts_of.values()) >= 2
    assert any("/study2_" in p for p in train + valid)


def test_round_trip(parent: Path) -> None:
    index, manifest = ingest("mura", parent)
    assert len(index) == N
    assert index["image_id"].is_unique
    assert set(index["source_split"]) == {"train", "valid"}
    folder = index["image_id"].str.extract(r"/(study\d)_(positive|negative)/")[1]
    assert ((folder == "positive") == (index["label"] == "abnormal")).all()
    assert ((index["label"] == "abnormal") == (index["study_label"] == 1)).all()
    assert (index["path"] == index["image_id"]).all()  # root is the parent of MURA-v1.1
    assert index["study_id"].str.fullmatch(r"XR_[A-Z]+/patient\d{5}/study\d").all()
    study_rows = len(rows(parent, "train_labeled_studies.csv")) + len(
        rows(parent, "valid_labeled_studies.csv")
    )
    assert index["study_id"].nunique() == study_rows
    assert (index["body_part"] == index["study_id"].str.extract(r"XR_(\w+)/")[0].str.lower()).all()
    assert manifest.counts() == {"file": {"kept": N + 4}, "label_row": {"kept": N + study_rows}}


def test_root_may_be_the_dataset_folder(parent: Path) -> None:
    index, _ = ingest("mura", parent / ROOT)
    assert len(index) == N
    assert index["image_id"].str.startswith(f"{ROOT}/").all()
    assert (ROOT + "/" + index["path"] == index["image_id"]).all()


def test_damage_is_reported(parent: Path, tmp_path: Path) -> None:
    root = shutil.copytree(parent, tmp_path / "copy") / ROOT
    listed = image_paths(parent, "train")
    missing = root.parent / listed[0]
    missing.unlink()
    (missing.parent / "._image1.png").write_bytes(b"\x00\x05\x16\x07")
    (root / ".DS_Store").write_bytes(b"\x00")
    stray = root / "train" / "stray.png"
    Image.new("L", (8, 8)).save(stray)
    with open(root / "valid_image_paths.csv", "a") as fh:
        fh.write("MURA-v1.1/valid/XR_WRIST/patient99999/study1_positive/image1.png,extra\n")
    study_rows = rows(parent, "train_labeled_studies.csv")
    flipped = study_rows[-1]
    study_rows[-1] = [flipped[0], "0" if flipped[1] == "1" else "1"]
    with open(root / "train_labeled_studies.csv", "w", newline="") as fh:
        csv.writer(fh, lineterminator="\n").writerows(study_rows)

    index, manifest = ingest("mura", root.parent)
    frame = manifest.to_frame()
    reasons = dict(zip(frame["item"], frame["reason"], strict=True))
    assert reasons["train_image_paths.csv:1"].startswith(NO_FILE_REASON)
    dot = (missing.parent / "._image1.png").relative_to(root.parent).as_posix()
    assert reasons[dot] == HIDDEN_REASON
    assert reasons[f"{ROOT}/.DS_Store"] == HIDDEN_REASON
    assert reasons[f"{ROOT}/train/stray.png"] == NOT_LISTED_REASON
    n_valid = len(image_paths(parent, "valid"))
    bad_row = reasons[f"valid_image_paths.csv:{n_valid + 1}"]
    assert bad_row.startswith(MALFORMED_REASON) and "2" in bad_row
    flipped_item = f"train_labeled_studies.csv:{len(study_rows)}"
    assert reasons[flipped_item].startswith(DISAGREE_REASON)
    of_flipped = [p for p in listed if p.startswith(flipped[0])]
    assert listed[0] not in of_flipped  # first and last study rows are different studies
    assert not index["image_id"].isin(of_flipped).any()
    first = listed.index(of_flipped[0]) + 1
    assert reasons[f"train_image_paths.csv:{first}"].startswith(STUDY_ROW_SKIPPED_REASON)
    assert len(index) == N - 1 - len(of_flipped)


def test_missing_label_file_is_an_error(parent: Path, tmp_path: Path) -> None:
    from cxr.data.index import IngestError

    root = shutil.copytree(parent, tmp_path / "copy") / ROOT
    (root / "valid_labeled_studies.csv").unlink()
    with pytest.raises(IngestError, match=r"valid_labeled_studies\.csv"):
        ingest("mura", root)

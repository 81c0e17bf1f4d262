"""The 6-class ImageFolder miniature (seed 003): layout, OS litter, round trip, class order,
missing classes, broken files, determinism."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

from cxr.ingest import ingest
from cxr.ingest.folders import HIDDEN_REASON, NOT_IMAGE_REASON
from cxr.synth import synthesize
from cxr.synth.imagefolder6 import CLASSES, SPLITS, split_sizes

N, SIZE, SEED = 36, 64, 0


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return synthesize(
        "imagefolder6", tmp_path_factory.mktemp("if6") / "imagefolder6", N, SIZE, SEED
    )


@pytest.fixture
def copy(root: Path, tmp_path: Path) -> Path:
    """A private copy of the miniature that a test may damage."""
    return Path(shutil.copytree(root, tmp_path / "copy"))


def image_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in (".png", ".jpg")]


def manifest_frame(root: Path) -> pd.DataFrame:
    return ingest("imagefolder6", root)[1].to_frame()


def skipped(manifest: pd.DataFrame, kind: str) -> dict[str, str]:
    rows = manifest[(manifest["kind"] == kind) & (manifest["status"] == "skipped")]
    return dict(zip(rows["item"], rows["reason"], strict=True))


def test_layout_is_three_splits_of_six_classes(root: Path) -> None:
    assert sorted(p.name for p in root.iterdir() if p.is_dir()) == sorted(SPLITS)
    for split in SPLITS:
        classes = sorted(p.name for p in (root / split).iterdir() if p.is_dir())
        assert classes == list(CLASSES)
        assert all(any((root / split / c).iterdir()) for c in classes)
    assert len(image_files(root)) == N


def test_split_sizes_follow_seed_003() -> None:
    assert split_sizes(17_105) == {"train": 13_500, "validation": 2_705, "test": 900}
    assert split_sizes(1) == dict.fromkeys(SPLITS, len(CLASSES))
    assert sum(split_sizes(600).values()) == 600


def test_format_mix_and_os_litter(root: Path) -> None:
    files = image_files(root)
    modes = {p: Image.open(p).mode for p in files}
    assert sum(m == "RGBA" for m in modes.values()) == 1
    assert {"L", "RGB"} <= set(modes.values())
    assert sum(p.suffix == ".PNG" for p in files) == 1
    assert {p.suffix for p in files} == {".png", ".PNG", ".jpg"}
    assert len({Image.open(p).size for p in files}) > 1
    litter = skipped(manifest_frame(root), "file")
    assert (root / "train/.DS_Store").is_file()
    assert (root / "test/Pneumothorax/Thumbs.db").is_file()
    assert litter == {
        "train/.DS_Store": HIDDEN_REASON,
        "test/Pneumothorax/Thumbs.db": HIDDEN_REASON,
    }


def test_round_trip_labels_are_folder_names(root: Path) -> None:
    index, _ = ingest("imagefolder6", root)
    assert len(index) == N
    parts = index["path"].str.split("/")
    assert (index["source_split"] == parts.str[0]).all()
    assert (index["label"] == parts.str[1]).all()
    assert (index["image_id"] == index["path"]).all()
    assert (index["body_part"] == "chest").all()
    assert index["patient_id"].isna().all()
    assert set(index.groupby(["source_split", "label"]).size().index) == {
        (s, c) for s in SPLITS for c in CLASSES
    }
    by_path = index.set_index("path")
    rgba = next(p for p in image_files(root) if Image.open(p).mode == "RGBA")
    assert by_path.loc[rgba.relative_to(root).as_posix(), "mode"] == "RGBA"


def test_class_index_follows_sorted_class_names(root: Path) -> None:
    index, _ = ingest("imagefolder6", root)
    mapping = dict(zip(index["label"], index["class_index"], strict=True))
    assert mapping == {c: i for i, c in enumerate(sorted(CLASSES))}
    assert mapping["Covid-19"] == 0
    assert mapping["Pneumothorax"] == 5


def test_split_missing_a_class_is_reported(copy: Path) -> None:
    shutil.rmtree(copy / "test" / "Pneumonia")
    index, manifest = ingest("imagefolder6", copy)
    reasons = skipped(manifest.to_frame(), "class")
    assert list(reasons) == ["test/Pneumonia"]
    assert "'test'" in reasons["test/Pneumonia"]
    assert index.loc[index["label"] == "Pneumothorax", "class_index"].unique().tolist() == [5]
    assert "Pneumonia" not in set(index.loc[index["source_split"] == "test", "label"])


def test_empty_class_folder_and_stray_files_are_reported(copy: Path) -> None:
    for p in (copy / "validation" / "Effusions").iterdir():
        p.unlink()
    (copy / "train" / "Covid-19" / "notes.txt").write_text("not an image")
    (copy / "README.md").write_text("readme")
    index, manifest = ingest("imagefolder6", copy)
    frame = manifest.to_frame()
    assert "empty" in skipped(frame, "class")["validation/Effusions"]
    files = skipped(frame, "file")
    assert files["train/Covid-19/notes.txt"] == NOT_IMAGE_REASON
    assert files["README.md"] == "not inside a class folder"
    assert len(index) == N - 1


def test_truncated_jpeg_is_skipped_with_reason(copy: Path) -> None:
    victim = next(p for p in sorted(image_files(copy)) if p.suffix == ".jpg")
    victim.write_bytes(victim.read_bytes()[:-200])
    index, manifest = ingest("imagefolder6", copy)
    rel = victim.relative_to(copy).as_posix()
    assert "truncated JPEG" in skipped(manifest.to_frame(), "file")[rel]
    assert rel not in set(index["path"])
    assert len(index) == N - 1


def test_classes_directly_under_root(root: Path, tmp_path: Path) -> None:
    flat = Path(shutil.copytree(root / "train", tmp_path / "flat"))
    index, _ = ingest("imagefolder6", flat)
    assert index["source_split"].isna().all()
    assert (index["label"] == index["path"].str.split("/").str[0]).all()
    assert index["class_index"].max() == 5


def tree_digest(root: Path) -> str:
    digest = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        if p.is_file():
            digest.update(p.relative_to(root).as_posix().encode() + p.read_bytes())
    return digest.hexdigest()


def test_deterministic_per_seed(root: Path, tmp_path: Path) -> None:
    again = synthesize("imagefolder6", tmp_path / "again", N, SIZE, SEED)
    other = synthesize("imagefolder6", tmp_path / "other", N, SIZE, SEED + 1)
    assert tree_digest(again) == tree_digest(root)
    assert tree_digest(other) != tree_digest(root)


@pytest.mark.slow
def test_agrees_with_torchvision_imagefolder(root: Path) -> None:
    datasets = pytest.importorskip("torchvision.datasets")
    index, _ = ingest("imagefolder6", root)
    for split in SPLITS:
        folder = datasets.ImageFolder(str(root / split))
        assert folder.class_to_idx == {c: i for i, c in enumerate(CLASSES)}
        ours = index[index["source_split"] == split]
        expected = {
            (str(root / p), int(k)) for p, k in zip(ours["path"], ours["class_index"], strict=True)
        }
        assert set(folder.samples) == expected

"""The 14 X-ray types: one folder each, real file formats, and the ingester's round trip."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from PIL import Image

from cxr.data.index import IngestError
from cxr.ingest import ingest
from cxr.ingest.xray_types import (
    HIDDEN_REASON,
    OUTSIDE_REASON,
    XRAY_TYPES,
    not_image_reason,
    unknown_folder_reason,
)
from cxr.synth import synthesize
from cxr.synth.xray_types import type_counts

N, SIZE, SEED = 42, 48, 0
NAME = re.compile(r"([a-z]+)/\1_(\d{4})\.(png|jpg)")


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return synthesize("xray_types", tmp_path_factory.mktemp("xt") / "xray_types", N, SIZE, SEED)


def files(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def test_one_folder_per_type_with_real_formats(root: Path) -> None:
    names = files(root)
    assert len(names) == N
    matches = [NAME.fullmatch(n) for n in names]
    assert all(matches)
    kinds = [m.group(1) for m in matches]
    assert {k: kinds.count(k) for k in XRAY_TYPES} == type_counts(N)
    assert min(kinds.count(k) for k in XRAY_TYPES) >= 3
    for m in matches:
        assert (m.group(3) == "jpg") == (m.group(1) in ("spine", "dental"))
    for name in names:
        with Image.open(root / name) as im:
            width, height = im.size
            assert max(width, height) == SIZE
            if name.startswith("dental/"):
                assert width / height > 1.6
            if name.startswith("spine/"):
                assert width / height < 0.6


def test_counts_follow_the_seed_with_a_floor() -> None:
    counts = type_counts(700)
    assert sum(counts.values()) == 700
    assert min(counts.values()) >= 3
    assert counts["wrist"] > counts["hand"] > counts["forearm"] > counts["hip"]


def test_round_trip(root: Path) -> None:
    index, manifest = ingest("xray_types", root)
    assert len(index) == N
    assert (index["label"] == index["image_id"].str.split("/").str[0]).all()
    assert (index["body_part"] == index["label"]).all()
    assert set(index["label"]) == set(XRAY_TYPES)
    assert index["patient_id"].isna().all() and index["source_split"].isna().all()
    assert (index["path"] == index["image_id"]).all()
    assert manifest.counts() == {"file": {"kept": N}}


def test_unknown_folders_and_litter_are_skipped(root: Path, tmp_path: Path) -> None:
    copy = shutil.copytree(root, tmp_path / "copy")
    (copy / "knee").rename(copy / "Knee")  # folder names match case-insensitively
    (copy / "cats").mkdir()
    shutil.copy(copy / "chest" / "chest_0001.png", copy / "cats" / "cat_0001.png")
    (copy / "hand" / ".DS_Store").write_bytes(b"\x00")
    (copy / "hand" / "notes.txt").write_text("not an image")
    (copy / "README.md").write_text("readme")

    index, manifest = ingest("xray_types", copy)
    assert len(index) == N
    assert (index[index["image_id"].str.startswith("Knee/")]["label"] == "knee").all()
    reasons = dict(zip(manifest.to_frame()["item"], manifest.to_frame()["reason"], strict=True))
    assert reasons["cats/cat_0001.png"] == unknown_folder_reason("cats")
    assert reasons["hand/.DS_Store"] == HIDDEN_REASON
    assert reasons["hand/notes.txt"] == not_image_reason(".txt")
    assert reasons["README.md"] == OUTSIDE_REASON


def test_no_type_folder_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "cats").mkdir()
    (tmp_path / "cats" / "a.png").write_bytes(b"")
    with pytest.raises(IngestError, match="X-ray type"):
        ingest("xray_types", tmp_path)

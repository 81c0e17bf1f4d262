"""Photographs that are not X-rays: decodable, varied, ingested with every file accounted for."""

from __future__ import annotations

import hashlib
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cxr.ingest import ingest
from cxr.ingest.folders import HIDDEN_REASON, NOT_IMAGE_REASON
from cxr.synth import synthesize
from cxr.synth.not_xray import SOURCES

N, SIZE, SEED = 40, 64, 0
NAME = re.compile(r"photos/([a-z_]+)_(\d{4})\.(jpg|png)")


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return synthesize("not_xray", tmp_path_factory.mktemp("nx") / "not_xray", N, SIZE, SEED)


def photos(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def is_gray(image: Image.Image) -> bool:
    if image.mode == "L":
        return True
    rgb = np.asarray(image.convert("RGB")).astype(int)
    return bool((np.ptp(rgb, axis=2) <= 2).all())


def test_names_and_sources(root: Path) -> None:
    files = photos(root)
    assert len(files) == N
    matches = [NAME.fullmatch(p.relative_to(root).as_posix()) for p in files]
    assert all(matches)
    assert {m.group(1) for m in matches} == set(SOURCES)
    suffixes = [m.group(3) for m in matches]
    assert suffixes.count("jpg") > suffixes.count("png") > 0


def test_images_decode_and_vary(root: Path) -> None:
    images = []
    for path in photos(root):
        with Image.open(path) as image:
            image.load()
            images.append(image)
    sizes = {im.size for im in images}
    assert len(sizes) > N // 2
    assert all(0.5 * SIZE <= max(s) <= 1.5 * SIZE for s in sizes)
    assert {"L", "RGB"} <= {im.mode for im in images}
    gray = sum(is_gray(im) for im in images)
    assert 0 < gray < N


def test_round_trip(root: Path) -> None:
    index, manifest = ingest("not_xray", root)
    assert len(index) == N
    assert (index["label"] == "not_xray").all()
    assert (index["body_part"] == "not_xray").all()
    assert (index["image_id"] == index["path"]).all()
    assert set(index["path"]) == {p.relative_to(root).as_posix() for p in photos(root)}
    assert manifest.counts() == {"file": {"kept": N}}


def test_any_depth_any_case_and_skips(root: Path, tmp_path: Path) -> None:
    copy = Path(shutil.copytree(root, tmp_path / "copy"))
    nested = copy / "n01440764" / "deeper"
    nested.mkdir(parents=True)
    shutil.copy(next(copy.glob("photos/*.jpg")), nested / "FISH.JPEG")
    (copy / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    (copy / "photos" / "Thumbs.db").write_bytes(b"\xd0\xcf\x11\xe0")
    (copy / "LOC_synset_mapping.txt").write_text("n01440764 tench\n")
    broken = copy / "photos" / "broken.png"
    broken.write_bytes(next(copy.glob("photos/*.png")).read_bytes()[:100])
    index, manifest = ingest("not_xray", copy)
    assert "n01440764/deeper/FISH.JPEG" in set(index["image_id"])
    assert len(index) == N + 1
    frame = manifest.to_frame()
    reasons = dict(zip(frame["item"], frame["reason"], strict=True))
    assert reasons[".DS_Store"] == reasons["photos/Thumbs.db"] == HIDDEN_REASON
    assert reasons["LOC_synset_mapping.txt"] == NOT_IMAGE_REASON
    assert "PNG" in reasons["photos/broken.png"]


def test_deterministic_per_seed(root: Path, tmp_path: Path) -> None:
    def digest(folder: Path) -> str:
        return hashlib.sha256(
            b"".join(p.name.encode() + p.read_bytes() for p in photos(folder))
        ).hexdigest()

    again = synthesize("not_xray", tmp_path / "again", N, SIZE, SEED)
    other = synthesize("not_xray", tmp_path / "other", N, SIZE, SEED + 1)
    assert digest(again) == digest(root)
    assert digest(other) != digest(root)

"""Preprocessing: steps, geometry, the tensor file, rejected and flagged images, bounded memory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from cxr.data.decode import read_gray
from cxr.data.images import write_gray_png, write_rgba_png
from cxr.data.index import Manifest, boxes_from_json, boxes_to_json, build_index, write_index
from cxr.data.preprocess import LOW_CONTRAST_SPAN, contrast_flag, load_tensor, preprocess
from cxr.data.presets import Preset
from cxr.data.transforms import apply_preset, geometry, resize
from cxr.synth import synthesize
from cxr.training.data import TensorBatches


def noise(h: int, w: int, seed: int = 0) -> np.ndarray:
    img = np.random.default_rng(seed).normal(120, 40, (h, w))
    return cv2.GaussianBlur(np.clip(img, 0, 255).astype(np.uint8), (0, 0), 3)


def test_preset_rejects_unknown_steps_and_missing_resize() -> None:
    with pytest.raises(ValueError, match="unknown preprocessing step"):
        Preset(size=64, steps=("sharpen", "resize"))
    with pytest.raises(ValueError, match="exactly one 'resize'"):
        Preset(size=64, steps=("equalize",))
    with pytest.raises(ValueError, match="unknown fit"):
        Preset(size=64, fit="squash")


@pytest.mark.parametrize("kind", ["gray", "rgba", "rgb", "gray16"])
def test_png_decoding_agrees_with_opencv(tmp_path: Path, kind: str) -> None:
    img = noise(64, 48)
    path = tmp_path / f"{kind}.png"
    if kind == "gray":
        write_gray_png(path, img)
    elif kind == "rgba":
        write_rgba_png(path, img)
    elif kind == "rgb":  # unequal channels: the colour order must be right
        cv2.imwrite(str(path), np.dstack([img, img // 2, 255 - img]))
    else:
        cv2.imwrite(str(path), img.astype(np.uint16) * 257)
    reference = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    assert np.abs(read_gray(path).astype(int) - reference.astype(int)).max() <= 1


def test_area_resize_matches_one_step_opencv() -> None:
    img = noise(1024, 1024, seed=1)
    ours = resize(img, Preset(size=224))
    reference = cv2.resize(img, (224, 224), interpolation=cv2.INTER_AREA)
    assert ours.shape == (224, 224)
    assert np.abs(ours.astype(int) - reference.astype(int)).max() <= 2


@pytest.mark.parametrize("fit", ["pad", "crop"])
def test_aspect_preserving_fits(fit: str) -> None:
    img = np.full((200, 100), 200, np.uint8)  # portrait, bright
    out = resize(img, Preset(size=64, fit=fit))
    assert out.shape == (64, 64)
    if fit == "pad":  # 32 wide, centred, black on both sides
        assert (out[:, :16] == 0).all()
        assert (out[:, 16:48] == 200).all()
        assert (out[:, 48:] == 0).all()
    else:  # fills everything
        assert (out == 200).all()


def test_geometry_maps_points_like_the_resize() -> None:
    g = geometry(200, 100, Preset(size=64, fit="pad"))  # landscape: 64x32 placed at y=16
    assert (g.sx * 200, g.sy * 100, g.ox, g.oy) == (64, 32, 0, 16)
    g = geometry(200, 100, Preset(size=64, fit="crop"))  # 128x64, x from -32
    assert (g.sx * 200, g.ox, g.oy) == (128, -32, 0)


def test_steps_run_in_the_preset_order() -> None:
    img = noise(256, 256, seed=2)
    a = apply_preset(img, Preset(size=64, steps=("equalize", "median3", "resize")))
    b = apply_preset(img, Preset(size=64, steps=("resize", "equalize", "median3")))
    assert a.shape == b.shape == (64, 64)
    assert not np.array_equal(a, b)


def make_dataset(
    root: Path, n: int, size: int = 96, broken: int = 0, images: dict[int, np.ndarray] | None = None
) -> Path:
    """n gray PNGs with an index (every 3rd with a box); ``broken`` of them truncated;
    ``images`` replaces the pixels of some."""
    (root / "images").mkdir(parents=True)
    rows, manifest = [], Manifest()
    for i in range(n):
        path = root / "images" / f"{i:05d}.png"
        write_gray_png(path, (images or {}).get(i, noise(size, size, seed=i)))
        if i < broken:
            path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
        box = [{"label": "Mass", "x": 10, "y": 20, "w": 30, "h": 40}] if i % 3 == 0 else None
        rows.append(
            {
                "image_id": path.name,
                "path": f"images/{path.name}",
                "width": size,
                "height": size,
                "mode": "L",
                "label": "x",
                "boxes": boxes_to_json(box),
            }
        )
    write_index(build_index(rows, "not_xray"), manifest, root / "index.parquet")
    return root / "index.parquet"


def test_preprocess_writes_a_memory_mappable_tensor_in_index_order(tmp_path: Path) -> None:
    index_path = make_dataset(tmp_path / "d", 12)
    stats = preprocess(index_path, tmp_path / "d", Preset(size=48), tmp_path / "out", workers=2)
    tensor = load_tensor(tmp_path / "out")
    assert isinstance(tensor, np.memmap)
    assert tensor.shape == (12, 48, 48)
    assert tensor.dtype == np.uint8
    out_index = pd.read_parquet(tmp_path / "out" / "index.parquet")
    assert out_index["image_id"].tolist() == [f"{i:05d}.png" for i in range(12)]
    assert out_index["tensor_row"].tolist() == list(range(12))
    expected = apply_preset(read_gray(tmp_path / "d" / "images" / "00005.png"), Preset(size=48))
    assert np.array_equal(tensor[5], expected)
    box = boxes_from_json(out_index["boxes"][0])[0]
    assert box == {"label": "Mass", "x": 5.0, "y": 10.0, "w": 15.0, "h": 20.0}
    pixels = tensor.astype(float) / 255
    assert stats["mean"] == pytest.approx(pixels.mean(), abs=1e-6)
    assert stats["std"] == pytest.approx(pixels.std(), abs=1e-6)
    saved = json.loads((tmp_path / "out" / "stats.json").read_text())
    assert saved["preset"]["size"] == 48


def test_undecodable_images_are_reported_not_dropped_silently(tmp_path: Path) -> None:
    index_path = make_dataset(tmp_path / "d", 6, broken=2)
    stats = preprocess(index_path, tmp_path / "d", Preset(size=32), tmp_path / "out")
    assert stats["images"] == 4
    assert stats["rejected"] == 2
    manifest = pd.read_csv(tmp_path / "out" / "manifest.csv", keep_default_na=False)
    rejected = manifest[manifest["status"] == "rejected"]
    assert rejected["image_id"].tolist() == ["00000.png", "00001.png"]
    assert rejected["reason"].str.contains("00000.png|00001.png").all()
    assert manifest["status"].tolist()[2:] == ["kept"] * 4
    assert load_tensor(tmp_path / "out").shape == (4, 32, 32)
    assert pd.read_parquet(tmp_path / "out" / "index.parquet")["image_id"].iloc[0] == "00002.png"


def test_suspect_images_are_flagged_in_the_manifest_and_kept(tmp_path: Path) -> None:
    low = (np.arange(96 * 96).reshape(96, 96) % 8 + 100).astype(np.uint8)  # 8 grey levels
    images = {1: np.full((96, 96), 37, np.uint8), 2: low}
    index_path = make_dataset(tmp_path / "d", 5, broken=1, images=images)
    stats = preprocess(index_path, tmp_path / "d", Preset(size=32), tmp_path / "out")
    assert (stats["images"], stats["rejected"], stats["flagged"]) == (4, 1, 2)
    assert json.loads((tmp_path / "out" / "stats.json").read_text())["flagged"] == 2
    manifest = pd.read_csv(tmp_path / "out" / "manifest.csv", keep_default_na=False)
    assert manifest.columns.tolist() == ["image_id", "path", "status", "reason"]
    assert manifest["path"].tolist() == [f"images/{i:05d}.png" for i in range(5)]
    assert manifest["status"].tolist() == ["rejected", "flagged", "flagged", "kept", "kept"]
    assert manifest["reason"][1] == "constant image (every pixel is 37)"
    assert (
        manifest["reason"][2] == "very low contrast (1st-99th percentile span 7 of 255 grey levels)"
    )
    assert manifest["reason"][3:].tolist() == ["", ""]
    assert load_tensor(tmp_path / "out").shape == (4, 32, 32)  # flagged images are kept


def test_no_miniature_radiograph_is_flagged(tmp_path: Path) -> None:
    root = synthesize("nih", tmp_path / "nih", n=20, size=64, seed=0)
    assert [p.name for p in sorted(root.rglob("*.png")) if contrast_flag(read_gray(p))] == []
    assert contrast_flag(np.tile(np.arange(LOW_CONTRAST_SPAN + 1, dtype=np.uint8), (8, 1))) == ""


def test_no_real_nih_image_is_flagged(real_nih: Path) -> None:
    paths = sorted((real_nih / "images").glob("*.png"))
    assert len(paths) == 51
    assert [p.name for p in paths if contrast_flag(read_gray(p))] == []


def test_a_run_that_rejects_every_image_fails_and_writes_nothing(tmp_path: Path) -> None:
    index_path = make_dataset(tmp_path / "d", 3)
    wrong_root = tmp_path / "typo"
    with pytest.raises(ValueError, match=r"every image of .* was rejected \(3 of 3\)") as err:
        preprocess(index_path, wrong_root, Preset(size=32), tmp_path / "out")
    assert str(wrong_root) in str(err.value)
    assert "00000.png" in str(err.value)
    assert "is --root right?" in str(err.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d"]


def test_an_empty_index_fails_with_a_clear_line(tmp_path: Path) -> None:
    index_path = tmp_path / "index.parquet"
    write_index(build_index([], "not_xray"), Manifest(), index_path)
    with pytest.raises(ValueError, match="index has no rows"):
        preprocess(index_path, tmp_path, Preset(size=32), tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_a_failed_run_leaves_no_output(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    index_path = make_dataset(tmp_path / "d", 3)

    def crash(*_args: object) -> None:
        raise RuntimeError("disk full")

    # fails after every image is already in the tensor file
    monkeypatch.setattr("cxr.data.preprocess.rescale_positions", crash)
    with pytest.raises(RuntimeError, match="disk full"):
        preprocess(index_path, tmp_path / "d", Preset(size=32), tmp_path / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d"]


def test_rgba_png_gives_the_same_tensor_as_its_gray_conversion(tmp_path: Path) -> None:
    img = noise(128, 128, seed=3)
    write_rgba_png(tmp_path / "rgba.png", img)
    Image.open(tmp_path / "rgba.png").convert("L").save(tmp_path / "gray.png")
    preset = Preset(size=64, steps=("equalize", "median3", "resize"))
    a = apply_preset(read_gray(tmp_path / "rgba.png"), preset)
    b = apply_preset(read_gray(tmp_path / "gray.png"), preset)
    assert np.array_equal(a, b)


def test_sixteen_bit_png_is_scaled_to_eight_bits(tmp_path: Path) -> None:
    img = noise(32, 32)
    img[0, 0] = 255  # uses all 16 bits: scaled by 65535 (see test_decode.py for fewer bits)
    cv2.imwrite(str(tmp_path / "x16.png"), img.astype(np.uint16) * 257)
    assert np.array_equal(read_gray(tmp_path / "x16.png"), img)


def peak_rss_mb(index_path: Path, root: Path, out: Path) -> float:
    """Peak resident memory (MB) of `cxr preprocess` run as its own process."""
    code = (
        "import sys; from cxr.data.preprocess import preprocess;"
        " from cxr.data.presets import Preset;"
        f"preprocess({str(index_path)!r}, {str(root)!r}, Preset(size=32), {str(out)!r})"
    )
    proc = subprocess.Popen([sys.executable, "-c", code])
    _pid, status, usage = os.wait4(proc.pid, 0)
    assert status == 0
    return usage.ru_maxrss / 1024


@pytest.mark.slow
def test_memory_stays_flat_when_the_dataset_grows_tenfold(tmp_path: Path) -> None:
    small = make_dataset(tmp_path / "small", 60, size=256)
    large = make_dataset(tmp_path / "large", 600, size=256)
    rss_small = peak_rss_mb(small, tmp_path / "small", tmp_path / "o1")
    rss_large = peak_rss_mb(large, tmp_path / "large", tmp_path / "o2")
    # 540 more images are 35 MB of decoded pixels: holding them would show
    assert rss_large < rss_small + 15, (rss_small, rss_large)


def test_tensor_batches_cover_a_split_once_per_epoch(tmp_path: Path) -> None:
    images = np.arange(10 * 4 * 4, dtype=np.uint8).reshape(10, 4, 4)
    batches = TensorBatches(images, rows=np.array([1, 3, 5, 7, 9]), batch_size=2, seed=0)
    seen = []
    for pixels, rows in batches:
        assert pixels.dtype.is_floating_point
        assert pixels.shape[1:] == (1, 4, 4)
        assert float(pixels.max()) <= 1.0
        seen.extend(rows.tolist())
    assert sorted(seen) == [1, 3, 5, 7, 9]
    assert len(batches) == 3
    second = [r for _p, rows in batches for r in rows.tolist()]
    assert sorted(second) == sorted(seen)


@pytest.mark.parametrize("interpretation", ["MONOCHROME2", "MONOCHROME1"])
def test_dicom_is_read_in_radiograph_polarity(tmp_path: Path, interpretation: str) -> None:
    pydicom = pytest.importorskip("pydicom", reason="DICOM support is the optional 'dicom' extra")
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

    bone_bright = np.tile(np.linspace(0, 4095, 32, dtype=np.uint16), (16, 1))
    stored = bone_bright if interpretation == "MONOCHROME2" else 4095 - bone_bright
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = pydicom.Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = (
        meta.MediaStorageSOPClassUID,
        meta.MediaStorageSOPInstanceUID,
    )
    ds.Rows, ds.Columns = stored.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, interpretation
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.PixelData = stored.tobytes()
    ds.save_as(tmp_path / "x.dcm", enforce_file_format=True)

    img = read_gray(tmp_path / "x.dcm")
    assert img.dtype == np.uint8
    assert img.shape == (16, 32)
    assert img[0, 0] == 0  # air dark ...
    assert img[0, -1] == 255  # ... bone bright, whatever the stored polarity

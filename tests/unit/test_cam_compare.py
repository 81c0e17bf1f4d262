"""`cam-compare`: several models' heatmaps side by side on the same images, the nodule circled
on each, the probabilities in the titles, and one PNG whose size says how many panels it has."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from test_cam import write_folder

from cxr import cli
from cxr.data.index import build_index
from cxr.data.preprocess import INDEX_FILE, STATS_FILE, TENSOR_FILE
from cxr.explanation import compare
from cxr.explanation.compare import compare_cams
from cxr.explanation.heatmaps import Explainer
from cxr.explanation.inputs import load_model

SIDE, DPI = 32, 110  # grid(): 2.9 x 3.0 inches per panel at 110 dpi


@pytest.fixture(scope="module")
def jsrt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Eight 32 px JSRT-like images, a nodule (position and box) in every odd one; fold_0 puts
    the first five in test (two of them with a nodule, after three without)."""
    folder = tmp_path_factory.mktemp("compare") / "data"
    folder.mkdir()
    rng = np.random.default_rng(0)
    images = rng.integers(0, 80, (8, SIDE, SIDE)).astype(np.uint8)
    rows = []
    for i in range(8):
        nodule = i % 2 == 1 and i != 5
        row = {"image_id": f"J{i}.IMG", "path": f"J{i}.IMG", "width": SIDE, "height": SIDE,
               "mode": "L", "label": "malignant" if nodule else "non-nodule",
               "finding_Nodule": float(nodule), "nodule_x": None, "nodule_y": None,
               "boxes": None}  # fmt: skip
        if nodule:
            images[i, 10:16, 18:24] = 230
            row |= {"nodule_x": 21.0, "nodule_y": 13.0}
            row["boxes"] = json.dumps([{"label": "Nodule", "x": 18, "y": 10, "w": 6, "h": 6}])
        rows.append(row)
    np.save(folder / TENSOR_FILE, images)
    build_index(rows, "jsrt").to_parquet(folder / INDEX_FILE, index=False)
    (folder / STATS_FILE).write_text(json.dumps({"mean": 0.3, "std": 0.2}))
    sides = ["test", "test", "test", "test", "test", "train", "train", "val"]
    pd.DataFrame({"image_id": [r["image_id"] for r in rows], "fold_0": sides}).to_parquet(
        folder.parent / "split.parquet"
    )
    return folder


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """A model ending in pooling + one linear layer (CAM) and a small CNN (Grad-CAM)."""
    root = tmp_path_factory.mktemp("models")
    return [write_folder(root, arch, ("malignant",)) for arch in ("densenet121", "smallcnn_v1")]


def first_output(logits: torch.Tensor) -> torch.Tensor:
    return torch.zeros(len(logits), 1, dtype=torch.long)


def test_models_side_by_side_on_the_nodule_images_first(
    jsrt: Path, models: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    drawn: list = []
    real_grid = compare.grid
    monkeypatch.setattr(compare, "grid", lambda rows, *a: drawn.extend(rows) or real_grid(rows, *a))
    out = tmp_path / "deep" / "fold_0.png"
    labels = ["Model B (JSRT only)", "Model C (NIH → JSRT)"]
    summary = compare_cams(models, labels, jsrt, jsrt.parent / "split.parquet", "fold_0", out, 3)

    assert [d["image_id"] for d in summary["images"]] == ["J1.IMG", "J3.IMG", "J0.IMG"]
    assert [d["nodule"] for d in summary["images"]] == [True, True, False]
    assert summary["methods"] == ["cam", "gradcam"] and summary["output"] == "malignant"
    with Image.open(out) as png:  # 3 rows x (image + 2 models)
        assert png.size == (round(2.9 * 3 * DPI), round(3.0 * 3 * DPI))
        assert np.asarray(png).std() > 0

    assert [len(row) for row in drawn] == [3, 3, 3]
    pixels = torch.from_numpy(np.load(jsrt / TENSOR_FILE)[[1, 3, 0]])[:, None]
    for m, (folder, method) in enumerate(zip(models, summary["methods"], strict=True)):
        trained = load_model(folder, torch.device("cpu"))
        expected = Explainer(trained.model, method)(trained.inputs(pixels), first_output)
        probability = torch.sigmoid(expected.logits[:, 0]).numpy()
        for i, row in enumerate(drawn):
            panel = row[m + 1]
            np.testing.assert_allclose(panel.heatmap, expected.maps[i, 0].numpy(), atol=1e-5)
            assert panel.title == f"{labels[m]}\np(malignant) = {probability[i]:.3f}"
            assert summary["images"][i][labels[m]] == pytest.approx(probability[i], abs=1e-5)
    first = drawn[0][0]
    assert first.heatmap is None and first.title == "image + nodule\nJ1.IMG (malignant)"
    assert all(
        row[k].circles == [(21.0, 13.0, 3.0, "Nodule")] for row in drawn[:2] for k in (0, 1, 2)
    )
    assert drawn[2][0].circles == [] and drawn[2][0].title.startswith("image + ground truth")


def test_bad_requests_fail_before_writing(jsrt: Path, models: list[Path], tmp_path: Path) -> None:
    split, out = jsrt.parent / "split.parquet", tmp_path / "x.png"
    with pytest.raises(ValueError, match="1 label"):
        compare_cams(models, ["only one"], jsrt, split, "fold_0", out)
    three = write_folder(tmp_path, "smallcnn_v1", ("malignant", "benign", "normal"))
    with pytest.raises(ValueError, match="name the output"):
        compare_cams([models[1], three], None, jsrt, split, "fold_0", out)
    with pytest.raises(ValueError, match="has no output 'benign'"):
        compare_cams([models[1], three], None, jsrt, split, "fold_0", out, output="benign")
    with pytest.raises(ValueError, match="side must be one of"):
        compare_cams(models, None, jsrt, split, "fold_0", out, side="validation")
    assert not out.exists()


def test_the_cam_compare_verb(jsrt: Path, models: list[Path], tmp_path: Path) -> None:
    out = tmp_path / "c.png"
    args = ["cam-compare", "--data", str(jsrt), "--split", str(jsrt.parent / "split.parquet"),
            "--split-column", "fold_0", "--images", "2", "--out", str(out)]  # fmt: skip
    for folder in models:
        (folder / "run.json").write_text("{}")  # what marks a folder of cxr train
        args += ["--model", str(folder)]
    assert cli.main(args) == 0
    with Image.open(out) as png:
        assert png.size == (round(2.9 * 3 * DPI), round(3.0 * 2 * DPI))
    with pytest.raises(SystemExit) as usage:
        cli.main([*args, "--label", "one"])
    assert usage.value.code == 2

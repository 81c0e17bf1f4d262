"""Explanation: CAM finds a planted lesion, CAM and Grad-CAM match hand computations (the
one-logit target included), localisation scores hand-made heatmaps right, the run writes its
folder and figure, and no hook or gradient is left on the model."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib.image
import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
from torch import nn

from cxr.data.index import build_index
from cxr.data.preprocess import INDEX_FILE, STATS_FILE, TENSOR_FILE
from cxr.explanation.figures import Panel, grid
from cxr.explanation.heatmaps import Explainer, LogitTarget, heatmaps, normalise, top_k
from cxr.explanation.localisation import (
    Box,
    accuracy_table,
    detected_box,
    iobb,
    iou,
    parse_boxes,
    pointing_hit,
    score_boxes,
)
from cxr.explanation.run import _with_truth, cam, truth_outputs
from cxr.training.models import ModelSpec, PooledCNN, build_model, feature_layer

# -- a GAP model that learns to find a bright blob ---------------------------------------------

SIDE, BLOB = 32, 6


def blob_images(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
    """Noise images, half with a bright BLOB x BLOB square at a random place: (x, y, corners)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 0.3, (n, 1, SIDE, SIDE)).astype(np.float32)
    y = (np.arange(n) % 2).astype(np.float32)
    corners = rng.integers(2, SIDE - BLOB - 2, (n, 2))
    for i in np.flatnonzero(y):
        r, c = corners[i]
        x[i, 0, r : r + BLOB, c : c + BLOB] += 2.0
    return torch.from_numpy(x), torch.from_numpy(y)[:, None], corners


def small_pooled(channels: int = 8, outputs: int = 1) -> PooledCNN:
    features = nn.Sequential(
        nn.Conv2d(1, channels, 3, padding=1), nn.ReLU(), nn.Conv2d(channels, channels, 3, padding=1)
    )
    features.append(nn.ReLU())
    return PooledCNN(features, channels, outputs)


@pytest.fixture(scope="module")
def blob_model() -> PooledCNN:
    torch.manual_seed(0)
    model = small_pooled(channels=4)
    x, y, _ = blob_images(64, seed=1)
    optimiser = torch.optim.Adam(model.parameters(), lr=0.03)
    for _ in range(40):
        optimiser.zero_grad()
        F.binary_cross_entropy_with_logits(model(x), y).backward()
        optimiser.step()
    model.zero_grad(set_to_none=True)
    return model.eval()


def test_cam_maximum_falls_on_the_planted_blob(blob_model: PooledCNN) -> None:
    x, y, corners = blob_images(40, seed=2)
    positive = np.flatnonzero(y[:, 0].numpy())
    maps = heatmaps(blob_model, x[positive], torch.zeros(len(positive), 1, dtype=torch.long), "cam")
    assert maps.shape == (len(positive), 1, SIDE, SIDE)
    hits = [
        pointing_hit(maps[i, 0].numpy(), Box("blob", c, r, BLOB, BLOB))
        for i, (r, c) in enumerate(corners[positive])
    ]
    assert np.mean(hits) == 1.0


# -- hand computations -------------------------------------------------------------------------


def hand_maps(raw: torch.Tensor, size: int) -> torch.Tensor:
    up = F.interpolate(raw[:, None], size=(size, size), mode="bilinear", align_corners=False)[:, 0]
    flat = up.flatten(1)
    low, span = flat.min(1, keepdim=True).values, flat.max(1, keepdim=True).values
    span = span - low
    scaled = torch.where(span > 0, (flat - low) / span.clamp_min(1e-12), torch.zeros_like(flat))
    return scaled.view_as(up)


def test_cam_equals_the_formula_on_a_tiny_model() -> None:
    torch.manual_seed(3)
    model = small_pooled(channels=4, outputs=3).eval()
    x = torch.randn(2, 1, 12, 12)
    targets = torch.tensor([[2, 0], [1, 2]])
    with torch.no_grad():
        f = model.features(x)
        w = model.classifier.weight
        raw = torch.stack(
            [
                torch.stack([(w[c, :, None, None] * f[b]).sum(0) for c in targets[b]])
                for b in range(2)
            ]
        )  # M_c = sum_k w_ck f_k
    got = heatmaps(model, x, targets, "cam")
    for b in range(2):
        torch.testing.assert_close(got[b], hand_maps(raw[b], 12), atol=1e-5, rtol=1e-4)


def test_gradcam_of_a_one_logit_model_is_that_of_its_logit() -> None:
    """Grad-CAM weights = spatial mean of d(logit)/dA; map = ReLU(sum_k w_k A_k), by autograd."""
    model = build_model(ModelSpec("smallcnn_v1", outputs=1, input_size=64), seed=3).eval()
    torch.manual_seed(3)
    x = torch.randn(4, 1, 64, 64)
    layer = feature_layer(model)
    seen: list[torch.Tensor] = []
    handle = layer.register_forward_hook(lambda _m, _a, out: seen.append(out))
    logit = model(x)[:, 0]
    handle.remove()
    (grads,) = torch.autograd.grad(logit.sum(), seen[0])
    weights = grads.mean((2, 3), keepdim=True)
    raw = torch.relu((weights * seen[0]).sum(1)).detach()
    assert (raw > 0).float().mean() > 0.5  # not a trivial all-zero comparison
    got = heatmaps(model, x, torch.zeros(4, 1, dtype=torch.long), "gradcam")
    torch.testing.assert_close(got[:, 0], hand_maps(raw, 64), atol=1e-4, rtol=1e-4)
    # the target is the logit itself, as the library's class target of output 0 is
    output = torch.tensor([0.7])
    assert LogitTarget(0)(output) == ClassifierOutputTarget(0)(output) == output[0]


def test_gradcam_of_the_previous_map_is_drawn_from_it() -> None:
    """``layer="previous"``: Grad-CAM of the map before the last downsampling (4x4 at 64 px
    for DenseNet-121, against 2x2), by the same formula; CAM proper refuses it."""
    model = build_model(ModelSpec("densenet121", outputs=2, input_size=64), seed=1).eval()
    torch.manual_seed(1)
    x = torch.randn(2, 1, 64, 64)
    seen: list[torch.Tensor] = []
    handle = feature_layer(model, previous=True).register_forward_hook(
        lambda _m, _a, out: seen.append(out)
    )
    logit = model(x)[:, 1]
    handle.remove()
    assert seen[0].shape[-2:] == (4, 4)
    (grads,) = torch.autograd.grad(logit.sum(), seen[0])
    raw = torch.relu((grads.mean((2, 3), keepdim=True) * seen[0]).sum(1)).detach()
    got = Explainer(model, "gradcam", "previous")(x, lambda _l: torch.ones(2, 1, dtype=torch.long))
    torch.testing.assert_close(got.maps[:, 0], hand_maps(raw, 64), atol=1e-4, rtol=1e-4)
    with pytest.raises(ValueError, match="needs Grad-CAM"):
        Explainer(model, "cam", "previous")
    with pytest.raises(ValueError, match="unknown layer 'first'"):
        Explainer(model, "gradcam", "first")


def test_gradcam_multilabel_targets_pick_their_own_output() -> None:
    model = build_model(ModelSpec("smallcnn_v1", outputs=3, input_size=40), seed=5).eval()
    x = torch.randn(2, 1, 40, 40)
    both = heatmaps(model, x, torch.tensor([[0, 2], [1, 0]]), "gradcam++")
    alone = heatmaps(model, x, torch.tensor([[2], [1]]), "gradcam++")
    torch.testing.assert_close(both[0, 1], alone[0, 0])
    torch.testing.assert_close(both[1, 0], alone[1, 0])
    assert both.min() >= 0 and both.max() <= 1


def test_no_hook_grad_or_frozen_flag_is_left_behind(blob_model: PooledCNN) -> None:
    model = build_model(ModelSpec("smallcnn_v1", outputs=2, input_size=40), seed=6)
    x = torch.randn(2, 1, 40, 40)
    for net, method, inputs in [
        (model, "gradcam", x),
        (model, "gradcam++", x),
        (blob_model, "cam", x[:, :, :SIDE, :SIDE]),
    ]:
        flags = [p.requires_grad for p in net.parameters()]
        explainer = Explainer(net, method)
        for _ in range(2):
            explainer(inputs, lambda logits: top_k(logits, 2))
        for module in net.modules():
            assert not module._forward_hooks and not module._forward_pre_hooks
            assert not module._backward_hooks
        assert [p.requires_grad for p in net.parameters()] == flags
        assert all(p.grad is None for p in net.parameters())


def test_methods_refuse_models_they_do_not_fit() -> None:
    small = build_model(ModelSpec("smallcnn_v1", outputs=2, input_size=40))
    with pytest.raises(ValueError, match="use method 'gradcam'"):
        Explainer(small, "cam")(torch.randn(1, 1, 40, 40), lambda lg: top_k(lg, 1))
    logreg = build_model(ModelSpec("logreg", outputs=2, input_size=8))
    for method in ("cam", "gradcam"):
        with pytest.raises(ValueError, match="no convolutional feature map"):
            Explainer(logreg, method)
    with pytest.raises(ValueError, match="unknown CAM method"):
        Explainer(small, "scorecam")


# -- top-k, normalisation, localisation --------------------------------------------------------


def test_top_k_orders_and_clips() -> None:
    scores = torch.tensor([[0.1, 0.9, 0.5], [0.3, 0.2, 0.8]])
    assert top_k(scores, 2).tolist() == [[1, 2], [2, 0]]
    assert top_k(scores, 9).shape == (2, 3)
    padded = _with_truth(top_k(scores, 1), [[0, 1, 2], []])
    assert padded.tolist() == [[1, 0, 2], [2, 2, 2]]  # truths 0, 2 added; row 2 padded
    flat = normalise(torch.full((1, 1, 3, 3), 5.0))
    assert flat.abs().sum() == 0


def test_pointing_iou_iobb_on_hand_made_heatmaps() -> None:
    heat = np.zeros((20, 20))
    heat[5:10, 10:15] = 1.0  # a 5 x 5 hot square, its max at (5, 10)
    heat[0:2, 0:2] = 0.8  # a smaller region above the threshold: not the largest
    truth = Box("Mass", 10, 5, 10, 10)
    assert detected_box(heat) == Box("", 10, 5, 5, 5)
    assert pointing_hit(heat, truth)
    assert not pointing_hit(heat, Box("Mass", 0, 0, 4, 4))
    (scores,) = score_boxes(heat, [truth])
    assert scores == {"pointing": True, "iou": 0.25, "iobb": 1.0}
    shifted = Box("Mass", 12, 5, 10, 10)  # covers 3 of the 5 detected columns
    assert iobb(Box("", 10, 5, 5, 5), shifted) == pytest.approx(0.6)
    assert iou(Box("", 10, 5, 5, 5), shifted) == pytest.approx(15 / (25 + 100 - 15))
    assert detected_box(np.zeros((4, 4))) is None
    records = [
        {"image_id": "a", "finding": "Mass", "pointing": True, "iou": 0.25, "iobb": 1.0},
        {"image_id": "b", "finding": "Mass", "pointing": False, "iou": 0.0, "iobb": 0.2},
        {"image_id": "c", "finding": "Nodule", "pointing": False, "iou": 0.05, "iobb": 0.05},
    ]
    table = accuracy_table(records).set_index("finding")
    assert table.loc["Mass", "pointing_game"] == 0.5
    assert table.loc["Mass", "iobb_acc@0.1"] == 1.0
    assert table.loc["Mass", "iobb_acc@0.25"] == 0.5
    assert table.loc["Mass", "iou_acc@0.25"] == 0.5
    assert table.loc["Nodule", "iobb_acc@0.1"] == 0.0
    assert table.loc["Nodule", "paper_iobb_acc@0.1"] == 0.16
    assert table.loc["all", "boxes"] == 3


def test_boxes_map_to_outputs() -> None:
    assert truth_outputs(("Mass", "Nodule"), {"Nodule", "Effusion"}) == {"Nodule": 1}
    assert truth_outputs(("malignant",), {"Nodule"}) == {"Nodule": 0}
    assert parse_boxes(None) == []


def test_figure_grid_is_written_and_readable(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (32, 32)).astype(np.uint8)
    panels = [
        [
            Panel(image, rng.random((32, 32)), "img.png", name, p, [Box("Mass", 4, 4, 8, 8)])
            for name, p in (("Mass", 0.8), ("Nodule", 0.3))
        ],
        [Panel(image, rng.random((32, 32)), "j.png", "Nodule", 0.6, (), [(16, 16, 3, "Nodule")])],
    ]
    path = tmp_path / "grid.png"
    grid(panels, path, "test")
    pixels = matplotlib.image.imread(path)
    assert pixels.ndim == 3 and pixels.shape[0] > 100 and pixels.std() > 0


# -- the whole run -----------------------------------------------------------------------------


def write_folder(root: Path, architecture: str, outputs: tuple[str, ...], size: int = 32) -> Path:
    """A cxr-train-like model folder of an untrained ``architecture``."""
    folder = root / f"model_{architecture}"
    folder.mkdir()
    spec = ModelSpec(architecture, len(outputs), size)
    torch.save(build_model(spec).state_dict(), folder / "model.pt")
    card = {**spec.to_dict(), "output_names": list(outputs), "task": "multilabel"}
    card |= {"activation": "sigmoid", "normalize": "dataset", "mean": 0.3, "std": 0.2}
    (folder / "model.json").write_text(json.dumps(card))
    return folder


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Ten 32 px images, every other one with a Mass box; a split table beside them."""
    folder = tmp_path_factory.mktemp("cam") / "data"
    folder.mkdir()
    rng = np.random.default_rng(0)
    images = rng.integers(0, 80, (10, 32, 32)).astype(np.uint8)
    rows = []
    for i in range(10):
        box = None
        if i % 2:
            images[i, 8:16, 18:26] = 230
            box = json.dumps([{"label": "Mass", "x": 18, "y": 8, "w": 8, "h": 8}])
        rows.append(
            {"image_id": f"i{i}.png", "path": f"i{i}.png", "width": 32, "height": 32,
             "mode": "L", "boxes": box, "finding_Mass": float(i % 2), "finding_Nodule": 0.0}
        )  # fmt: skip
    np.save(folder / TENSOR_FILE, images)
    build_index(rows, "nih").to_parquet(folder / INDEX_FILE, index=False)
    (folder / STATS_FILE).write_text(json.dumps({"mean": 0.3, "std": 0.2}))
    sides = ["test"] * 8 + ["train", "val"]
    ids = [r["image_id"] for r in rows]
    pd.DataFrame({"image_id": ids, "split": sides}).to_parquet(folder.parent / "split.parquet")
    return folder


@pytest.mark.parametrize(
    ("method", "architecture"), [("cam", "densenet121"), ("gradcam++", "smallcnn_v1")]
)
def test_cam_run_writes_its_folder(
    data: Path, tmp_path: Path, method: str, architecture: str
) -> None:
    model = write_folder(tmp_path, architecture, ("Mass", "Nodule", "Effusion"))
    out = tmp_path / "out"
    summary = cam(
        model, data, data.parent / "split.parquet", out, method=method, top_k=2, batch_size=3
    )
    assert summary["images"] == 8 and summary["boxes_scored"] == 4
    assert summary["peak_rss_mb"] > 0 and summary["seconds"] > 0
    assert {p.name for p in out.iterdir()} == {
        "cam_grid.png", "localisation.json", "localisation.csv", "localisation.md",
        "boxes.csv", "top_k.csv", "cam.json",
    }  # fmt: skip
    local = json.loads((out / "localisation.json").read_text())
    mass = next(f for f in local["findings"] if f["finding"] == "Mass")
    assert mass["boxes"] == 4 and mass["paper_iobb_acc@0.1"] == 0.44
    blob = next(f for f in local["centred_blob"] if f["finding"] == "Mass")
    assert blob["boxes"] == 4 and "paper_iobb_acc@0.1" not in blob
    assert set(local["margin"]) == {"pointing_game", "iobb_acc@0.1", "mean_iobb"}
    rows = pd.read_csv(out / "localisation.csv")
    assert rows[["finding", "scorer"]].values.tolist() == [
        ["Mass", "model"], ["Mass", "centred_blob"], ["all", "model"], ["all", "centred_blob"],
    ]  # fmt: skip
    assert "a centred blob for" in (out / "localisation.md").read_text()
    top = pd.read_csv(out / "top_k.csv")
    assert len(top) == 16 and set(top["rank"]) == {1, 2}
    assert matplotlib.image.imread(out / "cam_grid.png").shape[0] > 100
    assert json.loads((out / "cam.json").read_text())["method"] == method


def test_cam_run_refuses_a_head_without_pooling(data: Path, tmp_path: Path) -> None:
    small = write_folder(tmp_path, "smallcnn_v1", ("Mass",))
    with pytest.raises(ValueError, match="use method 'gradcam'"):
        cam(small, data, data.parent / "split.parquet", tmp_path / "o1", method="cam")
    logreg = write_folder(tmp_path, "logreg", ("Mass",))
    with pytest.raises(ValueError, match="no convolutional feature map"):
        cam(logreg, data, data.parent / "split.parquet", tmp_path / "o2", method="gradcam")
    assert not (tmp_path / "o1").exists() and not (tmp_path / "o2").exists()

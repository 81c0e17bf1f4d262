"""Seed 002's cascade: the held-out mixed set keeps every source's test side and no module
trains on a copy of a held-out image, even one filed under another dataset; the cascade scores
each image through the modules it should pass."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
import torch

from cxr.cascade.baseline import baselines
from cxr.cascade.evaluate import accuracy_table, probabilities, run_cascade
from cxr.cascade.sets import SETS, Source, build_cascade_sets
from cxr.data.index import build_index, finding_column
from cxr.data.preprocess import INDEX_FILE, STATS_FILE, TENSOR_FILE
from cxr.explanation.inputs import TrainedModel
from cxr.splits.files import check_split_file
from cxr.training.models import ModelSpec

SIZE = 32
TYPES = ("hand", "wrist", "chest")


def smooth(rng: np.random.Generator) -> np.ndarray:
    return cv2.GaussianBlur(rng.integers(0, 255, (SIZE, SIZE), dtype=np.uint8), (0, 0), 2)


def source(root: Path, name: str, rows: list[dict], tensor: np.ndarray) -> Source:
    """A preprocessed folder and a split table (`side` of each row) of one dataset."""
    folder = root / name
    folder.mkdir(parents=True)
    np.save(folder / TENSOR_FILE, tensor)
    index = build_index([{k: v for k, v in r.items() if k != "side"} for r in rows], name)
    index.to_parquet(folder / INDEX_FILE, index=False)
    (folder / STATS_FILE).write_text(json.dumps({"mean": 0.5, "std": 0.2}))
    split = pd.DataFrame(
        {
            "image_id": index["image_id"],
            "group": index["image_id"],
            "patient_id": index["patient_id"],
            "split": [r["side"] for r in rows],
        }
    )
    split.to_parquet(root / f"{name}.parquet", index=False)
    return Source(name, folder, root / f"{name}.parquet")


def side(i: int) -> str:
    return ("train", "train", "train", "val", "test")[i % 5]


@pytest.fixture
def sources(tmp_path: Path) -> list[Source]:
    """Photos, a type collection, and NIH; the type collection's chest folder holds a
    re-exposed copy of NIH's held-out image 4 (a cross-dataset leak to stop)."""
    rng = np.random.default_rng(0)
    nih = np.stack([smooth(rng) for _ in range(40)])
    nih_rows = [
        {
            "image_id": f"{i:08d}_000.png",
            "path": f"images/{i:08d}_000.png",
            "patient_id": str(i),
            "width": SIZE,
            "height": SIZE,
            "mode": "L",
            "body_part": "chest",
            finding_column("Nodule"): float(i % 3 == 0),
            finding_column("Mass"): float(i % 4 == 0),
            "side": side(i),
        }
        for i in range(40)
    ]
    types = np.stack([smooth(rng) for _ in range(30)])
    types[0] = np.clip(nih[4].astype(int) * 1.05 + 3, 0, 255).astype(np.uint8)
    type_rows = [
        {
            "image_id": f"{TYPES[i % 3]}/{i:03d}.png",
            "path": f"{TYPES[i % 3]}/{i:03d}.png",
            "width": SIZE,
            "height": SIZE,
            "mode": "L",
            "body_part": TYPES[i % 3],
            "label": TYPES[i % 3],
            "side": "train" if i == 0 else side(i),
        }
        for i in range(30)
    ]
    photos = np.stack([smooth(rng) for _ in range(20)])
    photo_rows = [
        {
            "image_id": f"p{i:03d}.jpg",
            "path": f"p{i:03d}.jpg",
            "width": SIZE,
            "height": SIZE,
            "mode": "RGB",
            "body_part": "not_xray",
            "label": "not_xray",
            "side": side(i),
        }
        for i in range(20)
    ]
    return [
        source(tmp_path / "in", "not_xray", photo_rows, photos),
        source(tmp_path / "in", "xray_types", type_rows, types),
        source(tmp_path / "in", "nih", nih_rows, nih),
    ]


def test_cascade_sets_hold_out_every_test_side_and_drop_a_copy_filed_elsewhere(
    sources: list[Source], tmp_path: Path
) -> None:
    out = tmp_path / "results"
    report = build_cascade_sets(sources, out, "p32", chest_fraction=0.5, seed=0)
    read = {
        role: pd.read_parquet(out / "preprocessed" / name / "p32" / INDEX_FILE)
        for role, name in SETS.items()
    }
    heldout = read["heldout"]
    assert len(heldout) == 8 + 6 + 4  # every test row of NIH, the types and the photos
    assert set(heldout["label"]) == {"chest", "hand", "wrist", "not_xray"}
    assert report["dropped_near_duplicates_of_heldout"] == ["xray_types/hand/000.png"]
    for role in ("xray", "type"):
        assert "xray_types/hand/000.png" not in set(read[role]["image_id"])
    # Module I: every training side balanced; Module II: types, NIH as chest; Module III: NIH
    splits = {
        role: pd.read_parquet(out / "splits" / name / "heldout.parquet")
        for role, name in SETS.items()
        if role != "heldout"
    }
    xray = read["xray"].merge(splits["xray"][["image_id", "split"]], on="image_id")
    counts = xray[xray["split"] != "test"].groupby(["split", "label"]).size().unstack()
    assert (counts["xray"] == counts["not_xray"]).all()
    assert set(read["type"]["label"]) == {"chest", "hand", "wrist"}
    assert set(read["chest"]["dataset"]) == {"nih"}
    assert set(read["chest"].filter(like="finding_").columns) == {"finding_Mass", "finding_Nodule"}
    for role, name in SETS.items():
        if role == "heldout":
            continue
        data = out / "preprocessed" / name / "p32"
        test_ids = set(splits[role].loc[splits[role]["split"] == "test", "image_id"])
        assert test_ids <= set(heldout["image_id"])
        # the independent check re-derives the groups from the written pixels
        check_split_file(out / "splits" / name / "heldout.parquet", data, tmp_path / f"{role}.json")
        tensor = np.load(data / TENSOR_FILE)
        first = read[role].iloc[0]
        original = next(s for s in sources if s.dataset == first["dataset"])
        row = (
            pd.read_parquet(original.data / INDEX_FILE)["image_id"]
            .tolist()
            .index(first["image_id"].split("/", 1)[1])
        )
        assert np.array_equal(tensor[0], np.load(original.data / TENSOR_FILE)[row])


def test_cascade_sets_refuse_sources_of_different_sizes(
    sources: list[Source], tmp_path: Path
) -> None:
    np.save(sources[0].data / TENSOR_FILE, np.zeros((20, 16, 16), np.uint8))
    with pytest.raises(ValueError, match="differ in image size"):
        build_cascade_sets(sources, tmp_path / "results", "p32")


class Fixed(torch.nn.Module):
    """A stand-in module answering from a table of logits per image (its first pixel)."""

    def __init__(self, logits: np.ndarray) -> None:
        super().__init__()
        self.table = torch.nn.Parameter(torch.tensor(logits, dtype=torch.float32))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.table[x[:, 0, 0, 0].round().long()]


def module(outputs: tuple[str, ...], logits: np.ndarray, activation: str) -> TrainedModel:
    spec = ModelSpec(architecture="smallcnn_v1", outputs=len(outputs), input_size=SIZE)
    return TrainedModel(Fixed(logits), spec, outputs, activation, 0.0, 1 / 255)


def test_the_cascade_is_right_only_where_every_module_it_passes_is_right() -> None:
    truth = ["not_xray", "not_xray", "hand", "hand", "chest", "chest", "chest"]
    images = np.zeros((7, SIZE, SIZE), np.uint8)
    images[:, 0, 0] = np.arange(7)  # the stand-ins read the row number from this pixel
    nodule = [np.nan, np.nan, np.nan, np.nan, 1.0, 0.0, 0.0]
    index = pd.DataFrame(
        {
            "image_id": [f"i{i}" for i in range(7)],
            "dataset": ["p", "p", "t", "t", "nih", "nih", "nih"],
            "label": truth,
            "finding_Nodule": nodule,
        }
    )
    # Module I: image 1 (a photo) called an X-ray; Module II: image 3 (a hand) called chest
    xray = np.array([[5, 0], [0, 5], [0, 5], [0, 5], [0, 5], [0, 5], [0, 5]], float)
    types = np.array([[0, 5]] * 7, float)  # (chest, hand)
    types[[2]] = [0, 5]
    types[[1, 3, 4, 5, 6]] = [5, 0]
    # Module III: image 4 nodule (right), image 5 none (right), image 6 nodule (wrong)
    chest = np.array([[-5], [-5], [-5], [-5], [5], [-5], [5]], float)
    table = run_cascade(
        images,
        index,
        (
            module(("not_xray", "xray"), xray, "softmax"),
            module(("chest", "hand"), types, "softmax"),
            module(("Nodule",), chest, "sigmoid"),
        ),
        {"Nodule": 0.5},
    )
    assert table["end_to_end_right"].tolist() == [True, False, True, False, True, True, False]
    assert table["module_ii"].isna().tolist() == [True, False, False, False, False, False, False]
    assert table["predicted_abnormal"].tolist()[4:] == [True, False, True]
    overall = accuracy_table(table).iloc[-1]
    assert overall["end to end"] == pytest.approx(4 / 7)
    assert overall["Module I"] == pytest.approx(6 / 7)
    assert overall["Module III verdict"] == pytest.approx(2 / 3)
    # the best constant answer: "chest, normal" (2 of 7; hand and not_xray tie, later in order)
    entries = baselines(table)
    assert (entries["majority_class"], entries["majority_share"]) == ("chest, normal", 2 / 7)
    low, high = entries["end_to_end_accuracy_ci"]
    assert low < 4 / 7 < high


def test_probabilities_follow_the_order_of_the_rows_asked_for() -> None:
    images = np.zeros((5, SIZE, SIZE), np.uint8)
    images[:, 0, 0] = np.arange(5)
    logits = np.array([[0, i] for i in range(5)], float)
    model = module(("a", "b"), logits, "softmax")
    rows = np.array([3, 0, 4, 1])
    expected = torch.softmax(torch.tensor(logits[rows]), 1).numpy()
    assert probabilities(model, images, rows) == pytest.approx(expected, abs=1e-6)

"""What a CAM run reads: a model folder written by ``cxr train`` and one side of a split."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

from cxr.split_io import read_data, read_split_table
from cxr.training.models import ModelSpec, build_model

SIDES = ("train", "val", "test")


@dataclass(frozen=True)
class TrainedModel:
    """A trained model in evaluation mode and how to feed it (from ``model.json``)."""

    model: nn.Module
    spec: ModelSpec
    outputs: tuple[str, ...]
    activation: str  # "sigmoid" or "softmax"
    mean: float  # pixel mean and std in [0, 1]: x = (pixels - 255 mean) / (255 std)
    std: float

    def inputs(self, pixels: torch.Tensor) -> torch.Tensor:
        """uint8 (B, 1, H, W) -> the normalised float batch the model was trained on."""
        x = pixels.float()
        return (x - 255.0 * self.mean) / (255.0 * self.std)

    def probabilities(self, logits: torch.Tensor) -> torch.Tensor:
        if self.activation == "softmax":
            return torch.softmax(logits.float(), dim=1)
        return torch.sigmoid(logits.float())


def default_device() -> torch.device:
    """The first CUDA device when there is one, else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def load_model(model_dir: str | Path, device: torch.device | None = None) -> TrainedModel:
    """Rebuild the model of ``model_dir`` (model.json) and load its weights (model.pt, tensors
    only)."""
    folder = Path(model_dir)
    card_path, weights = folder / "model.json", folder / "model.pt"
    for path in (card_path, weights):
        if not path.is_file():
            raise FileNotFoundError(f"{folder}: no {path.name}; is it a folder of cxr train?")
    card = json.loads(card_path.read_text())
    names = {f.name for f in dataclasses.fields(ModelSpec)}
    spec = ModelSpec.from_dict({k: v for k, v in card.items() if k in names})
    model = build_model(spec, init="random")
    model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    outputs = tuple(card.get("output_names") or (f"output_{i}" for i in range(spec.outputs)))
    if len(outputs) != spec.outputs:
        raise ValueError(f"{card_path}: {len(outputs)} output names for {spec.outputs} outputs")
    return TrainedModel(
        model=model.to(device or default_device()).eval(),
        spec=spec,
        outputs=outputs,
        activation=str(card.get("activation", "sigmoid")),
        mean=float(card.get("mean", 0.0)),
        std=float(card.get("std", 1.0)),
    )


def side_rows(
    data_dir: str | Path, split_table: str | Path, side: str = "test", column: str = "split"
) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """The index, the memory-mapped images and the tensor rows that ``column`` puts in
    ``side``."""
    if side not in SIDES:
        raise ValueError(f"side must be one of {', '.join(SIDES)}, got {side!r}")
    index, images = read_data(data_dir)
    table = read_split_table(split_table)
    if column not in table or "image_id" not in table:
        raise ValueError(
            f"{split_table}: needs columns image_id and {column} (has "
            f"{', '.join(map(str, table.columns))})"
        )
    sides = index["image_id"].astype(str).map(table.set_index("image_id")[column].astype(str))
    rows = np.flatnonzero(sides.to_numpy() == side)
    if not len(rows):
        raise ValueError(f"{split_table}: column {column} puts no image of {data_dir} in {side}")
    return index, images, rows

"""What a CAM run reads: a model folder written by ``cxr train`` and one side of a split.

The model's ``run.json`` records the folder it was trained on; :func:`check_trained_on` refuses
images of another dataset, so a heatmap is always of a model on the kind of image it learned.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

from cxr.core.readers import first_line, read_json_object
from cxr.data.preprocess import INDEX_FILE, STATS_FILE, TENSOR_FILE
from cxr.splits.files import read_data, read_split_table
from cxr.training.checkpoint import file_digest
from cxr.training.models import ModelSpec, build_model

SIDES = ("train", "val", "test")
RUN_FILE, CARD_FILE, WEIGHTS_FILE = "run.json", "model.json", "model.pt"


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


def read_run(model_dir: str | Path) -> dict:
    """The ``run.json`` of a ``cxr train`` folder."""
    path = Path(model_dir) / RUN_FILE
    if not path.is_file():
        raise ValueError(f"{model_dir}: no {RUN_FILE}; is it a folder of cxr train?")
    return read_json_object(path, f"a {RUN_FILE} written by cxr train")


def _weights(path: Path) -> dict:
    """The state dict saved in ``path``."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises OSError, RuntimeError, EOFError, pickle errors...
        raise ValueError(
            f"{path}: not a readable checkpoint ({first_line(err)}): the file is truncated or "
            "not a model.pt of cxr train; train the model again"
        ) from None
    if not isinstance(state, dict):
        raise ValueError(f"{path}: holds a {type(state).__name__}, not a model's weights")
    return state


def load_model(model_dir: str | Path, device: torch.device | None = None) -> TrainedModel:
    """Rebuild the model of ``model_dir`` (model.json) and load its weights (model.pt, tensors
    only)."""
    folder = Path(model_dir)
    card_path, weights = folder / CARD_FILE, folder / WEIGHTS_FILE
    for path in (card_path, weights):
        if not path.is_file():
            raise ValueError(f"{folder}: no {path.name}; is it a folder of cxr train?")
    card = read_json_object(card_path, f"a {CARD_FILE} written by cxr train")
    names = {f.name for f in dataclasses.fields(ModelSpec)}
    try:
        spec = ModelSpec.from_dict({k: v for k, v in card.items() if k in names})
        model = build_model(spec, init="random")
    except ValueError as err:
        raise ValueError(f"{card_path}: {err}") from None
    try:
        model.load_state_dict(_weights(weights))
    except RuntimeError as err:  # missing, unexpected or misshapen tensors, one per line
        detail = str(err).splitlines()[1:2] or [first_line(err)]
        raise ValueError(
            f"{weights} does not fit {card_path} ({spec.architecture}, {spec.outputs} "
            f"output(s)): {detail[0].strip().rstrip('.')}; are they the weights of another model?"
        ) from None
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


def data_identity(data_dir: str | Path) -> str:
    """What a preprocessed folder holds: its cascade set (``stats.json``'s ``cascade``) or the
    dataset(s) its index records."""
    folder = Path(data_dir)
    stats = folder / STATS_FILE
    if stats.is_file():
        cascade = read_json_object(stats, f"a {STATS_FILE} of cxr preprocess").get("cascade")
        if cascade:
            return str(cascade)
    try:
        datasets = pd.read_parquet(folder / INDEX_FILE, columns=["dataset"])["dataset"]
    except Exception as err:  # pyarrow: no such column, or a damaged file
        raise ValueError(
            f"{folder / INDEX_FILE}: cannot read its dataset ({first_line(err)})"
        ) from None
    return "+".join(sorted(datasets.dropna().astype(str).unique())) or "no dataset"


def _recorded_data(model_dir: str | Path) -> dict:
    """run.json's ``data`` block ({} for a folder without run.json, made by hand)."""
    if not (Path(model_dir) / RUN_FILE).is_file():
        return {}
    data = read_run(model_dir).get("data")
    return data if isinstance(data, dict) else {}


def trained_on(model_dir: str | Path) -> tuple[str | None, str | None]:
    """The folder ``model_dir`` was trained on (run.json's ``data.folder``; None if unrecorded)
    and what it holds (None while that folder is not there to read)."""
    folder = _recorded_data(model_dir).get("folder")
    if not folder:
        return None, None
    readable = (Path(folder) / INDEX_FILE).is_file()
    return str(folder), data_identity(folder) if readable else None


def check_trained_on(model_dir: str | Path, data_dir: str | Path) -> None:
    """Refuse ``data_dir`` unless it holds the dataset ``model_dir`` was trained on.

    Another preprocess of the same dataset is fine (what matters is the kind of image and its
    labels; the sizes are checked apart). Where the training folder is gone, only its exact
    tensor (run.json's ``tensor_digest``) can vouch for ``data_dir``.
    """
    folder, identity = trained_on(model_dir)
    if folder is None or Path(folder).resolve() == Path(data_dir).resolve():
        return
    if identity is None:
        digest = _recorded_data(model_dir).get("tensor_digest")
        if digest and digest == file_digest(Path(data_dir) / TENSOR_FILE):
            return
        raise ValueError(
            f"--data {data_dir}: {model_dir} was trained on {folder}, which is gone, and these "
            "are not its images (run.json's tensor_digest); restore that folder to explain "
            "the model on another preprocess of its dataset"
        )
    holds = data_identity(data_dir)
    if holds != identity:
        raise ValueError(
            f"--data {data_dir} holds {holds} images but {model_dir} was trained on {identity} "
            f"({folder}); explain a model on its own dataset"
        )


def split_sides(
    split_table: str | Path, index: pd.DataFrame, data_dir: str | Path, column: str = "split"
) -> pd.Series:
    """The side ``column`` of ``split_table`` gives each image of ``index`` (NaN for an image
    it does not list); refuses a table of another dataset."""
    table = read_split_table(split_table)
    missing = [c for c in ("image_id", column) if c not in table]
    if missing:
        raise ValueError(
            f"{split_table}: no column {' or '.join(missing)} (columns: "
            f"{', '.join(map(str, table.columns))})"
        )
    ids = table["image_id"].astype(str)
    if ids.duplicated().any():
        raise ValueError(
            f"{split_table}: image id {ids[ids.duplicated()].iloc[0]!r} is listed twice"
        )
    sides = index["image_id"].astype(str).map(pd.Series(table[column].to_numpy(), index=ids))
    if sides.isna().all():
        raise ValueError(
            f"{split_table} is not a split of {data_dir}: none of its {len(table)} image ids is "
            "in that folder's index (a split of another dataset?)"
        )
    return sides


def side_rows(
    data_dir: str | Path, split_table: str | Path, side: str = "test", column: str = "split"
) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """The index, the memory-mapped images and the tensor rows that ``column`` puts in
    ``side``."""
    if side not in SIDES:
        raise ValueError(f"side must be one of {', '.join(SIDES)}, got {side!r}")
    index, images = read_data(data_dir)
    sides = split_sides(split_table, index, data_dir, column)
    rows = np.flatnonzero(sides.astype(str).to_numpy() == side)
    if not len(rows):
        found = ", ".join(sorted(sides.dropna().astype(str).unique()))
        raise ValueError(
            f"{split_table}: column {column} puts no image of {data_dir} in {side} "
            f"(its sides: {found})"
        )
    return index, images, rows

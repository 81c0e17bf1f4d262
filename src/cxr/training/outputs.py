"""What a training run writes and records.

The output folder (it appears atomically, complete or not at all) holds ``model.pt`` (the
weights with the lowest validation loss, a plain state dict) and ``model.json`` (how to rebuild
and feed it), ``history.csv`` (one row per epoch), ``predictions/{val,test}.parquet`` and
``run.json`` (MLflow run id, resolved recipe, the init used (``init_weights``: a recipe's
``init: auto`` becomes ``imagenet`` or ``random``), data version, timings).

run.json's ``data`` names what the model learned from: the folder and split with their digests,
the dataset and preset (from the folder's stats.json: ``dataset`` a name, a list of names for a
mix, or None in a folder from before it was recorded; ``preset`` its name or None), and
``init_stage``: None, or the study, stage and split column of the ``--init`` model (its
run.json).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import torch

from cxr.core.readers import read_json_object
from cxr.data.preprocess import STATS_FILE, TENSOR_FILE
from cxr.training.checkpoint import State, file_digest, plain_state

if TYPE_CHECKING:
    from cxr.training.loop import Trainer

RUN_FILE = "run.json"
#: Where run.json records the stage a model comes from, as ``--init`` of a later one reads it.
STAGE_KEYS = {"study": "recipe.study", "stage": "recipe.stage", "column": "data.split_column"}


def data_source(
    data: str | Path,
    split: str | Path,
    split_column: str,
    init: str | Path | None,
    data_version: str | None,
) -> dict:
    """The data, split and init files of a run with their digests (run.json's ``data``)."""
    return {
        "folder": str(data),
        "tensor_digest": file_digest(Path(data) / TENSOR_FILE),
        "dvc": data_version,
        "split": str(split),
        "split_digest": file_digest(split),
        "split_column": split_column,
        "init": str(init) if init else None,
        "init_digest": file_digest(init) if init else None,
    }


def data_identity(data: str | Path) -> dict:
    """The ``dataset`` and ``preset`` name of a preprocessed folder, as its stats.json says."""
    stats = read_json_object(Path(data) / STATS_FILE, "a stats.json written by cxr preprocess")
    preset = stats.get("preset")
    name = preset.get("name") if isinstance(preset, dict) else None
    return {"dataset": stats.get("dataset"), "preset": name or None}


def init_stage(init: str | Path) -> dict[str, str]:
    """The study, stage and split column of the model ``init`` (a model.pt), and the dataset
    it was trained on if recorded, from the run.json beside it; a one-line ValueError if that
    file is missing or lacks one of the first three."""
    path = Path(init).parent / RUN_FILE
    if not path.is_file():
        raise ValueError(
            f"{path}: missing: --init {init} must be the model.pt of a finished cxr train, "
            "whose run.json records the study, stage and split column it comes from"
        )
    run = read_json_object(path, "a run.json written by cxr train")
    found: dict[str, str] = {}
    for name, key in STAGE_KEYS.items():
        value: object = run
        for part in key.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        if isinstance(value, str) and value:
            found[name] = value
    missing = [key for name, key in STAGE_KEYS.items() if name not in found]
    dataset = (run.get("data") or {}).get("dataset") if isinstance(run.get("data"), dict) else None
    if dataset is not None:
        found["dataset"] = dataset
    if missing:
        raise ValueError(
            f"{path}: lacks {', '.join(missing)}: the run.json of --init {init} must record "
            "the study, stage and split column it comes from"
        )
    return found


def write_outputs(trainer: Trainer, work: Path | None, state: State, summary: dict) -> None:
    """The kept model, its description, history, predictions and run.json into ``work``
    (rank 0; every rank takes part in the predictions)."""
    if state.best_state is not None:
        trainer.model.load_state_dict(state.best_state)
    frames = {side: predictions(trainer, side) for side in ("val", "test")}
    if work is None:
        return
    (work / "predictions").mkdir(parents=True)
    torch.save(plain_state(trainer.model), work / "model.pt")
    (work / "model.json").write_text(json.dumps(model_card(trainer), indent=2) + "\n")
    pd.DataFrame(state.history).to_csv(work / "history.csv", index=False)
    for side, frame in frames.items():
        frame.to_parquet(work / "predictions" / f"{side}.parquet", index=False)
    (work / RUN_FILE).write_text(json.dumps(summary, indent=2) + "\n")
    if trainer.run is not None:
        run = trainer.run
        run.log_metrics({"best_val_loss": state.best_loss, "best_epoch": state.best_epoch})
        for name in ("history.csv", "model.json", RUN_FILE):
            run.log_artifact(work / name)
        run.log_artifact(work / "predictions", "predictions")
        run.log_model(trainer.model.to("cpu").eval(), _example(trainer))


def model_card(trainer: Trainer) -> dict:
    """What model.json says: enough to rebuild the model and feed it."""
    return {
        **trainer.spec.to_dict(),
        "output_names": list(trainer.task.outputs),
        "task": trainer.recipe.task,
        "activation": "softmax" if trainer.recipe.task == "multiclass" else "sigmoid",
        "normalize": trainer.recipe.normalize,
        "mean": trainer.mean,
        "std": trainer.std,
        "pixel_scale": 255,
    }


def predictions(trainer: Trainer, side: str) -> pd.DataFrame:
    """The probabilities of every image of ``side`` beside its labels."""
    task = trainer.task
    rows = task.sides[side]
    probs = trainer.probabilities(trainer.predict(side)).numpy()
    frame = pd.DataFrame({"image_id": task.image_ids[rows]})
    for k, name in enumerate(task.outputs):
        frame[f"prob_{name}"] = probs[:, k]
    truth = task.truth.iloc[rows].reset_index(drop=True)
    return pd.concat([frame, truth], axis=1)


def _example(trainer: Trainer) -> np.ndarray:
    """Two normalised validation images: the input example logged with the model."""
    rows = trainer.task.sides["val"][:2]
    pixels = torch.from_numpy(trainer.task.images[rows]).unsqueeze(1).float()
    return ((pixels - 255.0 * trainer.mean) / (255.0 * trainer.std)).numpy()

"""`cxr train`: train one model of a recipe on a preprocessed dataset and one split column.

:func:`train` checks every input, the init and the tracking store first, then runs the
:class:`~cxr.training.loop.Trainer` in its runtime (:mod:`~cxr.training.runtime`), resumes
from and saves to the checkpoint of its output folder (:mod:`~cxr.training.checkpoint`), and
writes the outputs (:mod:`~cxr.training.outputs`).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import torch.distributed as dist

from cxr.core.atomic import atomic_path
from cxr.core.datasets import PRETRAIN
from cxr.tracking import check_store, git_commit
from cxr.training.checkpoint import (
    InitWeights,
    fingerprint,
    load_resume,
    load_weights,
    remove_resume,
    save_resume,
)
from cxr.training.data import load_task
from cxr.training.loop import Trainer
from cxr.training.models import resolve_init
from cxr.training.outputs import data_identity, data_source, init_stage, write_outputs
from cxr.training.recipe import Recipe
from cxr.training.runtime import distributed, reproducible

if TYPE_CHECKING:
    from cxr.tracking import RunLog


def train(
    data: str | Path,
    split: str | Path,
    split_column: str,
    recipe: Recipe,
    out: str | Path,
    init: str | Path | None = None,
    data_version: str | None = None,
    allow_partial_init: bool = False,
) -> dict:
    """Train ``recipe`` on ``data`` with the sides of ``split_column``; returns run.json.

    ``init``: a ``model.pt`` of an earlier stage whose matching layers start this one; it must
    carry at least half of the backbone's tensors unless ``allow_partial_init``, and the
    run.json beside it must name its study, stage and split column.
    ``data_version``: the dataset's DVC pointer hash, recorded beside the tensor's digest.
    Every input, the init and the tracking store are checked before the MLflow run starts.
    """
    started = time.perf_counter()
    out = Path(out)
    task = load_task(data, split, split_column, recipe)
    start = InitWeights(Path(init), load_weights(init), allow_partial_init) if init else None
    identity = {**data_identity(data), "init_stage": init_stage(init) if init else None}
    rank, world, device = distributed()
    if rank == 0:
        check_store()
    weights = resolve_init(recipe.architecture, recipe.init)  # init "auto": what it became
    check_features(recipe, weights, init)
    source = data_source(data, split, split_column, init, data_version)
    begins = init_source(weights, identity["init_stage"])
    stamp = fingerprint(
        {
            "recipe": recipe.to_dict(),
            "init_weights": weights,
            "world": world,
            **{k: v for k, v in source.items() if k.endswith("digest") or k == "split_column"},
        }
    )
    state, checkpoint = load_resume(out, stamp)
    with contextlib.ExitStack() as stack:
        stack.enter_context(reproducible(recipe.deterministic, device))
        work = stack.enter_context(atomic_path(out)) if rank == 0 else None
        trainer = Trainer(task, recipe, device, rank, world, weights)
        layers = trainer.initialise(start, checkpoint)
        run = (
            stack.enter_context(
                _tracking(recipe, source, identity, state.run_id, weights, begins, out)
            )
            if rank == 0
            else None
        )
        trainer.run = run
        if run is not None:
            state.run_id = run.run_id
            run.log_metrics({"trainable_parameters": trainer.trainable})
            if layers is not None:
                run.log_dict(layers, "init_layers.json")
        if world > 1:  # every rank reports rank 0's run
            shared = [state.run_id]
            dist.broadcast_object_list(shared, src=0)
            state.run_id = shared[0]
        set_up = time.perf_counter()
        trainer.fit(
            state,
            lambda s: save_resume(
                out, stamp, s, trainer.model, trainer.optimizer, trainer.scheduler
            ),
        )
        summary = {
            "run_id": state.run_id,
            "recipe": recipe.to_dict(),
            "data": {**source, **identity},
            "init": layers,
            "init_weights": weights,
            "init_source": begins,
            "trainable_parameters": trainer.trainable,
            "best_epoch": state.best_epoch,
            "best_val_loss": state.best_loss,
            "epochs_run": len(state.history),
            "world_size": world,
            "device": str(device),
            "git_commit": git_commit(),
            "features_cached": trainer.head is not None,
            "weak_outputs": task.weak_outputs,
            "timings": {
                "setup_s": set_up - started,
                "training_s": state.seconds,
                "mean_epoch_s": state.seconds / max(len(state.history), 1),
            },
        }
        write_outputs(trainer, work, state, summary)
    if rank == 0:
        remove_resume(out)
    if world > 1:
        dist.destroy_process_group()
    return summary


def check_features(recipe: Recipe, weights: str, init: str | Path | None) -> None:
    """Refuse a frozen or last-blocks recipe that would start from random weights."""
    if recipe.transfer == "full" or weights != "random" or init or recipe.allow_random_features:
        return
    raise ValueError(
        f"recipe {recipe.study}/{recipe.stage}: transfer {recipe.transfer} would start from "
        f"random weights (init {recipe.init}: no ImageNet file of {recipe.architecture} in the "
        "torch hub cache, no --init), and a frozen random backbone measures nothing; place the "
        "file, give --init (params.yaml's `pretraining` does), or set allow_random_features"
    )


def init_source(weights: str, stage: dict | None) -> str:
    """Where the weights start, in words: ImageNet, random, the synthetic pretraining stand-in
    (an --init trained on the pretraining corpus) or an earlier stage."""
    if stage is None:
        return weights
    if stage.get("dataset") == PRETRAIN:
        return "synthetic pretraining (not ImageNet)"
    return f"stage {stage['study']}/{stage['stage']}"


@contextlib.contextmanager
def _tracking(
    recipe: Recipe,
    source: dict,
    identity: dict,
    run_id: str | None,
    weights: str,
    begins: str,
    out: Path,
) -> Iterator[RunLog]:
    from cxr import tracking

    column = source["split_column"]
    fold = column.removeprefix("fold_") if column.startswith("fold_") else None
    tags = {k: str(v) for k, v in source.items() if v is not None}
    params = {**recipe.to_dict(), "init_weights": weights, "init_source": begins}
    inputs = [
        tracking.DataInput(
            "/".join(str(v) for v in (identity["dataset"], identity["preset"]) if v)
            or source["folder"],
            source["tensor_digest"],
            source["folder"],
            "training",
        ),
        tracking.DataInput(
            Path(source["split"]).stem, source["split_digest"], source["split"], "split"
        ),
    ]
    if source["init"]:
        inputs.append(tracking.DataInput("init", source["init_digest"], source["init"], "init"))
    if source["dvc"]:  # the raw dataset's version, as its DVC pointer names it
        inputs.append(tracking.DataInput("dvc", source["dvc"], source["folder"], "raw data"))
    with tracking.training_run(
        recipe.study, recipe.stage, fold, params, tags, run_id=run_id, out=out, inputs=inputs
    ) as run:
        yield run

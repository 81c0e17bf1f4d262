"""`cxr train`: train one model of a recipe on a preprocessed dataset and one split column.

The output folder (it appears atomically, complete or not at all) holds ``model.pt`` (the
weights with the lowest validation loss, a plain state dict) and ``model.json`` (how to rebuild
and feed it), ``history.csv`` (one row per epoch), ``predictions/{val,test}.parquet`` and
``run.json`` (MLflow run id, resolved recipe, the init used (``init_weights``: a recipe's
``init: auto`` becomes ``imagenet`` or ``random``), data version, timings).

Reproducible and resumable: the batch order, the augmentation and the torch RNG of every epoch
are derived from (seed, epoch), and a checkpoint written after every epoch holds the model,
optimiser, scheduler, best-so-far and history; the same command after a kill continues from it
and ends with the same weights as an uninterrupted run.

Several processes (``torchrun --nproc_per_node N``) train data-parallel: every rank takes a
slice of each global batch and the loss is divided by the global count of known labels, so
the gradient is the one of a single process; rank 0 writes the outputs and logs to MLflow.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import torch
import torch.distributed as dist
from torch import nn

from cxr.core.atomic import atomic_path
from cxr.data.preprocess import TENSOR_FILE
from cxr.tracking import check_store, git_commit
from cxr.training import augment
from cxr.training.checkpoint import (
    RESUME_FILE,
    file_digest,
    fingerprint,
    load_plain,
    load_weights,
    plain_state,
    remove_resume,
    resume_folder,
    save_atomic,
)
from cxr.training.data import Prefetcher, TaskData, TensorBatches, load_task
from cxr.training.losses import MaskedLoss
from cxr.training.models import (
    ModelSpec,
    backbone_carried,
    build_model,
    init_from_checkpoint,
    resolve_init,
    set_transfer_mode,
)
from cxr.training.recipe import Recipe

if TYPE_CHECKING:
    from cxr.tracking import RunLog

log = logging.getLogger(__name__)

#: ImageNet's RGB mean and std as one grey channel (ITU-R 601 luma weights).
_LUMA = (0.299, 0.587, 0.114)
IMAGENET_GRAY_MEAN = float(np.dot(_LUMA, (0.485, 0.456, 0.406)))
IMAGENET_GRAY_STD = float(np.dot(_LUMA, (0.229, 0.224, 0.225)))
#: The least share of the backbone's parameter tensors an ``--init`` must carry.
MIN_INIT_SHARE = 0.5


@dataclass(frozen=True)
class InitWeights:
    """An earlier stage's weights to start from (``cxr train --init``)."""

    path: Path
    state: dict[str, torch.Tensor]
    allow_partial: bool = False


@dataclass
class _State:
    """What a checkpoint carries from one epoch to the next."""

    epoch: int = 0  # the next epoch to run
    history: list[dict] = field(default_factory=list)
    best_loss: float = float("inf")
    best_epoch: int = -1
    best_state: dict[str, torch.Tensor] | None = None
    bad_epochs: int = 0
    stopped: bool = False
    run_id: str | None = None
    seconds: float = 0.0


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
    carry at least half of the backbone's tensors unless ``allow_partial_init``.
    ``data_version``: the dataset's DVC pointer hash, recorded beside the tensor's digest.
    Every input, the init and the tracking store are checked before the MLflow run starts.
    """
    started = time.perf_counter()
    out = Path(out)
    task = load_task(data, split, split_column, recipe)
    start = InitWeights(Path(init), load_weights(init), allow_partial_init) if init else None
    rank, world, device = _distributed()
    if rank == 0:
        check_store()
    weights = resolve_init(recipe.architecture, recipe.init)  # init "auto": what it became
    source = {
        "folder": str(data),
        "tensor_digest": file_digest(Path(data) / TENSOR_FILE),
        "dvc": data_version,
        "split": str(split),
        "split_digest": file_digest(split),
        "split_column": split_column,
        "init": str(init) if init else None,
        "init_digest": file_digest(init) if init else None,
    }
    stamp = fingerprint(
        {
            "recipe": recipe.to_dict(),
            "init_weights": weights,
            "world": world,
            **{k: v for k, v in source.items() if k.endswith("digest") or k == "split_column"},
        }
    )
    state, checkpoint = _resume(out, stamp)
    with contextlib.ExitStack() as stack:
        stack.enter_context(_reproducible(recipe.deterministic, device))
        work = stack.enter_context(atomic_path(out)) if rank == 0 else None
        trainer = Trainer(task, recipe, device, rank, world, weights)
        layers = trainer.initialise(start, checkpoint)
        run = (
            stack.enter_context(_tracking(recipe, source, state.run_id, weights, out))
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
        trainer.fit(state, lambda s: _save_resume(out, stamp, s, trainer))
        summary = {
            "run_id": state.run_id,
            "recipe": recipe.to_dict(),
            "data": source,
            "init": layers,
            "init_weights": weights,
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
        trainer.write_outputs(work, state, summary)
    if rank == 0:
        remove_resume(out)
    if world > 1:
        dist.destroy_process_group()
    return summary


class Trainer:
    """The model, optimiser and data of one run; all ranks hold one."""

    def __init__(
        self,
        task: TaskData,
        recipe: Recipe,
        device: torch.device,
        rank: int,
        world: int,
        weights: str | None = None,
    ) -> None:
        self.task, self.recipe, self.device = task, recipe, device
        #: The init the model starts from: random or imagenet (a recipe's auto, resolved).
        self.weights = weights or resolve_init(recipe.architecture, recipe.init)
        self.rank, self.world = rank, world
        self.spec = ModelSpec(recipe.architecture, len(task.outputs), recipe.input_size)
        self.loss = MaskedLoss(recipe.loss, task.targets[task.sides["train"]])
        mean, std = {
            "imagenet": (IMAGENET_GRAY_MEAN, IMAGENET_GRAY_STD),
            "dataset": (task.mean, task.std),
            "none": (0.0, 1.0),
        }[recipe.normalize]
        self.mean, self.std = mean, std
        self.head: nn.Module | None = None
        self.features: dict[str, torch.Tensor] = {}
        self.trainable = 0
        self.run: RunLog | None = None  # rank 0's MLflow run

    # -- setup -----------------------------------------------------------------------------

    def initialise(self, init: InitWeights | None, checkpoint: dict | None) -> dict | None:
        """Build the model (``init`` carried in), optimiser and scheduler; ``checkpoint``
        restores all three. Returns the layers carried over from ``init``, if any."""
        recipe = self.recipe
        self.model = build_model(self.spec, init=self.weights, seed=recipe.seed)
        layers = self._carry(init) if init is not None else None
        self.trainable = set_transfer_mode(self.model, self.spec, recipe.transfer)
        log.info("%s: %d trainable parameters", recipe.architecture, self.trainable)
        self.model.to(self.device, memory_format=torch.channels_last)
        if checkpoint is not None:
            self.model.load_state_dict(checkpoint["model"])
        self.head = self._cacheable_head()
        trained = self.head or self.model
        self.step_model: nn.Module = trained
        if self.world > 1:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.step_model = nn.parallel.DistributedDataParallel(trained, device_ids=ids)
        params = [p for p in trained.parameters() if p.requires_grad]
        self.optimizer = _optimizer(params, recipe)
        self.scheduler = (
            torch.optim.lr_scheduler.ReduceLROnPlateau(
                self.optimizer,
                mode="min",
                factor=recipe.plateau_factor,
                patience=recipe.plateau_patience,
            )
            if recipe.scheduler == "plateau"
            else None
        )
        if checkpoint is not None:
            self.optimizer.load_state_dict(checkpoint["optimizer"])
            if self.scheduler is not None:
                self.scheduler.load_state_dict(checkpoint["scheduler"])
        if self.head is not None:
            self._cache_features()
        return layers

    def _carry(self, init: InitWeights) -> dict:
        """Copy ``init``'s matching tensors into the model; refuse an init that carries less than
        :data:`MIN_INIT_SHARE` of the backbone unless allowed. Returns the init record."""
        carried, dropped = init_from_checkpoint(self.model, init.state)
        n, total = backbone_carried(self.model, carried)
        partial = n < MIN_INIT_SHARE * total
        what = f"{n} of the {total} parameter tensors of the {self.recipe.architecture} backbone"
        if partial and not init.allow_partial:
            raise ValueError(
                f"--init {init.path}: it carries only {what} (matched by name and shape: a model "
                "of another architecture or input size?), so training would start from mostly "
                "random weights; pass --allow-partial-init to train from it anyway"
            )
        log.info(
            "init: carried %d tensor(s) over, not %d: %s",
            len(carried),
            len(dropped),
            ", ".join(dropped[:8]) or "none",
        )
        if partial:
            log.warning("--init %s carries only %s (--allow-partial-init)", init.path, what)
        return {
            "carried": carried,
            "not_carried": dropped,
            "backbone_carried": n,
            "backbone_tensors": total,
            "partial_init_allowed": partial,
        }

    def _cacheable_head(self) -> nn.Module | None:
        """The one trainable module of a frozen backbone, if its input can be cached.

        Only with transfer ``frozen`` and no augmentation (the backbone then sees every image
        the same way each epoch), and only if that module's output is the model's output.
        """
        if self.recipe.transfer != "frozen" or self.recipe.augment.active:
            return None
        owners = [
            m
            for m in self.model.modules()
            if any(p.requires_grad for p in m.parameters(recurse=False))
        ]
        if len(owners) != 1:
            return None
        head = owners[0]
        rows = self.task.sides["train"][:2]
        sample = self._inputs(torch.from_numpy(self.task.images[rows]).unsqueeze(1), rows)
        with _capture_input(head) as seen, torch.no_grad():
            out = self.model.eval()(sample)
        with torch.no_grad():
            same = len(seen) == 1 and torch.allclose(head(seen[0]), out, atol=1e-5)
        return head if same else None

    def _cache_features(self) -> None:
        """The frozen backbone's output for every train/val/test image, computed once."""
        started = time.perf_counter()
        self.model.eval()
        for side, rows in self.task.sides.items():
            chunks = []
            with _capture_input(self.head) as seen, torch.no_grad(), self._autocast():
                for pixels, batch in self._batches(rows, shuffle=False):
                    self.model(self._inputs(pixels, batch))
                    chunks.append(seen.pop().float())
            self.features[side] = torch.cat(chunks) if chunks else torch.empty(0)
        log.info(
            "frozen backbone: features of %d images cached in %.1f s; only the head trains",
            sum(len(r) for r in self.task.sides.values()),
            time.perf_counter() - started,
        )

    # -- training --------------------------------------------------------------------------

    def fit(self, state: _State, after_epoch: Callable[[_State], None]) -> None:
        """Run the remaining epochs of ``state``; rank 0 calls ``after_epoch(state)`` after each."""
        recipe = self.recipe
        for epoch in range(state.epoch, recipe.epochs):
            if state.stopped:
                break
            started = time.perf_counter()
            torch.manual_seed(augment.seed_of(recipe.seed, epoch, self.rank, "torch"))
            lr = self.optimizer.param_groups[0]["lr"]
            train_loss, wait_share = self._train_epoch(epoch)
            logits = self.predict("val")
            targets = torch.from_numpy(self.task.targets[self.task.sides["val"]])
            val_loss = self.loss.mean(logits, targets)
            if self.scheduler is not None:
                self.scheduler.step(val_loss)
            if val_loss < state.best_loss:
                state.best_loss, state.best_epoch = val_loss, epoch
                state.best_state = plain_state(self.model)
                state.bad_epochs = 0
            else:
                state.bad_epochs += 1
            seconds = time.perf_counter() - started
            row = {
                "epoch": epoch,
                "train_loss": train_loss,
                "val_loss": val_loss,
                **self._metric(logits, targets),
                "lr": lr,
                "seconds": seconds,
                "data_wait_share": wait_share,
            }
            state.history.append(row)
            state.epoch, state.seconds = epoch + 1, state.seconds + seconds
            state.stopped = 0 < recipe.early_stopping <= state.bad_epochs
            if self.rank == 0:
                metrics = {k: v for k, v in row.items() if k != "epoch"}
                log.info(
                    "epoch %d/%d: %s",
                    epoch + 1,
                    recipe.epochs,
                    ", ".join(f"{k} {v:.4g}" for k, v in metrics.items()),
                )
                if self.run is not None:
                    self.run.log_epoch(epoch, metrics)
                after_epoch(state)
            if state.stopped:
                log.info("early stopping: no better validation loss in %d epochs", state.bad_epochs)

    def _train_epoch(self, epoch: int) -> tuple[float, float]:
        """One pass over the training side; returns the mean loss and the data wait share."""
        self._train_mode()
        rows = self.task.sides["train"]
        matrices = None
        if self.recipe.augment.active:
            generator = augment.epoch_generator(self.recipe.seed, epoch)
            matrices = augment.draw(self.recipe.augment, len(self.task.images), generator)
        total = torch.zeros((), device=self.device)
        count = torch.zeros((), device=self.device)
        prefetch = None
        started = time.perf_counter()
        if self.head is not None:
            position = _positions(rows, len(self.task.images))
            order = self._sharded(self._batches(rows, shuffle=True), epoch).row_batches()
            steps = ((self.features["train"][position[b]].to(self.device), b) for b in order)
        else:
            prefetch = Prefetcher(
                self._sharded(self._batches(rows, shuffle=True), epoch),
                pin=self.device.type == "cuda",
            )
            steps = ((self._inputs(pixels, batch, matrices), batch) for pixels, batch in prefetch)
        for inputs, batch in steps:
            targets = torch.from_numpy(self.task.targets[batch]).to(self.device, non_blocking=True)
            with self._autocast():
                logits = self.step_model(inputs)
            batch_total, batch_count = self.loss(logits, targets)
            denominator = batch_count.detach().clone()
            if self.world > 1:
                dist.all_reduce(denominator)
            (batch_total * self.world / denominator.clamp_min(1e-12)).backward()
            self.optimizer.step()
            self.optimizer.zero_grad(set_to_none=True)
            total += batch_total.detach()
            count += batch_count.detach()
        elapsed = time.perf_counter() - started
        if self.world > 1:
            dist.all_reduce(total)
            dist.all_reduce(count)
        waited = prefetch.waited if prefetch is not None else 0.0
        return float(total / count.clamp_min(1e-12)), waited / max(elapsed, 1e-9)

    def _train_mode(self) -> None:
        """Train mode, except that frozen batch norms keep their running statistics, and a
        frozen backbone runs entirely as in evaluation (no dropout): a fixed function of the
        image, whose output can be cached."""
        self.step_model.train()
        for m in self.model.modules():
            frozen = not any(p.requires_grad for p in m.parameters())
            if frozen and (
                self.recipe.transfer == "frozen" or isinstance(m, nn.modules.batchnorm._BatchNorm)
            ):
                m.eval()

    def _batches(self, rows: np.ndarray, shuffle: bool) -> TensorBatches:
        return TensorBatches(
            self.task.images,
            rows,
            self.recipe.batch_size,
            shuffle=shuffle,
            seed=self.recipe.seed,
            scale=False,
        )

    def _sharded(self, batches: TensorBatches, epoch: int) -> TensorBatches:
        batches.epoch, batches.shard = epoch, (self.rank, self.world)
        return batches

    def _inputs(
        self, pixels: torch.Tensor, rows: np.ndarray, matrices: torch.Tensor | None = None
    ) -> torch.Tensor:
        """uint8 (B, 1, H, W) on the host -> augmented, normalised float on the device."""
        x = pixels.to(self.device, non_blocking=True).float()
        if matrices is not None:
            x = augment.apply(x, matrices[torch.from_numpy(rows)], self.recipe.augment)
        x = (x - 255.0 * self.mean) / (255.0 * self.std)
        return x.contiguous(memory_format=torch.channels_last)

    def _autocast(self) -> contextlib.AbstractContextManager:
        cuda = self.device.type == "cuda"
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=cuda)

    # -- evaluation ------------------------------------------------------------------------

    def predict(self, side: str) -> torch.Tensor:
        """Float logits of every image of ``side`` (all ranks share the work and the result)."""
        rows = self.task.sides[side]
        self.model.eval()
        mine = np.arange(len(rows))[self.rank :: self.world]
        chunks = []
        with torch.no_grad(), self._autocast():
            if self.head is not None:
                for start in range(0, len(mine), self.recipe.batch_size):
                    chunk = self.features[side][mine[start : start + self.recipe.batch_size]]
                    chunks.append(self.head(chunk.to(self.device)).float().cpu())
            else:
                for pixels, batch in Prefetcher(self._batches(rows[mine], shuffle=False)):
                    chunks.append(self.model(self._inputs(pixels, batch)).float().cpu())
        logits = torch.cat(chunks) if chunks else torch.empty(0, len(self.task.outputs))
        if self.world == 1:
            return logits
        gathered: list = [None] * self.world
        dist.all_gather_object(gathered, (mine, logits))
        order = np.argsort(np.concatenate([g[0] for g in gathered]), kind="stable")
        return torch.cat([g[1] for g in gathered])[torch.from_numpy(order)]

    def probabilities(self, logits: torch.Tensor) -> torch.Tensor:
        if self.recipe.task == "multiclass":
            return torch.softmax(logits, dim=1)
        return torch.sigmoid(logits)

    def _metric(self, logits: torch.Tensor, targets: torch.Tensor) -> dict[str, float]:
        """Validation AUROC (macro over outputs with both classes) or accuracy (multi-class)."""
        y = targets.numpy()
        if self.recipe.task == "multiclass":
            known = ~np.isnan(y[:, 0])
            hits = logits.numpy()[known].argmax(1) == y[known].argmax(1)
            return {"val_accuracy": float(hits.mean()) if known.any() else float("nan")}
        scores = logits.numpy()
        aucs = []
        for k in range(y.shape[1]):
            known = ~np.isnan(y[:, k])
            if len(np.unique(y[known, k])) == 2:
                aucs.append(rank_auroc(y[known, k], scores[known, k]))
        return {"val_auroc": float(np.mean(aucs)) if aucs else float("nan")}

    # -- outputs ---------------------------------------------------------------------------

    def write_outputs(self, work: Path | None, state: _State, summary: dict) -> None:
        """The kept model, its description, history, predictions and run.json into ``work``
        (rank 0; every rank takes part in the predictions)."""
        if state.best_state is not None:
            self.model.load_state_dict(state.best_state)
        predictions = {side: self.predictions(side) for side in ("val", "test")}
        if work is None:
            return
        (work / "predictions").mkdir(parents=True)
        torch.save(plain_state(self.model), work / "model.pt")
        (work / "model.json").write_text(json.dumps(self.model_card(), indent=2) + "\n")
        pd.DataFrame(state.history).to_csv(work / "history.csv", index=False)
        for side, frame in predictions.items():
            frame.to_parquet(work / "predictions" / f"{side}.parquet", index=False)
        (work / "run.json").write_text(json.dumps(summary, indent=2) + "\n")
        if self.run is not None:
            run = self.run
            run.log_metrics({"best_val_loss": state.best_loss, "best_epoch": state.best_epoch})
            for name in ("history.csv", "model.json", "run.json"):
                run.log_artifact(work / name)
            run.log_artifact(work / "predictions", "predictions")
            run.log_model(self.model.to("cpu").eval(), self._example())

    def model_card(self) -> dict:
        """What model.json says: enough to rebuild the model and feed it."""
        return {
            **self.spec.to_dict(),
            "output_names": list(self.task.outputs),
            "task": self.recipe.task,
            "activation": "softmax" if self.recipe.task == "multiclass" else "sigmoid",
            "normalize": self.recipe.normalize,
            "mean": self.mean,
            "std": self.std,
            "pixel_scale": 255,
        }

    def predictions(self, side: str) -> pd.DataFrame:
        rows = self.task.sides[side]
        probs = self.probabilities(self.predict(side)).numpy()
        frame = pd.DataFrame({"image_id": self.task.image_ids[rows]})
        for k, name in enumerate(self.task.outputs):
            frame[f"prob_{name}"] = probs[:, k]
        truth = self.task.truth.iloc[rows].reset_index(drop=True)
        return pd.concat([frame, truth], axis=1)

    def _example(self) -> np.ndarray:
        """Two normalised validation images: the input example logged with the model."""
        rows = self.task.sides["val"][:2]
        pixels = torch.from_numpy(self.task.images[rows]).unsqueeze(1).float()
        return ((pixels - 255.0 * self.mean) / (255.0 * self.std)).numpy()


def _optimizer(params: list[nn.Parameter], recipe: Recipe) -> torch.optim.Optimizer:
    if recipe.optimizer == "sgd":
        return torch.optim.SGD(
            params, lr=recipe.lr, momentum=recipe.momentum, weight_decay=recipe.weight_decay
        )
    cls = torch.optim.Adam if recipe.optimizer == "adam" else torch.optim.RAdam
    return cls(params, lr=recipe.lr, betas=tuple(recipe.betas), weight_decay=recipe.weight_decay)


def rank_auroc(y: np.ndarray, scores: np.ndarray) -> float:
    """ROC AUC of 0/1 labels ``y`` (both present) as the Mann-Whitney statistic, ties
    counted half: sklearn's value without importing sklearn into every training job."""
    ranks = pd.Series(scores).rank().to_numpy()
    positive = y == 1
    n1 = int(positive.sum())
    n0 = len(y) - n1
    return float((ranks[positive].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


@contextlib.contextmanager
def _capture_input(module: nn.Module) -> Iterator[list[torch.Tensor]]:
    seen: list[torch.Tensor] = []
    handle = module.register_forward_pre_hook(lambda _m, args: seen.append(args[0]))
    try:
        yield seen
    finally:
        handle.remove()


def _positions(rows: np.ndarray, n: int) -> np.ndarray:
    position = np.full(n, -1)
    position[rows] = np.arange(len(rows))
    return position


# -- process, determinism, resume, tracking ----------------------------------------------------


def _distributed() -> tuple[int, int, torch.device]:
    """(rank, world size, device); joins the process group when started by torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    cuda = torch.cuda.is_available()
    device = torch.device("cpu")
    if cuda:
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if cuda else "gloo")
    return (dist.get_rank() if world > 1 else 0), world, device


@contextlib.contextmanager
def _reproducible(on: bool, device: torch.device) -> Iterator[None]:
    """Deterministic kernels (``on``) and a private RNG; the caller's settings come back."""
    before = (
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
        torch.backends.cudnn.benchmark,
    )
    if on:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(on, warn_only=True)
    torch.backends.cudnn.benchmark = not on
    try:
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            yield
    finally:
        torch.use_deterministic_algorithms(before[0], warn_only=before[1])
        torch.backends.cudnn.benchmark = before[2]


def _resume(out: Path, stamp: str) -> tuple[_State, dict | None]:
    """The state to start from: the resume checkpoint of ``out`` if it matches this run."""
    path = resume_folder(out) / RESUME_FILE
    if not path.exists():
        return _State(), None
    checkpoint = load_plain(path)
    if checkpoint.get("fingerprint") != stamp:
        log.warning(
            "ignoring %s: it was written for another recipe, data, split or init; starting over",
            path,
        )
        return _State(), None
    state = _State(**checkpoint["state"])
    log.info("resuming from %s after epoch %d", path, state.epoch)
    return state, checkpoint


def _save_resume(out: Path, stamp: str, state: _State, trainer: Trainer) -> None:
    save_atomic(
        {
            "fingerprint": stamp,
            "state": vars(state),
            "model": plain_state(trainer.model),
            "optimizer": trainer.optimizer.state_dict(),
            "scheduler": trainer.scheduler.state_dict() if trainer.scheduler else {},
        },
        resume_folder(out) / RESUME_FILE,
    )


@contextlib.contextmanager
def _tracking(
    recipe: Recipe, source: dict, run_id: str | None, weights: str, out: Path
) -> Iterator[RunLog]:
    from cxr import tracking

    column = source["split_column"]
    fold = column.removeprefix("fold_") if column.startswith("fold_") else None
    tags = {k: str(v) for k, v in source.items() if v is not None}
    params = {**recipe.to_dict(), "init_weights": weights}
    with tracking.training_run(
        recipe.study, recipe.stage, fold, params, tags, run_id=run_id, out=out
    ) as run:
        yield run

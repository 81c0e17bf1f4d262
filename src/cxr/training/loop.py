"""The training loop: one run's model, optimiser and scheduler, its epochs, and its predictions.

Reproducible: the batch order, the augmentation and the torch RNG of every epoch are derived
from (seed, epoch). A frozen backbone without augmentation computes its features once and
trains only the head on them.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from cxr.evaluation.auroc import rank_auroc
from cxr.training import augment
from cxr.training.checkpoint import InitWeights, State, carry, plain_state
from cxr.training.data import Prefetcher, TaskData, TensorBatches
from cxr.training.losses import MaskedLoss
from cxr.training.models import ModelSpec, build_model, resolve_init, set_transfer_mode
from cxr.training.recipe import Recipe
from cxr.training.runtime import autocast

if TYPE_CHECKING:
    from cxr.tracking import RunLog

log = logging.getLogger(__name__)

#: ImageNet's RGB mean and std as one grey channel (ITU-R 601 luma weights).
_LUMA = (0.299, 0.587, 0.114)
IMAGENET_GRAY_MEAN = float(np.dot(_LUMA, (0.485, 0.456, 0.406)))
IMAGENET_GRAY_STD = float(np.dot(_LUMA, (0.229, 0.224, 0.225)))


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
        layers = carry(self.model, init, recipe.architecture) if init is not None else None
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
            with _capture_input(self.head) as seen, torch.no_grad(), autocast(self.device):
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

    def fit(self, state: State, after_epoch: Callable[[State], None]) -> None:
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
            improved = val_loss < state.best_loss
            if improved:
                state.best_loss, state.bad_epochs = val_loss, 0
            else:
                state.bad_epochs += 1
            if improved or recipe.keep == "last":
                state.best_epoch, state.best_state = epoch, plain_state(self.model)
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
            with autocast(self.device):
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

    # -- evaluation ------------------------------------------------------------------------

    def predict(self, side: str) -> torch.Tensor:
        """Float logits of every image of ``side`` (all ranks share the work and the result)."""
        rows = self.task.sides[side]
        self.model.eval()
        mine = np.arange(len(rows))[self.rank :: self.world]
        chunks = []
        with torch.no_grad(), autocast(self.device):
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


def _optimizer(params: list[nn.Parameter], recipe: Recipe) -> torch.optim.Optimizer:
    if recipe.optimizer == "sgd":
        return torch.optim.SGD(
            params, lr=recipe.lr, momentum=recipe.momentum, weight_decay=recipe.weight_decay
        )
    cls = torch.optim.Adam if recipe.optimizer == "adam" else torch.optim.RAdam
    return cls(params, lr=recipe.lr, betas=tuple(recipe.betas), weight_decay=recipe.weight_decay)


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

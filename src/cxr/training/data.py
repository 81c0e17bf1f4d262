"""Training data straight from a preprocessed tensor folder (no image decoding while training).

- :func:`load_task`: the images (memory-mapped), one target row per image for the recipe's
  task, and the train / val / test rows of one split column; everything the data must agree
  with (findings, classes, input size, split sides) is checked here, before training.
- :class:`TensorBatches`: batches read with one fancy-indexing gather from the memory map
  (indices sorted within a batch for locality), so a batch costs one copy of its pixels.
- :class:`Prefetcher`: reads the next batch in a background thread while the device works,
  and measures how long the training step still waited for data.

Normalisation and augmentation are left to the training device.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import torch
from pyarrow import ArrowException

from cxr.data.index import FINDING_PREFIX, finding_column, finding_columns
from cxr.data.preprocess import INDEX_FILE, STATS_FILE, TENSOR_FILE, load_tensor
from cxr.splits.assign import split_columns
from cxr.splits.files import read_data, read_split_table
from cxr.splits.leakage import validate_split_table

if TYPE_CHECKING:
    from cxr.training.recipe import Recipe

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TaskData:
    """A preprocessed dataset seen through one recipe and one split column."""

    images: np.ndarray  # uint8 (N, S, S), memory-mapped
    image_ids: np.ndarray  # (N,) str
    targets: np.ndarray  # float32 (N, outputs): 1 / 0 / NaN, one-hot rows for multi-class
    outputs: tuple[str, ...]  # finding names, class names, or the positive label
    truth: pd.DataFrame  # the dataset's own label columns (finding_<X> or label), per row
    sides: dict[str, np.ndarray]  # tensor rows of train, val and test
    mean: float  # the dataset's pixel mean and std in [0, 1] (stats.json)
    std: float
    #: Outputs trained although they cannot be learned or validated well (one class only),
    #: each with the reason; recorded in run.json.
    weak_outputs: dict[str, str] = field(default_factory=dict)


def load_task(data: str | Path, split: str | Path, column: str, recipe: Recipe) -> TaskData:
    """Open ``data`` for ``recipe`` with the sides of ``column`` of split table ``split``.

    Refused: an output with no known label on the training side (nothing to learn), and a
    validation side with no known label at all (no validation loss to pick the kept epoch by).
    """
    index, images = _read(data)
    if images.shape[1:] != (recipe.input_size, recipe.input_size):
        side = "x".join(map(str, images.shape[1:]))
        raise ValueError(
            f"recipe input_size: {recipe.input_size}, but {data} holds {side} images; use "
            "the preprocessing preset of that size or change input_size"
        )
    outputs, targets, truth = _targets(index, recipe, data)
    mean, std = _stats(data, recipe)
    sides = _sides(index["image_id"], split, column)
    where = f"{data} with {split} column {column}"
    weak = _check_labels(targets, outputs, sides, where, multiclass=recipe.task == "multiclass")
    return TaskData(
        images=images,
        image_ids=index["image_id"].astype(str).to_numpy(),
        targets=targets,
        outputs=outputs,
        truth=truth,
        sides=sides,
        mean=mean,
        std=std,
        weak_outputs=weak,
    )


def _read(data: str | Path) -> tuple[pd.DataFrame, np.ndarray]:
    """The index and images of a folder of cxr preprocess, naming what is missing or broken."""
    folder = Path(data)
    absent = [
        name for name in (INDEX_FILE, TENSOR_FILE, STATS_FILE) if not (folder / name).is_file()
    ]
    if absent:
        raise ValueError(f"{data}: not a folder written by cxr preprocess (no {', '.join(absent)})")
    try:
        return read_data(data)
    except (ArrowException, OSError) as err:
        raise ValueError(f"{folder / INDEX_FILE}: cannot read this index ({err})") from None


def _stats(data: str | Path, recipe: Recipe) -> tuple[float, float]:
    """The pixel mean and std of ``data`` (stats.json), checked to be usable."""
    path = Path(data) / STATS_FILE
    try:
        stats = json.loads(path.read_text())
        mean, std = float(stats["mean"]), float(stats["std"])
    except (ValueError, TypeError, KeyError) as err:
        raise ValueError(
            f'{path}: not the stats of cxr preprocess (expected {{"mean": ..., "std": ...}}: '
            f"{type(err).__name__} {err}); rerun cxr preprocess"
        ) from None
    if recipe.normalize == "dataset" and not (np.isfinite(mean) and np.isfinite(std) and std > 0):
        raise ValueError(
            f"{path}: mean {mean} and std {std} cannot normalise (recipe normalize: dataset); "
            "every image may be blank, or use normalize imagenet or none"
        )
    return mean, std


def _check_labels(
    targets: np.ndarray,
    outputs: tuple[str, ...],
    sides: dict[str, np.ndarray],
    where: str,
    multiclass: bool,
) -> dict[str, str]:
    """Refuse outputs that cannot be learned or validated, and a task none of whose outputs
    can be learned; warn about (and return) the weak ones with the reason."""
    known = ~np.isnan(targets)
    if multiclass:  # a row's label is known or not; an output is a class
        known = np.repeat(known[:, :1], targets.shape[1], axis=1)
    train, val = sides["train"], sides["val"]
    unknown = [name for k, name in enumerate(outputs) if not known[train, k].any()]
    if unknown:
        raise ValueError(
            f"{where}: no known label for {', '.join(unknown)} among the {len(train)} training "
            "image(s) (all unknown): nothing to learn; fix the labels or train other outputs"
        )
    if not known[val].any():
        raise ValueError(
            f"{where}: none of the {len(val)} validation image(s) has a known label, so no "
            "validation loss can choose the kept epoch; use a split with labelled validation images"
        )
    weak: dict[str, str] = {}
    unlearnable: list[str] = []
    for k, name in enumerate(outputs):
        labels = targets[train, k][known[train, k]]
        if multiclass and not labels.any():
            weak[name] = "no training image: it cannot be learned"
            unlearnable.append(name)
        elif not multiclass and len(np.unique(labels)) < 2:
            only = "positive" if labels[0] == 1 else "negative"
            weak[name] = f"only {only} training labels ({len(labels)}): it cannot be learned"
            unlearnable.append(name)
        elif not known[val, k].any():
            weak[name] = "no known label on the validation side"
    if len(unlearnable) == len(outputs):
        raise ValueError(
            f"{where}: no output can be learned ({'; '.join(f'{n}: {weak[n]}' for n in outputs)}"
            "); use a split whose training side holds both classes"
        )
    for name, why in weak.items():
        log.warning("%s: %s has %s", where, name, why)
    return weak


def _targets(
    index: pd.DataFrame, recipe: Recipe, data: str | Path
) -> tuple[tuple[str, ...], np.ndarray, pd.DataFrame]:
    findings = [c.removeprefix(FINDING_PREFIX) for c in finding_columns(index)]
    classes = sorted(index["label"].dropna().unique().tolist())  # as ImageFolder orders them
    if recipe.task == "multilabel":
        wanted = findings if recipe.findings == ("all",) else list(recipe.findings)
        absent = [f for f in wanted if f not in findings]
        if absent or not wanted:
            raise ValueError(
                f"recipe findings: {absent or 'all'} not in {data} (its findings: "
                f"{', '.join(findings) or 'none'})"
            )
        columns = [finding_column(f) for f in wanted]
        return tuple(wanted), index[columns].to_numpy(np.float32), index[columns]
    if recipe.task == "binary":
        if recipe.positive in findings:
            column = finding_column(recipe.positive)
            return (recipe.positive,), index[[column]].to_numpy(np.float32), index[[column]]
        if recipe.positive not in classes:
            raise ValueError(
                f"recipe positive: {recipe.positive!r} is neither a finding nor a class of "
                f"{data} (findings: {', '.join(findings) or 'none'}; classes: "
                f"{', '.join(classes) or 'none'})"
            )
        known = index["label"].notna().to_numpy()
        target = np.where(known, (index["label"] == recipe.positive).to_numpy(bool), np.nan)
        return (recipe.positive,), target.astype(np.float32)[:, None], index[["label"]]
    if len(classes) < 2:
        raise ValueError(f"recipe task multiclass: {data} has {len(classes)} label class(es)")
    codes = pd.Categorical(index["label"], categories=classes).codes
    onehot = np.eye(len(classes), dtype=np.float32)[codes]
    onehot[codes < 0] = np.nan
    return tuple(classes), onehot, index[["label"]]


def _sides(image_ids: pd.Series, split: str | Path, column: str) -> dict[str, np.ndarray]:
    table = read_split_table(split)
    if column not in split_columns(table):
        raise ValueError(
            f"--split-column {column}: not a split column of {split} (its split columns: "
            f"{', '.join(split_columns(table)) or 'none'})"
        )
    problems = validate_split_table(table, image_ids.astype("string"))
    if problems:
        raise ValueError(f"{split}: {'; '.join(problems[:3])}")
    side = image_ids.map(table.set_index("image_id")[column]).to_numpy()
    sides = {s: np.flatnonzero(side == s) for s in ("train", "val", "test")}
    for needed in ("train", "val"):
        if not len(sides[needed]):
            raise ValueError(
                f"{split}: column {column} puts no image in {needed}; training needs a "
                "training and a validation side (the kept model has the lowest validation loss)"
            )
    return sides


class TensorBatches:
    """Iterate ``(images, rows)`` batches: (B, 1, H, W) pixels and their row numbers.

    ``rows`` selects the images (e.g. one split); ``shuffle`` draws a new order each epoch from
    ``seed`` + epoch, so runs are reproducible and resumable at an epoch boundary. Pixels are
    float32 in [0, 1], or the stored uint8 with ``scale=False`` (a quarter of the bytes to move
    to a device). ``shard=(rank, world)`` yields only this rank's share of every batch
    (``batch[rank::world]``); with several ranks a last batch smaller than ``world`` is dropped
    so that every rank takes the same number of steps.
    """

    def __init__(
        self,
        data: str | Path | np.ndarray,
        rows: np.ndarray | None = None,
        batch_size: int = 32,
        shuffle: bool = True,
        seed: int = 0,
        drop_last: bool = False,
        scale: bool = True,
        shard: tuple[int, int] = (0, 1),
    ) -> None:
        self.images = load_tensor(data) if isinstance(data, (str, Path)) else data
        self.rows = np.arange(len(self.images)) if rows is None else np.asarray(rows)
        self.batch_size, self.shuffle, self.seed = batch_size, shuffle, seed
        self.drop_last, self.scale, self.shard = drop_last, scale, shard
        self.epoch = 0

    def __len__(self) -> int:
        full, rest = divmod(len(self.rows), self.batch_size)
        return full + int(rest > 0 and not self.drop_last and rest >= self.shard[1])

    def __iter__(self) -> Iterator[tuple[torch.Tensor, np.ndarray]]:
        for batch in self.row_batches():
            pixels = torch.from_numpy(self.images[batch]).unsqueeze(1)
            yield (pixels.float().div_(255.0) if self.scale else pixels), batch

    def row_batches(self) -> Iterator[np.ndarray]:
        """The next epoch's batches as row numbers only (for inputs held elsewhere)."""
        order = self.rows
        if self.shuffle:
            order = np.random.default_rng([self.seed, self.epoch]).permutation(self.rows)
        self.epoch += 1
        rank, world = self.shard
        for i in range(len(self)):
            yield np.sort(order[i * self.batch_size : (i + 1) * self.batch_size])[rank::world]


_END = object()


class Prefetcher:
    """Iterate ``batches`` while a background thread already reads the next ones.

    ``pin``: copy each batch's tensor into pinned host memory (for non-blocking copies to a
    GPU). ``waited`` accumulates the seconds the consumer spent blocked on the next batch.
    """

    def __init__(self, batches: Iterable[tuple], depth: int = 2, pin: bool = False) -> None:
        self.batches, self.depth, self.pin = batches, depth, pin
        self.waited = 0.0

    def __iter__(self) -> Iterator[tuple]:
        ready: queue.Queue = queue.Queue(self.depth)
        stop = threading.Event()

        def put(item: object) -> bool:
            while not stop.is_set():
                try:
                    ready.put(item, timeout=0.1)
                    return True
                except queue.Full:
                    continue
            return False

        def read() -> None:
            try:
                for first, *rest in self.batches:
                    if not put((first.pin_memory() if self.pin else first, *rest)):
                        return
                put(_END)
            except BaseException as err:  # handed to the consumer, raised there
                put(err)

        thread = threading.Thread(target=read, name="cxr-prefetch", daemon=True)
        thread.start()
        try:
            while True:
                start = time.perf_counter()
                item = ready.get()
                self.waited += time.perf_counter() - start
                if item is _END:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            stop.set()
            thread.join()

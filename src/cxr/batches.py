"""Float training batches straight from a preprocessed tensor file (no image decoding).

Reads whole batches with one fancy-indexing gather from the memory map (indices sorted within
a batch for locality), so a batch costs one copy of its pixels. Normalisation and augmentation
are left to the training device.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from cxr.preprocess import load_tensor


class TensorBatches:
    """Iterate ``(images, rows)`` batches: float32 (B, 1, H, W) in [0, 1] and their row numbers.

    ``rows`` selects the images (e.g. one split); ``shuffle`` draws a new order each epoch from
    ``seed`` + epoch, so runs are reproducible and resumable at an epoch boundary.
    """

    def __init__(
        self,
        data: str | Path | np.ndarray,
        rows: np.ndarray | None = None,
        batch_size: int = 32,
        shuffle: bool = True,
        seed: int = 0,
        drop_last: bool = False,
    ) -> None:
        self.images = load_tensor(data) if isinstance(data, (str, Path)) else data
        self.rows = np.arange(len(self.images)) if rows is None else np.asarray(rows)
        self.batch_size, self.shuffle, self.seed, self.drop_last = (
            batch_size,
            shuffle,
            seed,
            drop_last,
        )
        self.epoch = 0

    def __len__(self) -> int:
        n = len(self.rows)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, np.ndarray]]:
        order = self.rows
        if self.shuffle:
            order = np.random.default_rng([self.seed, self.epoch]).permutation(self.rows)
        self.epoch += 1
        for i in range(len(self)):
            batch = np.sort(order[i * self.batch_size : (i + 1) * self.batch_size])
            pixels = torch.from_numpy(self.images[batch]).unsqueeze(1)
            yield pixels.float().div_(255.0), batch

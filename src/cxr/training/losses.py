"""Training losses with unknown labels masked out.

Each loss returns ``(total, count)``: the summed loss of the known labels and what to divide
it by. Keeping the two apart lets data-parallel ranks divide by the count of the *global*
batch, so a sharded step computes exactly the gradient of one process. Targets are float
(B, K): 1 / 0 / NaN per output for sigmoid tasks, one-hot rows (NaN rows unknown) for
multi-class.

- ``bce``: plain binary cross-entropy, the mean over known labels.
- ``weighted_bce`` (seed 000): w+ = negatives / all and w- = positives / all, counted over
  every known training label.
- ``label_weighted_bce`` (seed 001): the same weights per output, from its own frequencies.
- ``cross_entropy`` / ``weighted_cross_entropy``: softmax cross-entropy, optionally with class
  weights all / (classes x class count) ("balanced"), normalised by the summed weights.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


class MaskedLoss:
    """A loss of logits (B, K) against float targets (B, K) with NaN for unknown."""

    def __init__(self, name: str, train_targets: np.ndarray) -> None:
        self.name = name
        self.weights = _weights(name, train_targets)

    def __call__(
        self, logits: torch.Tensor, targets: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        logits = logits.float()
        weights = None if self.weights is None else self.weights.to(logits.device)
        if self.name.endswith("cross_entropy"):
            return _cross_entropy(logits, targets, weights)
        return _bce(logits, targets, weights)

    def mean(self, logits: torch.Tensor, targets: torch.Tensor) -> float:
        """The loss of a whole set (e.g. all validation images) as one number."""
        total, count = self(logits, targets)
        return float(total / count.clamp_min(1e-12))


def _bce(
    logits: torch.Tensor, targets: torch.Tensor, weights: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor]:
    known = ~torch.isnan(targets)
    y = torch.where(known, targets, torch.zeros_like(targets))
    loss = F.binary_cross_entropy_with_logits(logits, y, reduction="none")
    if weights is not None:  # rows: w+, w-
        loss = loss * (y * weights[0] + (1 - y) * weights[1])
    return torch.where(known, loss, torch.zeros_like(loss)).sum(), known.sum().float()


def _cross_entropy(
    logits: torch.Tensor, targets: torch.Tensor, weights: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor]:
    known = ~torch.isnan(targets[:, 0])
    onehot = torch.where(known[:, None], targets, torch.zeros_like(targets))
    loss = -(onehot * F.log_softmax(logits, dim=1)).sum(1)
    weight = known.float() if weights is None else onehot @ weights
    return (loss * weight).sum(), weight.sum()


def _weights(name: str, targets: np.ndarray) -> torch.Tensor | None:
    """The class weights a loss derives from the training targets (None: unweighted)."""
    known = ~np.isnan(targets)
    positives = np.where(known, targets, 0).sum(0)
    counts = known.sum(0)
    if name == "weighted_bce":
        positives, counts = positives.sum(), counts.sum()
    if name in ("weighted_bce", "label_weighted_bce"):
        counts = np.maximum(counts, 1)
        w_pos, w_neg = (counts - positives) / counts, positives / counts
        shape = (2, targets.shape[1])
        weights = np.broadcast_to(np.stack([w_pos, w_neg]).reshape(2, -1), shape)
        return torch.tensor(weights, dtype=torch.float32)
    if name == "weighted_cross_entropy":
        per_class = np.where(known[:, :1], targets, 0).sum(0)
        balanced = per_class.sum() / (len(per_class) * np.maximum(per_class, 1))
        return torch.tensor(np.where(per_class > 0, balanced, 0.0), dtype=torch.float32)
    return None

"""Class heatmaps of a batch: CAM, Grad-CAM and Grad-CAM++, upsampled and scaled to [0, 1].

- ``cam`` (seed 000): ``M_c = sum_k w_ck f_k`` from the last feature map ``f`` and the head's
  weights ``w`` (Zhou et al. 2016), computed for the whole batch in one forward pass under
  ``torch.inference_mode``. Only for models ending in global average pooling and one linear
  layer; this is checked numerically on the model itself.
- ``gradcam`` / ``gradcam++`` (seeds 001, 002, 004): ``pytorch_grad_cam`` on
  :func:`~cxr.training.models.feature_layer`, one forward + backward per target column.
  The target of an output is its raw logit (:class:`LogitTarget`), whatever the activation:
  for a one-logit binary model the positive class *is* that logit, and for sigmoid
  multi-label outputs each logit is its own finding's score.

Every map is upsampled bilinearly to the input's size, then min-max scaled per map (a
constant map becomes 0). Hooks live only inside one call; parameters do not collect gradients
(the input carries them instead), so thousands of images leave nothing behind.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from pytorch_grad_cam import GradCAM, GradCAMPlusPlus
from torch import nn

from cxr.explanation.settings import LAYER_CHOICES
from cxr.training.models import feature_layer, head

METHODS = ("cam", "gradcam", "gradcam++")
_GRAD_METHODS = {"gradcam": GradCAM, "gradcam++": GradCAMPlusPlus}

#: Chooses each image's target outputs (B, J) from the batch's logits (B, C).
Chooser = Callable[[torch.Tensor], torch.Tensor]


class LogitTarget:
    """Grad-CAM target: the raw logit of output ``index`` of one image's output vector.

    ``pytorch_grad_cam``'s own ``BinaryClassifierOutputTarget(0)`` returns ``-logit`` (the map
    of the *negative* class) and its softmax target is constant on a one-logit model (zero
    gradient), so neither is used; the logit is the score of the class before its sigmoid or
    softmax, as Grad-CAM prescribes.
    """

    def __init__(self, index: int) -> None:
        self.index = int(index)

    def __call__(self, output: torch.Tensor) -> torch.Tensor:
        return output[..., self.index]


@dataclass(frozen=True)
class Explanation:
    """One batch's logits (B, C), target outputs (B, J) and heatmaps (B, J, H, W) in [0, 1]."""

    logits: torch.Tensor
    targets: torch.Tensor
    maps: torch.Tensor


def top_k(scores: torch.Tensor, k: int) -> torch.Tensor:
    """Indices (B, min(k, C)) of each row's ``k`` highest scores, highest first."""
    if k < 1:
        raise ValueError(f"top_k must be >= 1, got {k}")
    return torch.topk(scores, min(k, scores.shape[1]), dim=1, sorted=True).indices


def normalise(maps: torch.Tensor) -> torch.Tensor:
    """Each (H, W) map of ``maps`` min-max scaled to [0, 1]; a constant map becomes all 0."""
    flat = maps.flatten(-2)
    low = flat.amin(-1, keepdim=True)
    span = flat.amax(-1, keepdim=True) - low
    scaled = torch.where(span > 0, (flat - low) / span.clamp_min(1e-12), torch.zeros_like(flat))
    return scaled.view_as(maps)


def upsample(maps: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(B, J, h, w) maps resized bilinearly to (B, J, *size) (pixel centres aligned)."""
    if tuple(maps.shape[-2:]) == tuple(size):
        return maps
    return F.interpolate(maps, size=size, mode="bilinear", align_corners=False)


def class_activation_maps(
    features: torch.Tensor, weights: torch.Tensor, targets: torch.Tensor
) -> torch.Tensor:
    """Raw CAMs (B, J, h, w): ``sum_k weights[c, k] * features[b, k]``, ``c = targets[b, j]``."""
    return torch.einsum("bkhw,bjk->bjhw", features.float(), weights.float()[targets])


@contextlib.contextmanager
def _captured_output(module: nn.Module) -> Iterator[list[torch.Tensor]]:
    seen: list[torch.Tensor] = []
    handle = module.register_forward_hook(lambda _m, _args, out: seen.append(out))
    try:
        yield seen
    finally:
        handle.remove()


@contextlib.contextmanager
def _frozen(model: nn.Module) -> Iterator[None]:
    """Parameters without ``requires_grad`` inside the block (restored after it)."""
    flags = [(p, p.requires_grad) for p in model.parameters()]
    for p, _ in flags:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)


class Explainer:
    """Heatmaps of one model by one method; call it on normalised (B, 1, H, W) batches."""

    def __init__(self, model: nn.Module, method: str, layer: str = "last") -> None:
        if method not in METHODS:
            raise ValueError(f"unknown CAM method {method!r}; known: {', '.join(METHODS)}")
        if layer not in LAYER_CHOICES:
            raise ValueError(f"unknown layer {layer!r}; known: {', '.join(LAYER_CHOICES)}")
        if method == "cam" and layer != "last":
            raise ValueError(f"CAM weighs the last feature map by the head; layer {layer!r} "
                             "needs Grad-CAM (method gradcam or gradcam++)")  # fmt: skip
        self.model, self.method = model.eval(), method
        name = type(model).__name__
        try:
            self.layer = feature_layer(model, previous=layer == "previous")
        except ValueError:
            raise ValueError(
                f"method {method!r}: {name} has no convolutional feature map (e.g. logistic "
                "regression on pixels), so neither CAM nor Grad-CAM is defined for it"
            ) from None
        self.head = head(model)
        self.device = next(model.parameters()).device
        self._checked = method != "cam"

    def __call__(self, x: torch.Tensor, choose: Chooser) -> Explanation:
        x = x.to(self.device, non_blocking=True).float()
        if self.method == "cam":
            return self._cam(x, choose)
        return self._grad_cam(x, choose)

    def _cam(self, x: torch.Tensor, choose: Chooser) -> Explanation:
        with torch.inference_mode(), _captured_output(self.layer) as seen:
            logits = self.model(x)
            features = seen[-1]
            if not self._checked:
                self._check_pooled_head(features, logits)
            targets = choose(logits).to(self.device)
            raw = class_activation_maps(features, self.head.weight, targets)
            maps = normalise(upsample(raw, tuple(x.shape[-2:])))
        return Explanation(logits.float().cpu(), targets.cpu(), maps.cpu())

    def _check_pooled_head(self, features: torch.Tensor, logits: torch.Tensor) -> None:
        """CAM is exact only if logits = head(spatial mean of the feature map)."""
        fits = features.ndim == 4 and features.shape[1] == self.head.in_features
        if fits:
            pooled = self.head(features.float().mean((2, 3)))
            scale = logits.float().abs().max().clamp_min(1.0)
            fits = bool(((pooled - logits.float()).abs().max() <= 1e-3 * scale).item())
        if not fits:
            raise ValueError(
                f"method 'cam': {type(self.model).__name__} does not end in global average "
                "pooling and one linear layer (e.g. a flatten + dense head), so CAM is not "
                "defined for it; use method 'gradcam' or 'gradcam++'"
            )
        self._checked = True

    def _grad_cam(self, x: torch.Tensor, choose: Chooser) -> Explanation:
        with torch.inference_mode():
            logits = self.model(x).float()
        targets = choose(logits).cpu()
        columns = []
        with _frozen(self.model):
            engine = _GRAD_METHODS[self.method](self.model, [self.layer])
            engine.compute_input_gradient = True  # gradients flow to the input, not the weights
            try:
                for j in range(targets.shape[1]):
                    wanted = [LogitTarget(t) for t in targets[:, j].tolist()]
                    columns.append(torch.from_numpy(engine(x, wanted)))
                    engine.outputs = None  # drop the retained graph now
            finally:
                engine.activations_and_grads.release()
        maps = normalise(torch.stack(columns, 1)) if columns else x.new_zeros((len(x), 0))
        return Explanation(logits.cpu(), targets, maps.cpu())


def heatmaps(model: nn.Module, x: torch.Tensor, targets: torch.Tensor, method: str) -> torch.Tensor:
    """Heatmaps (B, J, H, W) in [0, 1] of ``targets`` (B, J) for the batch ``x``."""
    return Explainer(model, method)(x, lambda _logits: targets).maps

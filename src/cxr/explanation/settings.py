"""The settings of ``cxr cam`` and ``cxr cam-compare``, and the one place their defaults live:
the command line, the functions and params.yaml's ``cam`` / ``compare_cams`` blocks (filled in
by :mod:`cxr.plan`) all read them here."""

from __future__ import annotations

from dataclasses import dataclass

#: The heatmap methods; ``auto``: CAM where a model ends in pooling and one linear layer, else
#: Grad-CAM.
METHOD_CHOICES: tuple[str, ...] = ("auto", "cam", "gradcam", "gradcam++")

#: The feature map drawn: the last, or the one before the last downsampling (twice the side:
#: 4x4 instead of 2x2 at 64 px, where a map can point; Grad-CAM only).
LAYER_CHOICES: tuple[str, ...] = ("last", "previous")


@dataclass(frozen=True)
class ExplainedImages:
    """Which images are explained, and how: what ``cam`` and ``cam-compare`` share."""

    side: str = "test"
    column: str = "split"
    method: str = "auto"


@dataclass(frozen=True)
class CamSettings(ExplainedImages):
    """``cxr cam``: the top-k outputs of each explained image, and the figure grid."""

    top_k: int = 4
    layer: str = "last"  # the feature map drawn: last, or previous (twice the side; Grad-CAM)
    max_images: int | None = None  # explained images (those with boxes first); None: all
    batch_size: int = 32
    figure_images: int = 4


@dataclass(frozen=True)
class CompareSettings(ExplainedImages):
    """``cxr cam-compare``: one figure row per image, one column per model."""

    images: int = 4
    output: str | None = None  # the output drawn; None: the models' only output

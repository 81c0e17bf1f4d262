"""Random geometric augmentation of whole batches, on the training device.

Every image of a batch gets its own flip, rotation, shift, zoom and shear, drawn from a seeded
CPU :class:`torch.Generator` (the same numbers on any device), composed into one affine matrix
per image and applied with ``affine_grid`` + ``grid_sample``. Parameters are drawn for the
*global* batch, so data-parallel ranks that each take a slice of it see exactly what one
process would.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from cxr.core.settings import from_mapping


@dataclass(frozen=True)
class Augment:
    """Augmentation settings; all zero means none.

    ``hflip``/``vflip``: probability of a flip; ``rotation`` and ``shear``: maximum angle in
    degrees either way; ``shift``: maximum translation as a fraction of the side; ``zoom``:
    maximum relative scale change (0.1 draws scales in [0.9, 1.1]).
    """

    hflip: float = 0.0
    vflip: float = 0.0
    rotation: float = 0.0
    shift: float = 0.0
    zoom: float = 0.0
    shear: float = 0.0

    def __post_init__(self) -> None:
        for name in ("hflip", "vflip"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(
                    f"augment.{name} is a probability in [0, 1], got {getattr(self, name)}"
                )
        for name in ("rotation", "shift", "zoom", "shear"):
            if getattr(self, name) < 0:
                raise ValueError(f"augment.{name} must be >= 0, got {getattr(self, name)}")
        if self.zoom >= 1 or self.shift >= 1 or self.shear >= 90:
            raise ValueError("augment: zoom and shift must be below 1 and shear below 90 degrees")

    @classmethod
    def from_dict(cls, cfg: object) -> Augment:
        return from_mapping(cls, cfg, "recipe augment")

    @property
    def active(self) -> bool:
        return any(getattr(self, f) > 0 for f in self.__dataclass_fields__)

    @property
    def geometric(self) -> bool:
        """Whether anything but flips is asked for (which needs resampling)."""
        return any(v > 0 for v in (self.rotation, self.shift, self.zoom, self.shear))


def draw(settings: Augment, n: int, generator: torch.Generator) -> torch.Tensor:
    """Per-image affine matrices (n, 2, 3) in ``affine_grid``'s normalised coordinates."""

    def uniform(limit: float) -> torch.Tensor:
        return (torch.rand(n, generator=generator, dtype=torch.float64) * 2 - 1) * limit

    def flip(p: float) -> torch.Tensor:
        return 1 - 2 * (torch.rand(n, generator=generator, dtype=torch.float64) < p).double()

    fx, fy = flip(settings.hflip), flip(settings.vflip)
    angle = torch.deg2rad(uniform(settings.rotation))
    shear = torch.deg2rad(uniform(settings.shear))
    scale = 1 + uniform(settings.zoom)
    tx, ty = uniform(2 * settings.shift), uniform(2 * settings.shift)
    cos, sin = torch.cos(angle), torch.sin(angle)
    # output -> input map: rotate, then shear along x, then zoom out by `scale`, then flip
    a = torch.stack([cos, -sin + torch.tan(shear) * cos], -1)
    b = torch.stack([sin, cos + torch.tan(shear) * sin], -1)
    linear = torch.stack([a, b], -2) / scale[:, None, None]
    linear = linear * torch.stack([fx, fy], -1)[:, None, :]
    return torch.cat([linear, torch.stack([tx, ty], -1)[:, :, None]], -1).float()


def apply(images: torch.Tensor, matrices: torch.Tensor, settings: Augment) -> torch.Tensor:
    """Warp float ``images`` (B, C, H, W) by per-image ``matrices``; empty borders are black.

    Flips alone are exact (no resampling); anything else resamples bilinearly.
    """
    matrices = matrices.to(images.device, non_blocking=True)
    if not settings.geometric:
        flip_x = (matrices[:, 0, 0] < 0).view(-1, 1, 1, 1)
        flip_y = (matrices[:, 1, 1] < 0).view(-1, 1, 1, 1)
        images = torch.where(flip_x, images.flip(-1), images)
        return torch.where(flip_y, images.flip(-2), images)
    grid = F.affine_grid(matrices.to(images.dtype), list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def epoch_generator(seed: int, epoch: int) -> torch.Generator:
    """The augmentation generator of one epoch: a resumed run draws the same numbers."""
    return torch.Generator().manual_seed(seed_of(seed, epoch, "augment"))


def seed_of(*parts: object) -> int:
    """A 63-bit seed derived from ``parts`` (stable across processes and Python versions)."""
    digest = hashlib.blake2b(repr(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1

"""Presets: what `cxr preprocess` does to each image, as params.yaml names them.

A preset is an ordered list of steps ending in a resize, as the seed papers order them, e.g.
seed 000: histogram equalisation, 3x3 median filter, resize to 224. Its defaults live here
only (the plan fills params.yaml's presets from them). Imports nothing heavy.
"""

from __future__ import annotations

from dataclasses import dataclass

from cxr.core.settings import from_mapping

STEPS = ("equalize", "clahe", "median3", "resize")
FITS = ("stretch", "pad", "crop")


@dataclass(frozen=True)
class Preset:
    """Steps (in order), output side, and how the aspect ratio is handled by the resize.

    fit: ``stretch`` resizes to size x size; ``pad`` keeps the aspect ratio and pads with black;
    ``crop`` keeps the aspect ratio and crops the centre. ``name``: the preset's name in
    params.yaml, recorded with the tensors so that nothing reads it from a folder name.
    """

    size: int
    steps: tuple[str, ...] = ("resize",)
    fit: str = "stretch"
    clahe_clip: float = 2.0
    clahe_tile: int = 8
    name: str = ""

    def __post_init__(self) -> None:
        unknown = [s for s in self.steps if s not in STEPS]
        if unknown:
            raise ValueError(f"unknown preprocessing step(s) {unknown}; known: {', '.join(STEPS)}")
        if self.steps.count("resize") != 1:
            raise ValueError(f"a preset needs exactly one 'resize' step, got {list(self.steps)}")
        if self.fit not in FITS:
            raise ValueError(f"unknown fit {self.fit!r}; choose one of {', '.join(FITS)}")
        if self.size < 8:
            raise ValueError(f"output size {self.size} is too small")

    @classmethod
    def from_dict(cls, cfg: dict) -> Preset:
        """A preset from its params.yaml / JSON form; unknown keys are named."""
        return from_mapping(cls, cfg, "preset")

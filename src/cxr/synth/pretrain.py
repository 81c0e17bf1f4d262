"""The synthetic pretraining corpus: the stand-in for ImageNet where its weights are not cached.

Chest phantoms in the NIH ChestX-ray14 layout (so :mod:`cxr.ingest.pretrain` reads it with the
NIH reader), drawn apart from every evaluation set: its own generator seed (the run's seed plus
:data:`SEED_OFFSET`) and patient ids from :data:`FIRST_PATIENT` on, above every id of the NIH
miniature and of the real NIH set (30,805 patients). ``cxr duplicates`` over the corpus and the
NIH tensors together proves that no picture is shared (see the workflow test).
"""

from __future__ import annotations

from pathlib import Path

from cxr.synth import nih

DEFAULT_N = 1500
DEFAULT_SIZE = 128
VARIANTS = ("box",)
#: Added to the run's seed: the corpus never repeats the NIH miniature's images.
SEED_OFFSET = 99
#: The corpus's first patient id (8 digits, as NIH file names hold them).
FIRST_PATIENT = 50_000_001


def generate(out: Path, n: int, size: int, seed: int, variant: str) -> None:
    """Write ``n`` pretraining images of side ``size`` into ``out`` (NIH layout)."""
    nih.generate(out, n, size, seed + SEED_OFFSET, variant, first_patient=FIRST_PATIENT)

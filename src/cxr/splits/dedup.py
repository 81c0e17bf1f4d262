"""Exact duplicates: a digest of an image's pixels (near-duplicates: `.near_duplicates`)."""

from __future__ import annotations

import hashlib

import numpy as np


def content_digest(img: np.ndarray) -> str:
    """Digest of the exact pixel content (exact duplicates only)."""
    return hashlib.blake2b(np.ascontiguousarray(img).tobytes(), digest_size=12).hexdigest()

"""Exact and near-duplicate images, for datasets without patient ids.

A difference hash (dHash) of each preprocessed image: the image is area-resized to
(side + 1) x side and each bit says whether a pixel is brighter than its right neighbour.
Images whose hashes differ in at most ``max_distance`` bits are near-duplicates; duplicate
groups are the connected components of that relation.
"""

from __future__ import annotations

import hashlib

import cv2
import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

HASH_SIDE = 16  # 256-bit hashes: chest radiographs look alike at 8x8


def dhash(img: np.ndarray, side: int = HASH_SIDE) -> np.ndarray:
    """The dHash of a 2D uint8 image as ``side * side / 64`` uint64 words."""
    small = cv2.resize(img, (side + 1, side), interpolation=cv2.INTER_AREA).astype(np.int16)
    bits = (small[:, 1:] > small[:, :-1]).ravel()
    return np.packbits(bits).view(">u8").astype(np.uint64)


def dhashes(images: np.ndarray, side: int = HASH_SIDE) -> np.ndarray:
    """dHashes of a stack (N, H, W) of uint8 images: (N, words) uint64."""
    return (
        np.stack([dhash(img, side) for img in images])
        if len(images)
        else np.zeros((0, side * side // 64), np.uint64)
    )


def content_digest(img: np.ndarray) -> str:
    """Digest of the exact pixel content (exact duplicates only)."""
    return hashlib.blake2b(np.ascontiguousarray(img).tobytes(), digest_size=12).hexdigest()


def duplicate_groups(hashes: np.ndarray, max_distance: int, chunk: int = 512) -> np.ndarray:
    """Component label of every image under "Hamming distance <= max_distance".

    Compares all pairs in chunks (memory ``chunk x N``); about a second for 20,000 images.
    """
    n = len(hashes)
    rows, cols = [], []
    for start in range(0, n, chunk):
        block = hashes[start : start + chunk]
        distance = np.zeros((len(block), n), np.uint16)
        for w in range(hashes.shape[1]):  # one word at a time: memory chunk x N
            distance += np.bitwise_count(block[:, w, None] ^ hashes[None, :, w])
        i, j = np.nonzero(distance <= max_distance)
        keep = i + start < j  # each pair once, no self-pairs
        rows.append(i[keep] + start)
        cols.append(j[keep])
    r, c = np.concatenate(rows or [[]]).astype(int), np.concatenate(cols or [[]]).astype(int)
    graph = coo_matrix((np.ones(len(r), bool), (r, c)), shape=(n, n))
    return connected_components(graph, directed=False)[1]

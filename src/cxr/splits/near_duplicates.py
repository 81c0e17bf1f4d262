"""Near-duplicate images: an image and its re-encoded, re-exposed, cropped, rotated copies.

Method, in four streamed or chunked passes over a uint8 stack (N, S, S):

1. Reduce. A grey opening erases thin bright strokes (burnt-in text) and an area resize gives a
   32 x 32 thumbnail; the search feature is its central 80% at 16 x 16, blurred and normalised
   (2 KB per image is all that is kept).
2. Search. Features are centred, projected on 16 principal axes and each image's
   ``NEIGHBOURS`` nearest neighbours are found in an inverted file (k-means lists of about
   ``LIST_SIZE`` images; an image is compared with the ``PROBES`` lists nearest to its own).
   Every pair is a candidate when N <= 200.
3. Screen. Each candidate's second thumbnail is registered onto the first (Gauss-Newton on an
   affine warp with gain/offset at 16 px); 1 - NCC of the band-passed 32 px thumbnails above
   ``SCREEN_THRESHOLD`` rejects the pair. This is where most of the time goes.
4. Re-check. Survivors are read again from the stack and registered coarse to fine (16 to
   128 px). Two distances are measured over the central 70%: ``coarse``, 1 - NCC of band-passed
   64 px thumbnails of the opened images (difference of Gaussians, sigma 0.7 and 3); ``fine``,
   1 - NCC of the finest detail (sigma 0.5 to 1.5) at up to 224 px, pixels near bright thin
   strokes masked out and the sharper image blurred to match the blurrier one when that helps.
   The distance is ``max(coarse, fine * DISTANCE_THRESHOLD / FINE_THRESHOLD)``; pairs at or
   under ``DISTANCE_THRESHOLD`` are near-duplicates, groups are connected components.

Torch and OpenCV run single-threaded inside, with ``WORKERS`` Python threads over chunks: on a
shared, oversubscribed machine, multi-threaded torch kernels wait on each other (5x slower).

Evidence (benchmarks/near_duplicates.py; 51 real NIH radiographs of 51 patients with 7 copies
each made at source resolution: JPEG q70-95, 16-bit PNG, brightness/contrast +-10%, crop up to
5% per axis and rescale, rotation +-3 degrees, borders and burnt-in text of 1-4% of the area,
alone and combined, then decoded and area-resized to 224 like preprocessing): copies at most
0.060 apart, distinct patients at least 0.356, so all 357 copies join their original and none of
81,600 distinct pairs merges (the old 256-bit dHash at 6 bits kept 15% of the copies). The
COVID-19 Radiography phantoms, which all share one anatomy model, come closest: 0.085.
"""

from __future__ import annotations

import itertools
import mmap
import os
from collections.abc import Callable, Hashable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple, TypeVar

import cv2
import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

SCREEN_SIDE = 16  # screen registration side (its band is compared at twice that)
FEATURE_SIDE = 16  # search feature side
FEATURE_CROP = 0.8  # central share of the side that the search feature sees
FEATURE_DIMS = 16  # principal axes kept for the search
NEIGHBOURS = 5  # candidates per image
LIST_SIZE = 64  # images per inverted-file list
PROBES = 4  # lists nearest to an image that its list searches
ALL_PAIRS = 20_000  # up to this many pairs (N <= 200) every pair is a candidate
SCREEN_ITERATIONS = 4  # Gauss-Newton iterations of the screen, at 16 px
SCREEN_BAND = (0.7, 3.0)  # difference-of-Gaussians sigmas of the screen band, in its pixels
#: Screen distance (1 - NCC at 32 px after a 16 px registration) above which a candidate is
#: dropped before the re-check.
SCREEN_THRESHOLD = 0.08
REGISTRATION_LEVELS = ((16, 6), (32, 4), (64, 3), (128, 2))  # (side, iterations), coarse first
WORK_SIDE = 64  # side of the coarse comparison
BAND = (0.7, 3.0)  # its difference-of-Gaussians sigmas, in 64-px pixels
FINE_SIDE = 224  # largest side of the fine comparison
FINE_BAND = (0.7, 1.5)  # its difference-of-Gaussians sigmas, in pixels of that side
FINE_BLURS = (0.8, 1.2)  # blurs tried on either image to match a softened copy
TEXT_CONTRAST = 24  # grey levels over the opening that mark a bright thin stroke (masked)
MARGIN = 0.15  # share of each side ignored by the comparisons (borders, rotated corners)
#: Coarse re-check distance at or under which two images are near-duplicates.
DISTANCE_THRESHOLD = 0.07
#: Fine re-check distance that counts as much as ``DISTANCE_THRESHOLD``.
FINE_THRESHOLD = 0.13
WORKERS = min(4, os.cpu_count() or 1)  # threads over chunks (of images, of pairs)
SCREEN_CHUNK = 4096  # pairs per screening chunk
RECHECK_CHUNK = 32  # pairs per re-check chunk

T = TypeVar("T")


#: Re-checked distances by the two images' own ids (see :func:`near_duplicate_pairs`).
Measured = dict[tuple[Hashable, Hashable], float]


def near_duplicate_pairs(
    images: np.ndarray,
    batch: int = 2048,
    ids: Sequence[Hashable] | None = None,
    measured: Measured | None = None,
) -> pd.DataFrame:
    """Confirmed near-duplicate pairs of a stack (N, S, S) of uint8 images (a memmap is fine).

    Columns ``i`` < ``j`` (row positions) and ``distance`` (smaller = more alike). A caller that
    searches overlapping stacks of one pool (the cascade's sets, round after round) passes each
    row's id in the pool and one ``measured`` for all its calls: a pair of ids re-checked once
    is not re-checked again (the re-check is most of the time).
    """
    with single_threaded():
        thumbs, features = reduce_images(images, batch)
        i, j = candidate_pairs(features)
        kept = screen(thumbs, i, j) <= SCREEN_THRESHOLD
        i, j = i[kept], j[kept]
        if measured is None:
            distance = recheck(images, i, j)
        elif ids is None:
            raise TypeError("near_duplicate_pairs: `measured` needs the rows' `ids`")
        else:
            distance = _recheck_new(images, i, j, ids, measured)
    keep = distance <= DISTANCE_THRESHOLD
    return pd.DataFrame({"i": i[keep], "j": j[keep], "distance": distance[keep]})


def _recheck_new(
    images: np.ndarray, i: np.ndarray, j: np.ndarray, ids: Sequence[Hashable], measured: Measured
) -> np.ndarray:
    """:func:`recheck` of the pairs whose ids ``measured`` lacks; every pair's distance."""
    keys = [(ids[a], ids[b]) for a, b in zip(i.tolist(), j.tolist(), strict=True)]
    new = np.array([key not in measured for key in keys], dtype=bool)
    if new.any():
        fresh = recheck(images, i[new], j[new])
        measured.update(zip(itertools.compress(keys, new), fresh.tolist(), strict=True))
    return np.array([measured[key] for key in keys], dtype=np.float64)


def near_duplicate_groups(
    images: np.ndarray, ids: Sequence[Hashable] | None = None, measured: Measured | None = None
) -> tuple[np.ndarray, pd.DataFrame]:
    """Component label of every image (singletons get their own) and the confirmed pairs
    (``ids`` and ``measured``: as for :func:`near_duplicate_pairs`)."""
    pairs = near_duplicate_pairs(images, ids=ids, measured=measured)
    n = len(images)
    graph = coo_matrix((np.ones(len(pairs)), (pairs["i"], pairs["j"])), shape=(n, n))
    return connected_components(graph, directed=False)[1], pairs


def group_table(image_ids: Sequence[str], labels: np.ndarray, pairs: pd.DataFrame) -> pd.DataFrame:
    """One row per group of two or more images: group, size, ``|``-joined ids, max_distance."""
    labels = np.asarray(labels)
    ids = np.asarray(image_ids, dtype=object)
    worst = pd.Series(pairs["distance"].to_numpy(), index=labels[pairs["i"].to_numpy()])
    worst = worst.groupby(level=0).max()
    rows = [
        {
            "group": int(label),
            "size": len(members),
            "image_ids": "|".join(str(x) for x in ids[members]),
            "max_distance": float(worst.get(label, 0.0)),
        }
        for label in np.unique(labels)
        if len(members := np.flatnonzero(labels == label)) > 1
    ]
    columns = ["group", "size", "image_ids", "max_distance"]
    return pd.DataFrame(rows, columns=columns)


def draw_groups(
    images: np.ndarray,
    table: pd.DataFrame,
    image_ids: Sequence[str],
    out: Path,
    max_groups: int = 8,
) -> None:
    """Save a PNG with one row per group (up to ``max_groups``): its images with their ids."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.parent.mkdir(parents=True, exist_ok=True)
    if table.empty:
        fig, ax = plt.subplots(figsize=(5, 1.5))
        ax.text(0.5, 0.5, "no near-duplicates found", ha="center", va="center", fontsize=14)
        ax.axis("off")
        fig.savefig(out, dpi=80)
        plt.close(fig)
        return
    position = {str(x): k for k, x in enumerate(image_ids)}
    shown = table.head(max_groups)
    members = [str(row.image_ids).split("|") for row in shown.itertuples()]
    cols = max(len(m) for m in members)
    fig, axes = plt.subplots(len(shown), cols, figsize=(2 * cols, 2.3 * len(shown)), squeeze=False)
    for axes_row, row, ids in zip(axes, shown.itertuples(), members, strict=True):
        for ax in axes_row:
            ax.axis("off")
        for ax, image_id in zip(axes_row, ids, strict=False):
            ax.imshow(images[position[image_id]], cmap="gray", vmin=0, vmax=255)
            ax.set_title(image_id, fontsize=7)
        axes_row[0].text(
            -0.1, 0.5, f"group {row.group}\nmax d {row.max_distance:.3f}", fontsize=8,
            ha="right", va="center", transform=axes_row[0].transAxes,
        )  # fmt: skip
    fig.tight_layout()
    fig.savefig(out, dpi=80)
    plt.close(fig)


# --- threads -------------------------------------------------------------------------------


@contextmanager
def single_threaded() -> Iterator[None]:
    """Torch and OpenCV kernels on one thread each (parallelism comes from ``WORKERS``)."""
    torch_threads, cv2_threads = torch.get_num_threads(), cv2.getNumThreads()
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    try:
        yield
    finally:
        torch.set_num_threads(torch_threads)
        cv2.setNumThreads(cv2_threads)


def in_chunks(fn: Callable[[slice], T], n: int, chunk: int) -> list[T]:
    """``fn`` over consecutive slices of ``range(n)``, on ``WORKERS`` threads."""
    slices = [slice(start, min(n, start + chunk)) for start in range(0, n, chunk)]
    if len(slices) <= 1 or WORKERS == 1:
        return [fn(s) for s in slices]
    with ThreadPoolExecutor(WORKERS) as pool:
        return list(pool.map(fn, slices))


# --- reduction -----------------------------------------------------------------------------


class Thumbnails(NamedTuple):
    """What the screen keeps of each image (1.5 KB): the blurred 16 px level of the opened image
    (float16) and its 32 px band-pass, scaled to a standard deviation of 24 (int8)."""

    level: np.ndarray  # (N, 16, 16) float16
    band: np.ndarray  # (N, 32, 32) int8


def reduce_images(images: np.ndarray, batch: int = 2048) -> tuple[Thumbnails, np.ndarray]:
    """Screening thumbnails and search features (N, 256) float32 (zero-mean, unit-length
    rows), streamed in batches."""
    n = len(images)
    level = np.empty((n, SCREEN_SIDE, SCREEN_SIDE), np.float16)
    band = np.empty((n, 2 * SCREEN_SIDE, 2 * SCREEN_SIDE), np.int8)
    features = np.empty((n, FEATURE_SIDE * FEATURE_SIDE), np.float32)
    kernel = np.ones((opening_side(images.shape[-1]),) * 2, np.uint8)

    def reduce_rows(rows: slice) -> None:
        for k, img in zip(range(rows.start, rows.stop), np.asarray(images[rows]), strict=True):
            level[k], band[k], features[k] = reduce_one(img, kernel)

    for start in range(0, n, batch):
        size = min(batch, n - start)
        offset = slice(start, start + size)
        in_chunks(lambda s, o=offset: reduce_rows(shifted(s, o)), size, -(-size // WORKERS))
        release_pages(images)
    return Thumbnails(level, band), features


def reduce_one(img: np.ndarray, kernel: np.ndarray) -> tuple[np.ndarray, ...]:
    """Screen level, quantised screen band and search feature of one image."""
    side = 2 * SCREEN_SIDE
    thumb = resize(cv2.morphologyEx(img, cv2.MORPH_OPEN, kernel), side).astype(np.float32)
    band = band_pass(thumb, SCREEN_BAND)
    band *= 24 / max(float(band.std()), 1e-3)
    m = round(side * (1 - FEATURE_CROP) / 2)
    feature = blur(resize(thumb[m:-m, m:-m], FEATURE_SIDE), 1.0).reshape(1, -1)
    level = blur(resize(thumb, SCREEN_SIDE), 1.0)
    return level, np.clip(band, -127, 127).round(), unit_rows(feature)[0]


def shifted(part: slice, offset: slice) -> slice:
    """``part`` of the rows of ``offset``."""
    return slice(offset.start + part.start, offset.start + part.stop)


def opening_side(side: int, least: int = 5) -> int:
    """Odd opening width that erases text strokes at this image side (5 at 224; at least 5,
    since below 224 px a burnt-in word blurs into a bar as tall as 3 px)."""
    return max(least, round(side / 45)) | 1


def unit_rows(x: np.ndarray) -> np.ndarray:
    """Rows made zero-mean and unit-length (flat rows stay zero)."""
    x = x - x.mean(axis=1, keepdims=True)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-6)


def release_pages(images: np.ndarray) -> None:
    """Unmap the pages that this process read from a read-only memmap (they stay in the page
    cache), so streaming a large tensor file keeps the resident set flat."""
    base = images
    while base is not None and not isinstance(base, mmap.mmap):
        base = getattr(base, "base", None)
    if base is None or not hasattr(mmap, "MADV_DONTNEED"):
        return
    with memoryview(base) as view:
        read_only = view.readonly  # a shared read-only mapping: dropping pages loses nothing
    if read_only:
        base.madvise(mmap.MADV_DONTNEED)


# --- candidates ----------------------------------------------------------------------------
def candidate_pairs(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each image's nearest neighbours in the centred, PCA-reduced feature space: (i, j), i < j."""
    n = len(features)
    if n * (n - 1) // 2 <= ALL_PAIRS:
        i, j = np.triu_indices(n, 1)
        return i.astype(np.int64), j.astype(np.int64)
    neighbours = nearest_neighbours(torch.from_numpy(projected(features)), NEIGHBOURS)
    i = np.repeat(np.arange(n), neighbours.shape[1])
    j = neighbours.ravel()
    pairs = np.unique(np.stack([np.minimum(i, j), np.maximum(i, j)], axis=1), axis=0)
    pairs = pairs[pairs[:, 0] != pairs[:, 1]]
    return pairs[:, 0], pairs[:, 1]


def projected(features: np.ndarray, block: int = 16_384) -> np.ndarray:
    """Features centred on their mean, re-normalised, on their ``FEATURE_DIMS`` principal axes
    (estimated on at most 20,000 evenly spaced rows), block by block."""
    mean = features.mean(axis=0)
    sample = torch.from_numpy(unit_rows(features[:: max(1, len(features) // 20_000)] - mean))
    axes = torch.linalg.eigh(sample.T @ sample)[1].flip(1)[:, :FEATURE_DIMS].numpy()
    out = np.empty((len(features), FEATURE_DIMS), np.float32)
    for start in range(0, len(features), block):
        out[start : start + block] = unit_rows(features[start : start + block] - mean) @ axes
    return out


def nearest_neighbours(x: torch.Tensor, k: int) -> np.ndarray:
    """Approximate ``k`` nearest rows (euclidean) of every row of ``x`` (N, D): (N, k) indices.

    An inverted file: k-means lists of about ``LIST_SIZE`` rows; the rows of a list are compared
    with the rows of every list that is among the ``PROBES`` nearest to one of them."""
    n = len(x)
    lists = max(1, n // LIST_SIZE)
    centres = kmeans(x, lists)
    probes = nearest_centres(x, centres, min(lists, PROBES))
    home = probes[:, 0]
    order = torch.argsort(home, stable=True)
    members = torch.split(order, torch.bincount(home, minlength=lists).tolist())
    norms = (x * x).sum(1)
    out = np.tile(np.arange(n)[:, None], (1, k))  # short lists pad with the row itself
    for own in members:
        if len(own) == 0:
            continue
        other = torch.cat([members[c] for c in torch.unique(probes[own]).tolist()])
        distance = norms[own, None] + norms[None, other] - 2 * x[own] @ x[other].T
        distance[own[:, None] == other[None, :]] = float("inf")
        found = distance.topk(min(k, len(other)), dim=1, largest=False)
        chosen = torch.where(torch.isfinite(found.values), other[found.indices], own[:, None])
        out[own.numpy(), : chosen.shape[1]] = chosen.numpy()
    return out


def kmeans(x: torch.Tensor, k: int, iterations: int = 6) -> torch.Tensor:
    """Lloyd's k-means centres (k, D) from a fixed sample of at most 16 rows per centre."""
    generator = torch.Generator().manual_seed(0)
    sample = x[torch.randperm(len(x), generator=generator)[: 16 * k]]
    centres = sample[:k].clone()
    for _ in range(iterations):
        nearest = nearest_centres(sample, centres, 1)[:, 0]
        sums = torch.zeros_like(centres).index_add_(0, nearest, sample)
        counts = torch.bincount(nearest, minlength=k).float()[:, None]
        centres = torch.where(counts > 0, sums / counts.clamp(min=1), centres)
    return centres


def nearest_centres(x: torch.Tensor, centres: torch.Tensor, k: int) -> torch.Tensor:
    """Indices (N, k) of the ``k`` centres nearest to each row, in blocks of 8192 rows."""
    norms = (centres * centres).sum(1)
    parts = [
        (norms[None] - 2 * x[s : s + 8192] @ centres.T).topk(k, dim=1, largest=False).indices
        for s in range(0, len(x), 8192)
    ]
    return torch.cat(parts)


# --- screen --------------------------------------------------------------------------------


def screen(thumbs: Thumbnails, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """Cheap distance of each candidate pair: 1 - NCC of the 32 px bands after a 16 px
    registration of ``j`` onto ``i`` (2.0 for an implausible warp)."""

    @torch.inference_mode()
    def chunk(s: slice) -> np.ndarray:
        used, local = np.unique(np.concatenate([i[s], j[s]]), return_inverse=True)
        a, b = torch.from_numpy(local).split(len(local) // 2)
        level = torch.from_numpy(with_gradients(thumbs.level[used].astype(np.float32)))
        theta = register(level[a, :1], level[b], identity(len(a)), SCREEN_ITERATIONS)
        band = torch.from_numpy(thumbs.band[used]).float().unsqueeze(1)
        ncc, inside = compare(band[a], band[b], theta)
        return torch.where(plausible(theta, inside), 1 - ncc, 2.0).double().numpy()

    return np.concatenate([np.empty(0), *in_chunks(chunk, len(i), SCREEN_CHUNK)])


# --- exact re-check ------------------------------------------------------------------------


def recheck(images: np.ndarray, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """Distance of each pair: ``max(coarse, fine * DISTANCE_THRESHOLD / fine threshold)``."""
    coarse, fine = recheck_terms(images, i, j).T
    return np.maximum(coarse, fine * (DISTANCE_THRESHOLD / fine_threshold(images.shape[-1])))


def fine_threshold(side: int) -> float:
    """Fine distance that counts as much as ``DISTANCE_THRESHOLD`` for images of this side:
    ``FINE_THRESHOLD`` at 224 px and above, in proportion to the side below (each pixel then
    averages more of the source, so copies share more of their finest detail)."""
    return FINE_THRESHOLD * min(side, FINE_SIDE) / FINE_SIDE


def recheck_terms(images: np.ndarray, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """Coarse and fine distance (N, 2) of each pair after registering ``j`` onto ``i`` coarse
    to fine (2.0 for an implausible warp)."""
    order = np.lexsort((j, i))  # neighbouring pairs share images

    @torch.inference_mode()
    def chunk(s: slice) -> np.ndarray:
        rows = order[s]
        used, local = np.unique(np.concatenate([i[rows], j[rows]]), return_inverse=True)
        a, b = torch.from_numpy(local).split(len(rows))
        views = image_views(np.stack([np.asarray(images[u]) for u in used]))
        release_pages(images)
        theta = identity(len(a))
        for side, iterations in REGISTRATION_LEVELS:
            if side in views:
                theta = register(views[side][a, :1], views[side][b], theta, iterations)
        ncc, inside = compare(views["coarse"][a], views["coarse"][b], theta)
        terms = torch.stack([1 - ncc, fine_distance(views["fine"], a, b, theta)], 1)
        return torch.where(plausible(theta, inside)[:, None], terms, 2.0).double().numpy()

    terms = np.empty((len(i), 2))
    terms[order] = np.concatenate([np.empty((0, 2)), *in_chunks(chunk, len(i), RECHECK_CHUNK)])
    return terms


def image_views(images: np.ndarray) -> dict[int | str, torch.Tensor]:
    """What the re-check needs of each image: by side, registration levels (B, 3, side, side:
    value, d/dx, d/dy) of the opened image; ``coarse``, its band at 64 px (B, 1, 64, 64);
    ``fine``, at up to 224 px, the fine band sharp then after each of ``FINE_BLURS`` and last
    the text-free mask (B, 2 + len(FINE_BLURS), side, side)."""
    side = images.shape[-1]
    kernel = np.ones((opening_side(side),) * 2, np.uint8)
    sides = [s for s, _ in REGISTRATION_LEVELS if s <= side]
    levels = {s: np.empty((len(images), s, s), np.float32) for s in sides}
    coarse = np.empty((len(images), 1, WORK_SIDE, WORK_SIDE), np.float32)
    fine_side = min(side, FINE_SIDE)
    fine = np.empty((len(images), 2 + len(FINE_BLURS), fine_side, fine_side), np.float32)
    for k, img in enumerate(images):
        opened = cv2.morphologyEx(img, cv2.MORPH_OPEN, kernel)
        for s in sides:
            levels[s][k] = blur(resize(opened, s).astype(np.float32), 1.0)
        coarse[k, 0] = band_pass(resize(opened, WORK_SIDE).astype(np.float32), BAND)
        sharp = resize(img, fine_side).astype(np.float32)
        for c, sigma in enumerate((0.0, *FINE_BLURS)):
            fine[k, c] = band_pass(blur(sharp, sigma) if sigma else sharp, FINE_BAND)
        fine[k, -1] = text_free(img, fine_side)
    views: dict[int | str, np.ndarray] = {s: with_gradients(v) for s, v in levels.items()}
    views |= {"coarse": coarse, "fine": fine}
    return {key: torch.from_numpy(value) for key, value in views.items()}


def text_free(img: np.ndarray, side: int) -> np.ndarray:
    """1.0 away from bright thin strokes (``TEXT_CONTRAST`` over an opening, dilated by its
    width), at ``side``. The opening may be 3 px wide here: a wider one would mark fine anatomy
    of small images as strokes and leave too little of it to compare."""
    kernel = np.ones((opening_side(img.shape[-1], least=3),) * 2, np.uint8)
    strokes = cv2.subtract(img, cv2.morphologyEx(img, cv2.MORPH_OPEN, kernel)) > TEXT_CONTRAST
    return (resize(cv2.dilate(strokes.astype(np.float32), kernel), side) == 0).astype(np.float32)


def fine_distance(fine: torch.Tensor, a: torch.Tensor, b: torch.Tensor, theta: torch.Tensor):
    """1 - NCC of the finest detail where neither image has text; the sharp band of one image
    is also compared with each blurred band of the other, and the best match counts."""
    still, moved, inside = sample(fine[a], fine[b], theta)
    weight = inside * (still[:, -1] > 0.999) * (moved[:, -1] > 0.999)
    blurred = range(1, fine.shape[1] - 1)
    combos = [(0, 0), *((k, 0) for k in blurred), *((0, k) for k in blurred)]
    ncc = torch.stack([masked_ncc(still[:, ka], moved[:, kb], weight) for ka, kb in combos])
    return 1 - ncc.max(0).values


# --- image operations ----------------------------------------------------------------------


def resize(img: np.ndarray, side: int) -> np.ndarray:
    """Area resize to (side, side)."""
    if img.shape[-1] == side:
        return img
    return cv2.resize(img, (side, side), interpolation=cv2.INTER_AREA)


def blur(img: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur of one float32 image, edges replicated."""
    size = 2 * round(3 * sigma) + 1
    return cv2.GaussianBlur(img, (size, size), sigma, borderType=cv2.BORDER_REPLICATE)


def band_pass(img: np.ndarray, sigmas: tuple[float, float]) -> np.ndarray:
    """Difference of Gaussians of one float32 image."""
    return blur(img, sigmas[0]) - blur(img, sigmas[1])


def with_gradients(small: np.ndarray) -> np.ndarray:
    """(B, side, side) float32 -> (B, 3, side, side): value, d/dx and d/dy per unit of
    normalised coordinate."""
    side = small.shape[-1]
    gy, gx = np.gradient(small, axis=(1, 2))
    return np.stack([small, gx * side / 2, gy * side / 2], 1)


def identity(n: int) -> torch.Tensor:
    return torch.eye(2, 3).repeat(n, 1, 1)


def register(fixed: torch.Tensor, moving: torch.Tensor, theta: torch.Tensor, iterations: int):
    """Gauss-Newton on an affine warp (grid_sample convention) so that ``moving`` sampled at
    ``theta @ x`` matches ``gain * fixed + offset``; ``moving`` holds value, d/dx, d/dy."""
    side = fixed.shape[-1]
    coords = inner_coords(side)
    basis = torch.cat([coords, torch.ones(len(coords), 1)], 1)  # (M, 3): x, y, 1
    outer = (basis[:, :, None] * basis[:, None, :]).flatten(1)  # (M, 9)
    target = fixed.flatten(2)[:, 0, inner_index(side)]
    target = target - target.mean(1, keepdim=True)
    target_energy = (target * target).sum(1, keepdim=True) + 1e-9
    damping = torch.eye(6)
    for _ in range(iterations):
        grid = warp(coords, theta)
        sampled = F.grid_sample(moving, grid.unsqueeze(1), align_corners=False)[:, :, 0]
        value, gx, gy = sampled.unbind(1)
        value = value - value.mean(1, keepdim=True)
        residual = value - (value * target).sum(1, keepdim=True) / target_energy * target
        # J = [gx * basis, gy * basis]; H = J'J minus the mean part (the offset is free)
        products = torch.stack([gx * gx, gx * gy, gy * gy], 1) @ outer  # (B, 3, 9)
        xx, xy, yy = products.view(-1, 3, 3, 3).unbind(1)
        hessian = torch.cat([torch.cat([xx, xy], 2), torch.cat([xy, yy], 2)], 1)
        mean_jac = torch.cat([gx @ basis, gy @ basis], 1) / len(coords)  # (B, 6)
        hessian = hessian - len(coords) * mean_jac[:, :, None] * mean_jac[:, None, :]
        gradient = torch.cat([(gx * residual) @ basis, (gy * residual) @ basis], 1)
        scale = 1e-4 * hessian.diagonal(dim1=1, dim2=2).mean(1) + 1e-6
        step = torch.linalg.solve(hessian + scale.view(-1, 1, 1) * damping, -gradient)
        theta = theta + step.view(-1, 2, 3)
    return theta


def compare(fixed: torch.Tensor, moving: torch.Tensor, theta: torch.Tensor):
    """Pearson correlation over the inner region between ``fixed`` (B, 1, S, S) and ``moving``
    sampled at ``theta`` where it exists, and the share of the region that it covers."""
    still, moved, inside = sample(fixed, moving, theta)
    return masked_ncc(still[:, 0], moved[:, 0], inside), inside.mean(1)


def sample(fixed: torch.Tensor, moving: torch.Tensor, theta: torch.Tensor):
    """The inner pixels of ``fixed`` (B, C, S, S), ``moving`` sampled there through ``theta``
    (both (B, C, M)) and whether that sample falls inside ``moving`` (B, M)."""
    side = fixed.shape[-1]
    grid = warp(inner_coords(side), theta)
    moved = F.grid_sample(moving, grid.unsqueeze(1), align_corners=False)[:, :, 0]
    m = round(side * MARGIN)
    still = fixed[:, :, m : side - m, m : side - m].flatten(2)
    return still, moved, (grid.abs() <= 1 - 1 / side).all(-1).float()


def inner_index(side: int) -> torch.Tensor:
    """Flat indices of the pixels inside the margin."""
    m = round(side * MARGIN)
    keep = torch.zeros(side, side, dtype=torch.bool)
    keep[m : side - m, m : side - m] = True
    return keep.flatten().nonzero()[:, 0]


def inner_coords(side: int) -> torch.Tensor:
    """Normalised (x, y) centres of the pixels inside the margin (align_corners=False)."""
    centres = (torch.arange(side, dtype=torch.float32) * 2 + 1) / side - 1
    y, x = torch.meshgrid(centres, centres, indexing="ij")
    return torch.stack([x.flatten(), y.flatten()], 1)[inner_index(side)]


def warp(coords: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    """``theta @ (x, y, 1)`` for every pair: (B, M, 2)."""
    x, y = coords[None, :, :1], coords[None, :, 1:]
    return x * theta[:, None, :, 0] + y * theta[:, None, :, 1] + theta[:, None, :, 2]


def masked_ncc(a: torch.Tensor, b: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Pearson correlation of rows of ``a`` and ``b`` where ``weight`` is 1."""
    count = weight.sum(1, keepdim=True).clamp(min=1)
    a = (a - (a * weight).sum(1, keepdim=True) / count) * weight
    b = (b - (b * weight).sum(1, keepdim=True) / count) * weight
    aa, bb, ab = (a * a).sum(1), (b * b).sum(1), (a * b).sum(1)
    return ab / torch.sqrt(aa * bb).clamp(min=1e-9)


def plausible(theta: torch.Tensor, inside: torch.Tensor) -> torch.Tensor:
    """Warps a copy can need: scale 0.8-1.25 on each axis, shift under a quarter side, and
    more than half of the compared region covered."""
    singular = torch.linalg.svdvals(theta[:, :, :2])
    return (
        (singular.max(1).values < 1.25)
        & (singular.min(1).values > 0.8)
        & (theta[:, :, 2].abs().max(1).values < 0.5)
        & (inside > 0.5)
    )

"""`cxr preprocess`: decode every image of an index once, into a compact tensor file.

Output folder, per (dataset, preset):

- ``images.npy``: uint8 array (N, size, size), opens as a memory map
  (``np.load(path, mmap_mode="r")``);
- ``index.parquet``: the index rows in the same order (``tensor_row`` = position), with boxes
  and nodule positions rescaled to the output pixels;
- ``stats.json``: the dataset's pixel mean and standard deviation (in [0, 1]), the preset, N,
  and how many images were rejected and flagged;
- ``manifest.csv``: one row per index image (``image_id``, ``path``, ``status``, ``reason``):
  ``kept``; ``flagged``, kept but suspect: a constant image, or one whose 1st-99th percentile
  grey levels span fewer than :data:`LOW_CONTRAST_SPAN` of 255 (checked on the decoded image,
  before the preset's steps); or ``rejected``, left out: undecodable, or too small.

A run in which every image is rejected (a wrong ``root``, say) or whose index has no rows
raises :class:`ValueError` and writes nothing.

Memory stays bounded whatever N: each worker decodes one image at a time and writes it
straight into the memory-mapped output; only pixel sums travel back to the parent. The folder
appears only when everything is written (a failed run leaves nothing).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
from tqdm import tqdm

from cxr.core.atomic import atomic_path
from cxr.core.workers import worker_pool
from cxr.data.decode import read_gray
from cxr.data.images import BadImage
from cxr.data.index import boxes_from_json, boxes_to_json, read_index
from cxr.data.presets import Preset
from cxr.data.transforms import Geometry, apply_preset, geometry

log = logging.getLogger(__name__)

TENSOR_FILE = "images.npy"
INDEX_FILE = "index.parquet"
STATS_FILE = "stats.json"
MANIFEST_FILE = "manifest.csv"

#: An image whose 1st-99th percentile grey levels span fewer levels than this is flagged. The
#: real NIH sample spans 148 or more, the miniatures 126 or more (their photos of non-x-rays
#: 56); a 12-bit image wrongly scaled as 16-bit spans at most 15.
LOW_CONTRAST_SPAN = 16


@dataclass(frozen=True)
class _Job:
    row: int
    path: str
    mode: str


@dataclass(frozen=True)
class _Done:
    """A worker's result: pixel sums of the image it wrote and why it is flagged, or why it
    could not write it."""

    row: int
    ok: bool
    total: float = 0.0
    total_sq: float = 0.0
    error: str = ""
    flag: str = ""


# Set once per worker process: the preset, and the output tensor opened as a memory map.
# Workers write their images straight into it, so the parent never touches pixels.
_PRESET: Preset | None = None
_TENSOR: np.ndarray | None = None


def _init_worker(preset: Preset, tensor_path: Path) -> None:
    global _PRESET, _TENSOR
    _PRESET = preset
    _TENSOR = np.load(tensor_path, mmap_mode="r+")


def _process_one(job: _Job) -> _Done:
    """Worker: decode, check, preprocess and store one image; returns its pixel sums."""
    try:
        decoded = read_gray(job.path, job.mode)
        flag = contrast_flag(decoded)
        img = apply_preset(decoded, _PRESET)
    except BadImage as err:
        return _Done(job.row, False, error=str(err))
    except Exception as err:  # any decoder failure is reported for its file, not fatal
        return _Done(job.row, False, error=f"{job.path}: {type(err).__name__}: {err}")
    _TENSOR[job.row] = img
    mean, std = (float(v[0, 0]) for v in cv2.meanStdDev(img))
    return _Done(job.row, True, mean * img.size, (std * std + mean * mean) * img.size, flag=flag)


def contrast_flag(img: np.ndarray) -> str:
    """Why 8-bit ``img`` is suspect (constant, or very low contrast), or "" when it is not."""
    hist = cv2.calcHist([img], [0], None, [256], [0, 256]).ravel()
    levels = np.flatnonzero(hist)
    if len(levels) == 1:
        return f"constant image (every pixel is {levels[0]})"
    cdf = hist.cumsum()
    low, high = np.searchsorted(cdf, [0.01 * cdf[-1], 0.99 * cdf[-1]])
    if high - low < LOW_CONTRAST_SPAN:
        return f"very low contrast (1st-99th percentile span {high - low} of 255 grey levels)"
    return ""


def _results(jobs: list[_Job], preset: Preset, tensor_path: Path, workers: int) -> Iterator[_Done]:
    if workers <= 1:
        _init_worker(preset, tensor_path)
        yield from map(_process_one, jobs)
        return
    with worker_pool(workers, _init_worker, (preset, tensor_path)) as pool:
        yield from pool.imap_unordered(_process_one, jobs, chunksize=16)


def preprocess(
    index_path: str | Path, root: str | Path, preset: Preset, out: str | Path, workers: int = 1
) -> dict:
    """Decode and preprocess every image of the index under ``root`` into ``out``.

    Raises :class:`ValueError` (writing nothing) when the index has no rows or when every
    image is rejected.
    """
    index = read_index(index_path)
    if index.empty:
        raise ValueError(f"{index_path}: the index has no rows; nothing to preprocess")
    root = Path(root)
    paths, modes = index["path"].tolist(), index["mode"].tolist()
    jobs = [_Job(i, str(root / p), m) for i, (p, m) in enumerate(zip(paths, modes, strict=True))]
    size = preset.size
    with atomic_path(out) as tmp:
        tmp.mkdir()
        tensor_path = tmp / TENSOR_FILE
        np.lib.format.open_memmap(
            tensor_path, mode="w+", dtype=np.uint8, shape=(len(index), size, size)
        ).flush()
        total = total_sq = 0.0
        errors: dict[int, str] = {}
        flags: dict[int, str] = {}
        results = _results(jobs, preset, tensor_path, workers)
        for done in tqdm(results, total=len(jobs), desc="preprocess", unit="img", mininterval=2):
            if done.ok:
                total += done.total
                total_sq += done.total_sq
                if done.flag:
                    flags[done.row] = done.flag
                    log.warning("flagged %s: %s", jobs[done.row].path, done.flag)
            else:
                errors[done.row] = done.error
                log.warning("cannot preprocess %s", done.error)
        if len(errors) == len(index):
            raise ValueError(_all_rejected(index_path, root, errors))
        kept = np.ones(len(index), bool)
        kept[list(errors)] = False
        if errors:
            _drop_rows(tensor_path, kept, size)
        out_index = rescale_positions(index[kept].reset_index(drop=True), preset)
        out_index["tensor_row"] = np.arange(len(out_index))
        out_index.to_parquet(tmp / INDEX_FILE, index=False)
        _manifest(index, errors, flags).to_csv(tmp / MANIFEST_FILE, index=False)
        count = int(kept.sum()) * size * size
        stats = _stats(total, total_sq, count, preset, len(errors), len(flags))
        stats["dataset"] = _dataset(out_index)
        (tmp / STATS_FILE).write_text(json.dumps(stats, indent=2) + "\n")
    return stats


def _all_rejected(index_path: str | Path, root: Path, errors: dict[int, str]) -> str:
    first = "; ".join(errors[r] for r in sorted(errors)[:3])
    return (
        f"every image of {index_path} was rejected ({len(errors)} of {len(errors)}) under "
        f"root {root}; first reasons: {first}; is --root right?"
    )


def _manifest(index: pd.DataFrame, errors: dict[int, str], flags: dict[int, str]) -> pd.DataFrame:
    """One row per index image: its status (kept, flagged or rejected) and the reason."""
    status = [
        "rejected" if r in errors else "flagged" if r in flags else "kept"
        for r in range(len(index))
    ]
    reason = [errors.get(r) or flags.get(r, "") for r in range(len(index))]
    return index[["image_id", "path"]].assign(status=status, reason=reason)


def _stats(
    total: float, total_sq: float, count: int, preset: Preset, rejected: int, flagged: int
) -> dict:
    mean = total / max(count, 1)
    var = max(total_sq / max(count, 1) - mean * mean, 0.0)
    return {
        "images": count // (preset.size * preset.size),
        "rejected": rejected,
        "flagged": flagged,
        "mean": mean / 255.0,
        "std": float(np.sqrt(var)) / 255.0,
        "preset": asdict(preset),
    }


def _dataset(index: pd.DataFrame) -> str | list[str] | None:
    """The ``dataset`` the index's rows come from: one name, or the sorted names of a mix."""
    if "dataset" not in index.columns:
        return None
    names = sorted(index["dataset"].dropna().astype(str).unique())
    return names[0] if len(names) == 1 else names


def _drop_rows(path: Path, kept: np.ndarray, size: int) -> None:
    """Rewrite the tensor file without the rejected rows (rare: only when decoding failed)."""
    src = np.load(path, mmap_mode="r")
    compact = path.with_suffix(".compact.npy")
    dst = np.lib.format.open_memmap(
        compact, mode="w+", dtype=np.uint8, shape=(int(kept.sum()), size, size)
    )
    for j, i in enumerate(np.flatnonzero(kept)):
        dst[j] = src[i]
    dst.flush()
    del src, dst
    compact.replace(path)


def rescale_positions(index: pd.DataFrame, preset: Preset) -> pd.DataFrame:
    """Boxes and nodule positions of each row mapped to the output pixels (clipped to it)."""
    index = index.copy()
    boxes, nodule_x, nodule_y = [], [], []
    has_nodule = "nodule_x" in index
    for row in index.itertuples(index=False):
        g = geometry(int(row.width), int(row.height), preset)
        boxes.append(
            boxes_to_json([_map_box(b, g, preset.size) for b in boxes_from_json(row.boxes)])
        )
        if has_nodule:
            nodule_x.append(row.nodule_x * g.sx + g.ox)
            nodule_y.append(row.nodule_y * g.sy + g.oy)
    index["boxes"] = pd.array(boxes, dtype="string")
    if has_nodule:
        index["nodule_x"], index["nodule_y"] = nodule_x, nodule_y
    return index


def _map_box(box: dict, g: Geometry, size: int) -> dict:
    x0, y0 = box["x"] * g.sx + g.ox, box["y"] * g.sy + g.oy
    x1, y1 = x0 + box["w"] * g.sx, y0 + box["h"] * g.sy
    x0, x1 = np.clip([x0, x1], 0, size)
    y0, y1 = np.clip([y0, y1], 0, size)
    return {"label": box["label"], "x": x0, "y": y0, "w": x1 - x0, "h": y1 - y0}


def load_tensor(folder: str | Path) -> np.ndarray:
    """The preprocessed images of a folder written by :func:`preprocess`, memory-mapped; a
    folder without them, or a file that is not an image tensor, is named in a ValueError."""
    path = Path(folder) / TENSOR_FILE
    if not path.is_file():
        raise ValueError(f"{folder}: not a folder written by cxr preprocess (no {TENSOR_FILE})")
    try:
        tensor = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError) as err:
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        if "pickled" in reason or "Python objects" in reason:
            reason = "it holds pickled Python objects, which cxr never loads"
        raise ValueError(
            f"{path}: not a readable image tensor ({reason}); rerun cxr preprocess"
        ) from None
    if not isinstance(tensor, np.ndarray) or tensor.ndim != 3 or tensor.dtype != np.uint8:
        raise ValueError(
            f"{path}: not an image tensor of cxr preprocess (expected 8-bit images × height × "
            f"width, got {getattr(tensor, 'dtype', '?')} of shape {getattr(tensor, 'shape', '?')})"
        )
    return tensor

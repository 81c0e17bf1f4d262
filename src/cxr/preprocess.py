"""`cxr preprocess`: decode every image of an index once, into a compact tensor file.

Output folder, per (dataset, preset):

- ``images.npy``: uint8 array (N, size, size), opens as a memory map
  (``np.load(path, mmap_mode="r")``);
- ``index.parquet``: the index rows in the same order (``tensor_row`` = position), with boxes
  and nodule positions rescaled to the output pixels;
- ``stats.json``: the dataset's pixel mean and standard deviation (in [0, 1]), the preset, N;
- ``rejected.csv``: images of the index that could not be decoded, with the reason.

Memory stays bounded whatever N: workers decode and return one small image at a time, and
the parent writes it straight into the memory-mapped output. The folder appears only when
everything is written (a failed run leaves nothing).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from multiprocessing import get_context
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
from tqdm import tqdm

from cxr.atomic import atomic_path
from cxr.decode import read_gray
from cxr.images import BadImage
from cxr.index import boxes_from_json, boxes_to_json, read_index
from cxr.transforms import Geometry, Preset, apply_preset, geometry

log = logging.getLogger(__name__)

TENSOR_FILE = "images.npy"
INDEX_FILE = "index.parquet"
STATS_FILE = "stats.json"
REJECTED_FILE = "rejected.csv"


@dataclass(frozen=True)
class _Job:
    row: int
    path: str
    mode: str


@dataclass(frozen=True)
class _Done:
    """A worker's result: the image (None if it failed) and its pixel sums, or the error."""

    row: int
    image: np.ndarray | None
    total: float = 0.0
    total_sq: float = 0.0
    error: str = ""


_PRESET: Preset | None = None  # set once per worker process


def _init_worker(preset: Preset) -> None:
    global _PRESET
    _PRESET = preset


def _process_one(job: _Job) -> _Done:
    """Worker: decode and preprocess one image; sums are taken here, off the parent's core."""
    try:
        img = apply_preset(read_gray(job.path, job.mode), _PRESET)
    except BadImage as err:
        return _Done(job.row, None, error=str(err))
    except Exception as err:  # any decoder failure is reported for its file, not fatal
        return _Done(job.row, None, error=f"{job.path}: {type(err).__name__}: {err}")
    mean, std = (float(v[0, 0]) for v in cv2.meanStdDev(img))
    return _Done(job.row, img, mean * img.size, (std * std + mean * mean) * img.size)


def _results(jobs: list[_Job], preset: Preset, workers: int) -> Iterator[_Done]:
    if workers <= 1:
        _init_worker(preset)
        yield from map(_process_one, jobs)
        return
    with get_context("fork").Pool(workers, _init_worker, (preset,)) as pool:
        yield from pool.imap(_process_one, jobs, chunksize=16)


def preprocess(
    index_path: str | Path, root: str | Path, preset: Preset, out: str | Path, workers: int = 1
) -> dict:
    """Decode and preprocess every image of the index under ``root`` into ``out``."""
    index = read_index(index_path)
    root = Path(root)
    paths, modes = index["path"].tolist(), index["mode"].tolist()
    jobs = [_Job(i, str(root / p), m) for i, (p, m) in enumerate(zip(paths, modes, strict=True))]
    size = preset.size
    with atomic_path(out) as tmp:
        tmp.mkdir()
        tensor = np.lib.format.open_memmap(
            tmp / TENSOR_FILE, mode="w+", dtype=np.uint8, shape=(len(index), size, size)
        )
        total = total_sq = 0.0
        kept = np.ones(len(index), bool)
        rejected = []
        bar = tqdm(
            _results(jobs, preset, workers),
            total=len(jobs),
            desc="preprocess",
            unit="img",
            mininterval=2.0,
        )
        for done in bar:
            if done.image is None:
                kept[done.row] = False
                rejected.append(
                    (index["image_id"].iat[done.row], index["path"].iat[done.row], done.error)
                )
                log.warning("cannot preprocess %s", done.error)
                continue
            tensor[done.row] = done.image
            total += done.total
            total_sq += done.total_sq
        tensor.flush()
        del tensor
        if rejected:
            _drop_rows(tmp / TENSOR_FILE, kept, size)
        out_index = rescale_positions(index[kept].reset_index(drop=True), preset)
        out_index["tensor_row"] = np.arange(len(out_index))
        out_index.to_parquet(tmp / INDEX_FILE, index=False)
        pd.DataFrame(rejected, columns=["image_id", "path", "reason"]).to_csv(
            tmp / REJECTED_FILE, index=False
        )
        stats = _stats(total, total_sq, int(kept.sum()) * size * size, preset, len(rejected))
        (tmp / STATS_FILE).write_text(json.dumps(stats, indent=2) + "\n")
    return stats


def _stats(total: float, total_sq: float, count: int, preset: Preset, rejected: int) -> dict:
    mean = total / max(count, 1)
    var = max(total_sq / max(count, 1) - mean * mean, 0.0)
    return {
        "images": count // (preset.size * preset.size),
        "rejected": rejected,
        "mean": mean / 255.0,
        "std": float(np.sqrt(var)) / 255.0,
        "preset": asdict(preset),
    }


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
    """The preprocessed images of a folder written by :func:`preprocess`, memory-mapped."""
    return np.load(Path(folder) / TENSOR_FILE, mmap_mode="r")

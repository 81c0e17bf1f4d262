"""Memory of the CAM stage over thousands of images: it must stay flat.

A synthetic preprocessed dataset (``--images`` uint8 images of ``--size`` px, every 4th with a
bright square and its "Mass" box, memory-mapped from a temp folder) streams through
``cxr.explanation.run.explain_rows``, the loop that ``cxr.explanation.cam`` runs, exactly as
``cam`` feeds it (memory map -> TensorBatches -> Prefetcher -> normalisation -> heatmaps,
localisation of every box, top-k records kept). The process's resident set size (RSS, psutil)
and, on a GPU, ``torch.cuda.memory_allocated`` / ``max_memory_allocated`` are read after the
batch that reaches each checkpoint (250, 500, 1000, 2000, ... images). RSS also counts the
pages of the memory-mapped images read so far (file-backed, reclaimable: at most the tensor
file, 8 MB for 2,000 images of 64 px); ``rss_anon_mb`` (RSS less shared, file-backed pages) is
the heap alone. Flat = the heap at the last checkpoint within a few MB of the first.

Models (untrained weights: memory does not depend on what they learned), 14 sigmoid outputs,
top-4 heatmaps per image: AlexNet (a real CAM-able architecture of cxr, small at 64 px) with
``cam`` and ``gradcam``; with ``--densenet``, DenseNet-121 too, on ``--densenet-images``.

Run:  python benchmarks/cam_memory.py [--images 2000] [--size 64] [--batch 32] [--densenet]
      [--densenet-images 500] [--methods cam gradcam]
Writes benchmarks/out/cam_memory.json and prints a table.
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import psutil
import torch

from cxr.explanation.inputs import TrainedModel, default_device
from cxr.explanation.run import explain_rows
from cxr.training.models import ModelSpec, build_model

OUT = Path(__file__).resolve().parent / "out" / "cam_memory.json"
FINDINGS = tuple(f"finding_{i}" for i in range(13)) + ("Mass",)


def synthetic(images: int, size: int) -> tuple[pd.DataFrame, np.ndarray, Path]:
    """A memory-mapped uint8 tensor in a temp folder and its index (boxes on every 4th image)."""
    folder = Path(tempfile.mkdtemp(prefix="cam_memory_"))
    rng = np.random.default_rng(0)
    path = folder / "images.npy"
    tensor = np.lib.format.open_memmap(path, "w+", np.uint8, (images, size, size))
    q = size // 4
    boxes = []
    for start in range(0, images, 500):
        chunk = rng.integers(0, 120, (min(500, images - start), size, size), dtype=np.uint8)
        for i in range(len(chunk)):
            if (start + i) % 4 == 0:
                x, y = (int(v) for v in rng.integers(0, size - q, 2))
                chunk[i, y : y + q, x : x + q] = 230
                boxes.append(json.dumps([{"label": "Mass", "x": x, "y": y, "w": q, "h": q}]))
            else:
                boxes.append(None)
        tensor[start : start + len(chunk)] = chunk
    tensor.flush()
    del tensor
    index = pd.DataFrame({"image_id": [f"img{i:05d}" for i in range(images)], "boxes": boxes})
    return index, np.load(path, mmap_mode="r"), folder


def trained(architecture: str, size: int, device: torch.device) -> TrainedModel:
    spec = ModelSpec(architecture, len(FINDINGS), size)
    model = build_model(spec).to(device).eval()
    return TrainedModel(model, spec, FINDINGS, "sigmoid", mean=0.25, std=0.15)


def hooks(model: torch.nn.Module) -> int:
    return sum(
        len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks)
        for m in model.modules()
    )


def measure(
    model: TrainedModel,
    method: str,
    index: pd.DataFrame,
    images: np.ndarray,
    count: int,
    batch: int,
    device: torch.device,
) -> dict:
    """RSS (and CUDA memory) after each checkpoint of ``count`` images through ``method``."""
    checkpoints = [c for c in (250, 500, 1000, 2000, 4000, 8000) if c < count] + [count]
    process = psutil.Process()
    gc.collect()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
    before = process.memory_info().rss
    rows = np.arange(count)
    done, boxes, top, points = 0, 0, 0, []
    started = time.perf_counter()
    for result in explain_rows(model, method, index, images, rows, 4, batch):
        done += result.images
        boxes += len(result.boxes)
        top += len(result.top_k)
        while checkpoints and done >= checkpoints[0]:
            checkpoints.pop(0)
            memory = process.memory_info()
            point = {
                "images": done,
                "seconds": time.perf_counter() - started,
                "rss_mb": memory.rss / 2**20,
                # RSS less file-backed pages (the memory-mapped images read so far): the heap
                "rss_anon_mb": (memory.rss - memory.shared) / 2**20,
            }
            if device.type == "cuda":
                point["cuda_allocated_mb"] = torch.cuda.memory_allocated(device) / 2**20
                point["cuda_peak_mb"] = torch.cuda.max_memory_allocated(device) / 2**20
            points.append(point)
    seconds = time.perf_counter() - started
    return {
        "architecture": model.spec.architecture,
        "method": method,
        "images": done,
        "boxes_scored": boxes,
        "top_k_records": top,
        "seconds": seconds,
        "images_per_second": done / seconds,
        "rss_before_mb": before / 2**20,
        "rss_growth_first_to_last_mb": points[-1]["rss_mb"] - points[0]["rss_mb"],
        "rss_anon_growth_first_to_last_mb": points[-1]["rss_anon_mb"] - points[0]["rss_anon_mb"],
        "hooks_left": hooks(model.model),
        "checkpoints": points,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--methods", nargs="+", default=["cam", "gradcam"])
    parser.add_argument("--densenet", action="store_true", help="DenseNet-121 too")
    parser.add_argument("--densenet-images", type=int, default=500)
    args = parser.parse_args()
    device = default_device()
    index, images, folder = synthetic(args.images, args.size)
    runs = [("alexnet", m, args.images) for m in args.methods]
    if args.densenet:
        runs += [("densenet121", m, min(args.densenet_images, args.images)) for m in args.methods]
    results = []
    for architecture, method, count in runs:
        model = trained(architecture, args.size, device)
        results.append(measure(model, method, index, images, count, args.batch, device))
        r = results[-1]
        print(f"{architecture:12s} {method:9s} {r['images']:5d} img {r['seconds']:7.1f} s")
        for p in r["checkpoints"]:
            cuda = (
                f"  cuda {p['cuda_allocated_mb']:7.1f} / peak {p['cuda_peak_mb']:7.1f} MB"
                if "cuda_peak_mb" in p
                else ""
            )
            print(f"    after {p['images']:5d} images: RSS {p['rss_mb']:8.1f} MB"
                  f" (anon {p['rss_anon_mb']:7.1f} MB){cuda}")  # fmt: skip
        print(f"    growth first->last checkpoint: RSS {r['rss_growth_first_to_last_mb']:+.1f} MB,"
              f" anon {r['rss_anon_growth_first_to_last_mb']:+.1f} MB,"
              f" hooks left: {r['hooks_left']}")  # fmt: skip
        del model
    report = {
        "device": str(device),
        "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
        "cpu_threads": torch.get_num_threads(),
        "platform": platform.platform(),
        "torch": torch.__version__,
        "size": args.size,
        "batch": args.batch,
        "top_k": 4,
        "outputs": len(FINDINGS),
        "runs": results,
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(report, indent=2) + "\n")
    for path in folder.iterdir():
        path.unlink()
    folder.rmdir()
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()

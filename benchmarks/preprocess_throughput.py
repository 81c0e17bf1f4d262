"""Preprocessing and batch-loading throughput, as ratios against baselines measured in the same run.

On NIH-like 1024x1024 8-bit PNGs (the synthetic NIH miniature at full size), with the same
number of worker processes for every contender:

1. images/s of the whole `cxr preprocess` step (seed 000's preset: equalise, 3x3 median,
   area resize to 224), beside
   (a) decode only: ``cv2.imread`` of the same files, the usual floor; and, to show the true
       overhead of the steps, decode only with cxr's own PNG decoder (imagecodecs), and
   (b) the per-image PIL pipeline that peer projects run in every epoch (open, convert,
       equalise, resize). Target: the step reaches >= 90% of (a).
2. float training batches/s read from the tensor file (`cxr.training.data.TensorBatches`), beside
   a per-item PNG dataset in the style of torchvision's ImageFolder, through a DataLoader.
   Target: >= 20x.

Run:  python benchmarks/preprocess_throughput.py [--n 300] [--workers 2]
Writes benchmarks/out/preprocess_throughput.json and prints a table.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from multiprocessing import get_context
from pathlib import Path

import cv2
import numpy as np
import torch
from PIL import Image, ImageOps

from cxr.data.decode import read_gray
from cxr.data.index import write_index
from cxr.data.preprocess import preprocess
from cxr.data.presets import Preset
from cxr.ingest import ingest
from cxr.synth import synthesize
from cxr.training.data import TensorBatches

SEED000 = Preset(size=224, steps=("equalize", "median3", "resize"))


def decode_only(path: str) -> int:
    return cv2.imread(path, cv2.IMREAD_UNCHANGED).shape[0]


def cxr_decode_only(path: str) -> int:
    return read_gray(path).shape[0]


def pil_pipeline(path: str) -> int:
    with Image.open(path) as im:
        img = ImageOps.equalize(im.convert("L")).resize((224, 224), Image.Resampling.BILINEAR)
    return np.asarray(img).shape[0]


def rate(n: int, fn, repeats: int = 3) -> float:
    """Median images/s of ``fn()`` processing ``n`` images."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return n / statistics.median(times)


def pool_rate(fn, paths: list[str], workers: int) -> float:
    with get_context("fork").Pool(workers) as pool:
        pool.map(fn, paths[: workers * 2])  # warm the workers
        return rate(len(paths), lambda: list(pool.imap(fn, paths, chunksize=8)))


class PngFolderDataset(torch.utils.data.Dataset):
    """The peer-project way: decode and resize each PNG every time an item is read."""

    def __init__(self, paths: list[str]) -> None:
        self.paths = paths

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> torch.Tensor:
        with Image.open(self.paths[i]) as im:
            img = im.convert("L").resize((224, 224), Image.Resampling.BILINEAR)
        return torch.from_numpy(np.asarray(img, dtype=np.float32) / 255.0).unsqueeze(0)


def batch_rates(tensor_dir: Path, paths: list[str], workers: int, batch: int = 32) -> dict:
    batches = TensorBatches(tensor_dir, batch_size=batch, shuffle=True)

    def read_tensor_epoch() -> None:
        for images, _rows in batches:
            images.mean()  # touch the data

    loader = torch.utils.data.DataLoader(
        PngFolderDataset(paths), batch_size=batch, shuffle=True, num_workers=workers
    )

    def read_png_epoch() -> None:
        for images in loader:
            images.mean()

    tensor = rate(len(paths), read_tensor_epoch, repeats=5)
    png = rate(len(paths), read_png_epoch, repeats=1)
    return {
        "tensor_images_per_s": tensor,
        "png_folder_images_per_s": png,
        "ratio": tensor / png,
        "target_ratio": 20.0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=300, help="number of 1024x1024 PNGs")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--out", type=Path, default=Path("benchmarks/out/preprocess_throughput.json")
    )
    args = parser.parse_args()
    cv2.setNumThreads(1)
    torch.set_num_threads(args.workers)

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        root = synthesize("nih", tmp / "nih", n=args.n, size=1024, seed=0)
        index, manifest = ingest("nih", root)
        write_index(index, manifest, tmp / "index.parquet")
        paths = [str(root / p) for p in index["path"]]
        for p in paths:  # page cache warm for everyone
            Path(p).read_bytes()

        decode = pool_rate(decode_only, paths, args.workers)
        own_decode = pool_rate(cxr_decode_only, paths, args.workers)
        pil = pool_rate(pil_pipeline, paths, args.workers)
        step = rate(
            len(paths),
            lambda: preprocess(
                tmp / "index.parquet", root, SEED000, tmp / "tensors", workers=args.workers
            ),
        )
        loading = batch_rates(tmp / "tensors", paths, args.workers)

    result = {
        "images": len(paths),
        "workers": args.workers,
        "preprocess": {
            "decode_only_images_per_s": decode,
            "cxr_preprocess_images_per_s": step,
            "pil_per_image_pipeline_images_per_s": pil,
            "ratio_to_decode_only": step / decode,
            "target_ratio_to_decode_only": 0.9,
            "cxr_decode_only_images_per_s": own_decode,
            "ratio_to_cxr_decode_only": step / own_decode,
            "ratio_to_pil_pipeline": step / pil,
        },
        "batch_loading": loading,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    p, b = result["preprocess"], result["batch_loading"]
    print(f"{len(paths)} NIH-like 1024x1024 PNGs, {args.workers} workers")
    print(f"  decode only (cv2.imread)          {p['decode_only_images_per_s']:8.1f} img/s")
    print(
        f"  cxr preprocess (eq+median+resize) {p['cxr_preprocess_images_per_s']:8.1f} img/s"
        f"  = {p['ratio_to_decode_only']:.0%} of decode-only (target >= 90%)"
    )
    print(
        f"  decode only (cxr's PNG decoder)   {p['cxr_decode_only_images_per_s']:8.1f} img/s"
        f"  (preprocess = {p['ratio_to_cxr_decode_only']:.0%} of it: the steps' true overhead)"
    )
    print(
        f"  PIL per-image pipeline            {p['pil_per_image_pipeline_images_per_s']:8.1f} img/s"
    )
    print(f"  float batches from tensor file    {b['tensor_images_per_s']:8.1f} img/s")
    print(
        f"  ImageFolder-style PNG DataLoader  {b['png_folder_images_per_s']:8.1f} img/s"
        f"  -> {b['ratio']:.0f}x (target >= 20x)"
    )


if __name__ == "__main__":
    main()

"""Calibration and scale of `cxr.splits.near_duplicates` (grouping without patient ids).

1. Real radiographs: the 51 NIH images beside the checkout (shared/real/nih, 51 patients), each
   with 7 copies made at source resolution (6 with 1-4 random perturbations, 1 with all of
   them) and then decoded and area-resized to ``--size`` like `cxr preprocess`. Reports the
   re-check distance of every copy pair and every pair of different patients (percentiles), the
   search-feature cosine of the same pairs, the threshold margin, and the grouping's rates:
   copies kept together, distinct images merged; the old 256-bit dHash (<= 6 bits) beside it.
2. Phantoms: 300 NIH phantoms (no two patients may merge) and 400 COVID-19 Radiography
   phantoms whose 2% planted re-exposed copies must be found.
3. ``--scale N``: N synthetic 224 px images (mosaics of real-image tiles, 1% planted copies) in a
   uint8 memmap on /tmp; seconds per phase and peak RSS of the grouping, then the file is removed.

Run:  python benchmarks/near_duplicates.py [--size 224] [--scale 112120]
Writes benchmarks/out/near_duplicates.json and prints a table.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import cv2
import imagecodecs
import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from cxr.data.decode import read_gray
from cxr.data.presets import Preset
from cxr.data.transforms import resize
from cxr.splits import near_duplicates as nd
from cxr.synth import covid_radiography, nih

REAL = Path(__file__).resolve().parents[1].parent / "shared" / "real" / "nih"
OUT = Path(__file__).resolve().parent / "out"
TEXTS = ("L", "R", "PORTABLE", "AP SUPINE", "12/03/2019", "ERECT", "ID 00421", "CHEST PA")
COPIES = 7


# --- copies, made at source resolution --------------------------------------------------------


def brightness_contrast(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Contrast x0.9-1.1 about the mean and brightness +-10% of the range."""
    mean = float(img.mean())
    out = (img.astype(np.float32) - mean) * rng.uniform(0.9, 1.1) + mean
    return np.clip(out + rng.uniform(-0.1, 0.1) * 255, 0, 255).astype(np.uint8)


def crop_rescale(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Crop up to 5% of each axis (shared unevenly by its two ends), rescale x0.5-1.2."""
    h, w = img.shape
    cut_y, cut_x = rng.uniform(0, 0.05, 2) * (h, w)
    ty, tx = rng.uniform(0, 1, 2)
    out = img[
        int(cut_y * ty) : h - int(cut_y * (1 - ty)), int(cut_x * tx) : w - int(cut_x * (1 - tx))
    ]
    scale = rng.uniform(0.5, 1.2)
    size = (round(out.shape[1] * scale), round(out.shape[0] * scale))
    return cv2.resize(out, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)


def rotate(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Rotation by up to 3 degrees; corners black or replicated."""
    h, w = img.shape
    matrix = cv2.getRotationMatrix2D((w / 2, h / 2), rng.uniform(-3, 3), 1.0)
    border = cv2.BORDER_CONSTANT if rng.random() < 0.5 else cv2.BORDER_REPLICATE
    return cv2.warpAffine(img, matrix, (w, h), flags=cv2.INTER_LINEAR, borderMode=border)


def border(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A black or white frame of 1-4% of the area, unevenly over the sides."""
    h, w = img.shape
    area, share = rng.uniform(0.01, 0.04), rng.dirichlet(np.ones(4))
    top, bottom = (share[:2] * area * h).astype(int)
    left, right = (share[2:] * area * w).astype(int)
    value = 0 if rng.random() < 0.5 else 255
    return cv2.copyMakeBorder(img, top, bottom, left, right, cv2.BORDER_CONSTANT, value=value)


def text(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """White burnt-in annotations whose boxes cover 1-4% of the area, anywhere."""
    img, (h, w) = img.copy(), img.shape
    budget, covered = rng.uniform(0.01, 0.04) * h * w, 0.0
    while True:
        label, scale = str(rng.choice(TEXTS)), h / 1000 * rng.uniform(0.8, 2.0)
        thick = max(1, round(scale * 2))
        (tw, th), base = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
        if covered and covered + tw * (th + base) > budget:
            return img
        origin = (int(rng.uniform(0, max(1, w - tw))), int(rng.uniform(th, h - base)))
        cv2.putText(img, label, origin, cv2.FONT_HERSHEY_SIMPLEX, scale, 255, thick, cv2.LINE_AA)
        covered += tw * (th + base)


PERTURBATIONS = {
    "brightness_contrast": brightness_contrast,
    "crop_rescale": crop_rescale,
    "rotate": rotate,
    "border": border,
    "text": text,
}


def encode(img: np.ndarray, rng: np.random.Generator, folder: Path) -> tuple[Path, str]:
    """Store as JPEG q70-95 (half the time), 16-bit PNG (bit-depth change) or 8-bit PNG."""
    kind = str(rng.choice(["jpeg", "jpeg", "png16", "png8"]))
    if kind == "jpeg":
        path = folder / "copy.jpg"
        cv2.imwrite(str(path), img, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(70, 96))])
        return path, kind
    path = folder / "copy.png"
    if kind == "png16":
        wide = img * 257.0 * rng.uniform(0.9, 1.0) + rng.uniform(-128, 128, img.shape)
        img = np.clip(wide, 0, 65535).astype(np.uint16)
    path.write_bytes(imagecodecs.png_encode(img))
    return path, kind


def make_copy(
    src: np.ndarray, rng: np.random.Generator, size: int, folder: Path, ops: list[str] | None
) -> tuple[np.ndarray, list[str]]:
    """A copy of ``src`` as preprocessing sees it; ``ops`` None draws 1-4 perturbations."""
    if ops is None:
        ops = [str(o) for o in rng.choice(list(PERTURBATIONS), rng.integers(1, 5), replace=False)]
    for op in ops:
        src = PERTURBATIONS[op](src, rng)
    path, kind = encode(src, rng, folder)
    return resize(read_gray(path), Preset(size=size)), [*ops, kind]


def real_set(size: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, list]:
    """Originals and copies: images, patient of each, whether original, the ops of each."""
    entries = pd.read_csv(REAL / "Data_Entry_2017_v2020.csv").set_index("Image Index")
    rng = np.random.default_rng(seed)
    images, patient, original, ops = [], [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for path in sorted((REAL / "images").glob("*.png")):
            src = read_gray(path)
            who = int(entries.loc[path.name, "Patient ID"])
            images.append(resize(src, Preset(size=size)))
            patient.append(who), original.append(True), ops.append(["original"])
            for c in range(COPIES):
                every = list(PERTURBATIONS) if c == COPIES - 1 else None
                img, done = make_copy(src, rng, size, Path(tmp), every)
                images.append(img), patient.append(who), original.append(False), ops.append(done)
    return np.stack(images), np.array(patient), np.array(original), ops


# --- reporting helpers ------------------------------------------------------------------------


def percentiles(values: np.ndarray) -> dict[str, float]:
    if len(values) == 0:
        return {"n": 0}
    qs = (0, 1, 5, 50, 95, 99, 100)
    return {f"p{q}": round(float(np.percentile(values, q)), 4) for q in qs} | {"n": len(values)}


def merge_rates(labels: np.ndarray, patient: np.ndarray, original: np.ndarray) -> dict:
    """Copies grouped with their original; distinct (different-patient) pairs merged."""
    same_label = labels[:, None] == labels[None, :]
    same_patient = patient[:, None] == patient[None, :]
    upper = np.triu(np.ones_like(same_label), 1)
    copy_of = [np.flatnonzero(original & (patient == p))[0] for p in patient[~original]]
    kept = float(np.mean(labels[~original] == labels[copy_of]))
    return {
        "copies_kept_with_original": kept,
        "copy_pairs_together": float(same_label[same_patient & upper].mean()),
        "distinct_pairs_merged": int((same_label & ~same_patient & upper).sum()),
        "distinct_pairs": int((~same_patient & upper).sum()),
    }


def old_dhash_groups(images: np.ndarray, bits: int = 6) -> np.ndarray:
    """The grouping cxr used before (the baseline): 256-bit dHashes at most ``bits`` apart."""
    small = [cv2.resize(img, (17, 16), interpolation=cv2.INTER_AREA) for img in images]
    hashes = np.stack([(s[:, 1:] > s[:, :-1]).ravel() for s in small])
    distance = (hashes[:, None, :] != hashes[None, :, :]).sum(-1)
    i, j = np.nonzero(np.triu(distance <= bits, 1))
    graph = coo_matrix((np.ones(len(i)), (i, j)), shape=(len(images),) * 2)
    return connected_components(graph, directed=False)[1]


def search_cosine(features: np.ndarray, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """Cosine of the centred search features of each pair."""
    centred = nd.unit_rows(features - features.mean(axis=0))
    return np.einsum("ij,ij->i", centred[i], centred[j])


def calibrate(size: int) -> dict:
    """Screen, coarse, fine and combined distances of every copy pair and of distinct pairs;
    the grouping's rates."""
    images, patient, original, _ = real_set(size)
    thumbs, features = nd.reduce_images(images)
    i, j = np.triu_indices(len(images), 1)
    # every copy pair, every pair of originals, and a sample of the other distinct pairs
    rng = np.random.default_rng(1)
    sample = (patient[i] == patient[j]) | (original[i] & original[j]) | (rng.random(len(i)) < 0.1)
    i, j = i[sample], j[sample]
    same = patient[i] == patient[j]
    with_original = same & (original[i] | original[j])
    with nd.single_threaded():
        screened = nd.screen(thumbs, i, j)
        coarse, fine = nd.recheck_terms(images, i, j).T
    distance = np.maximum(coarse, fine * (nd.DISTANCE_THRESHOLD / nd.FINE_THRESHOLD))
    cosine = search_cosine(features, i, j)
    labels, _ = nd.near_duplicate_groups(images)
    old = old_dhash_groups(images)
    kinds = {"original_copy": with_original, "copy_copy": same & ~with_original, "distinct": ~same}
    report = {
        "size": size,
        "images": len(images),
        "patients": len(np.unique(patient)),
        "threshold": nd.DISTANCE_THRESHOLD,
        "fine_threshold": nd.FINE_THRESHOLD,
        "screen_threshold": nd.SCREEN_THRESHOLD,
        "margin_below": round(float(nd.DISTANCE_THRESHOLD - distance[same].max()), 4),
        "margin_above": round(float(distance[~same].min() - nd.DISTANCE_THRESHOLD), 4),
    }
    for name, values in {
        "distance": distance,
        "coarse": coarse,
        "fine": fine,
        "screen": screened,
        "search_cosine": cosine,
    }.items():
        report |= {f"{name}_{kind}": percentiles(values[rows]) for kind, rows in kinds.items()}
    report["grouping"] = merge_rates(labels, patient, original)
    report["old_dhash_6_bits"] = merge_rates(old, patient, original)
    return report


# --- phantoms ---------------------------------------------------------------------------------


def phantoms(size: int) -> dict:
    """NIH phantoms of different patients must not merge; planted COVID copies must be found."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "nih").mkdir()
        nih.generate(root / "nih", n=300, size=256, seed=0, variant="box")
        entries = pd.read_csv(root / "nih" / nih.V2020_CSV)
        nih_images = np.stack(
            [load(root / "nih" / "images" / f, size) for f in entries["Image Index"]]
        )
        covid_root = root / "covid"
        covid_radiography.generate(covid_root, n=400, size=299, seed=0, variant="v4")
        items = covid_radiography.plan_items(400, 0)
        folder = covid_root / covid_radiography.DATASET_FOLDER
        covid_images = np.stack(
            [load(folder / it.cls / "images" / it.file_name, size) for it in items]
        )
    source = np.array([it.index if it.duplicate_of is None else it.duplicate_of for it in items])
    return {
        "nih_phantoms": phantom_report(nih_images, entries["Patient ID"].to_numpy()),
        "covid_phantoms": phantom_report(covid_images, source),
    }


def phantom_report(images: np.ndarray, owner: np.ndarray) -> dict:
    """Grouping of phantoms whose ``owner`` (patient or planted source) says which may merge."""
    labels, pairs = nd.near_duplicate_groups(images)
    same_label = labels[:, None] == labels[None, :]
    upper = np.triu(np.ones_like(same_label), 1)
    distinct = owner[:, None] != owner[None, :]
    copies = np.flatnonzero(np.bincount(owner)[owner] > 1)
    first = {o: np.flatnonzero(owner == o)[0] for o in np.unique(owner[copies])}
    planted = [k for k in copies if first[owner[k]] != k]
    with nd.single_threaded():
        thumbs, features = nd.reduce_images(images)
        ci, cj = nd.candidate_pairs(features)
    keep = owner[ci] != owner[cj]
    with nd.single_threaded():
        screened = nd.screen(thumbs, ci[keep], cj[keep])
        passed = screened <= nd.SCREEN_THRESHOLD
        distance = nd.recheck(images, ci[keep][passed], cj[keep][passed])
    return {
        "images": len(images),
        "pairs_found": len(pairs),
        "distinct_pairs_merged": int((same_label & distinct & upper).sum()),
        "same_owner_images": len(copies),
        "same_owner_found": int(sum(labels[k] == labels[first[owner[k]]] for k in planted)),
        "same_owner_later_images": len(planted),
        "distinct_candidates": int(keep.sum()),
        "distinct_screened_in": int(passed.sum()),
        "distance_distinct_candidates": percentiles(distance),
    }


def load(path: Path, size: int) -> np.ndarray:
    return resize(read_gray(path), Preset(size=size))


# --- scale ------------------------------------------------------------------------------------


def mosaic_memmap(path: Path, n: int, size: int, seed: int = 0) -> dict[str, np.ndarray]:
    """N distinct images, 4 x 4 tiles cut from random places of the real images; 1% of them are
    copies made at ``size`` (crop/rescale x0.5-1.2, rotation, brightness, JPEG) of another
    mosaic, and 408 rows hold the real calibration set (51 originals with 7 copies each).
    Returns, per row, the planted copy's source (-1 if none) and the real patient (-1 if none)."""
    sources = np.stack([load(p, 512) for p in sorted((REAL / "images").glob("*.png"))])
    rng = np.random.default_rng(seed)
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.uint8, shape=(n, size, size))
    tile = size // 4
    for start in range(0, n, 4096):
        stop = min(n, start + 4096)
        block = np.empty((stop - start, size, size), np.uint8)
        for k in range(stop - start):
            for ty in range(4):
                for tx in range(4):
                    s, (y, x) = rng.integers(len(sources)), rng.integers(0, 512 - tile, 2)
                    block[k, ty * tile : (ty + 1) * tile, tx * tile : (tx + 1) * tile] = sources[
                        s, y : y + tile, x : x + tile
                    ]
        out[start:stop] = block
    copy_of = np.full(n, -1)
    copies = rng.choice(np.arange(1, n), n // 100, replace=False)
    originals = np.setdiff1d(np.arange(n), copies)  # a source is never itself overwritten
    for row in copies:
        src = int(rng.choice(originals[originals < row]))
        out[row] = scale_copy(np.asarray(out[src]), rng)
        copy_of[row] = src
    patient = np.full(n, -1)
    real, real_patient, _, _ = real_set(size)
    free = np.flatnonzero((copy_of < 0) & ~np.isin(np.arange(n), copy_of))  # no copy, no source
    rows = rng.choice(free, len(real), replace=False)
    out[rows], patient[rows] = real, real_patient
    out.flush()
    return {"copy_of": copy_of, "patient": patient}


def scale_copy(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A copy made at the preprocessed size: crop/rescale, rotation, brightness, JPEG."""
    size = img.shape[0]
    img = rotate(crop_rescale(brightness_contrast(img, rng), rng), rng)
    ok, data = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(70, 96))])
    assert ok
    decoded = cv2.imdecode(data, cv2.IMREAD_GRAYSCALE)
    return cv2.resize(decoded, (size, size), interpolation=cv2.INTER_AREA)


def scale(n: int, size: int) -> dict:
    """Group ``n`` images read from a memmap in a fresh process: seconds per phase, peak RSS,
    planted copies and real copies found."""
    with tempfile.TemporaryDirectory(dir="/tmp") as tmp:
        path = Path(tmp) / "images.npy"
        t0 = time.perf_counter()
        truth = mosaic_memmap(path, n, size)
        made = time.perf_counter() - t0
        spawn = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(1, mp_context=spawn) as pool:
            report = pool.submit(timed_grouping, str(path)).result()
        result = np.load(Path(tmp) / "result.npz")
    labels, i, j = result["labels"], result["i"], result["j"]
    copy_of, patient = truth["copy_of"], truth["patient"]
    planted = copy_of >= 0
    real = patient >= 0
    same = same_source(i, j, copy_of, patient)
    confirmed = result["confirmed"]
    return {
        "images": n,
        "size": size,
        "file_gb": round(n * size * size / 1e9, 2),
        "seconds_to_write_file": round(made, 1),
        **report,
        "planted_copies": int(planted.sum()),
        "planted_found": int(np.sum(labels[planted] == labels[copy_of[planted]])),
        "real_copies_grouped": real_rates(labels, patient),
        "real_images": int(real.sum()),
        "confirmed_pairs_of_distinct_images": int((confirmed & ~same).sum()),
        "search_cosine_candidates": percentiles(result["cosine"]),
        "search_cosine_copies": percentiles(result["cosine"][same]),
        "candidates_removed_by_cosine_cut": {
            str(cut): round(float(np.mean(result["cosine"] < cut)), 4) for cut in (0.6, 0.7, 0.8)
        },
        "copies_lost_by_cosine_cut": {
            str(cut): int(np.sum(result["cosine"][same] < cut)) for cut in (0.6, 0.7, 0.8)
        },
        "screen_copies": percentiles(result["screen"][same]),
        "screen_distinct": percentiles(result["screen"][~same]),
    }


def same_source(i: np.ndarray, j: np.ndarray, copy_of: np.ndarray, patient: np.ndarray):
    """Whether each pair is a planted copy and its source, or two images of one real patient."""
    root = np.where(copy_of >= 0, copy_of, np.arange(len(copy_of)))
    planted = root[i] == root[j]
    return planted | ((patient[i] >= 0) & (patient[i] == patient[j]))


def real_rates(labels: np.ndarray, patient: np.ndarray) -> dict:
    """The embedded real set: copies grouped with their original (the first row of a patient),
    images of different patients merged with each other or with a mosaic."""
    real = np.flatnonzero(patient >= 0)
    first = {p: real[patient[real] == p][0] for p in np.unique(patient[real])}
    copies = [k for k in real if first[patient[k]] != k]
    merged = sum(np.any(patient[labels == labels[k]] != patient[k]) for k in real)
    return {
        "copies": len(copies),
        "copies_grouped": int(sum(labels[k] == labels[first[patient[k]]] for k in copies)),
        "merged_with_other": int(merged),
    }


def timed_grouping(path: str) -> dict:
    """In a fresh process: group the memmap at ``path`` phase by phase; seconds, peak RSS."""
    images = np.load(path, mmap_mode="r")
    rss = {"after_imports": peak_rss_mb()}
    times = {}
    with nd.single_threaded():
        t = time.perf_counter()
        thumbs, features = nd.reduce_images(images)
        times["reduce"] = time.perf_counter() - t
        rss["reduce"] = peak_rss_mb()
        t = time.perf_counter()
        i, j = nd.candidate_pairs(features)
        times["search"] = time.perf_counter() - t
        rss["search"] = peak_rss_mb()
        t = time.perf_counter()
        screened = nd.screen(thumbs, i, j)
        times["screen"] = time.perf_counter() - t
        rss["screen"] = peak_rss_mb()
        t = time.perf_counter()
        kept = np.flatnonzero(screened <= nd.SCREEN_THRESHOLD)
        distance = nd.recheck(images, i[kept], j[kept])
        times["recheck"] = time.perf_counter() - t
        rss["recheck"] = peak_rss_mb()
        t = time.perf_counter()
        ok = kept[distance <= nd.DISTANCE_THRESHOLD]
        n = len(images)
        graph = coo_matrix((np.ones(len(ok)), (i[ok], j[ok])), shape=(n, n))
        labels = connected_components(graph, directed=False)[1]
        times["components"] = time.perf_counter() - t
        rss["components"] = peak_rss_mb()
    confirmed = np.zeros(len(i), bool)
    confirmed[ok] = True
    np.savez(
        Path(path).parent / "result.npz",
        labels=labels, i=i, j=j, screen=screened, confirmed=confirmed,
        cosine=search_cosine(features, i, j),
    )  # fmt: skip
    return {
        "seconds": {k: round(v, 2) for k, v in times.items()}
        | {"total": round(sum(times.values()), 2)},
        "candidate_pairs": len(i),
        "screened_in_pairs": len(kept),
        "confirmed_pairs": len(ok),
        "peak_rss_mb": rss,
        "cpu_load_1min_before": round(os.getloadavg()[0], 2),
        "cpus": os.cpu_count(),
        "affinity": sorted(os.sched_getaffinity(0)),
    }


def peak_rss_mb() -> float:
    """Peak resident set of this process since it started (VmHWM: unlike ``ru_maxrss``, not
    inherited from the process that forked it)."""
    status = Path("/proc/self/status").read_text()
    return round(int(status.split("VmHWM:")[1].split()[0]) / 1024, 1)


# --- table ------------------------------------------------------------------------------------


def print_tables(report: dict) -> None:
    """The report as readable tables."""
    if "real_nih" in report:
        real = report["real_nih"]
        print(
            f"\nReal NIH, {real['images']} images of {real['patients']} patients (S={real['size']})"
        )
        print(f"{'measure':16s} {'pairs':>14s} {'n':>6s} " + " ".join(f"{q:>7s}" for q in QS))
        for name in ("distance", "coarse", "fine", "screen", "search_cosine"):
            for kind in ("original_copy", "copy_copy", "distinct"):
                row = real[f"{name}_{kind}"]
                values = " ".join(f"{row.get(q, float('nan')):7.3f}" for q in QS)
                print(f"{name:16s} {kind:>14s} {row['n']:6d} {values}")
        print(
            f"threshold {real['threshold']} (fine {real['fine_threshold']}, screen "
            f"{real['screen_threshold']}); margin below {real['margin_below']}, above "
            f"{real['margin_above']}"
        )
        for key in ("grouping", "old_dhash_6_bits"):
            rates = real[key]
            print(
                f"{key:18s} copies kept with original {rates['copies_kept_with_original']:.3f}, "
                f"copy pairs together {rates['copy_pairs_together']:.3f}, distinct merged "
                f"{rates['distinct_pairs_merged']} of {rates['distinct_pairs']}"
            )
    for key in ("nih_phantoms", "covid_phantoms"):
        if key in report:
            ph = report[key]
            low = ph["distance_distinct_candidates"].get("p0", float("nan"))
            print(
                f"{key:15s} {ph['images']} images: distinct pairs merged "
                f"{ph['distinct_pairs_merged']}, same-owner images found "
                f"{ph['same_owner_found']} of {ph['same_owner_later_images']}, closest distinct "
                f"candidate {low:.3f} ({ph['distinct_screened_in']} of "
                f"{ph['distinct_candidates']} distinct candidates re-checked)"
            )
    if "scale" in report:
        sc = report["scale"]
        phases = " ".join(f"{k} {v:.1f}" for k, v in sc["seconds"].items())
        rates = sc["real_copies_grouped"]
        print(f"\nScale: {sc['images']} images at {sc['size']} px ({sc['file_gb']} GB memmap)")
        print(f"seconds: {phases}")
        print(
            f"pairs: candidates {sc['candidate_pairs']}, screened in {sc['screened_in_pairs']}, "
            f"confirmed {sc['confirmed_pairs']} ({sc['confirmed_pairs_of_distinct_images']} of "
            f"distinct images); peak RSS {sc['peak_rss_mb']['components']} MB (after imports "
            f"{sc['peak_rss_mb']['after_imports']}); load {sc['cpu_load_1min_before']} on "
            f"{sc['cpus']} CPUs"
        )
        print(
            f"planted copies found {sc['planted_found']} of {sc['planted_copies']}; real copies "
            f"grouped {rates['copies_grouped']} of {rates['copies']}, real images merged with "
            f"another patient or a mosaic {rates['merged_with_other']}"
        )
        print(
            f"search cosine cut removes {sc['candidates_removed_by_cosine_cut']} of candidates, "
            f"loses copies {sc['copies_lost_by_cosine_cut']}"
        )


QS = ("p0", "p1", "p5", "p50", "p95", "p99", "p100")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--scale", type=int, default=0, help="also group N synthetic images")
    parser.add_argument("--skip-calibration", action="store_true")
    args = parser.parse_args()
    report: dict = {}
    if not args.skip_calibration:
        report["real_nih"] = calibrate(args.size)
        report |= phantoms(args.size)
    if args.scale:
        report["scale"] = scale(args.scale, 224)
    OUT.mkdir(exist_ok=True)
    name = "near_duplicates.json" if not args.skip_calibration else "near_duplicates_scale.json"
    (OUT / name).write_text(json.dumps(report, indent=2))
    print_tables(report)


if __name__ == "__main__":
    main()

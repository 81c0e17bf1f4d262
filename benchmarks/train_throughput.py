"""Training images/s of every architecture with synthetic input beside the real input pipeline.

For each architecture and input size, the engine's own epoch loop (``Trainer._train_epoch`` of
``cxr.training.loop``: targets, loss, backward, optimiser step) runs short epochs fed by

(a) ``synthetic``: a fixed float tensor, already normalised, held in memory (the upper bound).
    The engine has no public one-step function; this side goes through the loop's in-memory
    branch (the one a frozen backbone uses for its cached features), handed the full model, so
    both sides run the same step code and differ only in where the batches come from;
(b) ``real``: the input pipeline exactly as the engine uses it: uint8 ``images.npy`` in a temp
    folder, memory-mapped (``load_tensor``) -> ``TensorBatches`` -> ``Prefetcher``
    (a background thread) -> normalisation and augmentation from ``cxr.training.augment`` on the
    training device (``Trainer._inputs``);
(c) ``real_noaug``: (b) without augmentation, to separate loading + normalisation from the warp.

Goal: real / synthetic >= 0.95 on the CPU (the data wait share under 5%). The sides run
interleaved, round after round in a rotating order, so machine load hits them alike; images/s
are medians over rounds, and a ratio is the median of the per-round ratios (round r of one side
against round r of the synthetic side, run back to back). The engine's own data wait share
(``Prefetcher.waited`` / epoch time) comes from (b). Per configuration, the pieces of the input
path are also timed on their own: the memory-map gather (the prefetch thread's work) and
``Trainer._inputs`` with and without the warp (the main thread's work before each step), as a
share of one synthetic step.

Sizes: ``demo`` is 64 px; ``paper`` is 224 px, except smallcnn (seed 003 trains at 64 px) whose
demo and paper sizes coincide. Every model has 14 sigmoid outputs (an NIH-like multilabel task).

Each round runs at least ``--steps`` batches, more for fast models (a round lasts about
``--min-seconds``, so that per-epoch costs such as starting the prefetch thread weigh as little as
in a real epoch); the step count is calibrated on the synthetic side after the warm-up.

Run:  python benchmarks/train_throughput.py [--quick] [--archs densenet121 smallcnn_v1]
      [--sizes demo paper 128] [--steps 3] [--min-seconds 3] [--rounds 3] [--batch 16]
      [--threads 1]
Writes benchmarks/out/train_throughput.json (after every configuration) and prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from cxr.data.preprocess import TENSOR_FILE, load_tensor
from cxr.training import augment
from cxr.training.augment import Augment
from cxr.training.data import TaskData, TensorBatches
from cxr.training.loop import Trainer
from cxr.training.models import ARCHITECTURES, SMALL_CNNS
from cxr.training.recipe import Recipe
from cxr.training.runtime import reproducible

DEFAULT_ARCHS = ("densenet121", "resnet50", "alexnet", "vgg19_bn", "smallcnn_v1", "logreg")
DEMO, PAPER = 64, 224
#: Batch size per input size unless --batch says otherwise (the recipe default at 64 px; the
#: batch environment.md measured DenseNet-121 with at 224 px).
DEFAULT_BATCH = {DEMO: 32, PAPER: 16}
#: A representative geometric augmentation: every kind of warp the engine knows.
DEFAULT_AUGMENT = {"hflip": 0.5, "rotation": 10.0, "shift": 0.1, "zoom": 0.1, "shear": 5.0}
OUTPUTS = 14
GOAL = 0.95  # real / synthetic: the median of the ratios of rounds run back to back
SIDES = ("synthetic", "real", "real_noaug")
#: At most this much float input held in memory for the synthetic side (caps fast models' steps).
SYNTHETIC_BYTES = 1 << 30


def sizes_of(arch: str, wanted: list[str]) -> list[tuple[int, str]]:
    """(pixels, label) of each wanted size for ``arch``; demo and paper coincide for smallcnn."""
    found: dict[int, list[str]] = {}
    for w in wanted:
        if w == "demo":
            size = DEMO
        elif w == "paper":
            size = DEMO if arch in SMALL_CNNS else PAPER
        else:
            size = int(w)
        found.setdefault(size, []).append(w)
    return [(size, "/".join(labels)) for size, labels in found.items()]


def write_images(folder: Path, n: int, size: int, seed: int) -> np.ndarray:
    """A uint8 (n, size, size) images.npy in ``folder``, opened as the engine opens it."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    base = (96 + 80 * np.sin(6 * xx) * np.cos(4 * yy)).astype(np.int16)  # some structure
    images = np.empty((n, size, size), np.uint8)
    for start in range(0, n, 256):
        k = min(256, n - start)
        noise = rng.integers(-40, 40, (k, size, size), dtype=np.int16)
        images[start : start + k] = np.clip(base + noise, 0, 255)
    np.save(folder / TENSOR_FILE, images)
    return load_tensor(folder)


def make_task(images: np.ndarray, train_rows: np.ndarray, seed: int) -> TaskData:
    n = len(images)
    rng = np.random.default_rng(seed)
    targets = (rng.random((n, OUTPUTS)) < 0.1).astype(np.float32)
    targets[rng.random((n, OUTPUTS)) < 0.02] = np.nan  # a few unknown labels
    outputs = tuple(f"finding{k}" for k in range(OUTPUTS))
    rest = np.setdiff1d(np.arange(n), train_rows)
    return TaskData(
        images=images,
        image_ids=np.array([f"img{i:06d}" for i in range(n)]),
        targets=targets,
        outputs=outputs,
        truth=pd.DataFrame(index=range(n)),
        sides={"train": np.sort(train_rows), "val": rest[:1], "test": rest[1:2]},
        mean=0.5,
        std=0.25,
    )


def fixed_inputs(trainer: Trainer, task: TaskData) -> torch.Tensor:
    """The train rows of ``task`` normalised by the engine itself (no augmentation), in memory."""
    rows = task.sides["train"]
    with torch.no_grad():
        return trainer._inputs(torch.from_numpy(task.images[rows]).unsqueeze(1), rows).clone()


def run_epoch(trainer: Trainer, task: TaskData, side: str, epoch: int, fixed: dict) -> dict:
    """One engine epoch over ``task``'s train rows fed by ``side``; images/s and wait share."""
    trainer.task = task
    if side == "synthetic":  # the engine's in-memory branch, given the whole model
        trainer.head, trainer.features = trainer.model, {"train": fixed[id(task)]}
    else:
        trainer.head, trainer.features = None, {}
    start = time.perf_counter()
    _loss, wait_share = trainer._train_epoch(epoch)
    seconds = time.perf_counter() - start
    trainer.head, trainer.features = None, {}
    return {"images_per_s": len(task.sides["train"]) / seconds, "data_wait_share": wait_share}


def time_pieces(trainer: Trainer, task: TaskData, settings: Augment, repeats: int) -> dict:
    """Median seconds per batch of each piece of the real input path, timed on its own."""
    rows = task.sides["train"]
    batches = TensorBatches(task.images, rows, trainer.recipe.batch_size, scale=False)
    batch = next(batches.row_batches())
    pixels = torch.from_numpy(task.images[batch]).unsqueeze(1)
    matrices = augment.draw(settings, len(task.images), augment.epoch_generator(0, 0))

    def median_s(fn) -> float:
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
        return statistics.median(times)

    with torch.no_grad():
        return {
            "gather_s": median_s(lambda: torch.from_numpy(task.images[batch]).unsqueeze(1)),
            "normalise_s": median_s(lambda: trainer._inputs(pixels, batch)),
            "normalise_augment_s": median_s(lambda: trainer._inputs(pixels, batch, matrices)),
            "batch": len(batch),
        }


def measure(arch: str, size: int, label: str, args: argparse.Namespace, tmp: Path) -> dict:
    batch = args.batch or DEFAULT_BATCH.get(size, 32)
    settings = Augment(**args.augment)
    recipes = {
        aug: Recipe(
            study="benchmark",
            architecture=arch,
            input_size=size,
            batch_size=batch,
            augment=settings if aug else Augment(),
            scheduler="none",
            deterministic=True,
            seed=0,
        )
        for aug in (True, False)
    }
    n_warm = args.warmup * batch
    folder = tmp / f"{arch}_{size}"
    folder.mkdir()
    rng = np.random.default_rng(1)

    device = torch.device("cpu")
    load_before = os.getloadavg()[0]
    with reproducible(True, device):
        warm_images = write_images(folder, n_warm, size, seed=size)
        warm = make_task(warm_images, np.arange(n_warm), seed=2)
        trainer = Trainer(warm, recipes[True], device, rank=0, world=1)
        trainer.initialise(None, None)
        fixed = {id(warm): fixed_inputs(trainer, warm)}
        # the sides share one model and optimiser: only the recipe's augment differs
        variants = {
            "synthetic": recipes[True],
            "real": recipes[True],
            "real_noaug": recipes[False],
        }
        epoch = 0
        for side in args.sides:  # warm-up: allocator, page cache, first-call costs
            trainer.recipe = variants[side]
            run_epoch(trainer, warm, side, epoch, fixed)
            epoch += 1
        # calibration: enough steps per round to last --min-seconds on the synthetic side
        trainer.recipe = variants["synthetic"]
        rate = run_epoch(trainer, warm, "synthetic", epoch, fixed)["images_per_s"]
        epoch += 1
        most = min(args.max_steps, max(1, SYNTHETIC_BYTES // (batch * size * size * 4)))
        steps = max(args.steps, min(most, int(args.min_seconds * rate / batch) + 1))
        n_timed = steps * batch
        shutil.rmtree(folder)
        folder.mkdir()
        images = write_images(folder, n_timed + max(n_timed // 4, 64), size, seed=size)
        timed = make_task(images, rng.permutation(len(images))[:n_timed], seed=2)
        fixed = {id(timed): fixed_inputs(trainer, timed)}
        rounds: dict[str, list[dict]] = {s: [] for s in args.sides}
        for r in range(args.rounds):
            shift = r % len(args.sides)
            for side in args.sides[shift:] + args.sides[:shift]:
                trainer.recipe = variants[side]
                rounds[side].append(run_epoch(trainer, timed, side, epoch, fixed))
                epoch += 1
        trainer.recipe = recipes[True]
        pieces = time_pieces(trainer, timed, settings, repeats=25)
        del fixed, trainer
        shutil.rmtree(folder)
    load_after = os.getloadavg()[0]

    result: dict = {
        "architecture": arch,
        "size": size,
        "size_label": label,
        "batch": batch,
        "timed_steps_per_round": steps,
        "rounds": args.rounds,
        "load_average_1min": [load_before, load_after],
    }
    for side, got in rounds.items():
        rates = [g["images_per_s"] for g in got]
        result[side] = {
            "images_per_s": statistics.median(rates),
            "rounds_images_per_s": rates,
            "data_wait_share": statistics.median(g["data_wait_share"] for g in got),
        }
    if "synthetic" in rounds:
        synth = result["synthetic"]["images_per_s"]
        for side in ("real", "real_noaug"):
            if side in rounds:
                paired = [
                    g["images_per_s"] / s["images_per_s"]
                    for g, s in zip(rounds[side], rounds["synthetic"], strict=True)
                ]
                result[side]["ratio_to_synthetic"] = statistics.median(paired)
                result[side]["paired_round_ratios"] = paired
                result[side]["ratio_of_medians"] = result[side]["images_per_s"] / synth
        step_s = batch / synth
        pieces.update(
            {
                "synthetic_step_s": step_s,
                "gather_share_of_step": pieces["gather_s"] / step_s,
                "normalise_share_of_step": pieces["normalise_s"] / step_s,
                "normalise_augment_share_of_step": pieces["normalise_augment_s"] / step_s,
            }
        )
    result["pieces"] = pieces
    return result


def fmt(result: dict, side: str, key: str, spec: str) -> str:
    value = result.get(side, {}).get(key)
    return "-" if value is None else format(value, spec)


def print_table(results: list[dict]) -> None:
    head = (
        f"{'architecture':<12} {'size':>15} {'batch':>5} {'synthetic':>9} {'real':>8} "
        f"{'real/syn':>8} {'wait':>6} {'no-aug':>8} {'noaug/syn':>9} "
        f"{'norm%':>6} {'norm+aug%':>9}"
    )
    print(head)
    print("-" * len(head))
    for r in results:
        p = r["pieces"]
        print(
            f"{r['architecture']:<12} {r['size']:>4} {r['size_label']:>10} {r['batch']:>5} "
            f"{fmt(r, 'synthetic', 'images_per_s', '9.1f')} "
            f"{fmt(r, 'real', 'images_per_s', '8.1f')} "
            f"{fmt(r, 'real', 'ratio_to_synthetic', '8.2f')} "
            f"{fmt(r, 'real', 'data_wait_share', '6.1%')} "
            f"{fmt(r, 'real_noaug', 'images_per_s', '8.1f')} "
            f"{fmt(r, 'real_noaug', 'ratio_to_synthetic', '9.2f')} "
            f"{p.get('normalise_share_of_step', float('nan')):6.1%} "
            f"{p.get('normalise_augment_share_of_step', float('nan')):9.1%}"
        )
    print(
        f"images/s: medians of interleaved rounds; ratios: medians of back-to-back round pairs "
        f"(goal real/syn >= {GOAL});\nwait: the engine's data wait share (real); "
        "norm% / norm+aug%: Trainer._inputs per batch timed alone, as a share of one synthetic step"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archs", nargs="+", default=list(DEFAULT_ARCHS), choices=ARCHITECTURES)
    parser.add_argument(
        "--sizes", nargs="+", default=["demo", "paper"], help="demo, paper and/or pixels"
    )
    parser.add_argument("--steps", type=int, default=3, help="least timed batches per round")
    parser.add_argument(
        "--min-seconds",
        type=float,
        default=3.0,
        help="more timed batches per round for fast models: a round lasts about this long",
    )
    parser.add_argument("--max-steps", type=int, default=500, help="most timed batches per round")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds per side")
    parser.add_argument("--warmup", type=int, default=1, help="warm-up batches per side")
    parser.add_argument("--batch", type=int, default=0, help="batch size (default: per size)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's)")
    parser.add_argument("--sides", nargs="+", default=list(SIDES), choices=SIDES)
    parser.add_argument(
        "--augment", type=json.loads, default=DEFAULT_AUGMENT, help="JSON of Augment settings"
    )
    parser.add_argument(
        "--quick", action="store_true", help="demo size only, 2 steps or 1.5 s a round, 4 rounds"
    )
    parser.add_argument("--out", type=Path, default=Path("benchmarks/out/train_throughput.json"))
    args = parser.parse_args()
    for s in args.sizes:
        if s not in ("demo", "paper") and not s.isdigit():
            parser.error(f"--sizes: demo, paper or a number of pixels, not {s!r}")
    if args.quick:
        args.sizes, args.steps, args.rounds, args.min_seconds = ["demo"], 2, 4, 1.5
    if args.threads:
        torch.set_num_threads(args.threads)
    Augment(**args.augment)  # fail early on bad settings

    header = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "machine": {
            "cpu": platform.processor() or platform.machine(),
            "cores": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "torch": torch.__version__,
            "python": platform.python_version(),
            "load_average_at_start": os.getloadavg(),
        },
        "settings": {
            "sizes": args.sizes,
            "least_steps": args.steps,
            "min_seconds_per_round": args.min_seconds,
            "rounds": args.rounds,
            "warmup": args.warmup,
            "augment": args.augment,
            "outputs": OUTPUTS,
            "deterministic": True,
            "channels_last": True,
        },
        "goal_real_to_synthetic": GOAL,
        "results": [],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        for arch in args.archs:
            for size, label in sizes_of(arch, args.sizes):
                result = measure(arch, size, label, args, Path(tmp))
                header["results"].append(result)
                header["machine"]["load_average_at_end"] = os.getloadavg()
                args.out.write_text(json.dumps(header, indent=2) + "\n")
                rates = ", ".join(
                    f"{side} {result[side]['images_per_s']:.1f}" for side in args.sides
                )
                print(f"  {arch} {size} px: {rates} img/s", flush=True)
    print(f"\n{header['command']}")
    print(
        f"{header['machine']['cores']} cores, {header['machine']['torch_threads']} torch threads, "
        f"load average {header['machine']['load_average_at_start'][0]:.1f} at start, "
        f"{header['machine']['load_average_at_end'][0]:.1f} at end"
    )
    print_table(header["results"])


if __name__ == "__main__":
    main()

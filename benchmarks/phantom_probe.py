"""How learnable each finding of the synthetic NIH miniature is for a small CNN at 64 px.

Per seed: generate the NIH miniature (``box`` layout), read the labels from its Data_Entry CSV,
decode the PNGs once to 64x64 (area resize), split 80/20 by patient, train a 3-block CNN with
global average pooling and 14 sigmoid outputs on the CPU, and score each finding's test AUROC
("undefined" where the test set holds one class only). A finding below 0.5 means the label and
the drawing disagree; one near 1.0 is trivially easy.

The miniature keeps the real prevalences, so at n=1200 the 20% split holds 0 to 5 positives of
Fibrosis, Hernia or Cardiomegaly and their AUROCs swing by +-0.2 between seeds. ``--test-n``
also scores each model on a new miniature (seed + 1000, other patients): rendering is cheap and
the estimate much tighter.

Run:  python benchmarks/phantom_probe.py [--n 1200] [--size 256] [--side 64] [--epochs 20]
                                         [--seed 0 1 2] [--test-n 3000] [--threads 1]
Writes benchmarks/out/phantom_probe.json and prints a table per test set (one column per seed,
then the mean).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import torch
from sklearn.metrics import roc_auc_score
from torch import nn

from cxr.core.datasets import NIH_FINDINGS
from cxr.ingest.nih import NO_FINDING, V2020_CSV
from cxr.synth import nih

SIDE = 64
TEST_SHARE = 0.2
OUT = Path(__file__).parent / "out" / "phantom_probe.json"


def load(root: Path, side: int = SIDE) -> tuple[torch.Tensor, np.ndarray, np.ndarray]:
    """Images (N, 1, side, side) in [0, 1], labels (N, 14) and patient IDs from a miniature."""
    table = pd.read_csv(root / V2020_CSV)
    images = np.stack([_decode(root / "images" / name, side) for name in table["Image Index"]])
    labels = np.array([_multi_hot(text) for text in table["Finding Labels"]])
    return torch.from_numpy(images[:, None]), labels, table["Patient ID"].to_numpy()


def _decode(path: Path, side: int) -> np.ndarray:
    img = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    return cv2.resize(img, (side, side), interpolation=cv2.INTER_AREA).astype(np.float32) / 255


def _multi_hot(text: str) -> np.ndarray:
    names = set() if text == NO_FINDING else set(text.split("|"))
    unknown = names - set(NIH_FINDINGS)
    if unknown:
        raise ValueError(f"unknown labels {sorted(unknown)} in {text!r}")
    return np.array([name in names for name in NIH_FINDINGS], np.float32)


def patient_split(patients: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Boolean train and test masks: whole patients, in random order, until 20% of images."""
    rng = np.random.default_rng(seed)
    test = np.zeros(len(patients), bool)
    for pid in rng.permutation(np.unique(patients)):
        if test.mean() >= TEST_SHARE:
            break
        test |= patients == pid
    return ~test, test


class SmallCNN(nn.Module):
    """Three conv-BN-ReLU-pool blocks, global average pooling, one logit per finding."""

    def __init__(self, outputs: int = len(NIH_FINDINGS), width: int = 24) -> None:
        super().__init__()
        blocks, channels = [], 1
        for k in (1, 2, 4):
            blocks += [
                nn.Conv2d(channels, width * k, 3, padding=1, bias=False),
                nn.BatchNorm2d(width * k),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(2),
            ]
            channels = width * k
        self.features = nn.Sequential(*blocks)
        self.head = nn.Linear(channels, outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).mean((2, 3)))


def train(x: torch.Tensor, y: torch.Tensor, epochs: int, seed: int) -> SmallCNN:
    """Adam on binary cross-entropy, batches of 32, inputs standardised by the train set."""
    torch.manual_seed(seed)
    model = SmallCNN()
    opt = torch.optim.Adam(model.parameters(), lr=2e-3, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs)
    loss_fn = nn.BCEWithLogitsLoss()
    model.train()
    for _ in range(epochs):
        for idx in torch.randperm(len(x)).split(32):
            opt.zero_grad()
            loss_fn(model(x[idx]), y[idx]).backward()
            opt.step()
        sched.step()
    return model.eval()


def auroc_per_finding(y: np.ndarray, scores: np.ndarray) -> dict[str, float | None]:
    """Test AUROC of each finding; None where the test set has one class only."""
    out: dict[str, float | None] = {}
    for j, name in enumerate(NIH_FINDINGS):
        one_class = len(np.unique(y[:, j])) < 2
        out[name] = None if one_class else float(roc_auc_score(y[:, j], scores[:, j]))
    return out


def make_data(n: int, size: int, seed: int, side: int = SIDE) -> dict:
    """Generate one miniature and load it (before any training, so the renderer's worker
    processes never fork a process that runs torch threads)."""
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        nih.generate(Path(tmp), n=n, size=size, seed=seed, variant="box")
        t1 = time.perf_counter()
        images, labels, patients = load(Path(tmp), side)
    times = {"generate": t1 - t0, "load": time.perf_counter() - t1}
    return {"images": images, "labels": labels, "patients": patients, "seconds": times}


def run_seed(seed: int, data: dict, extra: dict | None, epochs: int) -> dict:
    """Split, train and score one miniature; also score ``extra`` (new patients) if given."""
    images, labels = data["images"], data["labels"]
    tr, te = patient_split(data["patients"], seed)
    mean, std = images[tr].mean(), images[tr].std()
    t0 = time.perf_counter()
    model = train((images[tr] - mean) / std, torch.from_numpy(labels[tr]), epochs, seed)
    run = {
        "seed": seed,
        **score(model, (images[te] - mean) / std, labels[te]),
        "train_positives": _per_finding(labels[tr].sum(0)),
        "n_train": int(tr.sum()),
        "seconds": {**data["seconds"], "train": time.perf_counter() - t0},
    }
    if extra is not None:
        run["independent"] = score(model, (extra["images"] - mean) / std, extra["labels"])
    return run


def score(model: nn.Module, x: torch.Tensor, labels: np.ndarray) -> dict:
    """Per-finding AUROC, macro mean and positives of one test set."""
    with torch.no_grad():
        aucs = auroc_per_finding(labels, torch.sigmoid(model(x)).numpy())
    return {
        "auroc": aucs,
        "macro": _mean(aucs.values()),
        "test_positives": _per_finding(labels.sum(0)),
        "n_test": len(labels),
    }


def _per_finding(counts: np.ndarray) -> dict[str, int]:
    return {name: int(c) for name, c in zip(NIH_FINDINGS, counts, strict=True)}


def _mean(values) -> float | None:
    defined = [v for v in values if v is not None]
    return statistics.fmean(defined) if defined else None


def _cell(value: float | None) -> str:
    return "undefined" if value is None else f"{value:.3f}"


def table(results: list[dict], seeds: list[int]) -> tuple[str, dict[str, float | None]]:
    """Text table (findings x seeds, then the mean over seeds and test positives)."""
    mean_auc = {k: _mean(r["auroc"][k] for r in results) for k in NIH_FINDINGS}
    head = f"{'finding':<20}" + "".join(f"{'seed ' + str(s):>11}" for s in seeds)
    lines = [head + f"{'mean':>11}  test positives"]
    for k in NIH_FINDINGS:
        cells = "".join(f"{_cell(r['auroc'][k]):>11}" for r in results)
        pos = "/".join(str(r["test_positives"][k]) for r in results)
        lines.append(f"{k:<20}{cells}{_cell(mean_auc[k]):>11}  {pos}")
    macro = "".join(f"{_cell(r['macro']):>11}" for r in results)
    lines.append(f"{'macro mean':<20}{macro}{_cell(_mean(mean_auc.values())):>11}")
    return "\n".join(lines), mean_auc


def report(runs: list[dict], seeds: list[int], key: str | None, title: str) -> dict:
    """Print one table (the split's test set, or ``key``'s) and return its means."""
    text, mean_auc = table([r[key] if key else r for r in runs], seeds)
    print(f"{title}\n{text}\n")
    return {"mean_auroc": mean_auc, "macro": _mean(mean_auc.values())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=1200, help="images per miniature")
    parser.add_argument("--size", type=int, default=256, help="rendered image side (px)")
    parser.add_argument("--side", type=int, default=SIDE, help="side the CNN sees (px)")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--seed", type=int, nargs="+", default=[0], help="one run per seed")
    parser.add_argument(
        "--test-n", type=int, default=0, help="also score on a new miniature of this many images"
    )
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    data = [make_data(args.n, args.size, s, args.side) for s in args.seed]
    extra = [
        make_data(args.test_n, args.size, s + 1000, args.side) if args.test_n else None
        for s in args.seed
    ]
    runs = [run_seed(*job, args.epochs) for job in zip(args.seed, data, extra, strict=True)]
    out = {"args": vars(args), "runs": runs}
    out["split"] = report(runs, args.seed, None, f"patient-disjoint 20% of n={args.n}")
    if args.test_n:
        title = f"independent miniature, n={args.test_n}, seed + 1000"
        out["independent"] = report(runs, args.seed, "independent", title)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(out, indent=2))
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()

"""``cxr cascade-sets`` (seed 002's held-out mixed set and module sets) and
``cxr cascade-evaluate`` (the cascade end to end)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from cxr.cascade import CHEST_FRACTION
from cxr.core.commands import Command, existing_folder, rounded, trained_folder

log = logging.getLogger("cxr")


def _sets_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--source", nargs=3, action="append", required=True,
        metavar=("NAME", "DATA", "SPLIT"),
        help="a dataset, its cxr preprocess folder (.../NAME/PRESET) and split table; once "
        "each for not_xray, xray_types, mura and nih",
    )  # fmt: skip
    p.add_argument(
        "--preset", required=True, help="the sources' preset, their folders' name (names outputs)"
    )
    p.add_argument(
        "--out-root", type=Path, default=Path("results"),
        help="writes preprocessed/cascade_*/PRESET, splits/cascade_*/heldout.parquet and "
        "metrics/cascade/PRESET.json under it",
    )  # fmt: skip
    p.add_argument(
        "--chest-fraction", type=float, default=CHEST_FRACTION,
        help="share of the chest source's patients given to Modules I and II (paper: 10%%)",
    )  # fmt: skip
    p.add_argument("--seed", type=int, default=0)


def _cascade_sets(args: argparse.Namespace) -> None:
    from cxr.cascade.sets import Source, build_cascade_sets, check_sources

    sources = [Source(name, Path(data), Path(split)) for name, data, split in args.source]
    check_sources(sources, args.preset)
    report = build_cascade_sets(sources, args.out_root, args.preset, args.chest_fraction, args.seed)
    log.info(
        "held-out set and module sets: %s; %d training image(s) dropped as near-duplicates of "
        "held-out images",
        {name: s["images"] for name, s in report["sets"].items()},
        len(report["dropped_near_duplicates_of_heldout"]),
    )


def _evaluate_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--heldout", type=existing_folder, required=True, help="held-out set (cxr cascade-sets)"
    )
    p.add_argument(
        "--modules", type=trained_folder, nargs=3, required=True,
        metavar=("MODULE_I", "MODULE_II", "MODULE_III"),
        help="cxr train folders: X-ray or not, X-ray type, chest findings",
    )  # fmt: skip
    p.add_argument(
        "--chest-evaluation", type=existing_folder,
        help="Module III's cxr evaluate folder: its per-finding thresholds (default 0.5)",
    )  # fmt: skip
    p.add_argument("--out", type=Path, required=True, help="folder to write")
    p.add_argument("--summary", type=Path, help="also write the headline numbers here (.json)")


def _cascade_evaluate(args: argparse.Namespace) -> None:
    from cxr.cascade.evaluate import evaluate_cascade

    metrics = evaluate_cascade(
        args.heldout,
        *args.modules,
        args.out,
        chest_evaluation=args.chest_evaluation,
        summary=args.summary,
    )
    log.info(
        "cascade on %d held-out images: end-to-end accuracy %s (paper %.2f) -> %s",
        metrics["images"], rounded(metrics["end_to_end_accuracy"]),
        metrics["paper"]["end_to_end_accuracy"], args.out,
    )  # fmt: skip


COMMANDS = (
    Command(
        "cascade-sets",
        "seed 002: a held-out mixed set and the cascade modules' data",
        _sets_arguments,
        _cascade_sets,
    ),
    Command(
        "cascade-evaluate",
        "seed 002: the cascade end to end on its held-out mixed set",
        _evaluate_arguments,
        _cascade_evaluate,
    ),
)

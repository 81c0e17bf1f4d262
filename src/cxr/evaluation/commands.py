"""``cxr evaluate`` (test predictions scored with intervals), ``cxr summarize-folds`` and
``cxr pool-folds`` (the folds' test predictions scored as one)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from cxr.core.commands import (
    ArgumentError,
    Command,
    existing_file,
    positive_int,
    rounded,
    trained_folder,
)

log = logging.getLogger("cxr")


def threshold(text: str) -> str | float:
    """An argument naming a threshold rule (youden, fixed) or a probability in [0, 1]."""
    if text in ("youden", "fixed"):
        return text
    try:
        value = float(text)
    except ValueError:
        raise ArgumentError(f"{text!r}: use youden, fixed or a number in [0, 1]") from None
    if not 0 <= value <= 1:
        raise ArgumentError(f"{text}: a threshold is a probability in [0, 1]")
    return value


def _scoring_arguments(p: argparse.ArgumentParser, youden: str) -> None:
    """The arguments of cxr evaluate that cxr pool-folds shares: the labels, the folder to
    write, how to score (``youden``: where Youden's threshold is chosen) and what to show."""
    p.add_argument(
        "--labels", type=existing_file, required=True, help="an ingested index (index.parquet)"
    )
    p.add_argument("--out", type=Path, required=True, help="folder to write")
    p.add_argument(
        "--threshold", type=threshold, default=None,
        help=f"youden ({youden}), fixed (0.5) or a number",
    )  # fmt: skip
    p.add_argument("--task", choices=["binary", "multilabel", "multiclass"], default=None)
    p.add_argument(
        "--paper", action="append", default=[],
        help="published numbers to show beside ours (e.g. seed002); repeatable",
    )  # fmt: skip
    p.add_argument("--resamples", type=positive_int, default=1000, help="bootstrap resamples")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed (default: 0)")


def _evaluate_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--predictions", type=existing_file, required=True,
        help="predictions: cxr's predictions/test.parquet, or a CSV with an image id column "
        "('Image Index' or 'image_id') and one probability column per finding",
    )  # fmt: skip
    p.add_argument(
        "--val-predictions", type=existing_file, help="validation predictions: thresholds"
    )
    _scoring_arguments(
        p, "chosen on --val-predictions; the default with them, fixed the default without"
    )
    p.add_argument("--split", type=existing_file, help="split table: the images PRED should cover")
    p.add_argument("--split-column", default="split", help="its column (default: split)")
    p.add_argument("--side", default="test", help="its side (default: test)")
    p.add_argument(
        "--source-split", default=None,
        help="without --split: the index's own split PRED should cover (e.g. NIH's test)",
    )  # fmt: skip
    p.add_argument(
        "--allow-partial", action="store_true",
        help="evaluate the images both files hold even if PRED misses some of its scope or "
        "names images the labels lack (warned about, and recorded in metrics.json)",
    )  # fmt: skip
    p.add_argument("--id-column", default=None, help="PRED's image id column, if unusual")
    p.add_argument(
        "--model", type=trained_folder, default=None,
        help="the cxr train folder: log the metrics and figures to its MLflow run",
    )  # fmt: skip


def _evaluate(args: argparse.Namespace) -> None:
    from cxr.evaluation.report import evaluate

    metrics = evaluate(
        args.predictions,
        args.labels,
        args.out,
        val_predictions=args.val_predictions,
        threshold=args.threshold,
        task=args.task,
        split=args.split,
        split_column=args.split_column,
        side=args.side,
        source_split=args.source_split,
        id_column=args.id_column,
        paper=args.paper or None,
        resamples=args.resamples,
        seed=args.seed,
        model=args.model,
        allow_partial=args.allow_partial,
    )
    log.info(
        "%s: macro AUROC %s over %d image(s) -> %s%s",
        args.predictions, rounded(metrics["auroc_macro"]),
        metrics["alignment"]["images_evaluated"], args.out,
        " (PARTIAL: --allow-partial)" if args.allow_partial else "",
    )  # fmt: skip


def _folds_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("metrics", nargs="+", type=existing_file, help="metrics.json of each fold")
    p.add_argument("--paper", action="append", default=[], help="published numbers; repeatable")
    p.add_argument("--out", type=Path, required=True, help="folder to write")


def _summarize_folds(args: argparse.Namespace) -> None:
    from cxr.evaluation.folds import summarize_folds

    summarize_folds(args.metrics, args.out, paper=args.paper or None)
    log.info("%d fold(s) -> %s", len(args.metrics), args.out)


def _pool_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--model", type=trained_folder, action="append", required=True,
        help="the cxr train folder of one fold (predictions/test.parquet, predictions/val.parquet"
        " and run.json); repeated, once per fold",
    )  # fmt: skip
    _scoring_arguments(p, "each fold's, chosen on its own validation side; the default")


def _pool_folds(args: argparse.Namespace) -> None:
    from cxr.evaluation.pooled import pool_folds

    metrics = pool_folds(
        args.model,
        args.labels,
        args.out,
        threshold=args.threshold,
        task=args.task,
        paper=args.paper or None,
        resamples=args.resamples,
        seed=args.seed,
    )
    log.info(
        "%d fold(s): macro AUROC %s over %d image(s) -> %s",
        len(args.model), rounded(metrics["auroc_macro"]), metrics["pooled"]["images"], args.out,
    )  # fmt: skip


COMMANDS = (
    Command(
        "evaluate",
        "score predictions against labels: tables and figures",
        _evaluate_arguments,
        _evaluate,
    ),
    Command(
        "summarize-folds",
        "mean and standard deviation of metrics over k folds",
        _folds_arguments,
        _summarize_folds,
    ),
    Command(
        "pool-folds",
        "score the folds' test predictions pooled: one AUROC with its interval",
        _pool_arguments,
        _pool_folds,
    ),
)

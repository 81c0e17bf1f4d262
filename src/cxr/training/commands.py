"""``cxr track-init``, ``cxr train`` and ``cxr train-summary``."""

from __future__ import annotations

import argparse
import json
import logging
from functools import partial
from pathlib import Path

from cxr.core.commands import (
    Command,
    existing_file,
    existing_folder,
    json_object,
    settings,
    trained_folder,
)

log = logging.getLogger("cxr")


def _track_init_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--study", action="append", required=True, help="a study (one experiment); repeatable"
    )
    p.add_argument(
        "--stage",
        action="append",
        default=[],
        help="a stage trained in folds (one parent run per study); repeatable",
    )
    p.add_argument("--out", type=Path, required=True, help="marker to write (.json)")


def _track_init(args: argparse.Namespace) -> None:
    from cxr.core.atomic import atomic_path
    from cxr.tracking import check_name, prepare_store

    for flag, what, names in (("--study", "study", args.study), ("--stage", "stage", args.stage)):
        for name in names:
            settings(args, flag, partial(check_name, what, name))
    with atomic_path(args.out) as work:
        ids = prepare_store(args.study, args.stage)
        work.write_text(json.dumps({"experiments": ids, "stages": args.stage}, indent=2) + "\n")
    log.info("MLflow experiments %s ready (parent runs: %s)", ids, args.stage or "none")


def _train_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--data", type=existing_folder, required=True, help="folder written by cxr preprocess"
    )
    p.add_argument("--split", type=existing_file, required=True, help="split table (.parquet)")
    p.add_argument("--split-column", default="split", help="split or fold_<i> (default: split)")
    p.add_argument(
        "--recipe-json",
        type=json_object,
        required=True,
        help='e.g. {"study": "seed003", "task": "multiclass", "loss": "cross_entropy"}',
    )
    p.add_argument(
        "--out", type=Path, required=True, help="output folder (replaces only an output of cxr)"
    )
    p.add_argument(
        "--init",
        type=existing_file,
        default=None,
        help="model.pt of an earlier stage to start from",
    )
    p.add_argument(
        "--allow-partial-init", action="store_true",
        help="train from an --init that carries under half of the backbone's tensors (another "
        "architecture or input size); recorded in run.json and the log",
    )  # fmt: skip
    p.add_argument(
        "--data-version", default=None, help="the dataset's DVC pointer hash, for run.json"
    )


def _train(args: argparse.Namespace) -> None:
    from cxr.core.gpus import claim_gpu
    from cxr.training.engine import train
    from cxr.training.recipe import Recipe

    recipe = settings(args, "--recipe-json", lambda: Recipe.from_dict(args.recipe_json))
    claim_gpu()  # before CUDA starts: parallel jobs on a multi-GPU machine get one GPU each
    run = train(
        args.data,
        args.split,
        args.split_column,
        recipe,
        args.out,
        init=args.init,
        data_version=args.data_version,
        allow_partial_init=args.allow_partial_init,
    )
    log.info(
        "trained %s: best epoch %d of %d (val loss %.4f) -> %s (MLflow run %s)",
        recipe.architecture,
        run["best_epoch"] + 1,
        run["epochs_run"],
        run["best_val_loss"],
        args.out,
        run["run_id"],
    )


def _summary_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--model", type=trained_folder, required=True, help="folder written by cxr train"
    )
    p.add_argument(
        "--evaluation", type=existing_folder, default=None,
        help="its cxr evaluate folder: the test headline joins the summary",
    )  # fmt: skip
    p.add_argument("--out", type=Path, required=True, help="summary to write (.json)")


def _train_summary(args: argparse.Namespace) -> None:
    from cxr.training.summary import write_summary

    summary = write_summary(args.model, args.out, args.evaluation)
    log.info("%s -> %s", args.model, summary)


COMMANDS = (
    Command(
        "track-init",
        "create the MLflow store, experiments and parent runs up front",
        _track_init_arguments,
        _track_init,
    ),
    Command(
        "train", "train one model of a recipe on a dataset and a split", _train_arguments, _train
    ),
    Command(
        "train-summary",
        "a trained model's headline numbers as JSON",
        _summary_arguments,
        _train_summary,
    ),
)

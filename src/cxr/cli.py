"""The ``cxr`` command: one subcommand per pipeline step.

Each subcommand is a thin wrapper: argparse is the only layer that knows about strings, and
the work is done by a plain function of the package. Snakemake rules call these subcommands,
so every step can also be run by hand.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import NoReturn, TypeVar

from cxr.core.atomic import check_replaceable, invocation
from cxr.core.datasets import DATASETS

log = logging.getLogger("cxr")
T = TypeVar("T")


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line naming the argument (and exit status 2)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


class ArgumentError(argparse.ArgumentTypeError, ValueError):
    """A bad argument value (caught by argparse, or by :func:`_settings` after parsing)."""


def existing_file(text: str) -> Path:
    """An argument that must name an existing file."""
    path = Path(text)
    if path.is_dir():
        raise ArgumentError(f"{text} is a folder, not a file")
    if not path.is_file():
        raise ArgumentError(f"no such file: {text}")
    return path


def existing_folder(text: str) -> Path:
    """An argument that must name an existing folder."""
    path = Path(text)
    if not path.is_dir():
        raise ArgumentError(
            f"{text} is a file, not a folder" if path.exists() else f"no such folder: {text}"
        )
    return path


def trained_folder(text: str) -> Path:
    """An argument that must name a folder written by ``cxr train``."""
    path = existing_folder(text)
    if not (path / "run.json").is_file():
        raise ArgumentError(f"{text} holds no run.json: it is not a folder cxr train wrote")
    return path


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


def json_object(text: str) -> dict:
    """An argument holding a JSON object."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise ArgumentError(f"not valid JSON ({err}): {text}") from None
    if not isinstance(value, dict):
        raise ArgumentError(f"expected a JSON object {{...}}, got {text}")
    return value


def positive_int(text: str) -> int:
    """An argument that must be a whole number >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise ArgumentError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise ArgumentError(f"must be at least 1, got {value}")
    return value


def _settings(parser: argparse.ArgumentParser, flag: str, build: Callable[[], T]) -> T:
    """Build settings from a JSON argument; a bad key is a usage error naming ``flag``."""
    try:
        return build()
    except ValueError as err:
        parser.error(f"argument {flag}: {err}")


def _synth(args: argparse.Namespace) -> None:
    from cxr.synth import synthesize

    out = synthesize(
        args.dataset, args.out, n=args.n, size=args.size, seed=args.seed, variant=args.variant
    )
    log.info("wrote the %s miniature to %s", args.dataset, out)


def _ingest(args: argparse.Namespace) -> None:
    from cxr.ingest import ingest_to

    summary = ingest_to(args.dataset, args.root, args.out, args.summary)
    skipped = {
        kind: {k: v for k, v in counts.items() if k != "kept"}
        for kind, counts in summary["manifest"].items()
    }
    log.info("%s: %d images indexed into %s", args.dataset, summary["images"], args.out)
    for kind, reasons in skipped.items():
        for reason, count in reasons.items():
            log.warning("%s: %d %s(s) left out: %s", args.dataset, count, kind, reason)


def _gallery(args: argparse.Namespace) -> None:
    from cxr.data.gallery import render_gallery

    panels = [
        _settings(args.parser, "--panel", partial(_panel, name, index, root))
        for name, index, root in args.panel
    ]
    render_gallery(panels, args.out, per_row=args.per_row, seed=args.seed)
    log.info("wrote %s", args.out)


def _panel(name: str, index: str, root: str) -> object:
    from cxr.data.gallery import Panel

    return Panel(name, existing_file(index), existing_folder(root))


def _preprocess(args: argparse.Namespace) -> None:
    from cxr.data.preprocess import preprocess
    from cxr.data.transforms import Preset

    preset = _settings(args.parser, "--preset-json", lambda: Preset.from_dict(args.preset_json))
    stats = preprocess(args.index, args.root, preset, args.out, workers=args.workers)
    log.info(
        "%d images -> %s (mean %.4f, std %.4f, %d rejected, %d flagged: see manifest.csv)",
        stats["images"],
        args.out,
        stats["mean"],
        stats["std"],
        stats["rejected"],
        stats["flagged"],
    )


def _split(args: argparse.Namespace) -> None:
    from cxr.splits.assign import Scheme
    from cxr.splits.files import write_splits

    scheme = _settings(
        args.parser, "--scheme-json", lambda: Scheme.from_dict(args.scheme_json, seed=args.seed)
    )
    counts = write_splits(args.data, scheme, args.out)
    log.info("split %s: %s", args.out, counts)


def _check_leakage(args: argparse.Namespace) -> None:
    from cxr.splits.files import check_split_file

    report = check_split_file(args.split, args.data, args.out)
    log.info(
        "no leakage in %s: %s", args.split, {k: v["overlap"] for k, v in report["splits"].items()}
    )


def _duplicates(args: argparse.Namespace) -> None:
    from cxr.splits.files import write_duplicates

    table = write_duplicates(args.data, args.out)
    log.info(
        "%d group(s) of near-duplicates (%d images) -> %s and %s",
        len(table), int(table["size"].sum()), args.out, args.out.with_suffix(".png"),
    )  # fmt: skip


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
        metrics["images"], _rounded(metrics["end_to_end_accuracy"]),
        metrics["paper"]["end_to_end_accuracy"], args.out,
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
        args.predictions, _rounded(metrics["auroc_macro"]),
        metrics["alignment"]["images_evaluated"], args.out,
        " (PARTIAL: --allow-partial)" if args.allow_partial else "",
    )  # fmt: skip


def _rounded(value: float | None) -> str:
    return "undefined" if value is None else f"{value:.3f}"


def _summarize_folds(args: argparse.Namespace) -> None:
    from cxr.evaluation.folds import summarize_folds

    summarize_folds(args.metrics, args.out, paper=args.paper or None)
    log.info("%d fold(s) -> %s", len(args.metrics), args.out)


def _cam(args: argparse.Namespace) -> None:
    from cxr.explanation import cam

    summary = cam(
        args.model,
        args.data,
        args.split,
        args.out,
        method=args.method,
        top_k=args.top_k,
        side=args.side,
        column=args.split_column,
        max_images=args.max_images,
        batch_size=args.batch_size,
        figure_images=args.figure_images,
    )
    log.info("%s maps of %d image(s) -> %s", args.method, summary["images"], args.out)


def _cam_compare(args: argparse.Namespace) -> None:
    from cxr.explanation.compare import compare_cams

    if args.label and len(args.label) != len(args.model):
        args.parser.error(f"{len(args.label)} --label for {len(args.model)} --model")
    drawn = compare_cams(
        args.model,
        args.label or None,
        args.data,
        args.split,
        args.split_column,
        args.out,
        images=args.images,
        side=args.side,
        method=args.method,
        output=args.output,
    )
    log.info("%d model(s) on %d image(s) -> %s", len(args.model), len(drawn["images"]), args.out)


def _train(args: argparse.Namespace) -> None:
    from cxr.core.gpus import claim_gpu
    from cxr.training.engine import train
    from cxr.training.recipe import Recipe

    recipe = _settings(args.parser, "--recipe-json", lambda: Recipe.from_dict(args.recipe_json))
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


def _track_init(args: argparse.Namespace) -> None:
    from cxr.core.atomic import atomic_path
    from cxr.tracking import check_name, prepare_store

    for flag, what, names in (("--study", "study", args.study), ("--stage", "stage", args.stage)):
        for name in names:
            _settings(args.parser, flag, partial(check_name, what, name))
    with atomic_path(args.out) as work:
        ids = prepare_store(args.study, args.stage)
        work.write_text(json.dumps({"experiments": ids, "stages": args.stage}, indent=2) + "\n")
    log.info("MLflow experiments %s ready (parent runs: %s)", ids, args.stage or "none")


def _train_summary(args: argparse.Namespace) -> None:
    from cxr.training.summary import write_summary

    summary = write_summary(args.model, args.out, args.evaluation)
    log.info("%s -> %s", args.model, summary)


def sources_json(text: str) -> dict[str, str]:
    """A JSON object naming each dataset's source: {"nih": "synthetic", "jsrt": "real"}."""
    value = json_object(text)
    bad = {k: v for k, v in value.items() if v not in ("synthetic", "real")}
    if bad:
        raise ArgumentError(f"a source is synthetic or real, got {bad}")
    return value


def studies_json(text: str) -> dict[str, list[str]]:
    """A JSON object of the studies to report, each with its stages in order."""
    value = json_object(text)
    if not all(isinstance(v, list) and all(isinstance(s, str) for s in v) for v in value.values()):
        raise ArgumentError(f'expected {{"study": ["stage", ...]}}, got {text}')
    return value


def _report(args: argparse.Namespace) -> None:
    from cxr.reporting import write_report

    problems = write_report(
        args.results,
        args.out,
        html=args.html,
        sources=args.sources_json,
        scale=args.scale,
        expected=args.studies_json,
        logs=args.logs,
    )
    for problem in problems:
        log.warning("%s", problem)
    log.info("report -> %s%s", args.out, f" and {args.html}" if args.html else "")


def _plan(args: argparse.Namespace) -> None:
    import yaml

    from cxr.plan import load
    from cxr.plan.show import as_json, as_text

    plan = load(yaml.safe_load(args.params.read_text()) or {}, args.scale)
    sys.stdout.write(as_json(plan) + "\n" if args.json else as_text(plan))


def _explained_images(p: argparse.ArgumentParser) -> None:
    """The arguments `cam` and `cam-compare` share: which images, and how they are explained."""
    p.add_argument(
        "--data", type=existing_folder, required=True, help="folder written by cxr preprocess"
    )
    p.add_argument("--split", type=existing_file, required=True, help="split table (.parquet)")
    p.add_argument("--side", default="test", help="split side explained (default: test)")
    p.add_argument("--split-column", default="split", help="split or fold_<i> (default: split)")
    p.add_argument(
        "--method", choices=["auto", "cam", "gradcam", "gradcam++"], default="auto",
        help="auto (default): CAM where a model ends in pooling and one linear layer, else "
        "Grad-CAM",
    )  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="cxr",
        description="cxr: a reproducible pipeline for X-ray diagnosis, one subcommand per step.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("synth", help="write a format-faithful synthetic miniature of a dataset")
    p.add_argument("dataset", choices=DATASETS)
    p.add_argument(
        "--out", type=Path, required=True, help="folder to write (replaces only an output of cxr)"
    )
    p.add_argument(
        "--n", type=positive_int, default=None, help="number of images (dataset default)"
    )
    p.add_argument(
        "--size", type=positive_int, default=None, help="image side in pixels (dataset default)"
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--variant", default=None, help="layout variant, e.g. nih: box | kaggle")
    p.set_defaults(func=_synth, parser=p)

    p = sub.add_parser("ingest", help="index a dataset read in its real on-disk layout")
    p.add_argument("dataset", choices=DATASETS)
    p.add_argument("--root", type=existing_folder, required=True, help="the dataset as downloaded")
    p.add_argument("--out", type=Path, required=True, help="index to write (.parquet)")
    p.add_argument(
        "--summary", type=Path, default=None, help="summary JSON (default: beside the index)"
    )
    p.set_defaults(func=_ingest, parser=p)

    p = sub.add_parser("preprocess", help="decode every image once into a compact tensor file")
    p.add_argument("--index", type=existing_file, required=True, help="index written by cxr ingest")
    p.add_argument(
        "--root", type=existing_folder, required=True, help="dataset root the index paths use"
    )
    p.add_argument(
        "--preset-json",
        type=json_object,
        required=True,
        help='preset, e.g. {"size": 224, "steps": ["equalize", "median3", "resize"]}',
    )
    p.add_argument(
        "--out", type=Path, required=True, help="output folder (replaces only an output of cxr)"
    )
    p.add_argument("--workers", type=positive_int, default=1, help="decoding processes")
    p.set_defaults(func=_preprocess, parser=p)

    p = sub.add_parser("split", help="leak-proof train/val/test assignment of a dataset")
    p.add_argument(
        "--data", type=existing_folder, required=True, help="folder written by cxr preprocess"
    )
    p.add_argument(
        "--scheme-json",
        type=json_object,
        required=True,
        help='e.g. {"method": "random", "ratios": [0.7, 0.2, 0.1]}',
    )
    p.add_argument("--seed", type=int, default=0, help="seed unless the scheme sets its own")
    p.add_argument("--out", type=Path, required=True, help="split table to write (.parquet)")
    p.set_defaults(func=_split, parser=p)

    p = sub.add_parser("check-leakage", help="fail if a patient or an image crosses splits")
    p.add_argument(
        "--split", type=existing_file, required=True, help="split table (.parquet or .csv)"
    )
    p.add_argument(
        "--data", type=existing_folder, required=True, help="folder written by cxr preprocess"
    )
    p.add_argument("--out", type=Path, required=True, help="report to write (.json)")
    p.set_defaults(func=_check_leakage, parser=p)

    p = sub.add_parser(
        "duplicates", help="groups of an image and its near-duplicate copies, with a figure"
    )
    p.add_argument(
        "--data", type=existing_folder, required=True, help="folder written by cxr preprocess"
    )
    p.add_argument(
        "--out", type=Path, required=True, help="table to write (.csv; the figure gets .png)"
    )
    p.set_defaults(func=_duplicates, parser=p)

    p = sub.add_parser(
        "cascade-sets", help="seed 002: a held-out mixed set and the cascade modules' data"
    )
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
        "--chest-fraction", type=float, default=0.1,
        help="share of the chest source's patients given to Modules I and II (paper: 10%%)",
    )  # fmt: skip
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_cascade_sets, parser=p)

    p = sub.add_parser(
        "cascade-evaluate", help="seed 002: the cascade end to end on its held-out mixed set"
    )
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
    p.set_defaults(func=_cascade_evaluate, parser=p)

    p = sub.add_parser("evaluate", help="score predictions against labels: tables and figures")
    p.add_argument(
        "--predictions", type=existing_file, required=True,
        help="predictions: cxr's predictions/test.parquet, or a CSV with an image id column "
        "('Image Index' or 'image_id') and one probability column per finding",
    )  # fmt: skip
    p.add_argument(
        "--labels", type=existing_file, required=True, help="an ingested index (index.parquet)"
    )
    p.add_argument("--out", type=Path, required=True, help="folder to write")
    p.add_argument(
        "--val-predictions", type=existing_file, help="validation predictions: thresholds"
    )
    p.add_argument(
        "--threshold", type=threshold, default=None,
        help="youden (chosen on --val-predictions; the default with them), fixed (0.5; the "
        "default without) or a number",
    )  # fmt: skip
    p.add_argument("--task", choices=["binary", "multilabel", "multiclass"], default=None)
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
        "--paper", action="append", default=[],
        help="published numbers to show beside ours (e.g. seed002); repeatable",
    )  # fmt: skip
    p.add_argument("--resamples", type=positive_int, default=1000, help="bootstrap resamples")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed (default: 0)")
    p.add_argument(
        "--model", type=trained_folder, default=None,
        help="the cxr train folder: log the metrics and figures to its MLflow run",
    )  # fmt: skip
    p.set_defaults(func=_evaluate, parser=p)

    p = sub.add_parser(
        "summarize-folds", help="mean and standard deviation of metrics over k folds"
    )
    p.add_argument("metrics", nargs="+", type=existing_file, help="metrics.json of each fold")
    p.add_argument("--paper", action="append", default=[], help="published numbers; repeatable")
    p.add_argument("--out", type=Path, required=True, help="folder to write")
    p.set_defaults(func=_summarize_folds, parser=p)

    p = sub.add_parser("cam", help="class activation maps of a model, scored against the boxes")
    p.add_argument("--model", type=trained_folder, required=True, help="folder of cxr train")
    p.add_argument("--out", type=Path, required=True, help="folder to write")
    _explained_images(p)
    p.add_argument("--top-k", type=positive_int, default=4, help="most probable outputs shown")
    p.add_argument("--max-images", type=positive_int, default=None, help="at most this many")
    p.add_argument("--batch-size", type=positive_int, default=32)
    p.add_argument(
        "--figure-images", type=positive_int, default=4, help="images in the figure grid"
    )
    p.set_defaults(func=_cam, parser=p)

    p = sub.add_parser(
        "cam-compare", help="heatmaps of several models side by side on the same images"
    )
    p.add_argument(
        "--model", type=trained_folder, action="append", required=True,
        help="folder of cxr train; repeatable (one figure column each, in order)",
    )  # fmt: skip
    p.add_argument(
        "--label", action="append", default=[],
        help="title of each --model's column, in the same order (default: its folder name)",
    )  # fmt: skip
    p.add_argument("--out", type=Path, required=True, help="PNG to write")
    _explained_images(p)
    p.add_argument(
        "--output", default=None, help="the output drawn (default: the models' only output)"
    )
    p.add_argument("--images", type=positive_int, default=4, help="images (figure rows)")
    p.set_defaults(func=_cam_compare, parser=p)

    p = sub.add_parser("train", help="train one model of a recipe on a dataset and a split")
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
    p.set_defaults(func=_train, parser=p)

    p = sub.add_parser(
        "track-init", help="create the MLflow store, experiments and parent runs up front"
    )
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
    p.set_defaults(func=_track_init, parser=p)

    p = sub.add_parser("train-summary", help="a trained model's headline numbers as JSON")
    p.add_argument(
        "--model", type=trained_folder, required=True, help="folder written by cxr train"
    )
    p.add_argument(
        "--evaluation", type=existing_folder, default=None,
        help="its cxr evaluate folder: the test headline joins the summary",
    )  # fmt: skip
    p.add_argument("--out", type=Path, required=True, help="summary to write (.json)")
    p.set_defaults(func=_train_summary, parser=p)

    p = sub.add_parser(
        "report", help="one Markdown report of every study: tables, captions, figures, timings"
    )
    p.add_argument(
        "--results", type=existing_folder, required=True, help="the results folder to read"
    )
    p.add_argument("--out", type=Path, required=True, help="report to write (.md)")
    p.add_argument("--html", type=Path, default=None, help="also write it as HTML (.html)")
    p.add_argument(
        "--logs", type=existing_folder, default=None,
        help="logs folder: how long each job took, from its *.benchmark.tsv files",
    )  # fmt: skip
    p.add_argument(
        "--sources-json", type=sources_json, default={},
        help='each dataset\'s source, e.g. {"nih": "synthetic", "jsrt": "real"}',
    )  # fmt: skip
    p.add_argument("--scale", default=None, help="the configured scale (demo or paper)")
    p.add_argument(
        "--studies-json", type=studies_json, default=None,
        help='studies and stages to report, in order, e.g. {"seed000": ["model_a"]} '
        "(default: every one found under --results)",
    )  # fmt: skip
    p.set_defaults(func=_report, parser=p)

    p = sub.add_parser(
        "plan", help="what params.yaml trains, evaluates and explains, resolved at a scale"
    )
    p.add_argument(
        "--params", type=existing_file, default="params.yaml",
        help="the configuration (default: params.yaml)",
    )  # fmt: skip
    p.add_argument(
        "--scale", choices=["demo", "paper"], default=None,
        help="the scale to resolve (default: the file's `scale`)",
    )  # fmt: skip
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.set_defaults(func=_plan, parser=p)

    p = sub.add_parser("gallery", help="figure of sample images per dataset with labels and boxes")
    p.add_argument(
        "--panel",
        nargs=3,
        action="append",
        required=True,
        metavar=("NAME", "INDEX", "ROOT"),
        help="one row: name, index, dataset root",
    )
    p.add_argument("--out", type=Path, required=True, help="PNG to write")
    p.add_argument("--per-row", type=positive_int, default=8)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_gallery, parser=p)
    return parser


def _terminate(signum: int, _frame: object) -> None:
    """SIGTERM (Snakemake, a scheduler, ``kill``) unwinds like Ctrl-C: outputs are cleaned up."""
    raise KeyboardInterrupt(signal.Signals(signum).name)


#: Arguments that name what a verb writes; every other path argument is one of its inputs.
OUTPUTS = frozenset({"out", "summary", "html", "out_root"})


def _inputs(args: argparse.Namespace) -> list[Path]:
    """Every path a verb reads: its path arguments, and the paths inside --source / --panel."""
    found: list[Path] = []

    def walk(value: object) -> None:
        if isinstance(value, Path):
            found.append(value)
        elif isinstance(value, list | tuple):
            for item in value:
                walk(item)

    for name, value in vars(args).items():
        if name in ("source", "panel") and value:
            found += [Path(p) for row in value for p in row[1:]]
        elif name not in OUTPUTS:
            walk(value)
    return found


def main(argv: Sequence[str] | None = None) -> int:
    """Run one subcommand; bad input ends in one line (a traceback only with ``-v``)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    signal.signal(signal.SIGTERM, _terminate)
    try:
        with invocation(args.command, _inputs(args)):
            for name in OUTPUTS - {"out_root"}:  # refuse before any work, not after it
                if isinstance(getattr(args, name, None), Path):
                    check_replaceable(getattr(args, name))
            args.func(args)
    except KeyboardInterrupt as err:
        log.error("interrupted (%s): nothing was written", err or "SIGINT")
        return 130
    except (ValueError, OSError) as err:
        # Bad input: one clear line naming the file and what is wrong.
        log.error("%s", err, exc_info=args.verbose)
        return 1
    except Exception as err:
        log.error(
            "unexpected %s: %s (rerun with -v for the traceback)",
            type(err).__name__,
            err,
            exc_info=args.verbose,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""``cxr cam`` (heatmaps of a model, scored against the boxes) and ``cxr cam-compare``."""

from __future__ import annotations

import argparse
import logging
from dataclasses import asdict, fields
from pathlib import Path

from cxr.core.commands import Command, existing_file, existing_folder, positive_int, trained_folder
from cxr.explanation.settings import (
    LAYER_CHOICES,
    METHOD_CHOICES,
    CamSettings,
    CompareSettings,
    ExplainedImages,
)

log = logging.getLogger("cxr")


def _explained_images(p: argparse.ArgumentParser) -> None:
    """The arguments `cam` and `cam-compare` share: which images, and how they are explained."""
    default = ExplainedImages()
    p.add_argument(
        "--data", type=existing_folder, required=True, help="folder written by cxr preprocess"
    )
    p.add_argument("--split", type=existing_file, required=True, help="split table (.parquet)")
    p.add_argument(
        "--side", default=default.side, help=f"split side explained (default: {default.side})"
    )
    p.add_argument(
        "--split-column", dest="column", default=default.column,
        help=f"split or fold_<i> (default: {default.column})",
    )  # fmt: skip
    p.add_argument(
        "--method", choices=METHOD_CHOICES, default=default.method,
        help=f"{default.method} (default): CAM where a model ends in pooling and one linear "
        "layer, else Grad-CAM",
    )  # fmt: skip


def _cam_arguments(p: argparse.ArgumentParser) -> None:
    default = CamSettings()
    p.add_argument("--model", type=trained_folder, required=True, help="folder of cxr train")
    p.add_argument("--out", type=Path, required=True, help="folder to write")
    _explained_images(p)
    p.add_argument(
        "--top-k", type=positive_int, default=default.top_k, help="most probable outputs shown"
    )
    p.add_argument(
        "--layer",
        choices=LAYER_CHOICES,
        default=default.layer,
        help="feature map drawn: last, or previous (twice the side; Grad-CAM)",
    )
    p.add_argument(
        "--max-images", type=positive_int, default=default.max_images, help="at most this many"
    )
    p.add_argument("--batch-size", type=positive_int, default=default.batch_size)
    p.add_argument(
        "--figure-images",
        type=positive_int,
        default=default.figure_images,
        help="images in the figure grid",
    )


def _settings(args: argparse.Namespace, kind: type[ExplainedImages]) -> ExplainedImages:
    """The typed settings of ``kind`` from the parsed arguments of the same names."""
    return kind(**{f.name: getattr(args, f.name) for f in fields(kind)})


def _cam(args: argparse.Namespace) -> None:
    from cxr.explanation.run import cam

    chosen = _settings(args, CamSettings)
    summary = cam(args.model, args.data, args.split, args.out, **asdict(chosen))
    log.info("%s maps of %d image(s) -> %s", chosen.method, summary["images"], args.out)


def _compare_arguments(p: argparse.ArgumentParser) -> None:
    default = CompareSettings()
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
        "--output",
        default=default.output,
        help="the output drawn (default: the models' only output)",
    )
    p.add_argument(
        "--images", type=positive_int, default=default.images, help="images (figure rows)"
    )


def _cam_compare(args: argparse.Namespace) -> None:
    from cxr.explanation.compare import compare_cams

    if args.label and len(args.label) != len(args.model):
        args.parser.error(f"{len(args.label)} --label for {len(args.model)} --model")
    chosen = asdict(_settings(args, CompareSettings))
    column = chosen.pop("column")
    drawn = compare_cams(
        args.model, args.label or None, args.data, args.split, column, args.out, **chosen
    )
    log.info("%d model(s) on %d image(s) -> %s", len(args.model), len(drawn["images"]), args.out)


COMMANDS = (
    Command(
        "cam", "class activation maps of a model, scored against the boxes", _cam_arguments, _cam
    ),
    Command(
        "cam-compare",
        "heatmaps of several models side by side on the same images",
        _compare_arguments,
        _cam_compare,
    ),
)

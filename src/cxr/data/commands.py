"""``cxr preprocess`` (every image decoded once into a tensor) and ``cxr gallery``."""

from __future__ import annotations

import argparse
import logging
from functools import partial
from pathlib import Path

from cxr.core.commands import (
    Command,
    existing_file,
    existing_folder,
    json_object,
    positive_int,
    settings,
)

log = logging.getLogger("cxr")


def _preprocess_arguments(p: argparse.ArgumentParser) -> None:
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


def _preprocess(args: argparse.Namespace) -> None:
    from cxr.data.preprocess import preprocess
    from cxr.data.presets import Preset

    preset = settings(args, "--preset-json", lambda: Preset.from_dict(args.preset_json))
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


def _gallery_arguments(p: argparse.ArgumentParser) -> None:
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


def _gallery(args: argparse.Namespace) -> None:
    from cxr.data.gallery import render_gallery

    panels = [
        settings(args, "--panel", partial(_panel, name, index, root))
        for name, index, root in args.panel
    ]
    render_gallery(panels, args.out, per_row=args.per_row, seed=args.seed)
    log.info("wrote %s", args.out)


def _panel(name: str, index: str, root: str) -> object:
    from cxr.data.gallery import Panel

    return Panel(name, existing_file(index), existing_folder(root))


COMMANDS = (
    Command(
        "preprocess",
        "decode every image once into a compact tensor file",
        _preprocess_arguments,
        _preprocess,
    ),
    Command(
        "gallery",
        "figure of sample images per dataset with labels and boxes",
        _gallery_arguments,
        _gallery,
    ),
)

"""The ``cxr`` command: one subcommand per pipeline step.

Each subcommand is a thin wrapper: argparse is the only layer that knows about strings, and
the work is done by a plain function of the package. Snakemake rules call these subcommands,
so every step can also be run by hand.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from cxr.datasets import DATASETS

log = logging.getLogger("cxr")


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
    from cxr.gallery import Panel, render_gallery

    panels = [Panel(name, Path(index), Path(root)) for name, index, root in args.panel]
    render_gallery(panels, args.out, per_row=args.per_row, seed=args.seed)
    log.info("wrote %s", args.out)


def _preprocess(args: argparse.Namespace) -> None:
    from cxr.preprocess import preprocess
    from cxr.transforms import Preset

    preset = Preset.from_dict(json.loads(args.preset_json))
    stats = preprocess(args.index, args.root, preset, args.out, workers=args.workers)
    log.info(
        "%d images -> %s (mean %.4f, std %.4f, %d rejected)",
        stats["images"],
        args.out,
        stats["mean"],
        stats["std"],
        stats["rejected"],
    )


def _split(args: argparse.Namespace) -> None:
    from cxr.split_io import write_splits
    from cxr.splits import Scheme

    scheme = Scheme.from_dict(json.loads(args.scheme_json), seed=args.seed)
    counts = write_splits(args.data, scheme, args.out)
    log.info("split %s: %s", args.out, counts)


def _check_leakage(args: argparse.Namespace) -> None:
    from cxr.split_io import check_split_file

    report = check_split_file(args.split, args.data, args.out)
    log.info(
        "no leakage in %s: %s", args.split, {k: v["overlap"] for k, v in report["splits"].items()}
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cxr",
        description="cxr: a reproducible pipeline for X-ray diagnosis, one subcommand per step.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("synth", help="write a format-faithful synthetic miniature of a dataset")
    p.add_argument("dataset", choices=DATASETS)
    p.add_argument("--out", type=Path, required=True, help="folder to write (replaced)")
    p.add_argument("--n", type=int, default=None, help="number of images (dataset default)")
    p.add_argument("--size", type=int, default=None, help="image side in pixels (dataset default)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--variant", default=None, help="layout variant, e.g. nih: box | kaggle")
    p.set_defaults(func=_synth)

    p = sub.add_parser("ingest", help="index a dataset read in its real on-disk layout")
    p.add_argument("dataset", choices=DATASETS)
    p.add_argument("--root", type=Path, required=True, help="the dataset as downloaded")
    p.add_argument("--out", type=Path, required=True, help="index to write (.parquet)")
    p.add_argument(
        "--summary", type=Path, default=None, help="summary JSON (default: beside the index)"
    )
    p.set_defaults(func=_ingest)

    p = sub.add_parser("preprocess", help="decode every image once into a compact tensor file")
    p.add_argument("--index", type=Path, required=True, help="index written by cxr ingest")
    p.add_argument("--root", type=Path, required=True, help="dataset root the index paths use")
    p.add_argument(
        "--preset-json",
        required=True,
        help='preset, e.g. {"size": 224, "steps": ["equalize", "median3", "resize"]}',
    )
    p.add_argument("--out", type=Path, required=True, help="output folder (replaced)")
    p.add_argument("--workers", type=int, default=1, help="decoding processes")
    p.set_defaults(func=_preprocess)

    p = sub.add_parser("split", help="leak-proof train/val/test assignment of a dataset")
    p.add_argument("--data", type=Path, required=True, help="folder written by cxr preprocess")
    p.add_argument(
        "--scheme-json", required=True, help='e.g. {"method": "random", "ratios": [0.7, 0.2, 0.1]}'
    )
    p.add_argument("--seed", type=int, default=0, help="seed unless the scheme sets its own")
    p.add_argument("--out", type=Path, required=True, help="split table to write (.parquet)")
    p.set_defaults(func=_split)

    p = sub.add_parser("check-leakage", help="fail if a patient or an image crosses splits")
    p.add_argument("--split", type=Path, required=True, help="table written by cxr split")
    p.add_argument("--data", type=Path, required=True, help="folder written by cxr preprocess")
    p.add_argument("--out", type=Path, required=True, help="report to write (.json)")
    p.set_defaults(func=_check_leakage)

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
    p.add_argument("--per-row", type=int, default=8)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_gallery)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    try:
        args.func(args)
    except (ValueError, OSError) as err:
        # Bad input: one clear line naming the file and what is wrong, no traceback.
        log.error("%s", err)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

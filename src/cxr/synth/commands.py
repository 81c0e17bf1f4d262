"""``cxr synth``: the synthetic miniature of a dataset, in its real on-disk layout."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from cxr.core.commands import Command, positive_int
from cxr.core.datasets import DATASETS

log = logging.getLogger("cxr")


def _arguments(p: argparse.ArgumentParser) -> None:
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


def _run(args: argparse.Namespace) -> None:
    from cxr.synth import synthesize

    out = synthesize(
        args.dataset, args.out, n=args.n, size=args.size, seed=args.seed, variant=args.variant
    )
    log.info("wrote the %s miniature to %s", args.dataset, out)


COMMANDS = (
    Command("synth", "write a format-faithful synthetic miniature of a dataset", _arguments, _run),
)

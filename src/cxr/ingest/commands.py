"""``cxr ingest``: a dataset read in its real on-disk layout into the uniform index."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from cxr.core.commands import Command, existing_folder
from cxr.core.datasets import DATASETS

log = logging.getLogger("cxr")


def _arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("dataset", choices=DATASETS)
    p.add_argument("--root", type=existing_folder, required=True, help="the dataset as downloaded")
    p.add_argument("--out", type=Path, required=True, help="index to write (.parquet)")
    p.add_argument(
        "--summary", type=Path, default=None, help="summary JSON (default: beside the index)"
    )


def _run(args: argparse.Namespace) -> None:
    from cxr.ingest import ingest_to

    summary = ingest_to(args.dataset, args.root, args.out, args.summary)
    log.info("%s: %d images indexed into %s", args.dataset, summary["images"], args.out)
    for kind, counts in summary["manifest"].items():
        for reason, count in counts.items():
            if reason != "kept":
                log.warning("%s: %d %s(s) left out: %s", args.dataset, count, kind, reason)


COMMANDS = (Command("ingest", "index a dataset read in its real on-disk layout", _arguments, _run),)

"""``cxr split``, ``cxr check-leakage`` and ``cxr duplicates``."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from cxr.core.commands import Command, existing_file, existing_folder, json_object, settings

log = logging.getLogger("cxr")
DATA_HELP = "folder written by cxr preprocess"


def _split_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", type=existing_folder, required=True, help=DATA_HELP)
    p.add_argument(
        "--scheme-json",
        type=json_object,
        required=True,
        help='e.g. {"method": "random", "ratios": [0.7, 0.2, 0.1]}',
    )
    p.add_argument("--seed", type=int, default=0, help="seed unless the scheme sets its own")
    _duplicates_option(p)
    p.add_argument("--out", type=Path, required=True, help="split table to write (.parquet)")


def _duplicates_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--duplicates", type=existing_file, default=None,
        help="the table cxr duplicates wrote of the same --data (default: search again)",
    )  # fmt: skip


def _split(args: argparse.Namespace) -> None:
    from cxr.splits.assign import Scheme
    from cxr.splits.files import write_splits

    scheme = settings(
        args, "--scheme-json", lambda: Scheme.from_dict(args.scheme_json, seed=args.seed)
    )
    counts = write_splits(args.data, scheme, args.out, args.duplicates)
    log.info("split %s: %s", args.out, counts)


def _leakage_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--split", type=existing_file, required=True, help="split table (.parquet or .csv)"
    )
    p.add_argument("--data", type=existing_folder, required=True, help=DATA_HELP)
    _duplicates_option(p)
    p.add_argument("--out", type=Path, required=True, help="report to write (.json)")


def _check_leakage(args: argparse.Namespace) -> None:
    from cxr.splits.files import check_split_file

    report = check_split_file(args.split, args.data, args.out, args.duplicates)
    log.info(
        "no leakage in %s: %s", args.split, {k: v["overlap"] for k, v in report["splits"].items()}
    )


def _duplicates_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", type=existing_folder, required=True, help=DATA_HELP)
    p.add_argument(
        "--out", type=Path, required=True, help="table to write (.csv; the figure gets .png)"
    )


def _duplicates(args: argparse.Namespace) -> None:
    from cxr.splits.files import write_duplicates

    table = write_duplicates(args.data, args.out)
    log.info(
        "%d group(s) of near-duplicates (%d images) -> %s and %s",
        len(table), int(table["size"].sum()), args.out, args.out.with_suffix(".png"),
    )  # fmt: skip


COMMANDS = (
    Command("split", "leak-proof train/val/test assignment of a dataset", _split_arguments, _split),
    Command(
        "check-leakage",
        "fail if a patient or an image crosses splits",
        _leakage_arguments,
        _check_leakage,
    ),
    Command(
        "duplicates",
        "groups of an image and its near-duplicate copies, with a figure",
        _duplicates_arguments,
        _duplicates,
    ),
)

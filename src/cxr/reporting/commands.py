"""``cxr report``: one Markdown (and HTML) report of every study."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from cxr.core.commands import ArgumentError, Command, existing_folder, json_object

log = logging.getLogger("cxr")


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


def headlines_json(text: str) -> dict[str, str]:
    """A JSON object of each study's headline stage: {"seed000": "model_c"}."""
    value = json_object(text)
    if not all(isinstance(v, str) and v for v in value.values()):
        raise ArgumentError(f'expected {{"study": "stage", ...}}, got {text}')
    return value


def _arguments(p: argparse.ArgumentParser) -> None:
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
    p.add_argument(
        "--headlines-json", type=headlines_json, default={},
        help='each study\'s headline stage, the one its row of the first table shows, e.g. '
        '{"seed000": "model_c"} (default: its last stage)',
    )  # fmt: skip
    p.add_argument(
        "--skipped-json", type=studies_json, default={},
        help='stages not trained at this scale (params.yaml `enabled: false`), listed as such, '
        'e.g. {"seed004_covid": ["vgg19_bn"]}',
    )  # fmt: skip


def _run(args: argparse.Namespace) -> None:
    from cxr.reporting import write_report

    problems = write_report(
        args.results,
        args.out,
        html=args.html,
        sources=args.sources_json,
        scale=args.scale,
        expected=args.studies_json,
        logs=args.logs,
        headlines=args.headlines_json,
        skipped=args.skipped_json,
    )
    for problem in problems:
        log.warning("%s", problem)
    log.info("report -> %s%s", args.out, f" and {args.html}" if args.html else "")


COMMANDS = (
    Command(
        "report",
        "one Markdown report of every study: tables, captions, figures, timings",
        _arguments,
        _run,
    ),
)

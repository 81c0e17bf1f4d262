"""``cxr plan``: what params.yaml trains, evaluates and explains, resolved at a scale."""

from __future__ import annotations

import argparse
import sys

from cxr.core.commands import Command, existing_file


def _arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--params", type=existing_file, default="params.yaml",
        help="the configuration (default: params.yaml)",
    )  # fmt: skip
    p.add_argument(
        "--scale", choices=["demo", "paper"], default=None,
        help="the scale to resolve (default: the file's `scale`)",
    )  # fmt: skip
    p.add_argument("--json", action="store_true", help="print JSON instead of text")


def _run(args: argparse.Namespace) -> None:
    import yaml

    from cxr.plan import load
    from cxr.plan.show import as_json, as_text

    plan = load(yaml.safe_load(args.params.read_text()) or {}, args.scale)
    sys.stdout.write(as_json(plan) + "\n" if args.json else as_text(plan))


COMMANDS = (
    Command(
        "plan",
        "what params.yaml trains, evaluates and explains, resolved at a scale",
        _arguments,
        _run,
    ),
)

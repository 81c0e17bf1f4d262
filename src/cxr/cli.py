"""The ``cxr`` command: one subcommand per pipeline step.

Each stage package declares its subcommands (its ``commands`` module: arguments and a thin
``run`` calling a plain function of the package); this module gathers them in pipeline order
and runs one with the checks every verb shares. Snakemake rules call these subcommands, so
every step can also be run by hand.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from cxr.cascade.commands import COMMANDS as CASCADE
from cxr.core.atomic import check_replaceable, invocation
from cxr.core.commands import Command, Parser
from cxr.core.memory import keep_freed_memory
from cxr.data.commands import COMMANDS as DATA
from cxr.evaluation.commands import COMMANDS as EVALUATION
from cxr.explanation.commands import COMMANDS as EXPLANATION
from cxr.ingest.commands import COMMANDS as INGEST
from cxr.plan.commands import COMMANDS as PLAN
from cxr.reporting.commands import COMMANDS as REPORTING
from cxr.serving.commands import COMMANDS as SERVING
from cxr.splits.commands import COMMANDS as SPLITS
from cxr.synth.commands import COMMANDS as SYNTH
from cxr.training.commands import COMMANDS as TRAINING

log = logging.getLogger("cxr")

#: Every subcommand, in pipeline order; each stage package declares its own.
REGISTRY: tuple[Command, ...] = (
    *SYNTH,
    *INGEST,
    *DATA,
    *SPLITS,
    *TRAINING,
    *EVALUATION,
    *EXPLANATION,
    *CASCADE,
    *REPORTING,
    *PLAN,
    *SERVING,
)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="cxr",
        description="cxr: a reproducible pipeline for X-ray diagnosis, one subcommand per step.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in REGISTRY:
        p = sub.add_parser(command.name, help=command.help)
        command.arguments(p)
        p.set_defaults(func=command.run, parser=p)
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
    keep_freed_memory()  # torch's CPU steps otherwise fault their activations in anew
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

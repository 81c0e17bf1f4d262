"""What every `cxr` subcommand is made of: a :class:`Command` (its parser and what it runs),
the argument types that check a value where it is given, and typed settings from JSON.

Each stage package declares its own commands in its ``commands`` module; ``cxr.cli`` gathers
them in pipeline order. A command's ``run`` imports its stage lazily, so ``cxr --help`` and a
usage error stay fast.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Command:
    """One subcommand: ``arguments`` adds its options to its parser, ``run`` does the work."""

    name: str
    help: str
    arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], None]


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line naming the argument (and exit status 2)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


class ArgumentError(argparse.ArgumentTypeError, ValueError):
    """A bad argument value (caught by argparse, or by :func:`settings` after parsing)."""


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


def settings(args: argparse.Namespace, flag: str, build: Callable[[], T]) -> T:
    """Typed settings built from an argument (a JSON object, say); a bad value is a usage
    error naming ``flag``."""
    try:
        return build()
    except ValueError as err:
        args.parser.error(f"argument {flag}: {err}")


def rounded(value: float | None) -> str:
    """A metric for a log line: three decimals, or "undefined"."""
    return "undefined" if value is None else f"{value:.3f}"

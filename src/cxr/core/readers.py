"""Reading the JSON, CSV and text files that cxr writes, with errors that name the file.

Every reader raises ``ValueError("<path>: <what is wrong>")`` for a file that cannot be read
as what it should be (empty, binary, not UTF-8, malformed, of another shape), so that a
command reading dozens of files says which one failed, never a parser's bare message.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping
from pathlib import Path


def first_line(err: BaseException) -> str:
    """The first line of a library's error message (its type if it has none), for a report
    of one line."""
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def read_text(path: str | Path) -> str:
    """The UTF-8 text of ``path``."""
    path = Path(path)
    try:
        return path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as err:
        raise ValueError(f"{path}: not a text file (not UTF-8 at byte {err.start})") from None


def read_json(path: str | Path) -> object:
    """The JSON value held in ``path``."""
    path = Path(path)
    text = read_text(path)
    if not text.strip():
        raise ValueError(f"{path}: empty file, not JSON")
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not valid JSON ({err})") from None


def read_json_object(path: str | Path, what: str) -> dict:
    """The JSON object held in ``path``, ``what`` naming the file's kind for the message
    (e.g. ``"a run.json written by cxr train"``)."""
    value = read_json(path)
    if not isinstance(value, dict):
        kind = "array" if isinstance(value, list) else type(value).__name__
        raise ValueError(f"{path}: holds a JSON {kind}, not {what} (a JSON object)")
    return value


def value_at(data: Mapping, path: str | Path, key: str, what: str) -> object:
    """``data[a][b]...`` for ``key`` ``"a.b..."`` of the JSON read from ``path``."""
    value: object = data
    for part in key.split("."):
        if not isinstance(value, Mapping) or part not in value:
            raise ValueError(f"{path}: has no {key!r}: not {what}")
        value = value[part]
    return value


def read_csv_rows(
    path: str | Path, required: tuple[str, ...] = (), delimiter: str = ","
) -> list[dict[str, str]]:
    """The rows of a CSV file with a header, which must name the ``required`` columns."""
    path = Path(path)
    text = read_text(path)
    try:
        reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter)
        rows = list(reader)
        header = reader.fieldnames or []
    except csv.Error as err:
        raise ValueError(f"{path}: not a valid CSV file ({err})") from None
    absent = [c for c in required if c not in header]
    if absent:
        shown = ", ".join(header) or "none (empty file)"
        raise ValueError(f"{path}: lacks the column(s) {', '.join(absent)} (columns: {shown})")
    return rows

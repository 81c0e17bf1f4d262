"""The probe's harness: every verb tried as a new user would, with bad or adversarial input.

Each case runs one ``cxr`` command in a fresh copy of a results tree that the tiny workflow
built (fixture ``world`` in tests/conftest.py), and asserts three things: the exit code, the
message (one line naming the file or argument, never a library's bare text or an "unexpected
<Type>"), and that nothing was lost: every file that was there is still there, unchanged, and
a failed command wrote nothing outside the MLflow store.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from cxr import cli

#: What a command may change even when it fails: the MLflow store (a failed run is recorded)
#: and the locks and marks that outputs keep beside them.
MAY_CHANGE = re.compile(r"(^|/)(mlflow\.db[^/]*|mlruns/.*|\.[^/]+\.cxr-lock)$")


@dataclass(frozen=True)
class Case:
    """One probe: a command, how to prepare its tree, and what must come out.

    ``argv`` is run in the copy's root. ``setup`` may change the copy first (corrupt a file,
    write a bad table); what it leaves is part of "before". ``rc`` is the expected exit code
    and ``message`` a regular expression the output must match. ``changes`` lists path
    patterns the command may write (only for cases that succeed).
    """

    name: str
    argv: tuple[str, ...]
    rc: int = 1
    message: str = ""
    setup: Callable[[Path], object] | None = None
    changes: tuple[str, ...] = ()
    verb: str = field(default="")

    def __post_init__(self) -> None:
        object.__setattr__(self, "verb", self.verb or self.argv[0])


@dataclass
class Outcome:
    rc: int
    text: str
    lost: list[str]
    added: list[str]


def _snapshot(root: Path) -> dict[str, tuple[int, int, int]]:
    """Every file under ``root`` (relative path) with its inode, size and modification time:
    outputs are replaced by rename (a new inode), so any replacement or edit shows."""
    out = {}
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink():
            st = path.stat()
            out[path.relative_to(root).as_posix()] = (st.st_ino, st.st_size, st.st_mtime_ns)
    return out


def run_case(
    case: Case, root: Path, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture
) -> Outcome:
    """Prepare ``root`` for ``case``, run its command there, and report what happened."""
    if case.setup is not None:
        case.setup(root)
    before = _snapshot(root)
    caplog.clear()
    with caplog.at_level(logging.INFO):
        try:
            rc = cli.main(list(case.argv))
        except SystemExit as err:  # argparse's usage errors
            rc = int(err.code or 0)
    captured = capsys.readouterr()
    text = "\n".join([captured.out, captured.err, caplog.text])
    after = _snapshot(root)
    allowed = [re.compile(p) for p in case.changes]

    def free(rel: str) -> bool:
        return bool(MAY_CHANGE.search(rel)) or any(p.search(rel) for p in allowed)

    lost = [p for p, digest in before.items() if after.get(p) != digest and not free(p)]
    added = [p for p in after if p not in before and not free(p)]
    return Outcome(rc, text, lost, added)


def classify(outcome: Outcome, case: Case) -> str:
    """What a user met, in the classes of the probe's report: a data loss, a half-written
    output, a silent wrong result (exit 0 where a refusal was due), a bare or unexpected
    error, another message than the one due, a clear error, or a case handled correctly."""
    if outcome.lost:
        return "data loss"
    if outcome.rc == 0 and case.rc != 0:
        return "silent wrong result"
    if outcome.added and case.rc != 0:
        return "half-written output"
    if "unexpected" in outcome.text.lower() or "Traceback" in outcome.text:
        return "bare or unexpected error"
    if outcome.rc != case.rc or not re.search(case.message, outcome.text):
        return "another message"
    return "handled correctly" if case.rc == 0 else "clear error"


def check(outcome: Outcome, case: Case) -> None:
    """The probe's three assertions, with the whole output on failure. With
    ``CXR_PROBE_TALLY`` set, each case's class is also appended to that file (JSON lines)."""
    if os.environ.get("CXR_PROBE_TALLY"):
        with open(os.environ["CXR_PROBE_TALLY"], "a") as tally:
            row = {"case": case.name, "verb": case.verb, "class": classify(outcome, case)}
            tally.write(json.dumps(row) + "\n")
    shown = f"{case.name}: cxr {' '.join(case.argv)}\n{outcome.text}"
    assert outcome.rc == case.rc, f"exit {outcome.rc}, expected {case.rc}\n{shown}"
    assert re.search(case.message, outcome.text), f"message /{case.message}/ missing\n{shown}"
    assert "unexpected" not in outcome.text.lower(), f"an unexpected error\n{shown}"
    assert "Traceback" not in outcome.text, f"a traceback\n{shown}"
    assert not outcome.lost, f"changed or lost: {outcome.lost[:10]}\n{shown}"
    assert not outcome.added, (
        f"written by a command that should write nothing: {outcome.added[:10]}\n{shown}"
    )


def probe_cases(cases: list[Case]) -> pytest.MarkDecorator:
    """Parametrize a test over ``cases``, one test id per case name."""
    names = [c.name for c in cases]
    assert len(set(names)) == len(names), "probe case names must be unique"
    return pytest.mark.parametrize("case", cases, ids=names)

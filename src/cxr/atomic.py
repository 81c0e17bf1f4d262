"""Write outputs so that a step never destroys what cxr did not write, never leaves a
half-written file or folder behind, and never mixes two writers' work.

Every output is written into a work folder beside it (``.<name>.cxr-part``) and moved onto the
target in one rename when, and only when, the step succeeds. Around that:

- **Marks.** A file or folder cxr wrote has a hidden ``.<name>.cxr-output`` beside it (outside
  it, so a dataset cxr generates holds exactly the files of the real download). An existing
  target is replaced only if it is marked (or is an empty folder); anything else stops the
  step with one line saying what is there.
- **One writer.** The target's lock (``.<name>.cxr-lock``, an ``flock``) is held while writing;
  a second writer stops at once with a clear message instead of racing the first.
- **Interrupted runs.** A work folder left by a killed run is removed by the next run.
"""

from __future__ import annotations

import contextlib
import fcntl
import glob
import json
import logging
import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

log = logging.getLogger(__name__)


class OutputRefused(ValueError):
    """The target exists and cxr did not write it: replacing it could destroy user data."""


class OutputBusy(OutputRefused):
    """Another process is writing the same output right now."""


def _sibling(target: Path, suffix: str) -> Path:
    return target.with_name(f".{target.name}.{suffix}")


def output_mark(target: Path) -> Path:
    """The hidden file beside ``target`` that says cxr wrote it."""
    return _sibling(target, "cxr-output")


def written_by_cxr(target: Path) -> bool:
    """Whether ``target`` is a file or folder that cxr wrote (and may therefore replace)."""
    return not target.is_symlink() and target.exists() and output_mark(target).is_file()


def check_replaceable(target: Path) -> None:
    """Raise :class:`OutputRefused` unless ``target`` is absent, an empty folder, or cxr's."""
    if not (target.exists() or target.is_symlink()) or written_by_cxr(target):
        return
    if target.is_symlink():
        what = f"a symbolic link to {os.readlink(target)}"
    elif target.is_dir():
        entries = sorted(p.name for p in target.iterdir())
        if not entries:
            return
        what = f"a folder cxr did not write ({len(entries)} item(s), e.g. {entries[0]!r})"
    elif target.is_file():
        what = f"a file cxr did not write ({target.stat().st_size:,} bytes)"
    else:
        what = "something that is neither a file nor a folder"
    raise OutputRefused(
        f"{target}: is {what}; cxr does not replace it. Choose another output path, "
        "or move it away yourself"
    )


@contextlib.contextmanager
def output_lock(target: Path) -> Iterator[None]:
    """Hold the lock of ``target`` (non-blocking: a second writer fails at once)."""
    lock = _sibling(target, "cxr-lock")
    while True:
        fd = os.open(lock, os.O_CREAT | os.O_RDWR, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise OutputBusy(
                f"{target}: another cxr process is writing this output right now "
                f"(lock {lock.name}); wait for it to finish or stop it"
            ) from None
        try:  # the previous holder may have removed the lock file before we locked it
            if os.path.samestat(os.fstat(fd), os.stat(lock)):
                break
        except FileNotFoundError:
            pass
        os.close(fd)
    try:
        yield
    finally:
        with contextlib.suppress(FileNotFoundError):
            lock.unlink()
        os.close(fd)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def _mark_contents() -> str:
    return json.dumps({"written_by": "cxr", "command": sys.argv[1:2]}) + "\n"


@contextlib.contextmanager
def atomic_path(target: str | Path) -> Iterator[Path]:
    """Yield a work path; move it onto ``target`` only if the block succeeds.

    Works for files and folders alike: whatever the block writes at the yielded path replaces
    ``target`` in one rename, and is deleted if the block raises. Refuses (before the block
    runs) to replace anything cxr did not write, and to run beside another writer.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    check_replaceable(target)
    with output_lock(target):
        part, old = _sibling(target, "cxr-part"), _sibling(target, "cxr-old")
        earlier = target.parent.glob(f".{glob.escape(target.name)}.*.part")  # cxr <= 0.1.0
        for stale in [p for p in (part, old) if p.exists()] + sorted(earlier):
            log.info("removing %s, left by an interrupted run", stale)
            _remove(stale)
        part.mkdir()
        work = part / target.name
        try:
            yield work
            check_replaceable(target)  # nothing new appeared there while we worked
            output_mark(target).write_text(_mark_contents())
            if target.is_dir() and not target.is_symlink():
                os.replace(target, old)
            os.replace(work, target)
            _remove(old)
        finally:
            shutil.rmtree(part, ignore_errors=True)

"""Write outputs so that a step never destroys what cxr did not write, never leaves a
half-written file or folder behind, and never mixes two writers' work.

Every output is written into a work folder beside it (``.<name>.cxr-part``) and moved onto the
target in one rename when, and only when, the step succeeds. Around that:

- **Marks.** A file or folder cxr wrote has a hidden ``.<name>.cxr-output`` beside it (outside
  it, so a dataset cxr generates holds exactly the files of the real download) naming the verb
  that wrote it. An existing target is replaced only if the same verb wrote it (or it is an
  empty folder); anything else stops the step with one line saying what is there.
- **Inputs.** While a verb runs (:func:`invocation`), none of its inputs, nor a folder holding
  one, nor anything inside another output of cxr, is ever a target.
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
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)


class OutputRefused(ValueError):
    """The target exists and cxr did not write it: replacing it could destroy user data."""


class OutputBusy(OutputRefused):
    """Another process is writing the same output right now."""


@dataclass
class _Invocation:
    """The verb running now, its inputs, and the outputs it has written so far."""

    command: str | None = None
    inputs: tuple[Path, ...] = ()
    written: set[Path] = field(default_factory=set)


_current = _Invocation()


@contextlib.contextmanager
def invocation(command: str, inputs: Iterable[str | Path]) -> Iterator[None]:
    """Run a verb: its outputs are marked with ``command``, it replaces only outputs that the
    same verb wrote, and it never writes onto (or around) one of its ``inputs``."""
    global _current
    previous = _current
    _current = _Invocation(command, tuple(Path(p).resolve() for p in inputs))
    try:
        yield
    finally:
        _current = previous


def _sibling(target: Path, suffix: str) -> Path:
    return target.with_name(f".{target.name}.{suffix}")


def output_mark(target: Path) -> Path:
    """The hidden file beside ``target`` that says cxr wrote it."""
    return _sibling(target, "cxr-output")


def written_by_cxr(target: Path) -> bool:
    """Whether ``target`` is a file or folder that cxr wrote (and may therefore replace)."""
    return not target.is_symlink() and target.exists() and output_mark(target).is_file()


def writer_of(target: Path) -> str | None:
    """The verb that wrote ``target`` as its mark records it (None if the mark names none)."""
    try:
        command = json.loads(output_mark(target).read_text()).get("command")
    except (OSError, ValueError, AttributeError):
        return None
    # marks of cxr <= 0.1.0 held sys.argv[1:2], which may be an option: their writer is unknown
    return command if isinstance(command, str) else None


def _check_inputs(target: Path) -> None:
    """Refuse a target that is, holds, or lies inside something this verb must not replace."""
    resolved = target.resolve()
    for source in _current.inputs:
        if source == resolved or resolved in source.parents:
            which = "is" if source == resolved else f"holds {source}, which is"
            raise OutputRefused(
                f"{target}: {which} an input of this command; writing the output there would "
                "destroy it. Choose another output path"
            )
    if resolved in _current.written:
        raise OutputRefused(
            f"{target}: this command already wrote another of its outputs there; give each "
            "output its own path"
        )
    for folder in resolved.parents[:-1]:  # not the root, which has no name to mark
        if folder.is_dir() and written_by_cxr(folder):
            writer = " ".join(filter(None, ["cxr", writer_of(folder)]))
            raise OutputRefused(
                f"{target}: lies inside {folder}, an output of {writer}; write beside it, not "
                "into it"
            )


def check_replaceable(target: Path) -> None:
    """Raise :class:`OutputRefused` unless ``target`` may be written: it is absent, an empty
    folder, or an output of the verb running now, and it is none of that verb's inputs."""
    target = Path(target)
    _check_inputs(target)
    if written_by_cxr(target):
        writer, command = writer_of(target), _current.command
        if command is None or writer in (None, command):
            return
        raise OutputRefused(
            f"{target}: was written by cxr {writer}, and cxr {command} replaces only its own "
            "outputs. Choose another output path, or delete it yourself if you no longer "
            "need it"
        )
    if not (target.exists() or target.is_symlink()):
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


def _write_mark(target: Path, part: Path) -> None:
    """Mark ``target`` as written by the verb running now (a new file moved into place: a mark
    shared by a hard-linked copy of the tree is never edited in place)."""
    new = part / f".{target.name}.cxr-output"
    new.write_text(json.dumps({"written_by": "cxr", "command": _current.command}) + "\n")
    os.replace(new, output_mark(target))


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
            _write_mark(target, part)
            if target.is_dir() and not target.is_symlink():
                os.replace(target, old)
            os.replace(work, target)
            if _current.command is not None:  # one verb's outputs, not a library session's
                _current.written.add(target.resolve())
            _remove(old)
        finally:
            shutil.rmtree(part, ignore_errors=True)

"""Checkpoints: saved atomically, read only as tensors and plain data; an ``--init`` carried
into a new model; resuming a run.

A run is resumable: a checkpoint written after every epoch holds the model, optimiser,
scheduler, best-so-far and history; the same command after a kill continues from it and ends
with the same weights as an uninterrupted run.

- The resume checkpoint of output ``DIR`` is ``<parent>/.<DIR name>.cxr-resume/last.pt``,
  outside the atomic work folder (which a new run deletes), replaced once per epoch with
  tmp + ``os.replace`` so a kill leaves the previous one intact, and removed after success.
- Every checkpoint is read with ``torch.load(weights_only=True)``: a file holding anything but
  tensors and plain data (a pickle whose ``__reduce__`` runs code, say) is refused with an
  error naming it, and nothing in it runs.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import pickle
import shutil
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from cxr.training.models import backbone_carried, init_from_checkpoint

log = logging.getLogger(__name__)

RESUME_FILE = "last.pt"
#: The keys of a resume checkpoint (see :func:`save_resume`).
RESUME_KEYS = frozenset({"fingerprint", "state", "model", "optimizer"})
#: The least share of the backbone's parameter tensors an ``--init`` must carry.
MIN_INIT_SHARE = 0.5


@dataclass
class State:
    """What a checkpoint carries from one epoch to the next."""

    epoch: int = 0  # the next epoch to run
    history: list[dict] = field(default_factory=list)
    best_loss: float = float("inf")
    best_epoch: int = -1
    best_state: dict[str, torch.Tensor] | None = None
    bad_epochs: int = 0
    stopped: bool = False
    run_id: str | None = None
    seconds: float = 0.0


def resume_folder(out: str | Path) -> Path:
    """Where the resume checkpoint of output folder ``out`` lives."""
    out = Path(out)
    return out.parent / f".{out.name}.cxr-resume"


def save_atomic(obj: object, path: Path) -> None:
    """``torch.save`` to ``path`` so that it is either the old file or the complete new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def load_plain(path: str | Path) -> dict:
    """A checkpoint's contents, refusing anything but tensors and plain Python data."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types for a file that is not its own
        if isinstance(err, pickle.UnpicklingError) and _pickled(path):
            raise ValueError(
                f"{path}: refused: it holds objects other than tensors and plain data, and cxr "
                f"loads checkpoints with weights_only=True, so nothing in it ran ({_reason(err)})"
            ) from None
        raise ValueError(f"{path}: not a torch checkpoint ({_what_file(path)})") from None
    if not isinstance(state, dict):
        raise ValueError(f"{path}: expected a dict of tensors, got {type(state).__name__}")
    return state


def load_weights(path: str | Path) -> dict[str, torch.Tensor]:
    """The tensors of a ``model.pt`` (a state dict), naming what else ``path`` is."""
    state = load_plain(path)
    if state.keys() >= RESUME_KEYS:
        raise ValueError(
            f"{path}: a resume checkpoint of cxr train, not a model; pass the model.pt of a "
            "finished cxr train"
        )
    others = sorted(str(k) for k, v in state.items() if not isinstance(v, torch.Tensor))
    if not state or others:
        held = f"entries that are not tensors: {', '.join(others[:5])}" if others else "nothing"
        raise ValueError(
            f"{path}: not a model's weights (a state dict of tensors); it holds {held}"
        )
    return state


@dataclass(frozen=True)
class InitWeights:
    """An earlier stage's weights to start from (``cxr train --init``)."""

    path: Path
    state: dict[str, torch.Tensor]
    allow_partial: bool = False


def carry(model: nn.Module, init: InitWeights, architecture: str) -> dict:
    """Copy ``init``'s matching tensors into ``model``; refuse an init that carries less than
    :data:`MIN_INIT_SHARE` of the backbone unless allowed. Returns the init record."""
    carried, dropped = init_from_checkpoint(model, init.state)
    n, total = backbone_carried(model, carried)
    partial = n < MIN_INIT_SHARE * total
    what = f"{n} of the {total} parameter tensors of the {architecture} backbone"
    if partial and not init.allow_partial:
        raise ValueError(
            f"--init {init.path}: it carries only {what} (matched by name and shape: a model "
            "of another architecture or input size?), so training would start from mostly "
            "random weights; pass --allow-partial-init to train from it anyway"
        )
    log.info(
        "init: carried %d tensor(s) over, not %d: %s",
        len(carried),
        len(dropped),
        ", ".join(dropped[:8]) or "none",
    )
    if partial:
        log.warning("--init %s carries only %s (--allow-partial-init)", init.path, what)
    return {
        "carried": carried,
        "not_carried": dropped,
        "backbone_carried": n,
        "backbone_tensors": total,
        "partial_init_allowed": partial,
    }


def _reason(err: BaseException) -> str:
    """The telling line of a torch.load error (its first, or weights_only's verdict)."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    verdict = [line for line in lines if line.startswith(("Unsupported", "Trying to load"))]
    text = (verdict or lines or [type(err).__name__])[0]
    return text.split(". ")[0].rstrip(".")


def _pickled(path: str | Path) -> bool:
    """Whether ``path`` is what torch.save writes: a zip archive, or a pickle (legacy)."""
    with open(path, "rb") as f:
        legacy = f.read(1) == b"\x80"
    return legacy or zipfile.is_zipfile(path)


def _what_file(path: str | Path) -> str:
    """What a file that torch.load cannot read is, as far as its first bytes tell."""
    with open(path, "rb") as f:
        head = f.read(8)
    if not head:
        return "the file is empty"
    if head.startswith(b"\x93NUMPY"):
        return "a NumPy array file"
    if head.lstrip()[:1] in (b"{", b"["):
        return "a JSON text file"
    if zipfile.is_zipfile(path):
        return "a zip archive, but not one torch.save wrote"
    if head.startswith(b"PK"):
        return "a truncated or damaged zip archive: copy it again or retrain it"
    return "torch.save writes a zip archive (or a pickle) of tensors; this file is neither"


def load_resume(out: Path, stamp: str) -> tuple[State, dict | None]:
    """The state to start from: the resume checkpoint of ``out`` if it matches this run."""
    path = resume_folder(out) / RESUME_FILE
    if not path.exists():
        return State(), None
    checkpoint = load_plain(path)
    if checkpoint.get("fingerprint") != stamp:
        log.warning(
            "ignoring %s: it was written for another recipe, data, split or init; starting over",
            path,
        )
        return State(), None
    state = State(**checkpoint["state"])
    log.info("resuming from %s after epoch %d", path, state.epoch)
    return state, checkpoint


def save_resume(
    out: Path,
    stamp: str,
    state: State,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.ReduceLROnPlateau | None,
) -> None:
    """Replace the resume checkpoint of ``out`` with the run after ``state.epoch`` epochs."""
    save_atomic(
        {
            "fingerprint": stamp,
            "state": vars(state),
            "model": plain_state(model),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict() if scheduler else {},
        },
        resume_folder(out) / RESUME_FILE,
    )


def remove_resume(out: str | Path) -> None:
    """Delete the resume checkpoint of ``out`` (after the output is complete)."""
    shutil.rmtree(resume_folder(out), ignore_errors=True)


def plain_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """The model's state dict as contiguous CPU copies (a portable ``model.pt``)."""
    return {k: v.detach().to("cpu", copy=True).contiguous() for k, v in model.state_dict().items()}


def fingerprint(parts: dict) -> str:
    """A digest of what a run's result depends on; a checkpoint of other parts is stale."""
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def file_digest(path: str | Path, chunk: int = 1 << 22) -> str:
    """blake2b of a file read in chunks (about 1 GB/s)."""
    digest = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return f"blake2b:{digest.hexdigest()}"

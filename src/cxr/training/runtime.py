"""The runtime a training run works in: its device, its process group and its determinism.

Several processes (``torchrun --nproc_per_node N``) train data-parallel: every rank takes a
slice of each global batch and the loss is divided by the global count of known labels, so
the gradient is the one of a single process; rank 0 writes the outputs and logs to MLflow.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import torch
import torch.distributed as dist


def distributed() -> tuple[int, int, torch.device]:
    """(rank, world size, device); joins the process group when started by torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    cuda = torch.cuda.is_available()
    device = torch.device("cpu")
    if cuda:
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if cuda else "gloo")
    return (dist.get_rank() if world > 1 else 0), world, device


@contextlib.contextmanager
def reproducible(on: bool, device: torch.device) -> Iterator[None]:
    """Deterministic kernels (``on``) and a private RNG; the caller's settings come back."""
    before = (
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
        torch.backends.cudnn.benchmark,
    )
    if on:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(on, warn_only=True)
    torch.backends.cudnn.benchmark = not on
    try:
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            yield
    finally:
        torch.use_deterministic_algorithms(before[0], warn_only=before[1])
        torch.backends.cudnn.benchmark = before[2]


def autocast(device: torch.device) -> contextlib.AbstractContextManager:
    """bfloat16 autocast on a GPU; nothing on the CPU."""
    cuda = device.type == "cuda"
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=cuda)

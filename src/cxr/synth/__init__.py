"""Format-faithful synthetic miniatures of the real datasets.

Each module ``cxr.synth.<dataset>`` defines::

    DEFAULT_N: int          # images written when --n is not given
    DEFAULT_SIZE: int       # nominal image side in pixels when --size is not given
    VARIANTS: tuple[str, ...]  # layouts it can write; the first is the default
    def generate(out: Path, n: int, size: int, seed: int, variant: str) -> None

``generate`` writes into ``out`` (an existing empty folder) exactly the layout, names, headers
and byte formats of the real download. It must be deterministic for a seed, whatever the
number of worker processes.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TypeVar

import numpy as np
from tqdm import tqdm

from cxr.core.atomic import atomic_path
from cxr.core.datasets import dataset_module
from cxr.core.workers import worker_pool

T = TypeVar("T")
R = TypeVar("R")


def synthesize(
    dataset: str,
    out: str | Path,
    n: int | None = None,
    size: int | None = None,
    seed: int = 0,
    variant: str | None = None,
) -> Path:
    """Generate the miniature of ``dataset`` into ``out``, replacing it atomically."""
    module = dataset_module("synth", dataset)
    n = module.DEFAULT_N if n is None else n
    size = module.DEFAULT_SIZE if size is None else size
    variant = module.VARIANTS[0] if variant is None else variant
    if variant not in module.VARIANTS:
        raise ValueError(f"{dataset}: unknown variant {variant!r}; choose one of {module.VARIANTS}")
    if n < 1 or size < 16:
        raise ValueError(f"{dataset}: need n >= 1 and size >= 16, got n={n}, size={size}")
    out = Path(out)
    with atomic_path(out) as tmp:
        tmp.mkdir()
        module.generate(tmp, n=n, size=size, seed=seed, variant=variant)
    return out


def rng_for(seed: int, *key: int) -> np.random.Generator:
    """An independent generator for item ``key`` of a run seeded with ``seed``."""
    return np.random.default_rng([seed, *key])


def scaled_counts(n: int, weights: dict[str, int], minimum: int) -> dict[str, int]:
    """Split ``n`` in proportion to ``weights`` (largest remainder), each at least ``minimum``."""
    total = sum(weights.values())
    quotas = {k: n * w / total for k, w in weights.items()}
    counts = {k: max(minimum, int(q)) for k, q in quotas.items()}
    while sum(counts.values()) < n:
        counts[max(quotas, key=lambda k: quotas[k] - counts[k])] += 1
    while sum(counts.values()) > n:
        over = [k for k in counts if counts[k] > minimum]
        counts[max(over, key=lambda k: counts[k] - quotas[k])] -= 1
    return counts


def parallel_map(
    fn: Callable[[T], R], jobs: Sequence[T] | Iterable[T], desc: str, workers: int | None = None
) -> list[R]:
    """``[fn(job) for job in jobs]`` over worker processes, in order, with a progress bar.

    ``fn`` must be a module-level function and each job must carry everything it needs
    (including its own seed), so that results do not depend on the number of workers.
    """
    jobs = list(jobs)
    workers = workers or min(len(jobs), _cpu_count())
    if workers <= 1 or len(jobs) < 8:
        return [fn(j) for j in tqdm(jobs, desc=desc, unit="img", leave=False)]
    with worker_pool(workers) as pool:
        it = pool.imap(fn, jobs, chunksize=max(1, len(jobs) // (workers * 8)))
        return list(tqdm(it, total=len(jobs), desc=desc, unit="img", leave=False))


def _cpu_count() -> int:
    """Worker processes to use: ``$CXR_WORKERS`` (set by Snakemake from a rule's threads),
    else the cores this process may run on."""
    if os.environ.get("CXR_WORKERS"):
        return max(1, int(os.environ["CXR_WORKERS"]))
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1

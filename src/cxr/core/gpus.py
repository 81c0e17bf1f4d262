"""One GPU per training job when a machine has several and nothing assigns them.

Snakemake's ``--resources gpu=N`` caps how many training jobs run at once but does not say
which GPU each uses, so every job would pick GPU 0. :func:`claim_gpu` gives the job the first
GPU that no other cxr process on this machine holds (an ``flock`` held until the process
exits) and makes it the only one the job sees, before CUDA starts.
"""

from __future__ import annotations

import fcntl
import logging
import os
import subprocess
import tempfile
from pathlib import Path

log = logging.getLogger(__name__)

#: The claims of this process (kept open: closing a file releases its lock).
_HELD: list[int] = []


def gpu_count() -> int:
    """How many GPUs ``nvidia-smi`` lists (0 without it); CUDA itself is not started."""
    try:
        done = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, check=False)
    except OSError:
        return 0
    return sum(line.startswith("GPU ") for line in done.stdout.splitlines())


def claim_gpu(count: int | None = None, lock_dir: Path | None = None) -> int | None:
    """Claim a free GPU and set ``CUDA_VISIBLE_DEVICES`` to it; return its number.

    Nothing is done (None) where the GPUs are already assigned (``CUDA_VISIBLE_DEVICES`` set,
    as cluster executors do, or a ``torchrun`` rank) or where there are fewer than two. If all
    are claimed, GPU 0 is shared, with a warning.
    """
    if "CUDA_VISIBLE_DEVICES" in os.environ or "LOCAL_RANK" in os.environ:
        return None
    count = gpu_count() if count is None else count
    if count < 2:
        return None
    folder = lock_dir or Path(tempfile.gettempdir())
    for gpu in range(count):
        fd = os.open(folder / f"cxr-gpu-{gpu}.lock", os.O_CREAT | os.O_RDWR, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        _HELD.append(fd)
        os.environ["CUDA_VISIBLE_DEVICES"] = str(gpu)
        log.info("using GPU %d of %d", gpu, count)
        return gpu
    log.warning("all %d GPUs are in use by other cxr jobs: sharing GPU 0", count)
    os.environ["CUDA_VISIBLE_DEVICES"] = "0"
    return 0

"""Worker processes that never outlive the command that started them.

Every parallel step (``synth``, ``preprocess``) runs its workers in :func:`worker_pool`: each
worker asks the kernel to kill it when its parent dies (even by ``kill -9``), ignores Ctrl-C
(the parent handles it and terminates the pool) and takes SIGTERM's default action.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
from collections.abc import Callable
from multiprocessing import get_context
from multiprocessing.pool import Pool

_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def die_with_parent(parent: int) -> None:
    """In a worker process: be killed when process ``parent`` dies; leave signals to it."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)


def _start_worker(parent: int, initializer: Callable[..., None] | None, initargs: tuple) -> None:
    die_with_parent(parent)
    if initializer is not None:
        initializer(*initargs)


def worker_pool(
    workers: int, initializer: Callable[..., None] | None = None, initargs: tuple = ()
) -> Pool:
    """A fork-based process pool whose workers die with this process.

    Use it as a context manager: leaving the block (normally, on an error or on Ctrl-C)
    terminates the workers.
    """
    return get_context("fork").Pool(workers, _start_worker, (os.getpid(), initializer, initargs))

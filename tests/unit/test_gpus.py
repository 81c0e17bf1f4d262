"""Parallel training jobs on a multi-GPU machine each claim their own GPU."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from cxr.core import gpus

CLAIM = (
    "import sys; from pathlib import Path; from cxr.core.gpus import claim_gpu; "
    "print(claim_gpu(count=2, lock_dir=Path(sys.argv[1]))); sys.stdout.flush(); sys.stdin.read()"
)


@pytest.fixture
def unassigned(monkeypatch: pytest.MonkeyPatch) -> dict:
    """An environment in which no GPU is assigned yet (restored afterwards)."""
    for key in ("CUDA_VISIBLE_DEVICES", "LOCAL_RANK"):
        monkeypatch.setenv(key, "")  # so that the deletion is undone
        monkeypatch.delenv(key)
    monkeypatch.setattr(gpus, "_HELD", [])
    return {k: v for k, v in os.environ.items() if k not in ("CUDA_VISIBLE_DEVICES", "LOCAL_RANK")}


def test_jobs_started_together_get_different_gpus_then_share(tmp_path: Path, unassigned) -> None:
    jobs = [
        subprocess.Popen(
            [sys.executable, "-c", CLAIM, str(tmp_path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=unassigned,
        )
        for _ in range(3)
    ]
    try:
        claimed = [job.stdout.readline().strip() for job in jobs]
    finally:
        for job in jobs:
            job.communicate("")
    assert sorted(claimed) == ["0", "0", "1"]  # the third finds both taken and shares GPU 0


def test_a_released_gpu_is_claimed_again(tmp_path: Path, unassigned) -> None:
    first = subprocess.run(
        [sys.executable, "-c", CLAIM, str(tmp_path)],
        input="",
        capture_output=True,
        text=True,
        env=unassigned,
        check=True,
    )
    assert first.stdout.strip() == "0"
    assert gpus.claim_gpu(count=2, lock_dir=tmp_path) == 0
    assert os.environ["CUDA_VISIBLE_DEVICES"] == "0"
    os.close(gpus._HELD.pop())


@pytest.mark.parametrize(
    ("env", "count"), [({"CUDA_VISIBLE_DEVICES": "3"}, 4), ({"LOCAL_RANK": "1"}, 4), ({}, 1)]
)
def test_assigned_or_single_gpus_are_left_alone(
    tmp_path: Path, unassigned, monkeypatch: pytest.MonkeyPatch, env: dict, count: int
) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert gpus.claim_gpu(count=count, lock_dir=tmp_path) is None
    assert os.environ.get("CUDA_VISIBLE_DEVICES") == env.get("CUDA_VISIBLE_DEVICES")
    assert not list(tmp_path.iterdir())

"""The probe's fixture: a private copy of a tree the tiny workflow built (see harness.py)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from harness import COPIED


def _copy(src: str, dst: str) -> None:
    if COPIED.search(src):
        shutil.copy2(src, dst)
    else:
        os.link(src, dst)  # outputs are replaced by rename, never edited in place


@pytest.fixture
def world(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private copy of the tiny workflow's tree (files linked, the MLflow store copied),
    with the working directory and HOME set to it. ``CXR_PROBE_WORLD`` names an already built
    tree to use instead of building one (for working on the probe; CI builds it)."""
    built = os.environ.get("CXR_PROBE_WORLD") or request.getfixturevalue("built")
    root = tmp_path / "w"
    shutil.copytree(
        built, root, symlinks=True, copy_function=_copy, ignore=shutil.ignore_patterns(".snakemake")
    )
    monkeypatch.chdir(root)
    monkeypatch.setenv("HOME", str(root))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return root

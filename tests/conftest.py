"""Shared fixtures: paths, the real NIH sample, and running the real workflow in a temp dir."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
#: The real NIH sample lives beside the checkout (never inside it).
REAL_NIH = REPO.parent / "shared" / "real" / "nih"


@pytest.fixture
def real_nih() -> Path:
    """The 51 real NIH images with their label rows; skipped where the sample is absent."""
    if not (REAL_NIH / "Data_Entry_2017_v2020.csv").exists():
        pytest.skip(f"real NIH sample not found at {REAL_NIH} (it is not shipped with cxr)")
    return REAL_NIH


def tiny_params() -> dict:
    """The tiny workflow configuration of tests/workflow/params.yaml."""
    return yaml.safe_load((REPO / "tests" / "workflow" / "params.yaml").read_text())


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """An empty working directory holding the tiny params.yaml."""
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(tiny_params()))
    return tmp_path


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A workdir where the default target ran once on the tiny configuration (shared by the
    workflow tests: a test that edits its params.yaml restores it)."""
    workdir = tmp_path_factory.mktemp("workflow")
    (workdir / "params.yaml").write_text(yaml.safe_dump(tiny_params()))
    snakemake(workdir)
    return workdir


#: Files copied, not linked, into a probe's tree: the MLflow store is changed in place by design.
COPIED = re.compile(r"(^|/)mlflow\.db[^/]*$")


def _link_or_copy(src: str, dst: str) -> None:
    if COPIED.search(src):
        shutil.copy2(src, dst)
    else:
        os.link(src, dst)  # outputs and their marks are replaced by rename, never edited in place


@pytest.fixture
def world(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The probe's tree (tests/probe): a private copy of what the tiny workflow built (files
    linked, the MLflow store copied), with the working directory and HOME set to it.
    ``CXR_PROBE_WORLD`` names an already built tree to use instead (for working on the probe;
    CI builds it)."""
    built = os.environ.get("CXR_PROBE_WORLD") or request.getfixturevalue("built")
    root = tmp_path / "w"
    ignore = shutil.ignore_patterns(".snakemake")
    shutil.copytree(built, root, symlinks=True, copy_function=_link_or_copy, ignore=ignore)
    monkeypatch.chdir(root)
    monkeypatch.setenv("HOME", str(root))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return root


def snakemake(workdir: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    """Run the repository's Snakefile in ``workdir`` (its params.yaml is the config)."""
    cmd = [
        str(BIN / "snakemake"),
        "--snakefile",
        str(REPO / "Snakefile"),
        "--directory",
        str(workdir),
        "--cores",
        "2",
        *args,
    ]
    env = {"PATH": f"{BIN}:/usr/bin:/bin", "HOME": str(workdir), "DVC_NO_ANALYTICS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if check and proc.returncode != 0:
        logs = "\n".join(p.read_text()[-3000:] for p in sorted(workdir.glob("logs/**/*.log")))
        pytest.fail(f"snakemake {' '.join(args)} failed:\n{proc.stderr[-4000:]}\n{logs}")
    return proc


def dvc_project(tmp_path: Path, datasets: tuple[str, ...]) -> tuple[Path, Callable[..., str]]:
    """A git + DVC copy of the project under ``tmp_path`` on the tiny configuration with only
    ``datasets`` enabled, and a ``run(*cmd)`` that runs a command there and returns its output
    (failing the test on a non-zero exit)."""
    repo = tmp_path / "repo"
    repo.mkdir()
    for name in ("Snakefile", "dvc.yaml", "workflow", "src", "profiles"):
        src = REPO / name
        (shutil.copytree if src.is_dir() else shutil.copy)(src, repo / name)
    params = tiny_params()
    params["datasets"] = {k: params["datasets"][k] for k in datasets}
    (repo / "params.yaml").write_text(yaml.safe_dump(params))
    env = {
        "PATH": f"{BIN}:/usr/bin:/bin",
        "HOME": str(tmp_path),
        "DVC_NO_ANALYTICS": "1",
        "MLFLOW_DISABLE_TELEMETRY": "true",
    }

    def run(*cmd: str) -> str:
        proc = subprocess.run(cmd, cwd=repo, env=env, capture_output=True, text=True, check=False)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        return proc.stdout + proc.stderr

    run("git", "init", "-q")
    run("git", "config", "user.name", "cxr tests")
    run("git", "config", "user.email", "tests@cxr.invalid")
    run(str(BIN / "dvc"), "init", "-q")
    run(str(BIN / "dvc"), "config", "core.analytics", "false")
    return repo, run

"""The Snakemake profiles of workflow/profiles: each one parses and plans the tiny workflow (a dry
run: no job runs), and plain `snakemake` still loads the local one by itself."""

from __future__ import annotations

import importlib.util
import subprocess
from pathlib import Path

import pytest
from conftest import BIN, REPO

pytestmark = pytest.mark.workflow

#: Profile -> the executor plugin it needs.
PROFILES = {
    "local": None,
    "slurm": "snakemake_executor_plugin_slurm",
    "kubernetes": "snakemake_executor_plugin_kubernetes",
}


def dry_run(workdir: Path, *args: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    cmd = [str(BIN / "snakemake"), "--snakefile", str(REPO / "Snakefile"),
           "--directory", str(workdir), "-n", *args]  # fmt: skip
    env = {"PATH": f"{BIN}:/usr/bin:/bin", "HOME": str(workdir)}
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, check=False)


@pytest.mark.parametrize("profile", list(PROFILES))
def test_each_profile_plans_the_tiny_workflow(workdir: Path, profile: str) -> None:
    plugin = PROFILES[profile]
    if plugin is not None and importlib.util.find_spec(plugin) is None:
        pytest.skip(f"{plugin} is not installed (pip install -e '.[dev]')")
    folder = REPO / "workflow" / "profiles" / profile
    proc = dry_run(workdir, "--workflow-profile", str(folder))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"Using workflow specific profile {folder}" in proc.stderr
    assert "This was a dry-run" in proc.stdout + proc.stderr


def test_plain_snakemake_loads_the_local_profile(workdir: Path) -> None:
    proc = dry_run(workdir)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Using workflow specific profile profiles/default" in proc.stderr
    assert (REPO / "profiles" / "default").resolve() == REPO / "workflow" / "profiles" / "local"

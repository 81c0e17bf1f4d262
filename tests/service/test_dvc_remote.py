"""A DVC remote on an S3-compatible store: Alice pushes the raw datasets and what her pipeline
made (trained models included), Bob pulls them into a second clone, and his Snakemake reuses
them: it reruns only what he did not pull, or what he changed, and what depends on it."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from servers import (  # noqa: F401 (the fixtures this module uses)
    built_tree_fixture,
    s3_store_fixture,
)

pytestmark = [pytest.mark.service, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
CODE = ("Snakefile", "dvc.yaml", "workflow", "src", "profiles", ".gitignore", ".dvcignore")
#: The folder Bob leaves out of his first pull: the CAMs (figures, rebuilt from the models).
NOT_PULLED = "results/cam"


class Shell:
    """Runs the tools in one checkout, with the S3 store's keys and no analytics."""

    def __init__(self, root: Path, env: dict[str, str]) -> None:
        self.root, self.env = root, env

    def __call__(self, *cmd: str) -> str:
        tool = str(BIN / cmd[0]) if (BIN / cmd[0]).exists() else cmd[0]
        proc = subprocess.run(
            [tool, *cmd[1:]], cwd=self.root, env=self.env, capture_output=True, text=True,
            check=False,
        )  # fmt: skip
        assert proc.returncode == 0, f"{' '.join(cmd)}:\n{proc.stdout[-3000:]}{proc.stderr[-5000:]}"
        return proc.stdout + proc.stderr

    def snakemake(self, *args: str) -> str:
        return self("snakemake", "--cores", "2", *args)

    def planned(self, *args: str) -> dict[str, int]:
        """The jobs ``snakemake -n`` would run, by rule ({} when nothing is to be done)."""
        out = self.snakemake("-n", *args)
        if "Nothing to be done" in out:
            return {}
        stats = out.split("Job stats:", 1)[1].split("\n\n", 1)[0]
        jobs = {rule: int(n) for rule, n in re.findall(r"^(\w+)\s+(\d+)$", stats, re.MULTILINE)}
        jobs.pop("total", None)
        return jobs


def digests(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.md5(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and not p.name.endswith(".cxr-output")
    }


def alice_project(built: Path, root: Path) -> list[str]:
    """Alice's checkout: the code, the tiny configuration reading every dataset from
    ``data/raw/<name>`` (the built miniatures stand in for the real downloads) and the results
    her pipeline made from them; returns the datasets' folders."""
    root.mkdir()
    for name in CODE:
        src = REPO / name
        if src.exists():
            (shutil.copytree if src.is_dir() else shutil.copy)(src, root / name)
    params = yaml.safe_load((built / "params.yaml").read_text())
    raw = []
    for name, dataset in params["datasets"].items():
        folder = f"data/raw/{name}"
        dataset.update(source="real", root=folder)
        shutil.move(built / "data" / "synthetic" / name, root / folder)
        raw.append(folder)
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    shutil.move(built / "results", root / "results")
    return raw


def test_dvc_push_then_pull_in_a_second_clone_reruns_only_what_it_must(
    built_tree, s3_store, tmp_path
):
    started = time.monotonic()
    _, copy = built_tree
    built = copy(tmp_path / "built", link=False)  # DVC moves files into its cache
    alice, bob = tmp_path / "alice", tmp_path / "bob"
    raw = alice_project(built, alice)
    remote = f"{s3_store.bucket('cxr-dvc')}/store"
    env = {
        "PATH": f"{BIN}:/usr/bin:/bin",
        "DVC_NO_ANALYTICS": "1",
        "MLFLOW_DISABLE_TELEMETRY": "true",
        **s3_store.env,
    }

    # Alice: git + DVC, the remote, the raw data and the results tracked, pushed.
    sh = Shell(alice, {**env, "HOME": str(alice)})
    sh("git", "init", "-q")
    sh("git", "config", "user.name", "Alice")
    sh("git", "config", "user.email", "alice@cxr.invalid")
    sh("dvc", "init", "-q")
    sh("dvc", "config", "core.analytics", "false")
    sh("dvc", "remote", "add", "-d", "team", remote)
    sh("dvc", "remote", "modify", "team", "endpointurl", s3_store.endpoint)
    products = sorted(
        f"results/{p.name}" for p in (alice / "results").iterdir()
        if p.name != "metrics" and not p.name.startswith(".")
    )  # fmt: skip
    sh("dvc", "add", "-q", *raw, *products)
    sh("dvc", "commit", "-f", "-q", "pipeline")  # dvc.lock, as her `dvc repro` would write it
    sh("git", "add", "-A")
    sh("git", "commit", "-q", "-m", "tiny study: code, params, data and results pointers")
    sh("dvc", "push", "-q")
    assert s3_store.keys("cxr-dvc", "store/files/md5/")
    pushed = time.monotonic()

    # Bob: a second clone; everything but the CAMs pulled.
    sh("git", "clone", "-q", str(alice), str(bob))
    bh = Shell(bob, {**env, "HOME": str(bob)})
    pointers = [f"{path}.dvc" for path in [*raw, *products] if path != NOT_PULLED]
    bh("dvc", "pull", "-q", *pointers)
    assert digests(bob / "results" / "models") == digests(alice / "results" / "models")
    assert digests(bob / "data" / "raw") == digests(alice / "data" / "raw")
    status = json.loads(bh("dvc", "status", "--json").splitlines()[-1])
    assert status.pop(f"{NOT_PULLED}.dvc") == [{"changed outs": {NOT_PULLED: "not in cache"}}]
    assert status == {"pipeline": ["always changed"]}  # the one stage: Snakemake decides
    # A pull writes files in no particular order: their times say nothing. --touch records
    # what was pulled as up to date (and its metadata), leaving what is missing to be made.
    bh.snakemake("--touch")
    partial = bh.planned()

    bh("dvc", "pull", "-q")  # the rest: every pointer is found (.gitignore's `?*`)
    assert digests(bob / NOT_PULLED) == digests(alice / NOT_PULLED)
    bh.snakemake("--touch")
    assert bh.planned() == {}
    # What Bob would have rerun is what making the CAMs again entails, no more.
    cams = len(list((alice / NOT_PULLED).glob("*/*/*/.snakemake_timestamp")))
    assert partial == bh.planned("--forcerun", "cam")
    assert partial["cam"] == cams
    assert not {"ingest", "preprocess", "split", "train", "evaluate"} & partial.keys()
    assert "in sync" in bh("dvc", "status", "--cloud")

    # Bob edits one training setting: that stage and what depends on it, nothing else.
    params = yaml.safe_load((bob / "params.yaml").read_text())
    params["training"]["studies"]["tiny_multiclass"]["stages"]["smallcnn"]["recipe"]["epochs"] = 2
    (bob / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    assert bh.planned() == {
        "train": 1, "evaluate": 1, "cam": 1, "train_summary": 1, "report": 1, "all": 1
    }  # fmt: skip
    print(f"wall time {time.monotonic() - started:.0f} s (push done at {pushed - started:.0f} s)")

"""`dvc exp run -S` on one training setting reruns only what depends on it: DVC hands the whole
workflow to Snakemake, whose params trigger picks out the edited stage and its downstream jobs."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from conftest import BIN, dvc_project

pytestmark = [pytest.mark.workflow, pytest.mark.slow]

STUDY = "tiny_multiclass"
SETTING = f"training.studies.{STUDY}.stages.smallcnn.recipe.epochs=2"
#: What the edit may rewrite: smallcnn's model, evaluation, CAMs and summary, and the report.
DOWNSTREAM = (
    *(f"results/{kind}/{STUDY}/smallcnn/" for kind in ("models", "evaluation", "cam")),
    f"results/metrics/train/{STUDY}/smallcnn/",
    "results/report.",
    "results/.report.",
)


def snapshot(repo: Path) -> dict[str, int]:
    """Modification time of every file under data/ and results/."""
    return {
        str(p.relative_to(repo)): p.stat().st_mtime_ns
        for folder in ("data", "results")
        for p in (repo / folder).rglob("*")
        if p.is_file()
    }


def test_dvc_exp_run_on_one_training_setting_reruns_only_that_stage(tmp_path: Path) -> None:
    # The datasets of tiny_multiclass only: it trains two stages, smallcnn and logreg.
    repo, run = dvc_project(tmp_path, ("imagefolder6", "covid_radiography"))
    dvc = str(BIN / "dvc")
    run("git", "add", "-A")
    run("git", "commit", "-q", "-m", "tiny project")  # dvc exp run needs a commit
    run(dvc, "repro")
    logs = set((repo / ".snakemake" / "log").glob("*.snakemake.log"))
    models = repo / "results" / "models" / STUDY
    before = snapshot(repo)
    old = json.loads((models / "smallcnn" / "split" / "run.json").read_text())
    assert old["recipe"]["epochs"] == 1

    run(dvc, "exp", "run", "-S", SETTING)

    (new_log,) = set((repo / ".snakemake" / "log").glob("*.snakemake.log")) - logs
    log = new_log.read_text()
    stats = log.split("Job stats:", 1)[1].split("\n\n", 1)[0]
    jobs = {rule: int(n) for rule, n in re.findall(r"^(\w+)\s+(\d+)$", stats, flags=re.MULTILINE)}
    assert jobs == {
        "train": 1, "evaluate": 1, "cam": 1, "train_summary": 1, "report": 1, "all": 1, "total": 6
    }  # fmt: skip
    assert set(re.findall(r"^Job \d+: (.+)$", log, flags=re.MULTILINE)) == {
        f"Training {STUDY}/smallcnn on split",
        f"Evaluating {STUDY}/smallcnn/split",
        f"Drawing the CAMs of {STUDY}/smallcnn/split",
        f"Summarising {STUDY}/smallcnn/split",
        "Writing the report of every trained study",
    }
    assert "Params have changed since last execution" in log

    after = snapshot(repo)
    changed = {path for path, mtime in after.items() if before.get(path) != mtime}
    assert not [path for path in changed if not path.startswith(DOWNSTREAM)]
    for path in (
        f"results/models/{STUDY}/smallcnn/split/model.pt",
        f"results/evaluation/{STUDY}/smallcnn/split/metrics.json",
        f"results/metrics/train/{STUDY}/smallcnn/split.json",
        "results/report.md",
    ):
        assert path in changed, path
    assert f"results/models/{STUDY}/logreg/split/model.pt" in after

    new = json.loads((models / "smallcnn" / "split" / "run.json").read_text())
    assert new["run_id"] != old["run_id"]
    assert (new["recipe"]["epochs"], new["epochs_run"]) == (2, 2)
    summary = repo / "results" / "metrics" / "train" / STUDY / "smallcnn" / "split.json"
    assert json.loads(summary.read_text())["run_id"] == new["run_id"]
    applied = yaml.safe_load((repo / "params.yaml").read_text())
    assert applied["training"]["studies"][STUDY]["stages"]["smallcnn"]["recipe"]["epochs"] == 2

    # The experiment leaves the workspace up to date with its own params.
    assert "Nothing to be done" in run(dvc, "repro")

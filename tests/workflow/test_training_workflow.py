"""Training through the workflow: studies x stages x split columns from params.yaml, transfer
between stages, one MLflow experiment per study, and reruns limited to what an edit touches."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pytest
import yaml
from conftest import REPO, snakemake, tiny_params

from cxr.training.recipe import Recipe

pytestmark = pytest.mark.workflow

#: The models of tests/workflow/params.yaml: (study, stage, column).
MODELS = [
    ("tiny_multilabel", "main", "split"),
    ("tiny_transfer", "model_a", "split"),
    *(("tiny_transfer", "model_c", f"fold_{i}") for i in range(3)),
]


def run_json(workdir: Path, study: str, stage: str, column: str) -> dict:
    """The run.json of one trained model."""
    return json.loads(
        (workdir / "results" / "models" / study / stage / column / "run.json").read_text()
    )


def planned(workdir: Path, params: dict, *args: str) -> tuple[dict[str, int], str]:
    """Jobs per rule of a dry run under ``params`` (restored afterwards), and its output."""
    (workdir / "params.yaml").write_text(yaml.safe_dump(params))
    try:
        out = snakemake(workdir, "-n", *args).stdout
    finally:
        (workdir / "params.yaml").write_text(yaml.safe_dump(tiny_params()))
    jobs = {rule: int(n) for rule, n in re.findall(r"^(\w+)\s+(\d+)$", out, flags=re.MULTILINE)}
    jobs.pop("total", None)
    return jobs, out


def test_every_study_stage_and_column_has_a_model_and_a_summary(built: Path) -> None:
    for study, stage, column in MODELS:
        folder = built / "results" / "models" / study / stage / column
        for name in ("model.pt", "model.json", "history.csv", "run.json"):
            assert (folder / name).is_file(), folder / name
        for side in ("val", "test"):
            assert (folder / "predictions" / f"{side}.parquet").is_file()
        run = run_json(built, study, stage, column)
        assert (run["recipe"]["study"], run["recipe"]["stage"]) == (study, stage)
        assert run["data"]["split_column"] == column
        assert run["recipe"]["input_size"] == 32  # the preset's size
        metrics = built / "results" / "metrics" / "train" / study / stage / f"{column}.json"
        summary = json.loads(metrics.read_text())
        assert (summary["study"], summary["stage"], summary["column"]) == (study, stage, column)
        assert summary["run_id"] == run["run_id"]
        assert summary["val_loss"] == pytest.approx(run["best_val_loss"])
    models = [p for p in built.glob("results/models/*/*/*") if not p.name.startswith(".")]
    assert len(models) == len(MODELS)


def test_model_c_starts_every_fold_from_model_a(built: Path) -> None:
    source = "results/models/tiny_transfer/model_a/split/model.pt"
    for column in ("fold_0", "fold_1", "fold_2"):
        run = run_json(built, "tiny_transfer", "model_c", column)
        assert run["data"]["init"] == source
        assert run["init"]["carried"] and not run["init"]["not_carried"]
        log = built / "logs" / "train" / "tiny_transfer" / "model_c" / f"{column}.log"
        carried = len(run["init"]["carried"])
        assert f"init: carried {carried} tensor(s) over, not 0" in log.read_text()
    assert run_json(built, "tiny_transfer", "model_a", "split")["init"] is None


def test_mlflow_holds_one_experiment_per_study_and_a_parent_per_fold_stage(built: Path) -> None:
    os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
    from mlflow import MlflowClient

    client = MlflowClient(f"sqlite:///{built / 'mlflow.db'}")
    experiments = {e.name: e.experiment_id for e in client.search_experiments()}
    assert {"tiny_multilabel", "tiny_transfer"} <= set(experiments)
    runs = client.search_runs(list(experiments.values()))
    assert all(run.info.status == "FINISHED" for run in runs)
    role = {run.info.run_id: run.data.tags.get("cxr.role") for run in runs}
    parents = [run for run in runs if role[run.info.run_id] == "parent"]
    assert [(p.data.tags["cxr.study"], p.data.tags["cxr.stage"]) for p in parents] == [
        ("tiny_transfer", "model_c")
    ]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parents[0].info.run_id]
    assert sorted(r.data.tags["cxr.fold"] for r in children) == ["0", "1", "2"]
    stage_runs = sorted(
        (r.data.tags["cxr.study"], r.data.tags["cxr.stage"])
        for r in runs
        if role[r.info.run_id] == "stage"
    )
    assert stage_runs == [("tiny_multilabel", "main"), ("tiny_transfer", "model_a")]
    for study, stage, column in MODELS:
        run = run_json(built, study, stage, column)
        assert client.get_run(run["run_id"]).info.experiment_id == experiments[study]


def test_editing_a_stage_reruns_it_and_the_stages_started_from_it(built: Path) -> None:
    params = tiny_params()
    params["training"]["studies"]["tiny_transfer"]["stages"]["model_a"]["recipe"]["lr"] = 0.01
    jobs, out = planned(built, params)
    assert jobs == {"train": 4, "train_summary": 4, "all": 1}
    assert "Training tiny_multilabel" not in out

    params = tiny_params()
    params["training"]["studies"]["tiny_transfer"]["stages"]["model_c"]["recipe"]["lr"] = 0.01
    jobs, out = planned(built, params)
    assert jobs == {"train": 3, "train_summary": 3, "all": 1}
    assert "Training tiny_transfer/model_a" not in out


def test_paper_scale_merges_each_stage_paper_block(built: Path) -> None:
    jobs, out = planned(built, tiny_params(), "--config", "scale=paper")
    assert jobs == {"train": 4, "train_summary": 4, "all": 1}  # model_a's epochs, then model_c
    command = next(line for line in out.splitlines() if "--split-column split" in line)
    assert '"epochs": 2' in command and '"lr"' not in command


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        ({"init_from": "model_c"}, "init_from 'model_c' is not an earlier stage of tiny_transfer"),
        ({"folds": [0, 5]}, "fold(s) [5] not in cv3"),
        ({"split": "random"}, "jsrt has no split scheme 'random'"),
        ({"recipe": {"architecture": "densenet"}}, "densenet"),
    ],
)
def test_a_bad_stage_fails_at_parse_time_naming_it(workdir: Path, edit: dict, message: str) -> None:
    params = tiny_params()
    stage = params["training"]["studies"]["tiny_transfer"]["stages"]["model_c"]
    stage.update(edit)
    (workdir / "params.yaml").write_text(yaml.safe_dump(params))
    proc = snakemake(workdir, "-n", check=False)
    assert proc.returncode != 0
    assert message in proc.stdout + proc.stderr


@pytest.mark.parametrize(("scale", "models"), [("demo", 5), ("paper", 12)])
def test_the_default_studies_give_valid_recipes_at_both_scales(
    workdir: Path, scale: str, models: int
) -> None:
    shutil.copy(REPO / "params.yaml", workdir / "params.yaml")
    out = snakemake(workdir, "-n", "--config", f"scale={scale}").stdout
    recipes = [json.loads(text) for text in re.findall(r"--recipe-json '(\{.*?\})'", out)]
    assert len(recipes) == models
    for recipe in recipes:
        Recipe.from_dict(recipe)  # what `cxr train` checks first
    sizes = {r["input_size"] for r in recipes}
    assert sizes == ({64} if scale == "demo" else {224, 400})

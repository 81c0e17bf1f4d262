"""Training through the workflow: studies x stages x split columns from params.yaml, transfer
between stages, one MLflow experiment per study, and reruns limited to what an edit touches."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import BIN, REPO, snakemake, tiny_params
from PIL import Image

from cxr.training.recipe import Recipe


def cxr(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "cxr"), *args], capture_output=True, text=True, check=False)


pytestmark = pytest.mark.workflow

#: The models of tests/workflow/params.yaml: (study, stage, column).
MODELS = [
    ("tiny_multilabel", "main", "split"),
    ("tiny_transfer", "model_a", "split"),
    *(("tiny_transfer", "model_b", f"fold_{i}") for i in range(3)),
    *(("tiny_transfer", "model_c", f"fold_{i}") for i in range(3)),
    ("tiny_multiclass", "smallcnn", "split"),
    ("tiny_multiclass", "logreg", "split"),
    *(("tiny_cascade", f"module_{m}", "split") for m in ("i", "ii", "iii")),
]
#: Logistic regression has no feature map: no CAM.
CAM_MODELS = [model for model in MODELS if model[1] != "logreg"]


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


def downstream_of(models: int) -> dict[str, int]:
    """The jobs that retraining ``models`` of tiny_transfer (model_c's folds among them) plans:
    model_c's fold summary, its pooled evaluation and its comparisons with model_b (one per
    fold) among them."""
    each = {"train": models, "evaluate": models, "cam": models, "train_summary": models}
    folds = {"evaluate_folds": 1, "evaluate_pooled": 1, "cam_compare": 3}
    return each | folds | {"report": 1, "all": 1}


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
    assert sorted((p.data.tags["cxr.study"], p.data.tags["cxr.stage"]) for p in parents) == [
        ("tiny_transfer", "model_b"),
        ("tiny_transfer", "model_c"),
    ]
    for parent in parents:
        children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
        assert sorted(r.data.tags["cxr.fold"] for r in children) == ["0", "1", "2"]
    stage_runs = sorted(
        (r.data.tags["cxr.study"], r.data.tags["cxr.stage"])
        for r in runs
        if role[r.info.run_id] == "stage"
    )
    assert stage_runs == [
        ("tiny_cascade", "module_i"),
        ("tiny_cascade", "module_ii"),
        ("tiny_cascade", "module_iii"),
        ("tiny_multiclass", "logreg"),
        ("tiny_multiclass", "smallcnn"),
        ("tiny_multilabel", "main"),
        ("tiny_transfer", "model_a"),
    ]
    for study, stage, column in MODELS:
        run = run_json(built, study, stage, column)
        assert client.get_run(run["run_id"]).info.experiment_id == experiments[study]


def test_editing_a_stage_reruns_it_and_the_stages_started_from_it(built: Path) -> None:
    params = tiny_params()
    params["training"]["studies"]["tiny_transfer"]["stages"]["model_a"]["recipe"]["lr"] = 0.01
    jobs, out = planned(built, params)
    assert jobs == downstream_of(4)
    assert "Training tiny_multilabel" not in out
    assert "Training tiny_multiclass" not in out

    params = tiny_params()
    params["training"]["studies"]["tiny_transfer"]["stages"]["model_c"]["recipe"]["lr"] = 0.01
    jobs, out = planned(built, params)
    assert jobs == downstream_of(3)
    assert "Training tiny_transfer/model_a" not in out


def test_paper_scale_merges_each_stage_paper_block(built: Path) -> None:
    jobs, out = planned(built, tiny_params(), "--config", "scale=paper")
    assert jobs == downstream_of(4)  # model_a's epochs, then model_c
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


@pytest.mark.parametrize(("scale", "models"), [("demo", 25), ("paper", 37)])
def test_the_default_studies_give_valid_recipes_at_both_scales(
    workdir: Path, scale: str, models: int
) -> None:
    """demo: 22 models (VGG19_bn and seed 004's two ResNet-50 trials are trained at paper scale
    only) and, no ImageNet file being cached here, 3 pretraining stand-ins."""
    shutil.copy(REPO / "params.yaml", workdir / "params.yaml")
    out = snakemake(workdir, "-n", "--config", f"scale={scale}").stdout
    recipes = [json.loads(text) for text in re.findall(r"--recipe-json '(\{.*?\})'", out)]
    assert len(recipes) == models
    for recipe in recipes:
        Recipe.from_dict(recipe)  # what `cxr train` checks first
    sizes = {r["input_size"] for r in recipes}
    assert sizes == ({64} if scale == "demo" else {64, 224, 400})  # seed 003 is 64 px


def test_every_model_is_evaluated_and_its_summary_holds_the_test_headline(built: Path) -> None:
    for study, stage, column in MODELS:
        folder = built / "results" / "evaluation" / study / stage / column
        metrics = json.loads((folder / "metrics.json").read_text())
        outputs = metrics["outputs"]
        assert set(metrics["auroc"]) == set(outputs) == set(metrics["auroc_ci"])
        for finding, value in metrics["auroc"].items():
            interval = metrics["auroc_ci"][finding]
            assert (value is None) == (interval is None)  # one class only: undefined, no crash
            if value is not None:
                assert interval[0] <= value <= interval[1]
        images = len(pd.read_parquet(built / "results" / "models" / study / stage / column /
                                     "predictions" / "test.parquet"))  # fmt: skip
        assert metrics["alignment"]["images_evaluated"] == images
        assert metrics["alignment"]["labels_missing_from_predictions"]["count"] == 0
        for name in ("roc.png", "pr.png", "reliability.png", "confusion.png", "metrics.md",
                     "roc.csv", "pr.csv"):  # fmt: skip
            assert (folder / name).stat().st_size > 0, folder / name
        summary = json.loads(
            (built / "results" / "metrics" / "train" / study / stage / f"{column}.json").read_text()
        )
        assert summary.get("test_auroc_macro") == metrics["auroc_macro"]
    binary = json.loads(
        (built / "results/evaluation/tiny_transfer/model_a/split/metrics.json").read_text()
    )
    assert binary["threshold"]["method"] == "youden"  # chosen on the validation predictions


def test_a_fold_stage_gets_mean_and_std_over_its_folds(built: Path) -> None:
    folds = json.loads(
        (built / "results/evaluation/tiny_transfer/model_c/folds/folds.json").read_text()
    )
    per_fold = [
        json.loads(
            (built / f"results/evaluation/tiny_transfer/model_c/fold_{i}/metrics.json").read_text()
        )["accuracy_overall"]
        for i in range(3)
    ]
    accuracy = folds["metrics"]["accuracy_overall"]
    assert folds["folds"] == accuracy["n"] == 3
    assert accuracy["values"] == per_fold
    assert accuracy["mean"] == pytest.approx(np.mean(per_fold))
    assert accuracy["std"] == pytest.approx(np.std(per_fold, ddof=1))


def test_a_fold_stage_is_also_evaluated_pooled(built: Path) -> None:
    """Every image of the k-fold split tested once, by its fold's model: one AUROC over all."""
    from sklearn.metrics import roc_auc_score

    models = built / "results/models/tiny_transfer/model_c"
    sides = [pd.read_parquet(models / f"fold_{i}/predictions/test.parquet") for i in range(3)]
    tested = pd.concat(sides)
    folder = built / "results/evaluation/tiny_transfer/model_c/pooled"
    pooled = json.loads((folder / "pooled.json").read_text())
    assert [fold["images"] for fold in pooled["folds"]] == [len(side) for side in sides]
    assert pooled["images"] == len(tested) == tested["image_id"].nunique()
    metrics = json.loads((folder / "metrics.json").read_text())
    expected = roc_auc_score(tested["finding_Nodule"], tested["prob_Nodule"])
    assert metrics["auroc_macro"] == pytest.approx(expected)
    headline = pd.read_csv(folder / "headline.csv").set_index("metric")
    assert json.loads(headline.loc["auroc_macro", "ci"]) == metrics["auroc_macro_ci"]


def test_cam_rule_draws_each_model_and_scores_the_boxes(built: Path) -> None:
    for study, stage, column in CAM_MODELS:
        folder = built / "results" / "cam" / study / stage / column
        summary = json.loads((folder / "cam.json").read_text())
        assert summary["method"] == "gradcam"  # auto: the small CNN has no pooled linear head
        with Image.open(folder / "cam_grid.png") as grid:
            assert grid.width > 200 and grid.height > 200
        assert (folder / "localisation.json").is_file()
    nih = json.loads((built / "results/cam/tiny_multilabel/main/split/cam.json").read_text())
    assert nih["boxes_scored"] > 0
    assert not (built / "results/cam/tiny_multiclass/logreg").exists()


def test_cam_compare_rule_draws_model_b_beside_model_c_on_each_fold(built: Path) -> None:
    folder = built / "results" / "cam_compare" / "tiny_transfer" / "model_b_vs_model_c"
    assert sorted(p.name for p in folder.glob("*.png")) == [f"fold_{i}.png" for i in range(3)]
    for i in range(3):
        with Image.open(folder / f"fold_{i}.png") as figure:  # grid(): 2.9 x 3.0 in at 110 dpi
            assert figure.size == (round(3 * 2.9 * 110), round(2 * 3.0 * 110))  # 2 x 3 panels
        log = built / "logs" / "cam_compare" / "tiny_transfer" / "model_b_vs_model_c"
        assert (log / f"fold_{i}.benchmark.tsv").is_file()
    report = (built / "results" / "report.md").read_text()
    assert "### CAMs compared: model_b vs model_c" in report
    assert "(cam_compare/tiny_transfer/model_b_vs_model_c/fold_2.png)" in report


def test_evaluate_scores_an_external_nih_style_csv_like_the_pipeline_predictions(
    built: Path, tmp_path: Path
) -> None:
    model = built / "results/models/tiny_multilabel/main/split"
    ours = json.loads(
        (built / "results/evaluation/tiny_multilabel/main/split/metrics.json").read_text()
    )
    table = pd.read_parquet(model / "predictions" / "test.parquet")
    probs = {c.removeprefix("prob_"): table[c] for c in table if c.startswith("prob_")}
    external = pd.DataFrame({"Image Index": table["image_id"], **probs}).iloc[1:]  # one left out
    csv = tmp_path / "other_model.csv"
    external.to_csv(csv, index=False)
    labels = built / "results/preprocessed/nih/tiny_eq/index.parquet"
    args = ("evaluate", "--predictions", str(csv), "--labels", str(labels),
            "--split", str(built / "results/splits/nih/official.parquet"),
            "--resamples", "50", "--out", str(tmp_path / "eval"))  # fmt: skip
    refused = cxr(*args)
    assert refused.returncode == 1 and "--allow-partial" in refused.stderr, refused.stderr
    assert not (tmp_path / "eval").exists()
    proc = cxr(*args, "--allow-partial")
    assert proc.returncode == 0, proc.stderr
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    missing = metrics["alignment"]["labels_missing_from_predictions"]
    assert missing["count"] == 1 and missing["first"] == [table["image_id"].iloc[0]]
    assert set(metrics["auroc"]) == set(ours["auroc"])

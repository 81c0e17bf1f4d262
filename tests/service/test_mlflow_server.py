"""A tiny study tracked on a shared MLflow server (PostgreSQL, artifacts in S3) by Snakemake
running two jobs at once: every run, metric history, logged model and figure lands in the
study's experiment, and the registry's versions load in ``cxr predict`` by ``models:/`` URI."""

from __future__ import annotations

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
    mlflow_server_fixture,
    postgres_fixture,
    s3_store_fixture,
)

from cxr import tracking
from cxr.layout import Layout

pytestmark = [pytest.mark.service, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
#: The tiny cascade: three stage runs (no folds), each a registered model.
STUDY = "tiny_cascade"
STAGES = ("module_i", "module_ii", "module_iii")
EPOCHS = 2
#: Logged at every epoch (step = epoch).
EPOCH_METRICS = ("train_loss", "val_loss", "lr")
LAYOUT = Layout()
#: What every training run logs beside its model, and the figures its evaluation adds.
RUN_FILES = {"history.csv", "model.json", "run.json"}
FIGURES = {"evaluation/roc.png", "evaluation/confusion.png"}


def snakemake(work: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    cmd = [str(BIN / "snakemake"), "--snakefile", str(REPO / "Snakefile"),
           "--directory", str(work), "--cores", "2", "--jobs", "2", *args]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if proc.returncode != 0:
        logs = "\n".join(p.read_text()[-3000:] for p in sorted(work.glob("logs/train/**/*.log")))
        pytest.fail(f"snakemake {' '.join(args)} failed:\n{proc.stderr[-5000:]}\n{logs}")
    return proc


def artifact_paths(client, run_id: str, path: str | None = None) -> set[str]:
    """Every artifact file of a run, listed through the server."""
    found = set()
    for item in client.list_artifacts(run_id, path):
        found |= artifact_paths(client, run_id, item.path) if item.is_dir else {item.path}
    return found


def test_a_tiny_study_on_a_shared_server(
    built_tree, mlflow_server, s3_store, tmp_path, monkeypatch
):
    """The tiny cascade's three modules trained and evaluated by ``snakemake --jobs 2`` with
    ``MLFLOW_TRACKING_URI`` set; the data steps are the built tree's (up to date)."""
    started = time.monotonic()
    _, copy = built_tree
    work = copy(tmp_path / "w")
    for kind in ("models", "evaluation"):  # the study is trained and evaluated again, here
        shutil.rmtree(work / "results" / kind / STUDY)
    params = yaml.safe_load((work / "params.yaml").read_text())
    for stage in STAGES:  # a history of two points per metric
        params["training"]["studies"][STUDY]["stages"][stage]["recipe"]["epochs"] = EPOCHS
    (work / "params.yaml").unlink()  # a link to the built tree's
    (work / "params.yaml").write_text(yaml.safe_dump(params))
    # No S3 keys in the jobs' environment: they reach the artifacts through the server.
    env = {
        "PATH": f"{BIN}:/usr/bin:/bin",
        "HOME": str(work),
        "DVC_NO_ANALYTICS": "1",
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "MLFLOW_TRACKING_URI": mlflow_server.uri,
    }
    targets = [LAYOUT.evaluation(STUDY, stage, "split") for stage in STAGES]
    proc = snakemake(work, env, *targets)
    out = proc.stdout + proc.stderr
    stats = out.split("Job stats:", 1)[1].split("\n\n", 1)[0]
    jobs = dict(re.findall(r"^(\w+)\s+(\d+)$", stats, re.MULTILINE))
    assert jobs == {"train": "3", "evaluate": "3", "total": "6"}, out  # nothing upstream
    events = re.findall(r"^(Job \d+: Training|Finished jobid)", out, re.MULTILINE)
    assert events[1].startswith("Job"), events  # two trainings ran at once
    assert not (work / "mlflow.db").exists()
    assert not (work / "mlruns").exists()

    from mlflow import MlflowClient

    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server.uri)
    client = MlflowClient(mlflow_server.uri, registry_uri=mlflow_server.uri)
    experiment = client.get_experiment_by_name(STUDY)
    assert experiment is not None
    assert experiment.artifact_location.startswith("mlflow-artifacts:")  # proxied to S3
    default = client.get_experiment_by_name("Default")
    assert not client.search_runs([default.experiment_id])  # none filed under Default
    runs = client.search_runs([experiment.experiment_id])
    by_stage = {run.data.tags["cxr.stage"]: run for run in runs}
    assert sorted(by_stage) == sorted(STAGES)
    assert len(runs) == len(STAGES)  # one run per job: no duplicate, no parent
    for stage, run in by_stage.items():
        run_id = run.info.run_id
        assert run.info.status == "FINISHED", stage
        assert run.data.tags["cxr.role"] == "stage"
        local = json.loads((work / LAYOUT.model(STUDY, stage, "split") / "run.json").read_text())
        assert local["run_id"] == run_id
        assert run.data.params["epochs"] == str(EPOCHS)
        for key in EPOCH_METRICS:
            steps = [m.step for m in client.get_metric_history(run_id, key)]
            assert sorted(steps) == list(range(EPOCHS)), (stage, key, steps)
        assert any(k.startswith("test/") for k in run.data.metrics), sorted(run.data.metrics)
        files = artifact_paths(client, run_id)
        assert files >= RUN_FILES | FIGURES, (stage, sorted(files))
        query = f"source_run_id = '{run_id}'"
        (logged,) = client.search_logged_models([experiment.experiment_id], query)
        (version,) = client.search_model_versions(f"name = 'cxr-{STUDY}-{stage}'")
        assert (version.version, version.run_id) == ("1", run_id)
        assert version.source == f"models:/{logged.model_id}"  # (REST answers no model_id)

    # The artifacts are in the bucket, none on the local disk.
    keys = s3_store.keys(mlflow_server.bucket)
    for stage, run in by_stage.items():
        mine = [k for k in keys if f"/{run.info.run_id}/" in k]
        assert any(k.endswith("/evaluation/roc.png") for k in mine), stage
    assert sum(k.endswith("/data/cxr_model/model.pt") for k in keys) == len(STAGES)

    # Training Module III again makes version 2 of its registered model.
    model = LAYOUT.model(STUDY, STAGES[2], "split")
    snakemake(work, env, "--force", model)  # that one job
    again = json.loads((work / model / "run.json").read_text())["run_id"]
    versions = client.search_model_versions(f"name = 'cxr-{STUDY}-{STAGES[2]}'")
    assert sorted((v.version, v.run_id) for v in versions) == [
        ("1", by_stage[STAGES[2]].info.run_id),
        ("2", again),
    ]
    assert client.get_run(again).info.experiment_id == experiment.experiment_id

    # The registry serves the three modules to cxr predict, by models:/ URI.
    image = next((work / "data" / "synthetic" / "nih" / "images").glob("*.png"))
    uris = [f"models:/cxr-{STUDY}-{stage}/1" for stage in STAGES[:2]]
    uris.append(f"models:/cxr-{STUDY}-{STAGES[2]}/latest")
    predicted = tmp_path / "predicted"
    cmd = [str(BIN / "cxr"), "predict", str(image), "--model-uri", *uris, "--out", str(predicted)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=tmp_path, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    record = json.loads((predicted / f"{image.name}.json").read_text())
    assert record["status"] == "ok", record
    assert tracking.download_model(uris[2], tmp_path / "latest").version == "2"
    print(f"wall time {time.monotonic() - started:.0f} s (server ready before)")

"""MLflow tracking: one parent per stage with a child per fold, also when jobs start together."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import numpy as np
import pytest
import torch
from mlflow import MlflowClient
from mlflow.entities import Run, ViewType

from cxr import tracking
from cxr.tracking import CUT, MAX_PARAM_LENGTH, flatten_params, prepare_store, training_run

SRC = Path(__file__).resolve().parents[2] / "src" / "cxr"


@pytest.fixture(scope="session")
def empty_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty store, made once: creating the schema takes seconds."""
    db = tmp_path_factory.mktemp("template") / "mlflow.db"
    MlflowClient(f"sqlite:///{db}")
    return db


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """tmp_path as the working directory, with no store yet and no tracking server set."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return tmp_path


@pytest.fixture
def store(workdir: Path, empty_db: Path) -> MlflowClient:
    """A client of a fresh local store, ./mlflow.db in tmp_path (its registry too, not
    mlflow's global one, which an earlier test may have pointed elsewhere)."""
    shutil.copyfile(empty_db, workdir / "mlflow.db")
    return MlflowClient(tracking.tracking_uri(), registry_uri=tracking.tracking_uri())


def runs_of(client: MlflowClient, study: str) -> list[Run]:
    experiment = client.get_experiment_by_name(study)
    return client.search_runs([experiment.experiment_id])


def by_role(runs: list[Run], role: str) -> list[Run]:
    return [run for run in runs if run.data.tags["cxr.role"] == role]


def assert_one_parent(runs: list[Run], folds: list[str], status: str = "FINISHED") -> Run:
    """Exactly one parent, holding one child per fold, all ending with ``status``."""
    (parent,) = by_role(runs, "parent")
    children = by_role(runs, "fold")
    assert sorted(run.data.tags["cxr.fold"] for run in children) == folds
    assert {run.data.tags["mlflow.parentRunId"] for run in children} == {parent.info.run_id}
    assert {run.info.status for run in [*children, parent]} == {status}
    return parent


# --- without a store ------------------------------------------------------------------------


def test_tracking_uri_is_local_sqlite_unless_set(workdir, monkeypatch):
    assert tracking.tracking_uri() == f"sqlite:///{workdir}/mlflow.db"
    assert tracking._lock_file(tracking.tracking_uri()) == workdir / ".mlflow.db.cxr-lock"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000")
    assert tracking.tracking_uri() == "http://127.0.0.1:5000"
    assert tracking._lock_file("http://127.0.0.1:5000") is None


def test_params_are_flat_strings_within_mlflow_limits():
    long = "x" * (MAX_PARAM_LENGTH + 1)
    flat = flatten_params({"train": {"lr": 0.01, "aug": {"flip": True}}, "findings": ["a", "b"]})
    assert flat == {"train.lr": "0.01", "train.aug.flip": "true", "findings": '["a", "b"]'}
    assert flatten_params({"empty": {}, "none": None}) == {"empty": "{}", "none": "null"}
    cut = flatten_params({"paths": long})["paths"]
    assert len(cut) == MAX_PARAM_LENGTH
    assert cut.endswith(CUT)


def test_git_commit(tmp_path):
    assert tracking.git_commit(tmp_path) is None
    assert re.fullmatch(r"[0-9a-f]{40}", tracking.git_commit(SRC) or "")


def test_only_tracking_imports_mlflow():
    pattern = re.compile(r"^\s*(import|from)\s+mlflow\b", re.MULTILINE)
    importers = [p.name for p in SRC.rglob("*.py") if pattern.search(p.read_text())]
    assert importers == ["tracking.py"]


def test_import_is_lazy():
    code = (
        "import sys, cxr.tracking as t; t.tracking_uri(); t.flatten_params({'a': 1}); "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'mlflow', 'torch', 'numpy'}))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_bad_names_are_refused_before_touching_the_store(workdir):
    with pytest.raises(ValueError, match='study "nih\'"'), training_run("nih'", "t", "0", {}, {}):
        pass
    assert not (workdir / "mlflow.db").exists()


# --- one process ----------------------------------------------------------------------------


def test_a_stage_with_three_folds(store):
    ids = prepare_store(["nih"])
    assert prepare_store(["nih"]) == ids  # idempotent
    # the UI opens the study on its training runs, not on the GenAI overview
    assert (
        store.get_experiment(ids["nih"]).tags["mlflow.experimentKind"] == "custom_model_development"
    )
    model = torch.nn.Linear(4, 2)
    params = {"train": {"lr": 0.01, "epochs": 3}, "findings": ["a", "b"]}
    for fold in ["0", "1", "2"]:
        with training_run("nih", "train", fold, params, {"dvc.raw.nih.md5": "abc"}) as run:
            for epoch in range(3):
                run.log_epoch(epoch, {"train/loss": 1 / (epoch + 1)})
            run.log_metrics({"best/val_auroc_macro": 0.9})
            run.log_dict({"lr": 0.01}, "config/resolved.json")
            if fold == "0":
                run.log_model(model, np.zeros((2, 4), np.float32))
                model_run = run.run_id

    runs = runs_of(store, "nih")
    assert {run.info.experiment_id for run in runs} == {ids["nih"]}
    assert_one_parent(runs, ["0", "1", "2"])
    child = store.get_run(model_run)
    assert child.data.params == {"train.lr": "0.01", "train.epochs": "3", "findings": '["a", "b"]'}
    assert child.data.tags["dvc.raw.nih.md5"] == "abc"
    assert Path(child.info.artifact_uri).is_relative_to(Path.cwd() / "mlruns")
    assert child.data.tags["mlflow.source.git.commit"] == tracking.git_commit()
    assert [m.step for m in store.get_metric_history(model_run, "train/loss")] == [0, 1, 2]
    assert child.data.metrics["best/val_auroc_macro"] == 0.9
    assert [a.path for a in store.list_artifacts(model_run, "config")] == ["config/resolved.json"]

    (logged,) = store.search_logged_models([ids["nih"]])
    assert logged.source_run_id == model_run
    info = mlflow.models.get_model_info(logged.model_uri)
    assert info.signature.inputs.to_dict() == [
        {"type": "tensor", "tensor-spec": {"dtype": "float32", "shape": (-1, 4)}}
    ]
    # weights only, nothing pickled: the state dict loads with weights_only=True
    folder = Path(mlflow.artifacts.download_artifacts(logged.model_uri)) / "data" / "cxr_model"
    state = torch.load(folder / "model.pt", weights_only=True)
    torch.testing.assert_close(state, model.state_dict())
    assert "loader_module: cxr.serving.pyfunc" in (folder.parents[1] / "MLmodel").read_text()
    (version,) = store.search_model_versions("name = 'cxr-nih-train-fold_0'")
    assert version.run_id == model_run


def test_a_failing_block_fails_its_run_and_the_parent(store):
    with pytest.raises(RuntimeError, match="boom"), training_run("nih", "train", "0", {}, {}):
        raise RuntimeError("boom")
    assert_one_parent(runs_of(store, "nih"), ["0"], status="FAILED")
    with training_run("nih", "train", "0", {}, {}):  # the fold rerun succeeds
        pass
    parent = store.get_run(by_role(runs_of(store, "nih"), "parent")[0].info.run_id)
    assert parent.info.status == "FINISHED"


def killed_job() -> None:
    """A job interrupted after one epoch; the interrupt carries its run id."""
    with training_run("nih", "train", "1", {"lr": 1}, {}) as run:
        run.log_epoch(0, {"train/loss": 1.0})
        raise KeyboardInterrupt(run.run_id)


def test_a_killed_job_resumes_its_run(store):
    with pytest.raises(KeyboardInterrupt) as interrupt:
        killed_job()
    run_id = interrupt.value.args[0]
    assert store.get_run(run_id).info.status == "KILLED"
    with training_run("nih", "train", "1", {"lr": 1}, {}, run_id=run_id) as resumed:
        resumed.log_epoch(1, {"train/loss": 0.5})
    assert resumed.run_id == run_id
    assert [m.step for m in store.get_metric_history(run_id, "train/loss")] == [0, 1]
    assert_one_parent(runs_of(store, "nih"), ["1"])
    with (
        pytest.raises(ValueError, match="cannot be resumed"),
        training_run("nih", "train", "2", {}, {}, run_id=run_id),
    ):
        pass


def test_a_stage_without_folds_gets_a_run_of_its_own(store):
    for lr in [0.1, 0.2]:  # a rerun with new params: a new run, no param conflict
        with training_run("nih", "evaluate", None, {"lr": lr}, {}):
            pass
    runs = runs_of(store, "nih")
    assert sorted(run.data.params["lr"] for run in by_role(runs, "stage")) == ["0.1", "0.2"]
    assert not by_role(runs, "parent")
    assert all("mlflow.parentRunId" not in run.data.tags for run in runs)
    assert {run.data.tags["cxr.fold"] for run in runs} == {"none"}


def test_a_long_param_is_cut_and_kept_whole_in_params_json(store):
    params = {"paths": ["p" * 100] * 100}
    with training_run("nih", "train", "0", params, {}) as run:
        pass
    assert store.get_run(run.run_id).data.params["paths"].endswith(CUT)
    assert store.list_artifacts(run.run_id)[0].path == "params.json"


def test_a_deleted_experiment_is_reported(store):
    store.delete_experiment(prepare_store(["nih"])["nih"])
    with pytest.raises(ValueError, match="experiment 'nih' is deleted"):
        prepare_store(["nih"])


def test_parents_created_in_a_race_converge_on_the_oldest(store, monkeypatch):
    """On a tracking server (no lock) a job may create a parent while another job does."""
    prepare_store(["nih"], stages=["train"])
    (rival,) = by_role(runs_of(store, "nih"), "parent")
    looks = []

    def late_look(*args: str) -> list[Run]:  # the rival is not visible at the first look
        looks.append(args)
        return [] if len(looks) == 1 else real_look(*args)

    real_look = tracking._parent_runs
    monkeypatch.setattr(tracking, "_parent_runs", late_look)
    with training_run("nih", "train", "0", {}, {}):
        pass
    assert assert_one_parent(runs_of(store, "nih"), ["0"]).info.run_id == rival.info.run_id
    (mine,) = store.search_runs([rival.info.experiment_id], run_view_type=ViewType.DELETED_ONLY)
    assert mine.data.tags["cxr.role"] == "parent"


# --- parallel jobs --------------------------------------------------------------------------


#: One training job of the race: mlflow imported, it says it is ready, waits for the start
#: line, then logs one fold (a separate interpreter, as Snakemake runs jobs).
JOB = """
import sys, time
from pathlib import Path
from cxr import tracking
study, fold, sync = sys.argv[1], sys.argv[2], Path(sys.argv[3])
tracking._mlflow()
(sync / f"ready-{study}-{fold}").touch()
while not (sync / "go").exists():
    time.sleep(0.002)
with tracking.training_run(study, "train", fold, {"lr": 0.1}, {"snakemake.rule": "train"}) as run:
    run.log_epoch(0, {"train/loss": 1.0})
    run.log_epoch(1, {"train/loss": 0.5})
"""


def start_together(sync: Path, jobs: list[tuple[str, str]]) -> list[subprocess.CompletedProcess]:
    """Run a JOB per (study, fold), started at the same moment; their outcomes."""
    sync.mkdir()
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", JOB, study, fold, str(sync)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for study, fold in jobs
    ]
    deadline = time.monotonic() + 300
    while len(list(sync.glob("ready-*"))) < len(jobs) and time.monotonic() < deadline:
        time.sleep(0.01)
    (sync / "go").touch()
    outcomes = [(proc, *proc.communicate(timeout=300)) for proc in procs]
    return [subprocess.CompletedProcess(p.args, p.returncode, out, err) for p, out, err in outcomes]


@pytest.mark.parametrize(
    "prepared",
    [pytest.param(True, marks=pytest.mark.slow, id="prepared"), pytest.param(False, id="lazy")],
)
def test_four_jobs_started_at_once_on_a_fresh_store(workdir, prepared):
    if prepared:
        prepare_store(["A", "B"])
    done = start_together(workdir / "sync", [("A", "0"), ("A", "1"), ("B", "0"), ("B", "1")])
    errors = "\n".join(job.stderr for job in done)
    assert [job.returncode for job in done] == [0] * 4, errors[-3000:]
    assert "database is locked" not in errors
    assert "Traceback" not in errors
    store = MlflowClient(tracking.tracking_uri())
    assert store.search_runs(["0"]) == []  # nothing under Default
    for study in ["A", "B"]:
        parent = assert_one_parent(runs_of(store, study), ["0", "1"])
        experiment = [parent.info.experiment_id]
        assert store.search_runs(experiment, run_view_type=ViewType.DELETED_ONLY) == []  # no race
    assert len(store.search_runs([e.experiment_id for e in store.search_experiments()])) == 6


@pytest.mark.slow
def test_densenet121_is_logged_and_loads(store):
    import torchvision

    model = torchvision.models.densenet121(weights=None)
    example = np.random.default_rng(0).random((2, 3, 224, 224), dtype=np.float32)
    with training_run("nih", "train", "0", {}, {}) as run:
        run.log_model(model, example)
    (logged,) = store.search_logged_models([store.get_run(run.run_id).info.experiment_id])
    folder = Path(mlflow.artifacts.download_artifacts(logged.model_uri)) / "data" / "cxr_model"
    loaded = torchvision.models.densenet121(weights=None)
    loaded.load_state_dict(torch.load(folder / "model.pt", weights_only=True))
    x = torch.from_numpy(example)
    torch.testing.assert_close(loaded.eval()(x), model.eval()(x))


def test_an_experiment_made_without_its_kind_gets_it(store):
    made = store.create_experiment("nih")  # by hand, or by an older cxr
    assert "mlflow.experimentKind" not in store.get_experiment(made).tags
    assert prepare_store(["nih"]) == {"nih": made}
    assert store.get_experiment(made).tags["mlflow.experimentKind"] == "custom_model_development"

"""MLflow tracking: the only module of cxr that imports mlflow (late: the import costs ~1.2 s).

Layout: one experiment per study; per (study, stage) one parent run, tagged ``cxr.study``,
``cxr.stage`` and ``cxr.role=parent``, holding one child run per fold. A job without a fold gets
a run of its own (``cxr.role=stage``), new at each call.

Parallel jobs never call ``set_experiment`` (it files runs under Default when raced): they pass
experiment ids. On the local SQLite store every write that creates something (the schema, an
experiment, a parent run) happens under an ``flock`` beside the database, so a fresh store and a
stage's parent are created exactly once even by jobs started at the same moment. A tracking
server has no such lock: there an experiment is created once by the server's unique name, and
jobs that raced to create a parent keep the oldest one and delete their own; the window that
remains is closed by creating the parents up front with ``prepare_store(studies, stages)``.
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib
import itertools
import json
import os
import re
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from types import ModuleType

    import numpy as np
    import torch
    from mlflow import MlflowClient
    from mlflow.entities import Run

#: The local store's URI prefix (an absolute path follows: ``sqlite:////abs/mlflow.db``).
SQLITE = "sqlite:///"
#: MLflow's limit on the length of a param value.
MAX_PARAM_LENGTH = 6000
#: The end of a param value cut to the limit; the full recipe is then logged as params.json.
CUT = "...[cut: full value in params.json]"
#: Pickle, not pt2: ~4x faster to log and ~60x faster to load here (DenseNet-121), and no
#: torch.export tracing that models with data-dependent control flow fail.
MODEL_FORMAT = "pickle"
#: What loading a pickled torchvision model needs (pinned to the installed versions).
MODEL_PACKAGES = ("torch", "torchvision", "cloudpickle")
PARENT_TAG = "mlflow.parentRunId"
_NAME = re.compile(r"[A-Za-z0-9][\w.\-]*")


def tracking_uri() -> str:
    """``$MLFLOW_TRACKING_URI`` if set, else the SQLite store ./mlflow.db, artifacts in ./mlruns."""
    return os.environ.get("MLFLOW_TRACKING_URI") or SQLITE + str(Path("mlflow.db").resolve())


def git_commit(path: Path | None = None) -> str | None:
    """The commit checked out at ``path`` (default: cxr's own code); None outside a repository."""
    cmd = ["git", "-C", str(path or Path(__file__).parent), "rev-parse", "--verify", "HEAD"]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    except FileNotFoundError:  # no git installed
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def flatten_params(params: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Nested params as dotted keys; values as strings (JSON unless str), cut to MLflow's limit."""
    flat: dict[str, str] = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            flat.update(flatten_params(value, f"{name}."))
        else:
            text = value if isinstance(value, str) else json.dumps(value, default=str)
            cut = len(text) > MAX_PARAM_LENGTH
            flat[name] = text[: MAX_PARAM_LENGTH - len(CUT)] + CUT if cut else text
    return flat


def _mlflow() -> ModuleType:
    """Import mlflow, with its telemetry off."""
    os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
    import mlflow

    return mlflow


def _lock_file(uri: str) -> Path | None:
    """The lock beside a local SQLite database; None for any other store."""
    if not uri.startswith(SQLITE):
        return None
    db = uri.removeprefix(SQLITE).split("?")[0]
    return None if db in ("", ":memory:") else Path(db).with_name(f".{Path(db).name}.cxr-lock")


@contextlib.contextmanager
def _store_lock(uri: str) -> Iterator[None]:
    """Hold the inter-process lock of a local SQLite store (no-op for a server)."""
    lock = _lock_file(uri)
    if lock is None:
        yield
        return
    lock.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock, os.O_CREAT | os.O_RDWR, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


@cache
def _client(uri: str) -> MlflowClient:
    """A client of ``uri``; opening the store first (which may create its schema) is locked."""
    mlflow = _mlflow()
    if _lock_file(uri):  # seconds to import: not under the lock
        importlib.import_module("mlflow.store.tracking.sqlalchemy_store")
    with _store_lock(uri):
        return mlflow.MlflowClient(uri)


def _check_name(what: str, name: str) -> None:
    if not _NAME.fullmatch(name):
        raise ValueError(f"{what} {name!r}: use letters, digits, '_', '-' and '.' only")


def _experiment_id(client: MlflowClient, study: str) -> str:
    """The id of the study's experiment, created if missing."""
    from mlflow.exceptions import MlflowException

    _check_name("study", study)
    experiment = client.get_experiment_by_name(study)
    if experiment is None:
        try:
            return client.create_experiment(study)
        except MlflowException:  # a job beside us on a server created it first
            experiment = client.get_experiment_by_name(study)
            if experiment is None:
                raise
    if experiment.lifecycle_stage != "active":
        raise ValueError(
            f"MLflow experiment {study!r} is deleted: restore it (mlflow experiments restore "
            f"--experiment-id {experiment.experiment_id}) or remove it for good (mlflow gc)"
        )
    return experiment.experiment_id


def _parent_runs(client: MlflowClient, experiment_id: str, study: str, stage: str) -> list[Run]:
    """The active parent runs of (study, stage), oldest first."""
    query = (
        f"tags.`cxr.study` = '{study}' AND tags.`cxr.stage` = '{stage}' "
        "AND tags.`cxr.role` = 'parent'"
    )
    runs = client.search_runs([experiment_id], query)
    return sorted(runs, key=lambda run: (run.info.start_time, run.info.run_id))


def _parent_id(client: MlflowClient, experiment_id: str, study: str, stage: str) -> str:
    """Find or create the parent run of (study, stage); of racing creators the oldest wins."""
    found = _parent_runs(client, experiment_id, study, stage)
    if found:
        return found[0].info.run_id
    tags = {"cxr.study": study, "cxr.stage": stage, "cxr.role": "parent"}
    mine = client.create_run(experiment_id, tags=tags, run_name=stage).info.run_id
    oldest = _parent_runs(client, experiment_id, study, stage)[0].info.run_id
    if oldest != mine:
        client.delete_run(mine)
    return oldest


def prepare_store(studies: Sequence[str], stages: Sequence[str] = ()) -> dict[str, str]:
    """Create the store and one experiment per study (and the parent run of each stage).

    Idempotent, and safe when several processes call it at once on the local store. Call it
    once before parallel jobs start; on a tracking server, also pass the stages. Returns
    ``{study: experiment_id}``. A bad name is refused before the store is touched.
    """
    for what, names in (("study", studies), ("stage", stages)):
        for name in names:
            _check_name(what, name)
    uri = tracking_uri()
    client = _client(uri)
    with _store_lock(uri):
        ids = {study: _experiment_id(client, study) for study in studies}
        for study, stage in itertools.product(studies, stages):
            _parent_id(client, ids[study], study, stage)
    return ids


def _new_run(
    client: MlflowClient, experiment_id: str, names: dict[str, str], tags: dict[str, str]
) -> Run:
    """A new child run of the stage's parent, or a stage run of its own without a fold."""
    if names["cxr.role"] == "stage":
        return client.create_run(experiment_id, tags={**tags, **names}, run_name=names["cxr.stage"])
    parent = _parent_id(client, experiment_id, names["cxr.study"], names["cxr.stage"])
    child_tags = {**tags, **names, PARENT_TAG: parent}
    return client.create_run(experiment_id, tags=child_tags, run_name=f"fold-{names['cxr.fold']}")


def _resumed(client: MlflowClient, run_id: str, experiment_id: str, names: dict[str, str]) -> Run:
    """The run to continue, checked to be the same study, stage and fold."""
    run = client.get_run(run_id)
    same = all(run.data.tags.get(key) == value for key, value in names.items())
    if run.info.experiment_id != experiment_id or not same:
        raise ValueError(
            f"MLflow run {run_id} is not a run of study {names['cxr.study']}, stage "
            f"{names['cxr.stage']}, fold {names['cxr.fold']}: it cannot be resumed here"
        )
    return run


def _settle_parent(client: MlflowClient, experiment_id: str, parent_id: str) -> None:
    """Give the parent its folds' state: running, else failed if a fold's latest run failed."""
    children = client.search_runs(
        [experiment_id], f"tags.`{PARENT_TAG}` = '{parent_id}'", order_by=["start_time ASC"]
    )
    latest = {run.data.tags.get("cxr.fold"): run.info.status for run in children}
    states = set(latest.values())
    if "RUNNING" in states:
        client.update_run(parent_id, "RUNNING")
    else:
        client.set_terminated(parent_id, "FINISHED" if states <= {"FINISHED"} else "FAILED")


def _log_params(client: MlflowClient, run_id: str, params: Mapping[str, Any]) -> None:
    """Log the flattened params; if a value was cut, the whole recipe goes to params.json."""
    from mlflow.entities import Param

    flat = flatten_params(params)
    client.log_batch(run_id, params=[Param(key, value) for key, value in flat.items()])
    if any(value.endswith(CUT) for value in flat.values()):
        client.log_text(run_id, json.dumps(params, indent=2, default=str), "params.json")


def _requirements() -> list[str]:
    """Pinned pip requirements of a logged model (inferring them costs seconds)."""
    pins = []
    for package in MODEL_PACKAGES:
        with contextlib.suppress(PackageNotFoundError):
            pins.append(f"{package}=={version(package)}")
    return pins


@dataclass(frozen=True)
class RunLog:
    """What a training job logs to its run."""

    run_id: str
    client: MlflowClient = field(repr=False)

    def log_epoch(self, epoch: int, metrics: Mapping[str, float]) -> None:
        """Log one epoch's metrics at step ``epoch``."""
        self._log(metrics, step=epoch)

    def log_metrics(self, metrics: Mapping[str, float]) -> None:
        """Log final or summary metrics."""
        self._log(metrics, step=0)

    def log_dict(self, data: dict, name: str) -> None:
        """Log ``data`` as the artifact ``name`` (JSON, or YAML for a .yaml name)."""
        self.client.log_dict(self.run_id, data, name)

    def log_artifact(self, path: Path, folder: str | None = None) -> None:
        """Log a file, or a folder's contents, under ``folder`` of the run's artifacts."""
        log = self.client.log_artifacts if Path(path).is_dir() else self.client.log_artifact
        log(self.run_id, str(path), folder)

    def log_model(self, model: torch.nn.Module, input_example: np.ndarray) -> None:
        """Log ``model`` as "model" (eval mode) with its signature and ``input_example``."""
        import numpy as np
        import torch
        from mlflow.models import infer_signature
        from mlflow.pytorch import log_model

        example = np.ascontiguousarray(input_example, dtype=np.float32)
        if example.ndim < 2 or example.shape[0] < 2:
            raise ValueError(f"input_example: need a batch of 2 or more, got {example.shape}")
        training = model.training
        model.eval()
        try:
            weight = next(model.parameters(), None)
            device = weight.device if weight is not None else "cpu"
            with torch.no_grad():
                output = model(torch.from_numpy(example).to(device)).cpu().numpy()
            log_model(
                model,
                name="model",
                signature=infer_signature(example, output),
                input_example=example,
                serialization_format=MODEL_FORMAT,
                pip_requirements=_requirements(),
            )
        finally:
            model.train(training)

    def _log(self, metrics: Mapping[str, float], step: int) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        batch = [Metric(key, float(value), now, step) for key, value in metrics.items()]
        self.client.log_batch(self.run_id, metrics=batch)


def _names(study: str, stage: str, fold: str | None) -> dict[str, str]:
    """The cxr tags that place a job's run (checked to be plain names)."""
    names = {
        "cxr.study": study,
        "cxr.stage": stage,
        "cxr.fold": "none" if fold is None else str(fold),
        "cxr.role": "stage" if fold is None else "fold",
    }
    for key in ("cxr.study", "cxr.stage", "cxr.fold"):
        _check_name(key.removeprefix("cxr."), names[key])
    return names


def _start(
    client: MlflowClient,
    uri: str,
    names: dict[str, str],
    tags: Mapping[str, str],
    run_id: str | None,
) -> tuple[str, Run]:
    """Create the job's run (or check the one to resume) and make it MLflow's active run."""
    commit = git_commit()
    all_tags = {"mlflow.source.git.commit": commit} if commit else {}
    all_tags |= {key: str(value) for key, value in tags.items()}
    with _store_lock(uri):
        experiment_id = _experiment_id(client, names["cxr.study"])
        if run_id:
            run = _resumed(client, run_id, experiment_id, names)
        else:
            run = _new_run(client, experiment_id, names, all_tags)
        _mlflow().start_run(run_id=run.info.run_id)  # active, for mlflow.pytorch.log_model
        if parent := run.data.tags.get(PARENT_TAG):
            _settle_parent(client, experiment_id, parent)
    return experiment_id, run


@contextlib.contextmanager
def training_run(
    study: str,
    stage: str,
    fold: str | None,
    params: Mapping[str, Any],
    tags: Mapping[str, str],
    run_id: str | None = None,
) -> Iterator[RunLog]:
    """Track one job: a child run of the stage's parent per fold, or a stage run (fold=None).

    ``run_id`` (kept by a job killed earlier) continues that run instead. The run ends FINISHED,
    FAILED if the block raises (the exception propagates), or KILLED on an interrupt.
    """
    names = _names(study, stage, fold)
    uri = tracking_uri()
    client = _client(uri)
    mlflow = _mlflow()
    mlflow.set_tracking_uri(uri)
    experiment_id, run = _start(client, uri, names, tags, run_id)
    status = "KILLED"
    try:
        _log_params(client, run.info.run_id, params)
        yield RunLog(run.info.run_id, client)
        status = "FINISHED"
    except Exception:
        status = "FAILED"
        raise
    finally:
        mlflow.end_run(status)
        if parent := run.data.tags.get(PARENT_TAG):
            with _store_lock(uri):
                _settle_parent(client, experiment_id, parent)


def log_to_run(
    run_id: str, metrics: Mapping[str, float], artifacts: Path | None = None, folder: str = ""
) -> None:
    """Add ``metrics`` (step 0) and the files of the folder ``artifacts`` (under ``folder``)
    to the existing run ``run_id``, e.g. a trained model's run, whatever its state."""
    from mlflow.exceptions import MlflowException

    client = _client(tracking_uri())
    try:
        client.get_run(run_id)
    except MlflowException as err:
        raise ValueError(f"MLflow run {run_id}: not found at {tracking_uri()}") from err
    RunLog(run_id, client).log_metrics(metrics)
    if artifacts is not None:
        client.log_artifacts(run_id, str(artifacts), folder or None)

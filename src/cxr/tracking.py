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
import glob
import importlib
import itertools
import json
import logging
import os
import re
import sqlite3
import ssl
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

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
#: A logged model is a pyfunc model whose loader (this module of cxr) rebuilds the network
#: from the recipe (model.json) and loads a weights-only state dict (model.pt): nothing is
#: unpickled, and no torch.export tracing. Its files lie under ``data/<MODEL_DATA>``.
MODEL_LOADER = "cxr.serving.pyfunc"
MODEL_DATA = "cxr_model"
#: What is copied into a logged model from the files its run logged beside it (the recipe,
#: the run record) and where the preset comes from.
MODEL_FILES = ("model.json", "run.json")
#: What loading a logged model needs (pinned to the installed versions).
MODEL_PACKAGES = ("torch", "torchvision")
#: The registered name of a run's model: ``cxr-<study>-<stage>``, ``-fold_<i>`` for a fold.
REGISTERED_PREFIX = "cxr-"
PARENT_TAG = "mlflow.parentRunId"
#: The tag naming a training run's output folder (its orphans are found by it).
OUT_TAG = "cxr.out"
#: The tag of a run left RUNNING by a killed job, naming the run that replaced it.
REPLACED_TAG = "cxr.replaced_by"
#: The experiment tag by which MLflow 3's UI opens a study on its training runs (not on the
#: GenAI overview).
KIND_TAG, KIND = "mlflow.experimentKind", "custom_model_development"
#: Tables every MLflow SQLite store has.
STORE_TABLES = frozenset({"alembic_version", "experiments", "runs", "tags", "params", "metrics"})
#: What to do about a local store that is not a complete MLflow store.
RECOVER = "move it away, or delete it if it holds no runs you need; cxr then makes a new one"
#: The suffix of a store being created beside its final name.
CREATING = ".creating"
#: How long a tracking server may take to answer its health check.
SERVER_TIMEOUT_S = 3.0
_NAME = re.compile(r"[A-Za-z0-9][\w.\-]*")
log = logging.getLogger(__name__)


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


def _sqlite_file(uri: str) -> Path | None:
    """The database file of a local SQLite store; None for any other store."""
    if not uri.startswith(SQLITE):
        return None
    db = uri.removeprefix(SQLITE).split("?")[0]
    return None if db in ("", ":memory:") else Path(db)


def _lock_file(uri: str) -> Path | None:
    """The lock beside a local SQLite database; None for any other store."""
    db = _sqlite_file(uri)
    return None if db is None else db.with_name(f".{db.name}.cxr-lock")


@contextlib.contextmanager
def _store_lock(uri: str) -> Iterator[None]:
    """Hold the inter-process lock of a local SQLite store (no-op for a server)."""
    lock = _lock_file(uri)
    if lock is None:
        yield
        return
    try:
        lock.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(lock, os.O_CREAT | os.O_RDWR, 0o644)
    except OSError as err:
        raise ValueError(
            f"{lock.parent}: cannot keep the MLflow store {uri} there ({err.strerror})"
        ) from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def check_store() -> None:
    """Open the tracking store now: an unreachable server or a broken local store fails here,
    in seconds and before any work, with one line naming it (a missing store is created)."""
    _client(tracking_uri())


@cache
def _client(uri: str) -> MlflowClient:
    """A client of ``uri``: a server is checked to answer, a local store created atomically
    (under its lock) or checked to be a complete MLflow store."""
    _check_server(uri)
    mlflow = _mlflow()
    from mlflow.exceptions import MlflowException
    from sqlalchemy.exc import SQLAlchemyError

    db = _sqlite_file(uri)
    if db:  # seconds to import: not under the lock
        importlib.import_module("mlflow.store.tracking.sqlalchemy_store")
    with _store_lock(uri):
        if db:
            _ensure_store(db)
        try:
            return mlflow.MlflowClient(uri, registry_uri=uri)  # not the global registry
        except (MlflowException, SQLAlchemyError) as err:
            text = str(err).strip()
            reason = text.splitlines()[0].split(". ")[0] if text else type(err).__name__
            raise ValueError(f"MLflow store {uri}: cannot open it ({reason})") from None


def _check_server(uri: str) -> None:
    """Fail at once when an http(s) tracking server does not answer (MLflow would retry for
    minutes). Any HTTP answer, even an error status, means it is there."""
    parts = urlsplit(uri)
    if parts.scheme not in ("http", "https"):
        return
    host = parts.hostname or ""
    where = f"{parts.scheme}://{host}{f':{parts.port}' if parts.port else ''}{parts.path}"
    try:
        with urllib.request.urlopen(f"{where.rstrip('/')}/health", timeout=SERVER_TIMEOUT_S):
            return
    except urllib.error.HTTPError:
        return
    except (OSError, ValueError) as err:  # URLError and timeouts are OSErrors
        reason = getattr(err, "reason", err)
        if isinstance(reason, ssl.SSLError):
            return  # it answered; its certificate is MLflow's business
    raise ValueError(
        f"MLflow tracking server {where} (MLFLOW_TRACKING_URI) is not reachable ({reason}); "
        "start it, or unset MLFLOW_TRACKING_URI to track in ./mlflow.db"
    )


def _ensure_store(db: Path) -> None:
    """Create the store ``db`` if it is missing (or an empty file); else check that it is a
    complete MLflow store, refusing with one line a foreign or half-made file."""
    if db.is_dir():
        raise ValueError(f"{db}: a folder, not an MLflow store: {RECOVER}")
    tables = _tables(db) if db.exists() else set()
    if not tables:
        _create_store(db)
        return
    unfinished = sorted(t for t in tables if t.startswith("_alembic_tmp_"))
    if unfinished:
        raise ValueError(
            f"{db}: a half-made MLflow store (an interrupted schema migration left table "
            f"{unfinished[0]}): {RECOVER}"
        )
    missing = sorted(STORE_TABLES - tables)
    if missing:
        raise ValueError(
            f"{db}: not an MLflow store (a SQLite database without MLflow's table(s) "
            f"{', '.join(missing)}): {RECOVER}"
        )


def _tables(db: Path) -> set[str]:
    """The tables of the SQLite file ``db``, read without writing to it."""
    try:
        with contextlib.closing(sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True)) as c:
            rows = c.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
    except sqlite3.OperationalError as err:  # busy, locked, unreadable: not a verdict on it
        raise ValueError(f"{db}: cannot read this MLflow store ({err})") from None
    except sqlite3.DatabaseError as err:
        raise ValueError(
            f"{db}: not an MLflow store (not a SQLite database: {err}): {RECOVER}"
        ) from None
    return {name for (name,) in rows}


def _create_store(db: Path) -> None:
    """Make the SQLite store ``db`` in one rename: its schema is built in a file beside it, so
    an interrupted creation leaves no store rather than a half-made one (call under the lock)."""
    from mlflow.store.tracking import DEFAULT_LOCAL_FILE_AND_ARTIFACT_PATH
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    db.parent.mkdir(parents=True, exist_ok=True)
    _remove(f".{glob.escape(db.name)}.*{CREATING}", db.parent)  # a killed creator's
    work = db.with_name(f".{db.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}{CREATING}")
    try:
        store = SqlAlchemyStore(SQLITE + str(work.resolve()), DEFAULT_LOCAL_FILE_AND_ARTIFACT_PATH)
        store.engine.dispose()
        os.replace(work, db)
    finally:
        _remove(glob.escape(work.name), db.parent)


def _remove(pattern: str, folder: Path) -> None:
    """Delete the files of ``folder`` matching ``pattern``, with their SQLite journals."""
    for path in folder.glob(f"{pattern}*"):
        path.unlink(missing_ok=True)


def check_name(what: str, name: str) -> None:
    """Refuse a study, stage or fold name that MLflow queries cannot hold as it is."""
    if not _NAME.fullmatch(name):
        raise ValueError(f"{what} {name!r}: use letters, digits, '_', '-' and '.' only")


def _experiment_id(client: MlflowClient, study: str) -> str:
    """The id of the study's experiment, created if missing."""
    from mlflow.exceptions import MlflowException

    check_name("study", study)
    experiment = client.get_experiment_by_name(study)
    if experiment is None:
        try:
            created = client.create_experiment(study, tags={KIND_TAG: KIND})
        except MlflowException:  # a job beside us on a server created it first
            experiment = client.get_experiment_by_name(study)
            if experiment is None:
                raise
        else:
            return created
    if experiment.lifecycle_stage != "active":
        raise ValueError(
            f"MLflow experiment {study!r} is deleted: restore it (mlflow experiments restore "
            f"--experiment-id {experiment.experiment_id}) or remove it for good (mlflow gc)"
        )
    if experiment.tags.get(KIND_TAG) != KIND:  # made by an older cxr, or by hand
        client.set_experiment_tag(experiment.experiment_id, KIND_TAG, KIND)
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
            check_name(what, name)
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


def _resumed(
    client: MlflowClient, run_id: str, experiment_id: str, names: dict[str, str]
) -> Run | None:
    """The run to continue, checked to be the same study, stage and fold; None (a new run) if
    the store no longer holds it (a store deleted or replaced since the job was killed)."""
    from mlflow.exceptions import MlflowException

    try:
        run = client.get_run(run_id)
    except MlflowException:
        log.warning("MLflow run %s to resume is not in the store: logging to a new run", run_id)
        return None
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


@contextlib.contextmanager
def _no_requirement_check() -> Iterator[None]:
    """Skip MLflow's check that the model's pins match the installed packages: our pins are
    read from the installed packages, and the check maps every installed file to its package
    (3-6 s per logged model here)."""
    from mlflow.utils import environment

    check = getattr(environment, "warn_dependency_requirement_mismatches", None)
    if check is None:  # another MLflow: nothing to skip
        yield
        return
    environment.warn_dependency_requirement_mismatches = lambda *_: None
    try:
        yield
    finally:
        environment.warn_dependency_requirement_mismatches = check


@contextlib.contextmanager
def _quiet_model_warnings() -> Iterator[None]:
    """Silence MLflow's advice to log an input example (left out on purpose: see log_model)."""
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*input example was not provided.*")
        yield


def _trained_preset(run_json: Path) -> dict | None:
    """The preset of the tensors a run trained on (their stats.json), where run.json names a
    folder that is still there; None otherwise."""
    try:
        run = json.loads(run_json.read_text())
        folder = Path(run["data"]["folder"])
        preset = json.loads((folder / "stats.json").read_text()).get("preset")
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return preset if isinstance(preset, dict) else None


def registered_name(tags: Mapping[str, str]) -> str:
    """The registered model of a run tagged with its study, stage and fold:
    ``cxr-<study>-<stage>``, or ``cxr-<study>-<stage>-fold_<i>`` for a fold's model."""
    study, stage = tags.get("cxr.study"), tags.get("cxr.stage")
    if not study or not stage:
        raise ValueError("a run without cxr.study and cxr.stage tags has no registered name")
    fold = tags.get("cxr.fold", "none")
    return f"{REGISTERED_PREFIX}{study}-{stage}" + ("" if fold == "none" else f"-fold_{fold}")


@dataclass(frozen=True)
class RegisteredModel:
    """A model version of the registry, downloaded: its files and where it comes from."""

    uri: str
    name: str
    version: str
    run_id: str | None
    folder: Path  # holds model.pt, model.json (and run.json, preset.json where logged)


def download_model(uri: str, dst: Path) -> RegisteredModel:
    """Download the registered model ``uri`` (``models:/<name>/<version>``, a version number,
    ``latest`` or ``@alias``) into ``dst``; its files are read by :mod:`cxr.serving`."""
    from mlflow.exceptions import MlflowException

    match = re.fullmatch(r"models:/([^/@]+)(?:/([^/]+)|@([\w\-]+))", uri)
    if not match:
        raise ValueError(
            f"--model-uri {uri}: expected models:/<name>/<version> (or /latest, or @alias)"
        )
    name, number, alias = match.groups()
    store = tracking_uri()
    client = _client(store)
    try:
        if alias:
            version = client.get_model_version_by_alias(name, alias)
        elif number == "latest":
            versions = client.search_model_versions(f"name = '{name}'")
            if not versions:
                raise ValueError(f"--model-uri {uri}: the registry holds no version of {name}")
            version = max(versions, key=lambda v: int(v.version))
        else:
            version = client.get_model_version(name, number)
        mlflow = _mlflow()
        # a version's logged model is resolved through mlflow's global store (which an earlier
        # in-process run may have set): make it this one, as training_run does
        mlflow.set_tracking_uri(store)
        mlflow.set_registry_uri(store)
        local = mlflow.artifacts.download_artifacts(
            artifact_uri=f"models:/{name}/{version.version}", dst_path=str(dst)
        )
    except MlflowException as err:
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ValueError(
            f"--model-uri {uri}: not in the registry at {tracking_uri()} ({reason})"
        ) from None
    folder = Path(local) / "data" / MODEL_DATA
    if not (folder / "model.pt").is_file():
        raise ValueError(
            f"--model-uri {uri}: holds no weights-only model.pt (logged by an older cxr, as a "
            "pickle?); train it again to register a loadable version"
        )
    return RegisteredModel(uri, name, str(version.version), version.run_id, folder)


def download_run_file(run_id: str, path: str, dst: Path) -> Path | None:
    """The artifact ``path`` of run ``run_id`` downloaded under ``dst``; None if it has none."""
    from mlflow.exceptions import MlflowException

    client = _client(tracking_uri())
    try:
        return Path(client.download_artifacts(run_id, path, str(dst)))
    except (MlflowException, OSError):
        return None


@dataclass(frozen=True)
class RunLog:
    """What a training job logs to its run."""

    run_id: str
    client: MlflowClient = field(repr=False)
    #: The files logged so far by name (model.json, run.json): copied into the logged model.
    files: dict[str, Path] = field(default_factory=dict, repr=False, compare=False)

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
        if Path(path).is_file() and Path(path).name in MODEL_FILES:
            self.files[Path(path).name] = Path(path)

    def log_model(
        self, model: torch.nn.Module, input_example: np.ndarray, card: Mapping | None = None
    ) -> str:
        """Log ``model`` as "model" and register it (a new version of ``cxr-<study>-<stage>``);
        return the registered model's name.

        The logged model holds the weights-only state dict (model.pt), the recipe (``card``, or
        the model.json this run logged), the run.json it logged and the preset of the data it
        was trained on (preset.json), read back by :mod:`cxr.serving.pyfunc` without unpickling
        anything. The signature is that of ``input_example``, not the example itself, which
        MLflow would validate by loading the model back (seconds).
        """
        import tempfile

        import numpy as np
        import torch
        from mlflow.models import infer_signature
        from mlflow.pyfunc import log_model

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
            with tempfile.TemporaryDirectory(prefix="cxr-model-") as tmp:
                folder = Path(tmp) / MODEL_DATA
                self._model_files(model, folder, card)
                with _no_requirement_check(), _quiet_model_warnings():
                    info = log_model(
                        name="model",
                        loader_module=MODEL_LOADER,
                        data_path=str(folder),
                        signature=infer_signature(example, output),
                        pip_requirements=_requirements(),
                    )
        finally:
            model.train(training)
        return self._register(info.model_uri, info.model_id)

    def _model_files(self, model: torch.nn.Module, folder: Path, card: Mapping | None) -> None:
        """model.pt (tensors only), model.json, run.json and preset.json into ``folder``."""
        import torch

        folder.mkdir()
        state = {
            k: v.detach().to("cpu", copy=True).contiguous() for k, v in model.state_dict().items()
        }
        torch.save(state, folder / "model.pt")
        if card is not None:
            (folder / "model.json").write_text(json.dumps(dict(card), indent=2) + "\n")
        for name, path in self.files.items():
            if not (folder / name).exists() and path.is_file():
                (folder / name).write_bytes(path.read_bytes())
        preset = _trained_preset(folder / "run.json")
        if preset is not None:
            (folder / "preset.json").write_text(json.dumps(preset, indent=2) + "\n")

    def _register(self, model_uri: str, model_id: str | None) -> str:
        """A new version of the run's registered model (created if missing); its name."""
        from mlflow.exceptions import MlflowException

        name = registered_name(self.client.get_run(self.run_id).data.tags)
        try:
            self.client.create_registered_model(name)
        except MlflowException as err:
            if err.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
        version = self.client.create_model_version(
            name, source=model_uri, run_id=self.run_id, model_id=model_id
        )
        log.info("registered MLflow model %s version %s", name, version.version)
        return name

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
        check_name(key.removeprefix("cxr."), names[key])
    return names


def _retire_orphans(
    client: MlflowClient, experiment_id: str, names: dict[str, str], out: str, run_id: str
) -> None:
    """Mark KILLED the runs of the same output that a killed job (SIGKILL, a lost machine) left
    RUNNING, each tagged with the run that replaced it."""
    query = " AND ".join(f"tags.`{key}` = '{value}'" for key, value in names.items())
    running = client.search_runs([experiment_id], f"{query} AND attributes.status = 'RUNNING'")
    for orphan in running:
        if orphan.info.run_id != run_id and orphan.data.tags.get(OUT_TAG) == out:
            client.set_tag(orphan.info.run_id, REPLACED_TAG, run_id)
            client.set_terminated(orphan.info.run_id, "KILLED")
            log.warning(
                "MLflow run %s of %s was left running by a killed job: marked KILLED, "
                "replaced by run %s",
                orphan.info.run_id,
                out,
                run_id,
            )


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
        run = _resumed(client, run_id, experiment_id, names) if run_id else None
        if run is None:
            run = _new_run(client, experiment_id, names, all_tags)
        if OUT_TAG in all_tags:
            _retire_orphans(client, experiment_id, names, all_tags[OUT_TAG], run.info.run_id)
        _mlflow().start_run(run_id=run.info.run_id)  # active, for mlflow.pytorch.log_model
        if parent := run.data.tags.get(PARENT_TAG):
            _settle_parent(client, experiment_id, parent)
    return experiment_id, run


#: The longest dataset digest MLflow stores.
DIGEST = 36


@dataclass(frozen=True)
class DataInput:
    """A file a run read, logged as an MLflow run input (the runs table's Dataset column)."""

    name: str  # e.g. nih/plain_64
    digest: str  # of its content
    source: str  # its path
    context: str  # training, split or init


def _log_inputs(client: MlflowClient, run_id: str, inputs: Sequence[DataInput]) -> None:
    from mlflow.entities import Dataset, DatasetInput, InputTag

    client.log_inputs(
        run_id,
        datasets=[
            DatasetInput(
                Dataset(i.name, i.digest[:DIGEST], "local", json.dumps({"uri": i.source})),
                [InputTag("mlflow.data.context", i.context)],
            )
            for i in inputs
        ],
    )


@contextlib.contextmanager
def training_run(
    study: str,
    stage: str,
    fold: str | None,
    params: Mapping[str, Any],
    tags: Mapping[str, str],
    run_id: str | None = None,
    out: Path | None = None,
    inputs: Sequence[DataInput] = (),
) -> Iterator[RunLog]:
    """Track one job: a child run of the stage's parent per fold, or a stage run (fold=None).

    ``run_id`` (kept by a job killed earlier) continues that run instead. The run ends FINISHED,
    FAILED if the block raises (the exception propagates), or KILLED on an interrupt. ``out``:
    the job's output folder; earlier runs of it left RUNNING by a killed job are marked KILLED.
    ``inputs``: the data it reads, logged as run inputs (lineage in the UI).
    """
    names = _names(study, stage, fold)
    uri = tracking_uri()
    client = _client(uri)
    mlflow = _mlflow()
    mlflow.set_tracking_uri(uri)
    if out is not None:
        tags = {**tags, OUT_TAG: str(Path(out).resolve())}
    experiment_id, run = _start(client, uri, names, tags, run_id)
    status = "KILLED"
    try:
        _log_params(client, run.info.run_id, params)
        if inputs and run_id is None:  # a continued run has them already
            _log_inputs(client, run.info.run_id, inputs)
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

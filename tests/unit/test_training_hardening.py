"""Hardening of training and tracking: a store whose creation is interrupted leaves nothing
half-made, a run to resume that the store lost gives way to a new one, numbers in settings are
whole and finite where they must be, labels that cannot be learned are refused or warned about,
and an init must carry most of the backbone."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from test_training import recipe, write_data

from cxr import tracking
from cxr.data.preprocess import INDEX_FILE
from cxr.data.presets import Preset
from cxr.splits.assign import Scheme
from cxr.training.checkpoint import InitWeights
from cxr.training.data import load_task
from cxr.training.loop import Trainer
from cxr.training.models import ModelSpec, backbone_carried, build_model, init_from_checkpoint


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """tmp_path as the working directory, with no store yet and no tracking server set."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return tmp_path


def test_an_interrupted_store_creation_leaves_no_store_and_the_next_one_succeeds(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mlflow.store.db.utils as db_utils

    def interrupted(engine: object) -> None:  # Ctrl-C in the middle of the migrations
        with engine.begin() as connection:  # type: ignore[attr-defined]
            connection.exec_driver_sql("CREATE TABLE _alembic_tmp_runs (id INTEGER)")
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(db_utils, "_upgrade_db", interrupted)
        with pytest.raises(KeyboardInterrupt):
            tracking.prepare_store(["a"])
    assert sorted(p.name for p in workdir.iterdir()) == [".mlflow.db.cxr-lock"]
    assert tracking.prepare_store(["a"]) == {"a": "1"}
    assert sorted(p.name for p in workdir.iterdir()) == [".mlflow.db.cxr-lock", "mlflow.db"]


def test_a_run_to_resume_that_the_store_lost_gives_way_to_a_new_run(
    workdir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    lost = "0" * 32
    with (
        caplog.at_level(logging.WARNING),
        tracking.training_run("s", "t", None, {}, {}, lost) as run,
    ):
        assert run.run_id != lost
    assert f"MLflow run {lost} to resume is not in the store: logging to a new run" in caplog.text


def test_numbers_of_any_settings_are_whole_and_finite_where_they_must_be() -> None:
    with pytest.raises(ValueError, match=r"split scheme: 'folds' must be a whole number, got 2\.5"):
        Scheme.from_dict({"method": "kfold", "folds": 2.5})
    with pytest.raises(ValueError, match=r"preset: 'clahe_clip' must be a finite number, got nan"):
        Preset.from_dict({"size": 32, "clahe_clip": float("nan")})
    with pytest.raises(ValueError, match=r"'ratios' must be a list of finite numbers"):
        Scheme.from_dict({"method": "random", "ratios": [0.5, 0.5, float("inf")]})
    assert Scheme.from_dict({"method": "random", "ratios": [1, 0, 0]}).ratios == (1, 0, 0)


def relabelled(folder: Path, column: str, value: float, side: str) -> Path:
    """``folder`` with ``column`` set to ``value`` on the training ``side`` of its split."""
    index = pd.read_parquet(folder / INDEX_FILE)
    split = pd.read_parquet(folder.parent / "split.parquet").set_index("image_id")["split"]
    index.loc[(index["image_id"].map(split) == side).to_numpy(), column] = value
    index.to_parquet(folder / INDEX_FILE, index=False)
    return folder


def test_a_finding_with_one_class_on_the_training_side_is_warned_about_and_recorded(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    data = relabelled(write_data(tmp_path / "data", 20), "finding_Nodule", 0.0, "train")
    split = data.parent / "split.parquet"
    with caplog.at_level(logging.WARNING):
        task = load_task(data, split, "split", recipe(findings=["Nodule", "Mass"]))
    assert task.outputs == ("Nodule", "Mass")
    assert "Nodule has only negative training labels (12): it cannot be learned" in caplog.text
    assert list(task.weak_outputs) == ["Nodule"]  # run.json records it
    with pytest.raises(ValueError, match=r"no output can be learned \(Nodule: only negative"):
        load_task(data, split, "split", recipe(findings=["Nodule"]))  # nothing else to learn


def test_a_finding_unknown_on_the_training_side_is_refused(tmp_path: Path) -> None:
    data = relabelled(write_data(tmp_path / "data", 20), "finding_Mass", np.nan, "train")
    with pytest.raises(ValueError, match="no known label for Mass among the 12 training image"):
        load_task(data, data.parent / "split.parquet", "split", recipe())


def test_the_backbone_share_leaves_out_the_head_and_counts_a_model_that_is_all_head() -> None:
    source = build_model(ModelSpec("smallcnn_v1", 2, 32))
    target = build_model(ModelSpec("smallcnn_v1", 6, 32))
    carried, _ = init_from_checkpoint(target, source.state_dict())
    assert backbone_carried(target, carried) == (8, 8)  # the 6-output head is not counted
    logreg = build_model(ModelSpec("logreg", 2, 32))
    carried, _ = init_from_checkpoint(logreg, source.state_dict())
    assert backbone_carried(logreg, carried) == (0, 2)


def test_an_init_below_half_the_backbone_is_refused_unless_allowed(tmp_path: Path) -> None:
    data = write_data(tmp_path / "data", 10)
    task = load_task(data, data.parent / "split.parquet", "split", recipe())
    state = build_model(ModelSpec("logreg", 2, 32)).state_dict()
    trainer = Trainer(task, recipe(architecture="smallcnn_v1"), torch.device("cpu"), 0, 1)
    refused = InitWeights(Path("a/model.pt"), state)
    with pytest.raises(ValueError, match=r"--init a/model\.pt: it carries only 0 of the 8 "):
        trainer.initialise(refused, None)
    allowed = InitWeights(Path("a/model.pt"), state, allow_partial=True)
    layers = trainer.initialise(allowed, None)
    assert layers is not None and layers["partial_init_allowed"] is True

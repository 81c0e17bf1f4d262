"""Recipe ``init: auto``: ImageNet weights when torchvision's file is in the local torch hub cache,
random init with a warning otherwise, and run.json / MLflow saying which one was used.

The cache is a temporary TORCH_HOME. The stand-in weights file is a state dict of the right keys
and shapes (AlexNet's, the smallest backbone with ImageNet weights); its name carries the sha256
prefix of its own bytes, as torchvision's names do, with the expected URL pointed at that name.
A stand-in under torchvision's real file name fails the hash check: ``auto`` then refuses to
train rather than fall back to random weights silently.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from test_training import write_data

from cxr.training import engine, models
from cxr.training.models import ModelSpec, build_model, resolve_init, rgb_model
from cxr.training.recipe import Recipe

SPEC = ModelSpec("alexnet", 3, 64)


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty torch hub cache under a temporary TORCH_HOME; returns its checkpoints folder."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr(torch.hub, "_hub_dir", None)  # get_dir() follows TORCH_HOME
    folder = tmp_path / "torch" / "hub" / "checkpoints"
    folder.mkdir(parents=True)
    assert Path(torch.hub.get_dir()) == folder.parent
    return folder


@pytest.fixture(scope="module")
def standin(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, torch.Tensor]]:
    """AlexNet-shaped ImageNet weights (1000 outputs, 3 channels), seeded apart from any model."""
    state = rgb_model(ModelSpec("alexnet", 1000, 64), seed=11).state_dict()
    path = tmp_path_factory.mktemp("weights") / "alexnet.pth"
    torch.save(state, path)
    return path, state


def place(hub: Path, source: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Put ``source`` in the cache under a name carrying its own sha256 prefix, the URL at it."""
    name = f"alexnet-{hashlib.sha256(source.read_bytes()).hexdigest()[:8]}.pth"
    monkeypatch.setattr(
        models, "imagenet_weights_url", lambda _a: f"https://example.invalid/models/{name}"
    )
    target = hub / name
    target.write_bytes(source.read_bytes())
    return target


def test_auto_without_the_file_is_random_with_a_warning_naming_it(
    hub: Path, caplog: pytest.LogCaptureFixture
) -> None:
    expected = hub / Path(models.imagenet_weights_url("alexnet")).name
    with caplog.at_level(logging.WARNING, logger="cxr.training.models"):
        assert resolve_init("alexnet", "auto") == "random"
    assert str(expected) in caplog.text and "random init" in caplog.text
    auto = build_model(SPEC, init="auto", seed=3).state_dict()
    random = build_model(SPEC, init="random", seed=3).state_dict()
    assert all(torch.equal(auto[k], random[k]) for k in random)


def test_auto_with_the_file_loads_the_imagenet_weights(
    hub: Path, standin: tuple[Path, dict], monkeypatch: pytest.MonkeyPatch
) -> None:
    path, saved = standin
    place(hub, path, monkeypatch)
    assert resolve_init("alexnet", "auto") == "imagenet"
    model = build_model(SPEC, init="auto", seed=3)
    assert torch.equal(model.features[0].weight, saved["features.0.weight"].sum(1, keepdim=True))
    assert torch.equal(model.features[10].bias, saved["features.10.bias"])
    assert model.classifier.weight.shape == (3, 256)  # the head stays new


def test_auto_refuses_a_file_that_fails_the_hash_check(
    hub: Path, standin: tuple[Path, dict]
) -> None:
    name = Path(models.imagenet_weights_url("alexnet")).name  # torchvision's real name and hash
    (hub / name).write_bytes(standin[0].read_bytes())
    assert resolve_init("alexnet", "auto") == "imagenet"  # the file is there: it must be right
    with pytest.raises(ValueError, match="does not match the prefix"):
        build_model(SPEC, init="auto")


def test_auto_is_random_for_models_without_imagenet_weights(
    hub: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="cxr.training.models"):
        for architecture in ("smallcnn_v3", "logreg"):
            assert resolve_init(architecture, "auto") == "random"
            Recipe.from_dict({"study": "s", "architecture": architecture, "init": "auto"})
    assert not caplog.records
    assert resolve_init("resnet50", "random") == "random"
    assert resolve_init("resnet50", "imagenet") == "imagenet"
    with pytest.raises(ValueError, match="init"):
        resolve_init("resnet50", "xavier")


@pytest.mark.parametrize("cached", [False, True])
def test_run_json_and_mlflow_record_the_init_used(
    cached: bool,
    hub: Path,
    standin: tuple[Path, dict],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/mlflow.db")
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    monkeypatch.chdir(tmp_path)
    if cached:
        place(hub, standin[0], monkeypatch)
    data = write_data(tmp_path / "data", n=10, size=64)
    cfg = {"task": "multiclass", "loss": "cross_entropy", "architecture": "alexnet"}
    cfg |= {"init": "auto", "transfer": "last_blocks", "input_size": 64, "epochs": 1}
    cfg["allow_random_features"] = not cached  # without the file: refused unless allowed
    recipe = Recipe.from_dict({"study": "auto", "batch_size": 8, **cfg})
    summary = engine.train(data, data.parent / "split.parquet", "split", recipe, tmp_path / "m")
    used = "imagenet" if cached else "random"
    assert summary["init_weights"] == summary["init_source"] == used
    assert summary["recipe"]["init"] == "auto"  # what was asked stays in the recipe
    from mlflow import MlflowClient

    tracked = MlflowClient(os.environ["MLFLOW_TRACKING_URI"]).get_run(summary["run_id"])
    params = tracked.data.params
    # the data it read, as run inputs: the Dataset column of the runs table
    inputs = {(i.dataset.name, i.tags[0].value) for i in tracked.inputs.dataset_inputs}
    assert inputs == {(summary["data"]["folder"], "training"), ("split", "split")}
    assert (params["init"], params["init_weights"]) == ("auto", used)
    state = torch.load(tmp_path / "m" / "model.pt", weights_only=True)
    frozen = state["features.0.weight"]  # AlexNet's first conv does not train in last_blocks
    from_file = standin[1]["features.0.weight"].sum(1, keepdim=True)
    assert torch.equal(frozen, from_file) == cached


@pytest.mark.parametrize("architecture", ["densenet121", "resnet50", "alexnet", "vgg19_bn"])
def test_the_plan_looks_for_imagenet_where_training_loads_it(
    architecture: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """cxr.training.imagenet (torch-free, read by the plan) names the file models.py loads."""
    from cxr.training import imagenet

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    path = models.imagenet_weights_path(architecture)
    assert path == imagenet.hub_dir() / "checkpoints" / imagenet.FILES[architecture]
    assert not imagenet.cached(architecture)
    path.parent.mkdir(parents=True)
    path.touch()
    assert imagenet.cached(architecture)
    assert not imagenet.cached("smallcnn_v1")

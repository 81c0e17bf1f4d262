"""The model zoo: shapes, training, grayscale fold, transfer modes, ImageNet weight loading."""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import pathlib
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from torch import nn

from cxr.training import models
from cxr.training.models import (
    ARCHITECTURES,
    LAST_BLOCKS,
    MIN_INPUT_SIZE,
    ModelSpec,
    build_model,
    feature_layer,
    fold_to_gray,
    head,
    init_from_checkpoint,
    load_imagenet_weights,
    parameter_count_as_published,
    rgb_model,
    set_transfer_mode,
    trainable_blocks,
)

CAM_ABLE = ("densenet121", "resnet50", "alexnet", "vgg19_bn")


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    """One thread inside this module only (the count is process-wide)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def small_spec(architecture: str, outputs: int = 3) -> ModelSpec:
    """A spec at a small input side the architecture takes."""
    return ModelSpec(architecture, outputs, 64 if architecture == "alexnet" else 32)


def batch(spec: ModelSpec, size: int = 2) -> torch.Tensor:
    side = spec.input_size
    return torch.randn(size, 1, side, side, generator=torch.Generator().manual_seed(0))


def n_params(module: nn.Module, trainable: bool = False) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable)


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_forward_shape_and_one_step_lowers_loss(architecture: str) -> None:
    spec = small_spec(architecture)
    model = build_model(spec).double().train()
    x, y = batch(spec, 4).double(), torch.tensor([0, 2, 1, 0])
    assert model(x).shape == (4, spec.outputs)

    def loss() -> torch.Tensor:
        torch.manual_seed(0)  # the same dropout masks before and after the step
        return nn.functional.cross_entropy(model(x), y)

    before = loss()
    before.backward()
    assert all(p.grad is not None for p in model.parameters())
    # A step meant to lower the loss by 1e-3 to first order. float64: batch norm over the 1x1 maps
    # of a tiny batch makes the float32 loss too sharp for any fixed learning rate.
    squared = sum(p.grad.pow(2).sum() for p in model.parameters()).item()
    torch.optim.SGD(model.parameters(), lr=1e-3 / squared).step()
    assert loss().item() < before.item()


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_minimum_input_size_is_tight(architecture: str) -> None:
    side = MIN_INPUT_SIZE[architecture]
    with torch.no_grad():
        out = build_model(ModelSpec(architecture, 2, side)).eval()(torch.zeros(1, 1, side, side))
    assert out.shape == (1, 2)
    if side > 1:
        with pytest.raises(ValueError, match="input_size"):
            ModelSpec(architecture, 2, side - 1)


def test_published_small_cnn_counts() -> None:
    counts = {v: parameter_count_as_published(ModelSpec(v, 6, 64)) for v in models.SMALL_CNNS}
    assert counts == {"smallcnn_v1": 167_750, "smallcnn_v2": 167_942, "smallcnn_v3": 167_750}
    # cxr's 1-channel model: the first conv has 3 x 3 x 32 x 2 = 576 weights fewer
    assert n_params(build_model(ModelSpec("smallcnn_v1", 6, 64))) == 167_750 - 576


def test_small_cnn_versions_differ_as_published() -> None:
    layers = {
        v: {type(m) for m in build_model(ModelSpec(v, 6, 64)).modules()} for v in models.SMALL_CNNS
    }
    assert nn.Dropout not in layers["smallcnn_v1"]
    assert nn.BatchNorm2d not in layers["smallcnn_v1"] | layers["smallcnn_v3"]
    assert {nn.Dropout, nn.BatchNorm2d} <= layers["smallcnn_v2"]
    assert nn.Dropout in layers["smallcnn_v3"]


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_gray_fold_equals_rgb_model_on_repeated_gray(architecture: str) -> None:
    spec = small_spec(architecture)
    rgb = rgb_model(spec, seed=1).eval()
    gray = fold_to_gray(copy.deepcopy(rgb))
    x = batch(spec)
    with torch.no_grad():
        expected = rgb(x.expand(-1, 3, -1, -1))
        assert torch.allclose(gray(x), expected, rtol=1e-4, atol=1e-5)


def test_build_is_deterministic_per_seed() -> None:
    spec = small_spec("densenet121")
    first, again, other = (build_model(spec, seed=s).state_dict() for s in (3, 3, 4))
    assert all(torch.equal(first[k], again[k]) for k in first)
    assert not torch.equal(first["features.conv0.weight"], other["features.conv0.weight"])


def test_build_model_refuses_bad_settings() -> None:
    with pytest.raises(ValueError, match="architecture"):
        ModelSpec("densenet201", 2, 224)
    with pytest.raises(ValueError, match="outputs"):
        ModelSpec("resnet50", 0, 224)
    with pytest.raises(ValueError, match="init"):
        build_model(ModelSpec("logreg", 2, 8), init="xavier")
    with pytest.raises(ValueError, match="imagenet"):
        build_model(ModelSpec("smallcnn_v3", 6, 64), init="imagenet")


def test_spec_json_round_trip() -> None:
    spec = ModelSpec("smallcnn_v2", 6, 64, dropout=0.5)
    assert ModelSpec.from_dict(json.loads(json.dumps(spec.to_dict()))) == spec
    with pytest.raises(ValueError, match="unknown key"):
        ModelSpec.from_dict({**spec.to_dict(), "depth": 3})


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_transfer_mode_counts(architecture: str) -> None:
    spec = small_spec(architecture)
    model = build_model(spec)
    assert set_transfer_mode(model, spec, "frozen") == n_params(head(model))
    assert n_params(model, trainable=True) == n_params(head(model))
    last = LAST_BLOCKS.get(architecture)
    expected = sum(n_params(model.get_submodule(b)) for b in last) if last else n_params(model)
    assert set_transfer_mode(model, spec, "last_blocks") == expected
    assert set_transfer_mode(model, spec, "full") == n_params(model)
    with pytest.raises(ValueError, match="transfer mode"):
        set_transfer_mode(model, spec, "half")


def last_blocks_model(architecture: str) -> nn.Module:
    spec = small_spec(architecture)
    model = build_model(spec)
    set_transfer_mode(model, spec, "last_blocks")
    return model


def trains(model: nn.Module, kind: type[nn.Module]) -> list[bool]:
    """Whether each ``kind`` layer of ``model.features`` trains, in order."""
    return [m.weight.requires_grad for m in model.features.modules() if isinstance(m, kind)]


def test_last_blocks_of_alexnet_vgg_densenet() -> None:
    alexnet, vgg, densenet = map(last_blocks_model, ("alexnet", "vgg19_bn", "densenet121"))
    assert trains(alexnet, nn.Conv2d) == [False] * 4 + [True]  # its last conv
    assert trains(vgg, nn.Conv2d) == trains(vgg, nn.BatchNorm2d) == [False] * 13 + [True] * 3
    block4 = [m for m in densenet.features.denseblock4.modules() if isinstance(m, nn.BatchNorm2d)]
    norms = trains(densenet, nn.BatchNorm2d)  # denseblock4's norms, then norm5
    assert norms == [False] * (len(norms) - len(block4) - 1) + [True] * (len(block4) + 1)
    assert [name for name, _ in densenet.features.named_children()][-3:-1] == [
        "denseblock4",
        "norm5",
    ]
    assert all(head(m).weight.requires_grad for m in (alexnet, vgg, densenet))


def test_last_blocks_of_resnet50() -> None:
    model = last_blocks_model("resnet50")
    training = {
        name
        for name, m in model.named_children()
        if any(True for _ in m.parameters()) and all(p.requires_grad for p in m.parameters())
    }
    assert training == {"layer3", "layer4", "fc"}
    assert trainable_blocks(model, small_spec("resnet50"), "frozen") == ("fc",)


def test_init_from_checkpoint_carries_backbone_not_head() -> None:
    source = build_model(ModelSpec("densenet121", 14, 32), seed=1)
    target = build_model(ModelSpec("densenet121", 1, 32), seed=2)
    fresh_head = head(target).weight.detach().clone()
    carried, left = init_from_checkpoint(target, source.state_dict())
    assert left == ["classifier.weight", "classifier.bias"]
    got, wanted = target.state_dict(), source.state_dict()
    assert len(carried) == len(got) - 2
    assert all(torch.equal(got[k], wanted[k]) for k in carried)
    assert torch.equal(head(target).weight, fresh_head)


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_head_and_feature_layer(architecture: str) -> None:
    spec = small_spec(architecture, outputs=4)
    model = build_model(spec).eval()
    assert isinstance(head(model), nn.Linear)
    assert head(model).out_features == 4
    if architecture == "logreg":
        with pytest.raises(ValueError, match="feature map"):
            feature_layer(model)
        return
    maps: list[torch.Tensor] = []
    feature_layer(model).register_forward_hook(lambda _m, _i, out: maps.append(out))
    with torch.no_grad():
        logits = model(batch(spec))
    assert maps[0].ndim == 4
    if architecture in CAM_ABLE:  # logits = head applied to the pooled feature map
        cam_logits = head(model)(maps[0].mean((2, 3)))
        assert torch.allclose(logits, cam_logits, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("architecture", ["densenet121", "resnet50", "alexnet", "vgg19_bn"])
def test_the_previous_feature_map_has_twice_the_side(architecture: str) -> None:
    """At 64 px the last map of these nets is 2x2 (AlexNet's 1x1), too coarse to point; the
    one before the last downsampling is 4x4 (3x3)."""
    model = build_model(ModelSpec(architecture, outputs=3, input_size=64)).eval()
    sides = {}
    for previous in (False, True):
        module = feature_layer(model, previous)
        hook = module.register_forward_hook(lambda _m, _i, out, k=previous: sides.update({k: out}))
        with torch.no_grad():
            model(torch.zeros(1, 1, 64, 64))
        hook.remove()
    last, previous = sides[False].shape[-1], sides[True].shape[-1]
    assert (last, previous) == ((1, 3) if architecture == "alexnet" else (2, 4))


# --- ImageNet weights from the local cache ------------------------------------------------------


class _Payload:
    """A pickle that would create ``marker`` when unpickled without ``weights_only``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (pathlib.Path.touch, (self.marker,))


@pytest.fixture(scope="module")
def densenet_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """A stand-in for torchvision's DenseNet-121 file: its keys (old style) and shapes."""
    state = rgb_model(ModelSpec("densenet121", 1000, 224), seed=5).state_dict()
    state = {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}
    state = {
        re.sub(r"(denselayer\d+\.(?:norm|conv))([12])", r"\1.\2", k): v for k, v in state.items()
    }
    path = tmp_path_factory.mktemp("weights") / "densenet121.pth"
    torch.save(state, path)
    return path, state


@pytest.fixture
def hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty torch hub cache; returns its checkpoints folder."""
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    (tmp_path / "checkpoints").mkdir()
    return tmp_path / "checkpoints"


def place(hub: Path, source: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Put ``source`` in the cache under a name carrying its own hash, and point the URL at it."""
    name = f"densenet121-{hashlib.sha256(source.read_bytes()).hexdigest()[:8]}.pth"
    url = f"https://example.invalid/models/{name}"
    monkeypatch.setattr(models, "imagenet_weights_url", lambda _architecture: url)
    return shutil.copy(source, hub / name)


def test_missing_weights_name_the_path_and_url(hub: Path) -> None:
    url = models.imagenet_weights_url("resnet50")
    with pytest.raises(FileNotFoundError) as err:
        load_imagenet_weights("resnet50")
    message = str(err.value)
    assert str(hub / "resnet50-0676ba61.pth") in message
    assert url in message
    assert "\n" not in message


def test_wrong_hash_is_refused(hub: Path, densenet_file: tuple[Path, dict]) -> None:
    shutil.copy(densenet_file[0], hub / "densenet121-a639ec97.pth")
    with pytest.raises(ValueError, match=r"sha256 \w+\.\.\. does not match the prefix a639ec97"):
        load_imagenet_weights("densenet121")


def test_imagenet_weights_load_renamed_and_folded(
    hub: Path, densenet_file: tuple[Path, dict], monkeypatch: pytest.MonkeyPatch
) -> None:
    path, saved = densenet_file
    place(hub, path, monkeypatch)
    state = load_imagenet_weights("densenet121")
    assert "features.denseblock1.denselayer1.norm1.weight" in state
    assert not any(".norm.1." in k for k in state)
    model = build_model(ModelSpec("densenet121", 2, 32), init="imagenet", seed=9)
    assert torch.equal(model.features.conv0.weight, saved["features.conv0.weight"].sum(1, True))
    norm = model.features.denseblock4.denselayer16.norm1.running_var
    assert torch.equal(norm, saved["features.denseblock4.denselayer16.norm.1.running_var"])
    assert head(model).weight.shape == (2, 1024)


@pytest.mark.parametrize("content", ["code", "list"])
def test_non_tensor_files_are_refused_without_running(
    content: str, hub: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    marker = tmp_path / "ran"
    source = tmp_path / "payload.pth"
    torch.save(_Payload(marker) if content == "code" else [1, 2], source)
    target = place(hub, source, monkeypatch)
    with pytest.raises(ValueError, match=re.escape(str(target))):
        load_imagenet_weights("densenet121")
    assert not marker.exists()


def test_spec_is_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        ModelSpec("logreg", 2, 8).outputs = 3  # type: ignore[misc]

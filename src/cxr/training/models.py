"""The seed papers' models, each taking a normalised grayscale batch (B, 1, H, W) to logits.

- ``densenet121``, ``resnet50`` (seeds 000-002, 004): torchvision's, ending in global average
  pooling and one linear layer, as published.
- ``alexnet``, ``vgg19_bn`` (seed 004): torchvision's ``features``, global average pooling and one
  linear layer. Their fully connected stacks (three layers each, which seed 004 fine-tuned) are
  dropped so that CAM is defined.
- ``smallcnn_v1`` .. ``smallcnn_v3`` (seed 003): see :class:`SmallCNN`.
- ``logreg`` (seed 004's baseline): one linear layer on the flattened pixels.

Every model is built with 3 input channels, as published, and then folded to 1: its first layer's
weights are summed over the RGB axis, which computes exactly what the 3-channel model computes on
the gray image repeated on 3 channels, without the copies. ImageNet weights come only from the
local torch hub cache; nothing is ever downloaded. ``init="auto"`` takes them when torchvision's
file is there and starts from random weights otherwise (:func:`resolve_init`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import pickle
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import torch
from torch import nn
from torchvision import models as tvm
from torchvision.models.vgg import cfgs, make_layers

from cxr.core.settings import from_mapping

log = logging.getLogger(__name__)

SMALL_CNNS = ("smallcnn_v1", "smallcnn_v2", "smallcnn_v3")
ARCHITECTURES: tuple[str, ...] = (
    "densenet121",
    "resnet50",
    "alexnet",
    "vgg19_bn",
    *SMALL_CNNS,
    "logreg",
)
TRANSFER_MODES = ("full", "last_blocks", "frozen")
#: ``auto``: ``imagenet`` if the weights are in the local torch hub cache, else ``random``.
INITS = ("random", "imagenet", "auto")

#: Smallest input side each architecture takes: its last feature map is at least 1x1 (ResNet-50
#: would run smaller, but 32 is its stride).
MIN_INPUT_SIZE = {
    "densenet121": 29,
    "resnet50": 32,
    "alexnet": 63,
    "vgg19_bn": 32,
    **dict.fromkeys(SMALL_CNNS, 22),
    "logreg": 1,
}

#: What trains in "last_blocks" mode (seed 004's partial fine-tuning); every other architecture
#: trains everything. AlexNet: its last conv; VGG19_bn: its last 3 convs with their batch norms.
LAST_BLOCKS = {
    "densenet121": ("features.denseblock4", "features.norm5", "classifier"),
    "resnet50": ("layer3", "layer4", "fc"),
    "alexnet": ("features.10", "classifier"),
    "vgg19_bn": (
        *("features.43", "features.44", "features.46", "features.47", "features.49"),
        *("features.50", "classifier"),
    ),
}

_IMAGENET_WEIGHTS = {
    "densenet121": tvm.DenseNet121_Weights.IMAGENET1K_V1,
    "resnet50": tvm.ResNet50_Weights.IMAGENET1K_V1,
    "alexnet": tvm.AlexNet_Weights.IMAGENET1K_V1,
    "vgg19_bn": tvm.VGG19_BN_Weights.IMAGENET1K_V1,
}

#: DenseNet checkpoints' old key names ("norm.1"), renamed as torchvision does ("norm1").
_OLD_DENSENET_KEY = re.compile(
    r"^(.*denselayer\d+\.(?:norm|relu|conv))\.((?:[12])\.(?:weight|bias|running_mean|running_var))$"
)


@dataclass(frozen=True)
class ModelSpec:
    """What :func:`build_model` builds; written as JSON beside ``model.pt``.

    ``dropout`` is the rate of the small CNN's dropout layers (v2, v3; seed 003 does not give it);
    the other architectures have none.
    """

    architecture: str
    outputs: int
    input_size: int
    dropout: float = 0.25

    def __post_init__(self) -> None:
        if self.architecture not in ARCHITECTURES:
            known = ", ".join(ARCHITECTURES)
            raise ValueError(f"unknown architecture {self.architecture!r}; known: {known}")
        if not _is_int(self.outputs) or self.outputs < 1:
            raise ValueError(f"outputs must be an integer >= 1, got {self.outputs!r}")
        minimum = MIN_INPUT_SIZE[self.architecture]
        if not _is_int(self.input_size) or self.input_size < minimum:
            raise ValueError(
                f"input_size {self.input_size!r} is too small for {self.architecture}: "
                f"it takes {minimum} px or more"
            )
        if not 0 <= self.dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout!r}")

    def to_dict(self) -> dict[str, Any]:
        """The spec as a JSON-able dict."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: object) -> ModelSpec:
        """The spec from :meth:`to_dict`'s output, naming any unknown or missing key."""
        return from_mapping(cls, data, "model spec")


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


class PooledCNN(nn.Module):
    """A ``features`` stack, global average pooling and one linear layer, so CAM is defined."""

    def __init__(self, features: nn.Sequential, channels: int, outputs: int) -> None:
        super().__init__()
        self.features = features
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(channels, outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


class SmallCNN(nn.Module):
    """Seed 003's CNN: 3 x [conv 32 3x3 unpadded, ReLU, max-pool 2x2], dense 128 ReLU, dense.

    The versions follow the paper's comparison table (its Figure 11):

    1. no batch norm, no dropout: 167,750 parameters at 64x64x3 with 6 classes;
    2. batch norm after each conv, dropout after each pool: 167,942 parameters. The paper reports
       16,851,398 for its version 2 but does not give its layers;
    3. dropout after each pool: the model of the paper's Figure 4, its best: 167,750 parameters.

    The paper counts 3 input channels; cxr's model takes 1 (576 parameters fewer). The model
    returns logits: the softmax belongs to the loss. Its flatten + dense head is not global
    pooling + one linear layer, so CAM is undefined; Grad-CAM uses the last conv block.
    """

    def __init__(self, version: int, outputs: int, input_size: int, dropout: float) -> None:
        super().__init__()
        side, blocks = input_size, []
        for channels in (3, 32, 32):
            blocks.append(_small_block(channels, version == 2, 0.0 if version == 1 else dropout))
            side = (side - 2) // 2
        self.features = nn.Sequential(*blocks)
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(32 * side * side, 128), nn.ReLU(), nn.Linear(128, outputs)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


def _small_block(channels: int, batch_norm: bool, dropout: float) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Conv2d(channels, 32, 3)]
    if batch_norm:
        layers.append(nn.BatchNorm2d(32))
    layers += [nn.ReLU(), nn.MaxPool2d(2)]
    if dropout:
        layers.append(nn.Dropout(dropout))
    return nn.Sequential(*layers)


def _densenet121(spec: ModelSpec) -> nn.Module:
    features = tvm.densenet121().features
    # torchvision applies this ReLU in forward(); as a module, ``features`` ends in the pooled map.
    features.add_module("relu5", nn.ReLU())
    return PooledCNN(features, 1024, spec.outputs)


def _alexnet(spec: ModelSpec) -> nn.Module:
    features = nn.Sequential(  # torchvision's AlexNet ``features``, layer for layer
        nn.Conv2d(3, 64, kernel_size=11, stride=4, padding=2),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(kernel_size=3, stride=2),
        nn.Conv2d(64, 192, kernel_size=5, padding=2),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(kernel_size=3, stride=2),
        nn.Conv2d(192, 384, kernel_size=3, padding=1),
        nn.ReLU(inplace=True),
        nn.Conv2d(384, 256, kernel_size=3, padding=1),
        nn.ReLU(inplace=True),
        nn.Conv2d(256, 256, kernel_size=3, padding=1),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(kernel_size=3, stride=2),
    )
    return PooledCNN(features, 256, spec.outputs)


def _vgg19_bn(spec: ModelSpec) -> nn.Module:
    model = PooledCNN(make_layers(cfgs["E"], batch_norm=True), 512, spec.outputs)
    for module in model.modules():  # torchvision's VGG initialisation
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, 0, 0.01)
            nn.init.zeros_(module.bias)
    return model


_BUILDERS: dict[str, Callable[[ModelSpec], nn.Module]] = {
    "densenet121": _densenet121,
    "resnet50": lambda spec: tvm.resnet50(num_classes=spec.outputs),
    "alexnet": _alexnet,
    "vgg19_bn": _vgg19_bn,
    **{
        name: lambda spec: SmallCNN(
            int(spec.architecture[-1]), spec.outputs, spec.input_size, spec.dropout
        )
        for name in SMALL_CNNS
    },
    "logreg": lambda spec: nn.Sequential(
        nn.Flatten(), nn.Linear(3 * spec.input_size**2, spec.outputs)
    ),
}


def rgb_model(spec: ModelSpec, seed: int = 0) -> nn.Module:
    """The model of ``spec`` with 3 input channels, as published, before the grayscale fold."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return _BUILDERS[spec.architecture](spec)


def parameter_count_as_published(spec: ModelSpec) -> int:
    """Trainable parameters with 3 input channels, as the papers count them (seed 003: 167,750)."""
    return sum(p.numel() for p in rgb_model(spec).parameters())


def fold_to_gray(model: nn.Module) -> nn.Module:
    """Make a 3-channel ``model`` take 1 channel: its first layer's weights summed over RGB."""
    layer = next(m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear)))
    with torch.no_grad():
        if isinstance(layer, nn.Conv2d):
            if layer.in_channels != 3 or layer.groups != 1:
                raise ValueError(f"first conv takes {layer.in_channels} channels, not 3")
            weight = layer.weight.sum(1, keepdim=True)
            layer.in_channels = 1
        else:
            weight = layer.weight.unflatten(1, (3, -1)).sum(1)
            layer.in_features //= 3
    layer.weight = nn.Parameter(weight)
    return model


def build_model(spec: ModelSpec, init: str = "random", seed: int = 0) -> nn.Module:
    """The model of ``spec`` for (B, 1, S, S) input, initialised randomly (seeded) or from ImageNet.

    With ``init="imagenet"`` everything but the head comes from the cached ImageNet weights;
    ``init="auto"`` is resolved first (:func:`resolve_init`).
    """
    if init not in INITS:
        raise ValueError(f"unknown init {init!r}; known: {', '.join(INITS)}")
    init = resolve_init(spec.architecture, init)
    if init == "imagenet" and spec.architecture not in _IMAGENET_WEIGHTS:
        known = ", ".join(_IMAGENET_WEIGHTS)
        raise ValueError(f"init 'imagenet' is for {known}; {spec.architecture} has no such weights")
    model = rgb_model(spec, seed)
    if init == "imagenet":
        _load_backbone(model, load_imagenet_weights(spec.architecture))
    return fold_to_gray(model)


def _load_backbone(model: nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Load ``state`` into everything but ``model``'s head, insisting that all of it fits."""
    prefix = f"{_head_name(model)}."
    result = model.load_state_dict(
        {k: v for k, v in state.items() if not k.startswith(prefix)}, strict=False
    )
    missing = [k for k in result.missing_keys if not k.startswith(prefix)]
    if missing or result.unexpected_keys:
        raise ValueError(
            f"ImageNet weights do not fit the backbone: missing {missing}, "
            f"unexpected {result.unexpected_keys}"
        )


def imagenet_weights_url(architecture: str) -> str:
    """Where torchvision's IMAGENET1K_V1 weights come from; the file name holds a sha256 prefix."""
    if architecture not in _IMAGENET_WEIGHTS:
        known = ", ".join(_IMAGENET_WEIGHTS)
        raise ValueError(f"no ImageNet weights for {architecture!r}; known: {known}")
    return _IMAGENET_WEIGHTS[architecture].url


def imagenet_weights_path(architecture: str) -> Path:
    """Where the torch hub cache keeps torchvision's ImageNet file of ``architecture``."""
    url = imagenet_weights_url(architecture)
    return Path(torch.hub.get_dir()) / "checkpoints" / Path(urlparse(url).path).name


def resolve_init(architecture: str, init: str) -> str:
    """The init that ``init`` stands for: ``random`` or ``imagenet``.

    ``auto`` is ``imagenet`` when torchvision's file for ``architecture`` is in the local torch
    hub cache (it is hash-checked when loaded: a corrupt file fails the run rather than being
    passed over), and ``random`` otherwise, with a warning naming the file to place; an
    architecture with no ImageNet weights (small CNNs, logistic regression) is ``random``.
    """
    if init not in INITS:
        raise ValueError(f"unknown init {init!r}; known: {', '.join(INITS)}")
    if init != "auto":
        return init
    if architecture not in _IMAGENET_WEIGHTS:
        log.info("init auto: %s has no ImageNet weights; random init", architecture)
        return "random"
    path = imagenet_weights_path(architecture)
    if path.is_file():
        log.info("init auto: ImageNet weights of %s from %s", architecture, path)
        return "imagenet"
    log.warning(
        "init auto: no ImageNet weights for %s at %s (from %s); training from random init",
        architecture,
        path,
        imagenet_weights_url(architecture),
    )
    return "random"


def load_imagenet_weights(architecture: str) -> dict[str, torch.Tensor]:
    """The ImageNet state dict from the torch hub cache, hash-checked; never downloads."""
    url = imagenet_weights_url(architecture)
    path = imagenet_weights_path(architecture)
    prefix = _hash_prefix(path.name)
    if not path.is_file():
        raise FileNotFoundError(
            f"no ImageNet weights for {architecture}: place {path.name} at {path} "
            f"(from {url}, sha256 prefix {prefix}); cxr never downloads"
        )
    digest = _sha256(path)
    if not digest.startswith(prefix):
        raise ValueError(
            f"{path}: sha256 {digest[: len(prefix)]}... does not match the prefix {prefix} "
            f"in its name; replace it with the file from {url}"
        )
    state = _load_tensors(path)
    return {_new_densenet_key(k): v for k, v in state.items()}


def _hash_prefix(name: str) -> str:
    match = torch.hub.HASH_REGEX.search(name)
    if not match or not match.group(1):
        raise ValueError(f"{name}: no sha256 prefix in the file name")
    return match.group(1)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _load_tensors(path: Path) -> dict[str, torch.Tensor]:
    """``path``'s state dict, loaded with ``weights_only=True``: no code in it can run."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        raise ValueError(
            f"refusing {path}: torch.load(weights_only=True) found more than tensors in it"
        ) from err
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{path} holds a {type(state).__name__}, not a state dict of tensors")
    return state


def _new_densenet_key(key: str) -> str:
    match = _OLD_DENSENET_KEY.match(key)
    return match.group(1) + match.group(2) if match else key


def init_from_checkpoint(
    model: nn.Module, state: dict[str, torch.Tensor]
) -> tuple[list[str], list[str]]:
    """Copy every tensor of ``state`` whose name and shape match ``model``'s (multi-stage transfer).

    Returns the state-dict keys (parameters and buffers) carried and those left as initialised,
    e.g. a head with another number of outputs.
    """
    own = model.state_dict()
    fitting = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    model.load_state_dict(fitting, strict=False)
    return [k for k in own if k in fitting], [k for k in own if k not in fitting]


def backbone_carried(model: nn.Module, carried: list[str]) -> tuple[int, int]:
    """How many of the backbone's parameter tensors ``carried`` holds, and of how many.

    The backbone is everything but the head (the final linear layer, which a stage with
    another number of outputs rightly leaves out); a model that is all head counts whole.
    """
    prefix = f"{_head_name(model)}."
    names = [n for n, _ in model.named_parameters()]
    backbone = [n for n in names if not n.startswith(prefix)] or names
    return len(set(backbone) & set(carried)), len(backbone)


def trainable_blocks(model: nn.Module, spec: ModelSpec, mode: str) -> tuple[str, ...]:
    """Names of the modules of ``model`` that train in transfer ``mode``."""
    if mode not in TRANSFER_MODES:
        raise ValueError(f"unknown transfer mode {mode!r}; known: {', '.join(TRANSFER_MODES)}")
    if mode == "frozen":
        return (_head_name(model),)
    everything = tuple(name for name, _ in model.named_children())
    return LAST_BLOCKS.get(spec.architecture, everything) if mode == "last_blocks" else everything


def set_transfer_mode(model: nn.Module, spec: ModelSpec, mode: str) -> int:
    """Let only ``mode``'s blocks train; returns the number of trainable parameters.

    "full": everything; "frozen": the final linear layer (seed 001's frozen feature extractor);
    "last_blocks": :data:`LAST_BLOCKS` (seed 004). This sets ``requires_grad`` only; the engine
    also runs frozen batch norms in evaluation mode, so their running statistics stay those of
    the weights they came with (Keras' ``trainable=False`` semantics).
    """
    blocks = trainable_blocks(model, spec, mode)
    for name, param in model.named_parameters():
        param.requires_grad = any(name.startswith(f"{block}.") for block in blocks)
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def _head_name(model: nn.Module) -> str:
    return [name for name, m in model.named_modules() if isinstance(m, nn.Linear)][-1]


def head(model: nn.Module) -> nn.Linear:
    """The final linear layer (its weights are CAM's class weights)."""
    return model.get_submodule(_head_name(model))


def feature_layer(model: nn.Module, previous: bool = False) -> nn.Module:
    """The module whose output is the last feature map, for CAM and Grad-CAM.

    DenseNet, AlexNet, VGG: ``features`` (its output is what is pooled); ResNet: ``layer4``;
    small CNN: its last conv block (Grad-CAM only). ``previous``: the map before the last
    downsampling, twice the side (4x4 instead of 2x2 at 64 px): DenseNet's ``denseblock3``,
    ResNet's ``layer3``, the ReLU before VGG's and AlexNet's last max-pool, the small CNN's
    second block. Logistic regression has none (ValueError).
    """
    last = not previous
    if isinstance(model, tvm.ResNet):
        return model.layer4 if last else model.layer3
    if isinstance(model, SmallCNN):
        return model.features[-1 if last else -2]
    if isinstance(model, PooledCNN):
        return model.features if last else _before_last_downsampling(model.features)
    raise ValueError(f"{type(model).__name__} has no convolutional feature map for CAM / Grad-CAM")


def _before_last_downsampling(features: nn.Sequential) -> nn.Module:
    """The child of ``features`` just before the last child that pools (or holds a pool)."""
    pools = (nn.MaxPool2d, nn.AvgPool2d)
    children = list(features.children())
    pooling = [
        i
        for i, child in enumerate(children)
        if isinstance(child, pools) or any(isinstance(m, pools) for m in child.modules())
    ]
    if not pooling or pooling[-1] == 0:
        raise ValueError("no feature map before the last downsampling")
    return children[pooling[-1] - 1]

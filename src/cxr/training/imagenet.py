"""Where torchvision's ImageNet weights of each architecture are cached, without importing
torch: the plan asks this to decide whether ``init: auto`` can start from ImageNet or needs
the synthetic pretraining stand-in. (:mod:`cxr.training.models` loads the files; a test keeps
the two in step.)"""

from __future__ import annotations

import os
from pathlib import Path

#: torchvision's IMAGENET1K_V1 file of each architecture that has one (torch hub cache names).
FILES: dict[str, str] = {
    "densenet121": "densenet121-a639ec97.pth",
    "resnet50": "resnet50-0676ba61.pth",
    "alexnet": "alexnet-owt-7be5be79.pth",
    "vgg19_bn": "vgg19_bn-c79401a0.pth",
}


def hub_dir() -> Path:
    """torch.hub.get_dir(): $TORCH_HOME/hub, else $XDG_CACHE_HOME/torch/hub, else
    ~/.cache/torch/hub."""
    torch_home = os.environ.get("TORCH_HOME")
    if torch_home:
        return Path(os.path.expanduser(torch_home)) / "hub"
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(os.path.expanduser(cache)) / "torch" / "hub"


def cached(architecture: str) -> bool:
    """Whether ``architecture`` has ImageNet weights and their file is in the cache."""
    name = FILES.get(architecture)
    return name is not None and (hub_dir() / "checkpoints" / name).is_file()

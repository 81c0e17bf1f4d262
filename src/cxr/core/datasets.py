"""The datasets cxr knows, by name. Each has a generator in ``cxr.synth`` and an ingester in
``cxr.ingest`` of the same module name."""

from __future__ import annotations

import importlib
from types import ModuleType

DATASETS: tuple[str, ...] = (
    "nih",
    "jsrt",
    "covid_radiography",
    "mura",
    "xray_types",
    "not_xray",
    "imagefolder6",
    "pretrain",
)
#: The synthetic pretraining corpus (:mod:`cxr.synth.pretrain`): a model trained on it is the
#: stand-in for ImageNet features.
PRETRAIN = "pretrain"


#: The 14 ChestX-ray14 findings, alphabetical: the label vocabulary of NIH and of the chest
#: phantom that draws them.
NIH_FINDINGS: tuple[str, ...] = (
    "Atelectasis",
    "Cardiomegaly",
    "Consolidation",
    "Edema",
    "Effusion",
    "Emphysema",
    "Fibrosis",
    "Hernia",
    "Infiltration",
    "Mass",
    "Nodule",
    "Pleural_Thickening",
    "Pneumonia",
    "Pneumothorax",
)


def dataset_module(package: str, dataset: str) -> ModuleType:
    """Import ``cxr.<package>.<dataset>`` lazily, with a clear error for an unknown name."""
    if dataset not in DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}; choose one of {', '.join(DATASETS)}")
    return importlib.import_module(f"cxr.{package}.{dataset}")

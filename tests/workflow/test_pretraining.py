"""The stand-in for ImageNet, run as the workflow runs it: with no ImageNet file cached, a
frozen ``init: auto`` stage starts from its architecture pretrained on the synthetic corpus (a
corpus apart from NIH's images and patients), and without that start cxr train refuses it."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from conftest import BIN, REPO

from cxr.splits.dedup import content_digest
from cxr.splits.near_duplicates import near_duplicate_pairs
from cxr.training.models import ModelSpec, build_model

pytestmark = [pytest.mark.workflow, pytest.mark.slow]

FROZEN = {
    "task": "multilabel",
    "architecture": "alexnet",
    "init": "auto",
    "transfer": "frozen",
    "normalize": "imagenet",
    "loss": "bce",
    "batch_size": 16,
    "epochs": 1,
}
PARAMS = {
    "seed": 3,
    "datasets": {
        name: {
            "enabled": True,
            "source": "synthetic",
            "root": f"data/raw/{name}",
            "synthetic": {"n": 60, "size": 64, "variant": "box"},
        }
        for name in ("nih", "pretrain")
    },
    "preprocess": {
        "presets": {"p64": {"size": 64, "steps": ["resize"]}},
        "build": {"nih": ["p64"]},
    },
    "split": {
        "nih": {"official": {"method": "official", "val_fraction": 0.2}},
        "pretrain": {"official": {"method": "official", "val_fraction": 0.2}},
    },
    "pretraining": {
        "dataset": "pretrain",
        "split": "official",
        "recipe": {**FROZEN, "init": "random", "transfer": "full", "epochs": 2},
    },
    "training": {
        "studies": {
            "frozen": {
                "stages": {
                    "alexnet": {
                        "dataset": "nih",
                        "preset": "p64",
                        "split": "official",
                        "recipe": FROZEN,
                        "cam": {"max_images": 2},
                    }
                }
            }
        }
    },
}


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """A workdir where the frozen stage (and so its stand-in) was trained, and its env."""
    workdir = tmp_path_factory.mktemp("pretraining")
    (workdir / "params.yaml").write_text(yaml.safe_dump(PARAMS))
    env = {
        "PATH": f"{BIN}:/usr/bin:/bin",
        "HOME": str(workdir),
        "TORCH_HOME": str(workdir / "torch"),  # no ImageNet file here
        "DVC_NO_ANALYTICS": "1",
        "MLFLOW_DISABLE_TELEMETRY": "true",
    }
    target = "results/models/frozen/alexnet/split"
    cmd = [str(BIN / "snakemake"), "-s", str(REPO / "Snakefile"), "-d", str(workdir)]
    proc = subprocess.run(
        [*cmd, "--cores", "2", target], env=env, capture_output=True, text=True, check=False
    )
    logs = "\n".join(p.read_text()[-2000:] for p in workdir.glob("logs/**/*.log"))
    assert proc.returncode == 0, proc.stderr[-3000:] + logs
    return workdir, env


def test_a_frozen_auto_stage_starts_from_the_learned_stand_in(tree: tuple[Path, dict]) -> None:
    workdir, _ = tree
    model = workdir / "results/models/frozen/alexnet/split"
    stand_in = workdir / "results/models/pretraining/alexnet_64px/split"
    run = json.loads((model / "run.json").read_text())
    assert run["init_source"] == "synthetic pretraining (not ImageNet)"
    assert run["data"]["init_stage"] == {
        "study": "pretraining",
        "stage": "alexnet_64px",
        "column": "split",
        "dataset": "pretrain",
    }
    mine = torch.load(model / "model.pt", weights_only=True)
    learned = torch.load(stand_in / "model.pt", weights_only=True)
    spec = ModelSpec("alexnet", 14, 64)
    fresh = build_model(spec, init="random", seed=PARAMS["seed"]).state_dict()
    backbone = [k for k in learned if k.startswith("features.") and k in mine]
    assert backbone, sorted(learned)[:5]
    for key in backbone:  # frozen: exactly the stand-in's weights ...
        assert torch.equal(mine[key], learned[key]), key
    # ... and those were learned: pretraining moved them away from a random start
    assert any(not torch.equal(learned[k], fresh[k]) for k in backbone)


def test_the_corpus_shares_no_patient_and_no_picture_with_nih(tree: tuple[Path, dict]) -> None:
    workdir, _ = tree
    corpus = pd.read_parquet(workdir / "results/ingest/pretrain/index.parquet")
    nih = pd.read_parquet(workdir / "results/ingest/nih/index.parquet")
    assert not set(corpus["patient_id"]) & set(nih["patient_id"])
    corpus_images, nih_images = (
        np.load(workdir / f"results/preprocessed/{d}/p64/images.npy") for d in ("pretrain", "nih")
    )
    exact = [{content_digest(img) for img in stack} for stack in (corpus_images, nih_images)]
    assert not exact[0] & exact[1]
    # the duplicate check the splits rest on, over both sets at once: no pair crosses them
    pairs = near_duplicate_pairs(np.concatenate([corpus_images, nih_images]))
    n = len(corpus_images)
    assert not ((pairs["i"] < n) & (pairs["j"] >= n)).any()


def test_a_frozen_stage_from_random_weights_is_refused(tree: tuple[Path, dict]) -> None:
    workdir, env = tree
    recipe = json.dumps({**FROZEN, "study": "frozen", "stage": "alexnet", "input_size": 64})
    args = [
        str(BIN / "cxr"),
        "train",
        "--data",
        "results/preprocessed/nih/p64",
        "--split",
        "results/splits/nih/official.parquet",
        "--recipe-json",
        recipe,
        "--out",
        "elsewhere",
    ]
    proc = subprocess.run(args, cwd=workdir, env=env, capture_output=True, text=True, check=False)
    assert proc.returncode == 1
    assert "transfer frozen would start from random weights" in proc.stderr
    assert not (workdir / "elsewhere").exists()
    allowed = json.dumps({**json.loads(recipe), "allow_random_features": True, "epochs": 1})
    args[args.index(recipe)] = allowed
    proc = subprocess.run(args, cwd=workdir, env=env, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads((workdir / "elsewhere/run.json").read_text())["init_source"] == "random"

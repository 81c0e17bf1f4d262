"""The published studies of params.yaml (seeds 000, 001, 003, 004): each stage's recipe at both
scales, the papers' names beside ours, and the tiny multi-class studies run by the workflow."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml
from conftest import REPO, tiny_params

from cxr.evaluation.paper import REFERENCES
from cxr.plan import Cam, Evaluate, Stage, load
from cxr.training.recipe import Recipe

pytestmark = pytest.mark.workflow

PARAMS = yaml.safe_load((REPO / "params.yaml").read_text())
STUDIES = PARAMS["training"]["studies"]
#: The plan the workflow runs, at each scale.
PLANS = {scale: load(PARAMS, scale) for scale in ("demo", "paper")}
PRESETS = PLANS["demo"].presets


def stage(study: str, name: str, scale: str = "demo") -> Stage:
    return PLANS[scale].stage(study, name)


def recipe(study: str, name: str, scale: str = "demo") -> Recipe:
    """What `cxr train` gets: the stage's recipe at ``scale``."""
    return Recipe.from_dict(stage(study, name, scale).recipe)


def test_the_default_studies_are_the_published_ones() -> None:
    assert set(STUDIES) == {
        "seed000_multistage",
        "seed001_multilabel",
        "seed002_cascade",
        "seed003_smallcnn",
        "seed004_covid",
    }
    assert list(STUDIES["seed001_multilabel"]["stages"]) == [
        "densenet121_noaug", "densenet121", "resnet50_noaug", "resnet50",
    ]  # fmt: skip
    assert list(STUDIES["seed003_smallcnn"]["stages"]) == [
        "smallcnn_v1", "smallcnn_v2", "smallcnn_v3",
    ]  # fmt: skip
    assert list(STUDIES["seed004_covid"]["stages"]) == [
        "alexnet", "vgg19_bn", "resnet50", "resnet50_imagenet_norm", "resnet50_clahe", "logreg",
    ]  # fmt: skip


@pytest.mark.parametrize("scale", ["demo", "paper"])
def test_every_stage_has_a_paper_block_valid_recipes_and_known_paper_names(scale: str) -> None:
    for study, cfg in STUDIES.items():
        for name, raw in cfg["stages"].items():
            assert "paper" in raw, f"{study}/{name}"
            if name in PLANS[scale].report_skipped().get(study, []):
                continue  # not trained at this scale
            recipe(study, name, scale)  # what `cxr train` checks first
            for paper in raw.get("evaluate", {}).get("paper", []):
                assert paper in REFERENCES, f"{study}/{name}: {paper}"
            preset = stage(study, name, scale).preset
            assert preset in PRESETS, f"{study}/{name}: {preset}"


def test_seed001_frozen_backbones_with_and_without_augmentation() -> None:
    for name in STUDIES["seed001_multilabel"]["stages"]:
        demo = recipe("seed001_multilabel", name)
        paper = recipe("seed001_multilabel", name, "paper")
        assert demo.architecture == name.removesuffix("_noaug")
        assert (demo.task, demo.transfer) == ("multilabel", "frozen")
        assert demo.loss == "label_weighted_bce"
        assert demo.findings == ("all",)
        assert demo.augment.active == (not name.endswith("_noaug")) == paper.augment.active
        assert (demo.init, paper.init) == ("auto", "imagenet")
        assert (paper.input_size, paper.batch_size, paper.epochs, paper.early_stopping) == (
            400, 16, 80, 10,
        )  # fmt: skip
        cfg = stage("seed001_multilabel", name)
        # demo: the 4x4 map before the last downsampling (64 px); paper: the last (400 px)
        assert cfg.cam == Cam(method="gradcam", top_k=4, images=4, max_images=32, layer="previous")
        published = stage("seed001_multilabel", name, "paper").cam
        assert (published.max_images, published.layer) == ("all", "last")
        assert cfg.evaluate.threshold == "fixed"  # the 14-label accuracy at 0.5
    papers = STUDIES["seed001_multilabel"]["stages"]["densenet121_noaug"]["evaluate"]["paper"]
    assert "seed001-densenet121-noaug" in papers


@pytest.mark.parametrize("scale", ["demo", "paper"])
def test_seed000_model_b_is_model_c_without_model_a(scale: str) -> None:
    study = STUDIES["seed000_multistage"]
    assert list(study["stages"]) == ["model_a", "model_b", "model_c"]  # Table II's rows
    b, c = (
        stage("seed000_multistage", "model_b", scale),
        stage("seed000_multistage", "model_c", scale),
    )
    # B starts as A does: from ImageNet, or at demo without its file from the stand-in
    assert b.init_from is None or b.init_study == "pretraining"
    assert c.init_from == "model_a"
    same = ("dataset", "preset", "split", "columns")
    assert {k: getattr(b, k) for k in same} == {k: getattr(c, k) for k in same}
    assert b.recipe == {**c.recipe, "stage": "model_b"}
    assert b.split == ("cv4" if scale == "demo" else "cv10")  # pooled: all 247 images either way
    assert b.columns == tuple(f"fold_{i}" for i in range(4 if scale == "demo" else 10))
    assert b.evaluate == Evaluate(threshold="fixed", paper=("seed000-model-b",))
    assert study["compare_cams"]["stages"] == ["model_b", "model_c"]


def test_seed003_three_small_cnns_from_scratch() -> None:
    for version in (1, 2, 3):
        demo = recipe("seed003_smallcnn", f"smallcnn_v{version}")
        paper = recipe("seed003_smallcnn", f"smallcnn_v{version}", "paper")
        assert demo.architecture == f"smallcnn_v{version}"
        assert (demo.task, demo.loss, demo.normalize, demo.init) == (
            "multiclass", "cross_entropy", "none", "random",
        )  # fmt: skip
        assert (paper.input_size, paper.epochs) == (64, 70)
        assert paper.optimizer == ("sgd" if version == 2 else "adam")
        cfg = stage("seed003_smallcnn", f"smallcnn_v{version}")
        assert (cfg.dataset, cfg.split) == ("imagefolder6", "random_60_10_30")  # 240 test images
        published = stage("seed003_smallcnn", f"smallcnn_v{version}", "paper")
        assert published.split == "official"
        assert demo.epochs <= 20  # the three train in about a minute on a 2-core CPU


def test_seed004_partial_fine_tuning_and_its_trials() -> None:
    stages = STUDIES["seed004_covid"]["stages"]
    # demo: VGG19_bn (8 images/s here) and ResNet-50's two trials are trained at paper scale only
    paper_only = ["vgg19_bn", "resnet50_imagenet_norm", "resnet50_clahe"]
    assert PLANS["demo"].report_skipped() == {"seed004_covid": paper_only}
    assert not PLANS["paper"].report_skipped()
    vgg = stage("seed004_covid", "vgg19_bn", "paper")
    assert (vgg.recipe["transfer"], vgg.recipe["init"]) == ("last_blocks", "imagenet")
    for name in (n for n in stages if n not in paper_only):
        cfg, paper = stage("seed004_covid", name), stage("seed004_covid", name, "paper")
        demo = recipe("seed004_covid", name)
        assert (cfg.dataset, cfg.split) == ("covid_radiography", "random_60_10_30")  # 240 test
        assert paper.split == "random_80_10_10"
        assert (demo.task, demo.loss) == ("multiclass", "cross_entropy")
        assert PRESETS[cfg.preset]["size"] == 64
        assert PRESETS[paper.preset]["size"] == 224
        if name == "logreg":
            assert demo.architecture == "logreg" and cfg.cam is None
            continue
        assert (demo.transfer, demo.init, demo.allow_random_features) == (
            "last_blocks", "auto", False,
        )  # fmt: skip
        assert recipe("seed004_covid", name, "paper").init == "imagenet"
    normalize = {name: recipe("seed004_covid", name, "paper").normalize for name in stages}
    assert normalize["resnet50"] == "dataset" and normalize["resnet50_imagenet_norm"] == "imagenet"
    assert "clahe" in PRESETS[stage("seed004_covid", "resnet50_clahe", "paper").preset]["steps"]
    for scale in ("demo", "paper"):
        assert "clahe" not in PRESETS[stage("seed004_covid", "resnet50", scale).preset]["steps"]


def test_tiny_multiclass_stages_are_scored_by_class_with_the_papers_beside(built: Path) -> None:
    for stage_name, dataset, paper in (
        ("smallcnn", "imagefolder6", "Seed 003"),
        ("logreg", "covid_radiography", "Seed 004 logistic regression"),
    ):
        folder = built / "results" / "evaluation" / "tiny_multiclass" / stage_name / "split"
        metrics = json.loads((folder / "metrics.json").read_text())
        assert metrics["task"] == "multiclass"
        labels = pd.read_parquet(built / f"results/preprocessed/{dataset}/tiny_eq/index.parquet")
        assert metrics["outputs"] == sorted(labels["label"].unique())  # ImageFolder's order
        assert 0 <= metrics["accuracy_overall"] <= 1
        assert paper in metrics["paper"]
        assert paper in (folder / "metrics.md").read_text()
        model = built / "results" / "models" / "tiny_multiclass" / stage_name / "split"
        run = json.loads((model / "run.json").read_text())
        assert run["init_weights"] == "random"
    covid = json.loads(
        (built / "results/evaluation/tiny_multiclass/logreg/split/metrics.json").read_text()
    )
    assert set(covid["predicted_as_normal"]) == {"COVID", "Lung_Opacity", "Viral Pneumonia"}


@pytest.mark.parametrize("scale", ["demo", "paper"])
def test_seed002_cascade_modules_follow_the_paper(scale: str) -> None:
    cascade = PLANS[scale].cascade
    assert cascade.study == "seed002_cascade"
    assert cascade.modules == tuple(STUDIES["seed002_cascade"]["stages"])
    assert cascade.modules == ("module_i", "module_ii", "module_iii")
    assert set(cascade.sources) == {"not_xray", "xray_types", "mura", "nih"}
    datasets = {
        "module_i": "cascade_xray",
        "module_ii": "cascade_type",
        "module_iii": "cascade_chest",
    }
    for name, dataset in datasets.items():
        cfg = stage("seed002_cascade", name, scale)
        assert (cfg.dataset, cfg.split, cfg.preset) == (dataset, "heldout", cascade.preset)
        assert recipe("seed002_cascade", name, scale).architecture == "densenet121"
    one, three = (
        recipe("seed002_cascade", "module_i", scale),
        recipe("seed002_cascade", "module_iii", scale),
    )
    assert (one.optimizer, one.lr, one.weight_decay, one.epochs) == ("adam", 1e-3, 1e-5, 10)
    assert (three.optimizer, three.weight_decay, three.epochs) == ("radam", 3e-4, 15)
    assert (three.task, three.findings, one.normalize) == ("multilabel", ("all",), "imagenet")
    assert three.loss == ("bce" if scale == "paper" else "label_weighted_bce")
    assert (one.scheduler, one.plateau_factor, one.plateau_patience) == ("plateau", 0.1, 3)
    if scale == "paper":
        assert (one.input_size, one.init, one.transfer, three.lr) == (224, "imagenet", "full", 1e-4)
    papers = {n: stage("seed002_cascade", n).evaluate.paper for n in datasets}
    assert papers == {
        "module_i": ("seed002-module-i",),
        "module_ii": ("seed002-module-ii",),
        "module_iii": ("seed002",),
    }


def test_tiny_cascade_runs_end_to_end_on_a_held_out_set_no_module_trained_on(
    built: Path,
) -> None:
    results = built / "results"
    held = pd.read_parquet(results / "preprocessed/cascade_heldout/tiny_eq/index.parquet")
    sources = tiny_params()["training"]["studies"]["tiny_cascade"]["cascade"]["sources"]
    tests = {
        name: set(
            pd.read_parquet(results / f"splits/{name}/{scheme}.parquet")
            .query("split == 'test'")["image_id"]
            .map(lambda i, n=name: f"{n}/{i}")
        )
        for name, scheme in sources.items()
    }
    assert set(held["image_id"]) == set().union(*tests.values())
    for name in ("cascade_xray", "cascade_type", "cascade_chest"):
        split = pd.read_parquet(results / f"splits/{name}/heldout.parquet")
        trained = set(split.loc[split["split"].isin(["train", "val"]), "image_id"])
        assert not trained & set(held["image_id"]), name
        report = json.loads((results / f"metrics/splits/{name}/heldout.json").read_text())
        assert set(report["splits"]["split"]["overlap"].values()) == {0}
    folder = results / "evaluation/tiny_cascade/end_to_end"
    metrics = json.loads((folder / "metrics.json").read_text())
    assert metrics["images"] == len(held)
    predictions = pd.read_csv(folder / "predictions.csv")
    assert sorted(predictions["image_id"]) == sorted(held["image_id"])
    assert metrics["end_to_end_accuracy"] == pytest.approx(predictions["end_to_end_right"].mean())
    assert (folder / "routes.png").stat().st_size > 0
    summary = json.loads((results / "metrics/train/tiny_cascade/end_to_end.json").read_text())
    assert summary["end_to_end_accuracy"] == metrics["end_to_end_accuracy"]  # for dvc metrics
    report = (results / "report.md").read_text()
    assert "tiny_cascade / the cascade end to end" in report
    assert "paper end to end" in report

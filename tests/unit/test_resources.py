"""cxr.plan.resources: what the rules' jobs ask a scheduler for, at demo and at paper scale."""

from __future__ import annotations

import copy

import pytest
import yaml
from conftest import REPO, tiny_params

from cxr.plan import Sizing, load
from cxr.plan.resources import GPU_SPEEDUP, MIN_RUNTIME, REAL_IMAGES, STARTUP_S, TIME_MARGIN

PARAMS = yaml.safe_load((REPO / "params.yaml").read_text())

#: Jobs of a full default run at demo scale on 2 cores (its logs/**/*.benchmark.tsv): rule,
#: wildcards, seconds, peak RSS in MB. What they declare must cover them.
MEASURED = [
    ("train", {"study": "seed000_multistage", "stage": "model_a", "column": "split"}, 57, 1492),
    ("train", {"study": "seed000_multistage", "stage": "model_c", "column": "fold_3"}, 24, 1486),
    ("train", {"study": "seed001_multilabel", "stage": "resnet50", "column": "split"}, 54, 1264),
    ("train", {"study": "seed001_multilabel", "stage": "densenet121", "column": "split"}, 40, 1049),
    ("train", {"study": "seed002_cascade", "stage": "module_ii", "column": "split"}, 24, 1075),
    ("train", {"study": "seed003_smallcnn", "stage": "smallcnn_v3", "column": "split"}, 34, 1036),
    ("train", {"study": "seed004_covid", "stage": "resnet50", "column": "split"}, 86, 1617),
    ("cam", {"study": "seed001_multilabel", "stage": "resnet50", "column": "split"}, 21, 1310),
    ("evaluate", {"study": "seed001_multilabel", "stage": "resnet50", "column": "split"}, 9, 337),
    ("duplicates", {"dataset": "nih"}, 29, 802),
    ("preprocess", {"dataset": "jsrt", "preset": "eq_median_224"}, 5, 416),
    ("synth", {"dataset": "jsrt"}, 9, 431),
    ("cascade_sets", {}, 26, 1062),
    ("cascade_evaluate", {}, 19, 1305),
]


@pytest.fixture(scope="module")
def demo() -> Sizing:
    return Sizing(load(PARAMS, "demo"))


@pytest.fixture(scope="module")
def paper() -> Sizing:
    return Sizing(load(PARAMS, "paper"))


def real(params: dict) -> dict:
    """``params`` with every dataset read from its real download."""
    out = copy.deepcopy(params)
    for dataset in out["datasets"].values():
        dataset["source"] = "real"
    return out


@pytest.mark.parametrize(("rule", "wildcards", "seconds", "mb"), MEASURED)
def test_demo_declarations_cover_the_measured_jobs_with_a_margin(
    demo: Sizing, rule: str, wildcards: dict, seconds: float, mb: float
) -> None:
    assert demo.runtime(rule, **wildcards) * 60 >= 1.5 * seconds
    assert demo.mem_mb(rule, **wildcards) >= 1.4 * mb


def test_declarations_are_whole_minutes_and_256_mb_blocks_growing_with_each_attempt(
    demo: Sizing,
) -> None:
    job = {"study": "seed000_multistage", "stage": "model_a", "column": "split"}
    first, second = demo.mem_mb("train", **job), demo.mem_mb("train", 2, **job)
    assert first % 256 == 0 and second % 256 == 0
    assert second >= 2 * first - 256
    assert demo.runtime("train", 2, **job) == 2 * demo.runtime("train", **job)
    assert demo.runtime("report") >= MIN_RUNTIME  # bookkeeping rules get a floor


def test_paper_scale_grows_with_pixels_images_and_epochs_and_runs_on_a_gpu() -> None:
    demo, paper = Sizing(load(real(PARAMS), "demo")), Sizing(load(real(PARAMS), "paper"))
    job = {"study": "seed000_multistage", "stage": "model_a", "column": "split"}
    small, large = demo.need("train", **job), paper.need("train", **job)
    # model_a: NIH, densenet121; demo 64 px x 2 epochs, paper 224 px x 30 epochs, on a GPU
    work = (224 / 64) ** 2 * 30 / 2 / GPU_SPEEDUP
    assert large.seconds - STARTUP_S == pytest.approx((small.seconds - STARTUP_S) * work)
    assert paper.mem_mb("train", **job) > demo.mem_mb("train", **job)
    # the published NIH set: its uint8 tensors at 224 px alone are 5.2 GiB
    assert paper.images("nih") == REAL_IMAGES["nih"]
    assert paper.tensors_mb("nih", "eq_median_224") == pytest.approx(112_120 * 224**2 / 2**20)
    assert paper.mem_mb("train", **job) > 1.5 * paper.tensors_mb("nih", "eq_median_224")


def test_a_frozen_backbone_without_augmentation_runs_once(demo: Sizing) -> None:
    frozen = {"study": "seed001_multilabel", "column": "split"}
    cached = demo.need("train", stage="densenet121_noaug", **frozen)  # 12 epochs, cached
    augmented = demo.need("train", stage="densenet121", **frozen)  # 2 epochs, forward each
    assert (augmented.seconds - STARTUP_S) == pytest.approx(2 * (cached.seconds - STARTUP_S))


def test_every_job_of_the_tiny_workflow_gets_a_declaration() -> None:
    resources = Sizing(load(tiny_params()))
    plan = resources.plan
    for study, stage, column in plan.models():
        job = {"study": study, "stage": stage, "column": column}
        for rule in ("train", "evaluate", "cam", "train_summary"):
            assert resources.runtime(rule, **job) >= MIN_RUNTIME
            assert resources.mem_mb(rule, **job) >= 512
    for dataset in plan.enabled:
        for rule in ("synth", "ingest", "duplicates"):
            assert resources.mem_mb(rule, dataset=dataset) >= 512
    assert resources.runtime("cascade_sets") * 60 >= TIME_MARGIN * STARTUP_S
    assert resources.mem_mb("cam_compare", study="tiny_transfer", pair="model_b_vs_model_c",
                            column="fold_0") >= 512  # fmt: skip

"""cxr.plan and cxr.layout without Snakemake: loading, the paper scale, the expansion into jobs,
the cross-checks, the arguments the rules pass, and `cxr plan`."""

from __future__ import annotations

import copy
import json
import subprocess
import sys

import pytest
import yaml
from conftest import REPO, tiny_params

from cxr.cli import main
from cxr.layout import Layout
from cxr.plan import Cam, Evaluate, Jobs, PlanError, load
from cxr.plan.show import as_text

PARAMS = yaml.safe_load((REPO / "params.yaml").read_text())


@pytest.fixture(scope="module")
def tiny() -> Jobs:
    return Jobs(load(tiny_params()))


# --- load and scale ---------------------------------------------------------------------------


def test_load_fills_the_schema_defaults_in() -> None:
    plan = load(tiny_params())
    assert plan.scale == "demo"
    assert plan.presets["tiny_eq"] == {
        "size": 32, "steps": ["equalize", "median3", "resize"], "fit": "stretch",
        "clahe_clip": 2.0, "clahe_tile": 8,
    }  # fmt: skip
    main = plan.stage("tiny_multilabel", "main")
    assert main.evaluate == Evaluate("youden", ())  # no evaluate block: the schema's default
    assert main.cam == Cam("auto", 4, 4, "all")  # no cam block: the schema's defaults
    assert plan.stage("tiny_multiclass", "logreg").cam is None  # no feature map
    assert plan.cascade.chest_fraction == 0.5
    params = tiny_params()
    del params["training"]["studies"]["tiny_cascade"]["cascade"]["chest_fraction"]
    assert load(params).cascade.chest_fraction == 0.1


def test_load_leaves_its_argument_untouched() -> None:
    params = tiny_params()
    before = copy.deepcopy(params)
    load(params, "paper")
    assert params == before


@pytest.mark.parametrize(("scale", "models", "stand_ins"), [("demo", 25, 3), ("paper", 37, 0)])
def test_the_real_params_expand_at_both_scales(
    scale: str, models: int, stand_ins: int, tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without ImageNet files (an empty torch hub cache), demo's `init: auto` stages start
    from three pretraining stand-ins (DenseNet-121, ResNet-50, AlexNet at 64 px; VGG19_bn and
    ResNet-50's two trials are trained at paper scale only); paper's `init: imagenet` needs
    none, and its corpus is not built. Demo trains seed 000's Models B and C on 4 folds
    without maps of their own (compare_cams draws them, on fold 0); paper on 10 with."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    plan = load(PARAMS, scale)
    assert plan.scale == scale
    assert len(plan.models()) == len(plan.model_targets()) == models
    assert len(plan.train_metric_targets()) == models
    evaluations = plan.evaluation_targets()
    summaries = ("/folds", "/pooled")
    assert sum("/evaluation/" in t and not t.endswith(summaries) for t in evaluations) == models
    # no CAM of logistic regression nor of a stand-in, nor at demo of Models B and C
    unmapped = 1 + stand_ins + (8 if scale == "demo" else 0)
    assert sum("/cam/" in t for t in evaluations) == models - unmapped
    assert sum(t.endswith("/folds") for t in evaluations) == 2  # Models B and C
    assert sum(t.endswith("/pooled") for t in evaluations) == 2  # their folds pooled
    assert len(plan.compare_targets()) == (1 if scale == "demo" else 10)  # JSRT's folds
    paper_only = ["vgg19_bn", "resnet50_imagenet_norm", "resnet50_clahe"]
    skipped = {"seed004_covid": paper_only} if scale == "demo" else {}
    assert plan.report_skipped() == skipped
    corpus = 1 if stand_ins else 0
    assert len(plan.preprocessed_targets()) == 7 + corpus  # preprocess.build (+ the corpus)
    assert len(plan.leakage_targets()) == 13 + corpus  # every split scheme (cascade: below)
    assert len(plan.cascade_targets()) == 4
    assert sum(len(s.stages) for s in plan.trained) == (16 if scale == "demo" else 19) + stand_ins


def test_paper_merges_each_stage_and_cascade_paper_block_key_by_key() -> None:
    demo, paper = load(PARAMS), load(PARAMS, "paper")
    assert load({**PARAMS, "scale": "paper"}).scale == "paper"  # the file's own scale
    a, b = (plan.stage("seed001_multilabel", "densenet121") for plan in (demo, paper))
    assert (a.preset, b.preset) == ("plain_64", "plain_400")
    assert (a.recipe["epochs"], b.recipe["epochs"]) == (2, 80)
    assert (a.recipe["init"], b.recipe["init"]) == ("auto", "imagenet")
    assert a.recipe["augment"] == b.recipe["augment"]  # a recipe key the paper block leaves
    assert (a.recipe["input_size"], b.recipe["input_size"]) == (64, 400)
    assert (a.cam.max_images, b.cam.max_images) == (32, "all")
    c = paper.stage("seed000_multistage", "model_c")
    assert c.columns == tuple(f"fold_{i}" for i in range(10))  # folds: all
    assert (demo.cascade.preset, paper.cascade.preset) == ("plain_64", "plain_224")
    tiny = load(tiny_params(), "paper").stage("tiny_transfer", "model_a")
    assert tiny.recipe["epochs"] == 2


def test_tiny_params_expand_into_the_workflow_jobs(tiny: Jobs) -> None:
    plan = tiny.plan
    assert [s.name for s in plan.trained] == [
        "tiny_multilabel", "tiny_transfer", "tiny_multiclass", "tiny_cascade",
    ]  # fmt: skip
    assert len(plan.models()) == 13
    assert plan.stage("tiny_transfer", "model_c").init_columns == dict.fromkeys(
        ("fold_0", "fold_1", "fold_2"), "split"
    )
    assert plan.compare_targets() == [
        f"results/cam_compare/tiny_transfer/model_b_vs_model_c/fold_{i}.png" for i in range(3)
    ]
    summaries = [t for t in plan.evaluation_targets() if t.endswith(("/folds", "/pooled"))]
    assert summaries == [
        f"results/evaluation/tiny_transfer/{stage}/{summary}"
        for stage in ("model_b", "model_c")
        for summary in ("folds", "pooled")
    ]  # the k-fold stages only, each pooled beside its fold summary
    assert plan.cascade_targets() == [
        "results/evaluation/tiny_cascade/end_to_end",
        "results/metrics/splits/cascade_xray/heldout.json",
        "results/metrics/splits/cascade_type/heldout.json",
        "results/metrics/splits/cascade_chest/heldout.json",
    ]
    assert plan.report_studies() == {
        "tiny_multilabel": ["main"],
        "tiny_transfer": ["model_a", "model_b", "model_c"],
        "tiny_multiclass": ["smallcnn", "logreg"],
        "tiny_cascade": ["module_i", "module_ii", "module_iii"],
    }


def test_a_study_on_a_disabled_dataset_is_not_trained() -> None:
    params = tiny_params()
    params["datasets"]["mura"]["enabled"] = False  # a source of the cascade
    params["training"]["studies"]["tiny_transfer"]["enabled"] = False
    plan = load(params)
    assert [s.name for s in plan.trained] == ["tiny_multilabel", "tiny_multiclass"]
    assert "mura" not in plan.enabled
    assert plan.cascade_targets() == []
    assert "cascade_xray" not in plan.report_sources()


# --- cross-checks -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        ({"init_from": "model_c"}, "init_from 'model_c' is not an earlier stage of tiny_transfer"),
        ({"folds": [0, 5]}, "fold(s) [5] not in cv3 (folds 0..2)"),
        ({"split": "random"}, "jsrt has no split scheme 'random'"),
        ({"preset": "huge"}, "unknown preset 'huge'"),
        (
            {"dataset": "nih", "split": "official"},
            "folds need a kfold scheme; official is official",
        ),
        ({"dataset": "cascade_xray"}, "cascade_xray needs a `cascade` block in tiny_transfer"),
    ],
)
def test_a_bad_stage_is_named(edit: dict, message: str) -> None:
    params = tiny_params()
    params["training"]["studies"]["tiny_transfer"]["stages"]["model_c"].update(edit)
    with pytest.raises(PlanError, match="training tiny_transfer/model_c: ") as err:
        load(params)
    assert message in str(err.value)


def test_a_fold_without_its_init_fold_is_named() -> None:
    params = tiny_params()
    stages = params["training"]["studies"]["tiny_transfer"]["stages"]
    stages["model_c"]["init_from"] = "model_b"
    stages["model_b"]["folds"] = [0, 1]
    with pytest.raises(PlanError, match="training tiny_transfer/model_c: fold_2 starts from "):
        load(params)


def test_a_cascade_stage_off_the_cascade_preset_is_named() -> None:
    params = tiny_params()
    params["training"]["studies"]["tiny_cascade"]["stages"]["module_ii"]["preset"] = "tiny_pad"
    with pytest.raises(PlanError, match="training tiny_cascade/module_ii: a cascade set is read"):
        load(params)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        ({"sources": {"nih": "official", "mura": "random"}}, "mura has no split scheme 'random'"),
        ({"modules": ["module_i", "module_ii", "model_x"]}, "module(s) ['model_x'] are not"),
    ],
)
def test_a_bad_cascade_is_named(edit: dict, message: str) -> None:
    params = tiny_params()
    params["training"]["studies"]["tiny_cascade"]["cascade"].update(edit)
    with pytest.raises(PlanError, match="tiny_cascade cascade: ") as err:
        load(params)
    assert message in str(err.value)


def test_only_one_study_may_have_a_cascade() -> None:
    params = tiny_params()
    studies = params["training"]["studies"]
    studies["tiny_transfer"]["cascade"] = studies["tiny_cascade"]["cascade"]
    with pytest.raises(PlanError, match="found tiny_transfer, tiny_cascade"):
        load(params)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        ({"stages": ["model_b", "model_x"]}, "unknown stage(s) ['model_x']"),
        ({"labels": ["B"]}, "1 labels for 2 stages"),
        ({"stages": ["model_a", "model_c"]}, "must share dataset, preset and split scheme"),
    ],
)
def test_a_bad_compare_cams_is_named(edit: dict, message: str) -> None:
    params = tiny_params()
    params["training"]["studies"]["tiny_transfer"]["compare_cams"].update(edit)
    with pytest.raises(PlanError, match="training tiny_transfer: compare_cams: ") as err:
        load(params)
    assert message in str(err.value)


def test_compared_stages_without_a_common_fold_are_named() -> None:
    params = tiny_params()
    stages = params["training"]["studies"]["tiny_transfer"]["stages"]
    stages["model_b"]["folds"], stages["model_c"]["folds"] = [0], [1]
    with pytest.raises(PlanError, match="model_b, model_c train no split column in common"):
        load(params)


def test_a_schema_error_names_where_it_is() -> None:
    params = tiny_params()
    params["training"]["studies"]["tiny_transfer"]["stages"]["model_c"]["recipe"]["lr"] = -1
    with pytest.raises(PlanError, match="tiny_transfer/stages/model_c/recipe/lr: -1 is less"):
        load(params)
    with pytest.raises(PlanError, match="scale: 'huge' is not one of"):
        load(tiny_params(), "huge")


def test_a_stage_of_one_fold_is_summarised_but_not_pooled() -> None:
    params = tiny_params()
    params["training"]["studies"]["tiny_transfer"]["stages"]["model_b"]["folds"] = [1]
    jobs = Jobs(load(params))
    targets = jobs.plan.evaluation_targets()
    assert "results/evaluation/tiny_transfer/model_b/folds" in targets
    assert "results/evaluation/tiny_transfer/model_b/pooled" not in targets
    assert "results/evaluation/tiny_transfer/model_c/pooled" in targets
    with pytest.raises(PlanError, match="tiny_transfer/model_b trains one fold: nothing to pool"):
        jobs.pooled_inputs("tiny_transfer", "model_b")


def test_a_job_outside_the_plan_is_named(tiny: Jobs) -> None:
    with pytest.raises(PlanError, match="no training stage tiny_transfer/model_x in params"):
        tiny.train_inputs("tiny_transfer", "model_x", "split")
    with pytest.raises(PlanError, match="training tiny_transfer/model_c does not train split"):
        tiny.train_inputs("tiny_transfer", "model_c", "split")
    with pytest.raises(PlanError, match="tiny_transfer/model_a trains no folds"):
        tiny.fold_evaluations("tiny_transfer", "model_a")
    with pytest.raises(PlanError, match="tiny_transfer/model_a trains no folds"):
        tiny.pooled_inputs("tiny_transfer", "model_a")
    with pytest.raises(PlanError, match="tiny_transfer has no compare_cams of a_vs_b"):
        tiny.compare_args("tiny_transfer", "a_vs_b", "fold_0")


# --- what the rules pass ------------------------------------------------------------------------


def test_the_recipe_json_is_what_cxr_train_gets(tiny: Jobs) -> None:
    assert tiny.recipe_json("tiny_transfer", "model_c") == (
        '{"architecture": "smallcnn_v1", "batch_size": 16, "epochs": 1, "input_size": 32, '
        '"loss": "weighted_bce", "positive": "Nodule", "seed": 7, "stage": "model_c", '
        '"study": "tiny_transfer", "task": "binary"}'
    )


def test_the_training_job_inputs_and_arguments(tiny: Jobs) -> None:
    assert tiny.train_inputs("tiny_transfer", "model_c", "fold_1") == {
        "data": "results/preprocessed/jsrt/tiny_eq",
        "split": "results/splits/jsrt/cv3.parquet",
        "leakage": "results/metrics/splits/jsrt/cv3.json",
        "init": "results/models/tiny_transfer/model_a/split",
    }
    assert tiny.init_arg("tiny_transfer", "model_c", "fold_1") == (
        "--init results/models/tiny_transfer/model_a/split/model.pt"
    )
    assert tiny.init_arg("tiny_transfer", "model_a", "split") == ""
    assert tiny.data_version_arg("tiny_transfer", "model_c") == ""  # no DVC pointer


def test_the_evaluation_and_cam_arguments(tiny: Jobs) -> None:
    assert tiny.evaluate_args("tiny_transfer", "model_a") == "--threshold youden"
    assert tiny.evaluate_args("tiny_cascade", "module_iii") == "--threshold youden --paper seed002"
    assert tiny.cam_args("tiny_cascade", "module_iii", "split") == (
        "--method auto --top-k 2 --figure-images 2 --split-column split"
    )
    assert tiny.fold_metric_files("tiny_transfer", "model_b") == " ".join(
        f"results/evaluation/tiny_transfer/model_b/fold_{i}/metrics.json" for i in range(3)
    )
    assert tiny.pooled_inputs("tiny_transfer", "model_b") == {
        "models": [f"results/models/tiny_transfer/model_b/fold_{i}" for i in range(3)],
        "data": "results/preprocessed/jsrt/tiny_eq",
    }
    assert tiny.pooled_model_args("tiny_transfer", "model_b") == " ".join(
        f"--model results/models/tiny_transfer/model_b/fold_{i}" for i in range(3)
    )
    assert tiny.compare_args("tiny_transfer", "model_b_vs_model_c", "fold_0") == (
        "--model results/models/tiny_transfer/model_b/fold_0 --label model_b"
        " --model results/models/tiny_transfer/model_c/fold_0 --label model_c"
        " --method auto --images 2"
    )
    seed001 = Jobs(load(PARAMS))
    assert seed001.cam_args("seed001_multilabel", "resnet50", "split") == (
        "--method gradcam --top-k 4 --figure-images 4 --split-column split --max-images 32"
        " --layer previous"
    )


def test_the_cascade_and_report_arguments(tiny: Jobs) -> None:
    assert tiny.cascade_source_args().startswith(
        "--source not_xray results/preprocessed/not_xray/tiny_eq "
        "results/splits/not_xray/random_70_20_10.parquet --source xray_types "
    )
    folders, splits, report = tiny.cascade_outputs()
    assert folders["heldout"] == "results/preprocessed/cascade_heldout/tiny_eq"
    assert splits["chest_split"] == "results/splits/cascade_chest/heldout.parquet"
    assert report == "results/metrics/cascade/tiny_eq.json"
    assert tiny.cascade_modules()[2] == "results/models/tiny_cascade/module_iii/split"
    assert json.loads(tiny.report_sources_json())["cascade_heldout"] == "synthetic"
    assert list(json.loads(tiny.report_studies_json())) == list(tiny.plan.report_studies())
    # no study names its headline: each study's last stage leads the report
    assert json.loads(tiny.report_headlines_json())["tiny_transfer"] == "model_c"


def test_a_study_names_its_headline_stage() -> None:
    params = tiny_params()
    params["training"]["studies"]["tiny_transfer"]["headline"] = "model_b"
    assert load(params).report_headlines()["tiny_transfer"] == "model_b"
    params["training"]["studies"]["tiny_transfer"]["headline"] = "model_z"
    with pytest.raises(PlanError, match="headline 'model_z' is not a stage of tiny_transfer"):
        load(params)


def test_a_stage_may_go_without_maps() -> None:
    params = tiny_params()
    params["training"]["studies"]["tiny_transfer"]["stages"]["model_b"]["cam"] = {"enabled": False}
    plan = load(params)
    assert plan.stage("tiny_transfer", "model_b").cam is None
    assert plan.stage("tiny_transfer", "model_c").cam is not None
    cams = [t for t in plan.evaluation_targets() if "/cam/tiny_transfer/" in t]
    assert cams and not any("/model_b/" in t for t in cams)


def test_a_real_dataset_is_read_from_its_root_and_versioned_by_its_pointer(
    tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    params = tiny_params()
    params["datasets"]["jsrt"] |= {"source": "real", "root": "data/raw/jsrt/"}
    jobs = Jobs(load(params))
    monkeypatch.chdir(tmp_path)
    assert jobs.dataset_inputs("jsrt") == ["data/raw/jsrt/"]
    (tmp_path / "data/raw").mkdir(parents=True)
    (tmp_path / "data/raw/jsrt.dvc").write_text("outs:\n- md5: abc.dir\n  path: jsrt\n")
    assert jobs.dataset_inputs("jsrt") == ["data/raw/jsrt/", "data/raw/jsrt.dvc"]
    assert jobs.data_version_arg("tiny_transfer", "model_b") == "--data-version abc.dir"
    assert jobs.plan.report_sources()["jsrt"] == "real"


# --- layout -----------------------------------------------------------------------------------


def test_the_layout_gives_the_rules_patterns() -> None:
    layout = Layout()
    assert (
        layout.model("{study}", "{stage}", "{column}") == "results/models/{study}/{stage}/{column}"
    )
    assert layout.preprocessed("{dataset}", "{preset}") == "results/preprocessed/{dataset}/{preset}"
    assert layout.fold_summary("{study}", "{stage}") == "results/evaluation/{study}/{stage}/folds"
    assert layout.pooled_evaluation("s", "t") == "results/evaluation/s/t/pooled"
    assert layout.cam_compare("s", "a_vs_b", "fold_0") == "results/cam_compare/s/a_vs_b/fold_0.png"
    assert layout.predictions("s", "t", "split", "val") == (
        "results/models/s/t/split/predictions/val.parquet"
    )
    assert (
        layout.log("train", "{study}/{stage}/{column}") == "logs/train/{study}/{stage}/{column}.log"
    )
    assert layout.benchmark("preprocess", "{dataset}_{preset}") == (
        "logs/preprocess/{dataset}_{preset}.benchmark.tsv"
    )
    assert layout.log("report") == "logs/report.log"
    assert layout.benchmark("cascade_sets") == "logs/cascade_sets.benchmark.tsv"
    assert Layout.pointer("data/raw/nih/") == "data/raw/nih.dvc"
    moved = Layout(data="/d", results="/r", logs="/l")
    assert moved.cascade_summary("s") == "/r/metrics/train/s/end_to_end.json"
    assert (moved.synthetic("nih"), moved.log("gallery")) == ("/d/synthetic/nih", "/l/gallery.log")


def test_plan_and_layout_import_nothing_heavy() -> None:
    code = "import sys, cxr.plan; print(sorted({'torch', 'pandas', 'mlflow'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# --- cxr plan -----------------------------------------------------------------------------------


def test_cxr_plan_prints_the_resolved_plan(tmp_path, capsys: pytest.CaptureFixture) -> None:
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump(tiny_params()))
    assert main(["plan", "--params", str(params)]) == 0
    text = capsys.readouterr().out
    assert text.startswith("Scale demo, seed 7.")
    assert "Study tiny_transfer: trained" in text
    assert (
        "  model_c: jsrt / tiny_eq (32 px) / cv3 -> folds 0-2, from model_a's split model" in text
    )
    assert "    cam      none" in text  # logistic regression: no feature map
    assert "  compare_cams model_b vs model_c on folds 0-2 (auto, 2 images each)" in text
    assert all(len(line) <= 100 for line in text.splitlines())

    assert main(["plan", "--params", str(params), "--scale", "paper", "--json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan["scale"] == "paper"
    model_a = plan["studies"]["tiny_transfer"]["stages"]["model_a"]
    assert model_a["recipe"]["epochs"] == 2
    assert model_a["columns"] == ["split"]
    assert plan["studies"]["tiny_cascade"]["trained"] is True


def test_cxr_plan_names_what_is_wrong(tmp_path, caplog: pytest.LogCaptureFixture) -> None:
    params = tmp_path / "params.yaml"
    bad = tiny_params()
    bad["training"]["studies"]["tiny_transfer"]["stages"]["model_c"]["init_from"] = "model_x"
    params.write_text(yaml.safe_dump(bad))
    assert main(["plan", "--params", str(params)]) == 1
    assert "training tiny_transfer/model_c: init_from 'model_x'" in caplog.text


# --- the synthetic pretraining stand-in ---------------------------------------------------------


def _frozen_params() -> dict:
    """The tiny configuration with the pretraining corpus, its block and a frozen auto stage."""
    params = tiny_params()
    params["datasets"]["pretrain"] = {
        "enabled": True, "source": "synthetic", "root": "data/raw/pretrain",
        "synthetic": {"n": 40, "size": 64, "variant": "box"},
    }  # fmt: skip
    params["split"]["pretrain"] = {"official": {"method": "official"}}
    recipe = {"task": "multilabel", "architecture": "alexnet", "loss": "bce", "epochs": 1}
    params["pretraining"] = {
        "dataset": "pretrain", "split": "official", "recipe": recipe,
        "by_architecture": {"alexnet": {"lr": 0.0001}, "vgg19_bn": {"epochs": 2}},
    }  # fmt: skip
    frozen = {**recipe, "init": "auto", "transfer": "frozen"}
    params["training"]["studies"]["tiny_multilabel"]["stages"]["frozen"] = {
        "dataset": "nih", "preset": "tiny_eq", "split": "official", "recipe": frozen,
    }  # fmt: skip
    return params


def test_an_auto_stage_without_imagenet_starts_from_the_stand_in(
    tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # an empty cache
    plan = load(_frozen_params())
    assert next(iter(plan.studies)) == "pretraining"  # trained first, reported first
    stand_in = plan.stage("pretraining", "alexnet_32px")
    assert (stand_in.dataset, stand_in.preset, stand_in.columns) == (
        "pretrain",
        "tiny_eq",
        ("split",),
    )
    assert (
        stand_in.recipe["architecture"] == "alexnet"
        and stand_in.recipe.get("init", "random") == "random"
    )
    assert (stand_in.recipe["lr"], stand_in.recipe["epochs"]) == (0.0001, 1)  # its own rate
    frozen = plan.stage("tiny_multilabel", "frozen")
    assert (frozen.init_study, frozen.init_from, frozen.init_columns) == (
        "pretraining", "alexnet_32px", {"split": "split"},
    )  # fmt: skip
    assert plan.builds["pretrain"] == ("tiny_eq",)
    jobs = Jobs(plan)
    weights = "results/models/pretraining/alexnet_32px/split/model.pt"
    assert jobs.init_arg("tiny_multilabel", "frozen", "split") == f"--init {weights}"
    assert plan.stage("tiny_multilabel", "main").init_from is None  # smallcnn: no ImageNet


def test_with_imagenet_cached_no_stand_in_is_trained(tmp_path, monkeypatch) -> None:
    from cxr.training import imagenet

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    (tmp_path / "hub" / "checkpoints").mkdir(parents=True)
    (tmp_path / "hub" / "checkpoints" / imagenet.FILES["alexnet"]).touch()
    plan = load(_frozen_params())
    assert "pretraining" not in plan.studies
    assert plan.stage("tiny_multilabel", "frozen").init_from is None
    assert "pretrain" not in plan.enabled  # the corpus is not even generated


def test_a_study_may_not_take_the_stand_ins_name() -> None:
    params = _frozen_params()
    studies = params["training"]["studies"]
    studies["pretraining"] = studies.pop("tiny_multiclass")
    with pytest.raises(PlanError, match="a study may not be named 'pretraining'"):
        load(params)


def test_a_study_whose_data_is_disabled_gets_no_stand_in(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # an empty cache
    params = _frozen_params()
    params["datasets"]["nih"]["enabled"] = False  # tiny_multilabel reads nih: not trained
    plan = load(params)
    assert "tiny_multilabel" not in {s.name for s in plan.trained}
    assert plan.stage("tiny_multilabel", "frozen").init_from is None
    assert "pretraining" not in plan.studies and "pretrain" not in plan.enabled


# --- stages per scale, the compared folds, scheduling --------------------------------------


def test_a_stage_disabled_at_demo_is_trained_at_paper_only() -> None:
    params = tiny_params()
    stage = params["training"]["studies"]["tiny_multiclass"]["stages"]["logreg"]
    stage["enabled"], stage["paper"] = False, {"enabled": True}
    demo, paper = load(params), load(params, "paper")
    assert "logreg" not in demo.studies["tiny_multiclass"].stages
    assert demo.report_skipped() == {"tiny_multiclass": ["logreg"]}
    assert all("/logreg/" not in target for target in demo.model_targets())
    assert "logreg" in paper.studies["tiny_multiclass"].stages and paper.report_skipped() == {}
    assert "not trained at scale demo: logreg" in as_text(demo)


def test_a_headline_disabled_at_this_scale_is_named() -> None:
    params = tiny_params()
    study = params["training"]["studies"]["tiny_multiclass"]
    study["headline"] = "logreg"
    study["stages"]["logreg"]["enabled"] = False
    with pytest.raises(PlanError, match=r"headline 'logreg' is not a stage of .* at scale demo"):
        load(params)


def test_compare_cams_may_draw_some_folds_and_others_at_paper() -> None:
    params = tiny_params()
    compare = params["training"]["studies"]["tiny_transfer"]["compare_cams"]
    compare["folds"], compare["paper"] = [1], {"folds": "all"}
    assert load(params).studies["tiny_transfer"].compare.columns == ("fold_1",)
    assert len(load(params, "paper").studies["tiny_transfer"].compare.columns) == 3
    compare["folds"] = [7]
    with pytest.raises(PlanError, match=r"do not all train \['fold_7'\]"):
        load(params)


def test_the_stand_ins_chain_runs_first(tmp_path, monkeypatch) -> None:
    """Corpus data, then stand-ins, other data, stages others start from, other stages."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    jobs = Jobs(load(_frozen_params()))
    corpus, nih = jobs.data_priority("pretrain"), jobs.data_priority("nih")
    stand_in = jobs.train_priority("pretraining", "alexnet_32px")
    starts_c = jobs.train_priority("tiny_transfer", "model_a")
    plain = jobs.train_priority("tiny_transfer", "model_c")
    assert corpus > stand_in > nih > starts_c > plain > 0
    assert jobs.data_priority() == nih  # the cascade's sets

"""The report's first screen and its "every model" table, on hand-made results trees: one row
per study against its baseline, pooled folds, transfer, the cascade end to end, thumbnails."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pandas as pd
import pytest

from cxr.cascade.baseline import accuracy_interval, baselines, majority_baseline
from cxr.cli import main
from cxr.reporting.document import to_html, to_markdown
from cxr.reporting.report import build_report
from cxr.reporting.scores import verdict

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)


def _write(path: Path, text: str | bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)


def _run(results: Path, study: str, stage: str, column: str, dataset: str, **data) -> None:
    """A run.json: its recipe's task (binary unless ``task``), its dataset and split."""
    task = data.pop("task", "binary")
    run = {
        "recipe": {"architecture": "densenet121", "task": task, "study": study, "stage": stage},
        "data": {"dataset": dataset, "split": f"results/splits/{dataset}/cv.parquet", **data},
    }
    _write(results / "models" / study / stage / column / "run.json", json.dumps(run))


def _auroc(folder: Path, value: float, ci: str, paper: str = "") -> None:
    """An evaluation with a headline AUROC, its ROC figure and its metrics.json."""
    _write(
        folder / "headline.csv", f'metric,value,ci,Paper X\nauroc_macro,{value},"{ci}",{paper}\n'
    )
    _write(folder / "metrics.json", json.dumps({"task": "binary", "images": {"Nodule": 100}}))
    _write(folder / "roc.png", PNG)


def _multiclass(folder: Path, accuracy: float, ci: str | None, **metrics) -> None:
    """A multi-class evaluation: accuracy (with its interval when ``ci``), and the majority
    share as a headline row when ``ci`` is given (the new contract), else only what the
    metrics.json of ``metrics`` says."""
    acc_ci = f'"{ci}"' if ci else ""
    rows = f'auroc_macro,0.9,"[0.85, 0.95]",\naccuracy_overall,{accuracy},{acc_ci},0.81\n'
    if ci:
        rows += "majority_share,0.25,,\n"
    _write(folder / "headline.csv", "metric,value,ci,Seed 003\n" + rows)
    _write(folder / "metrics.json", json.dumps({"task": "multiclass", **metrics}))
    _write(folder / "roc.png", PNG)


@pytest.fixture
def results(tmp_path: Path) -> Path:
    """seed000: model_a, then model_b and model_c (from model_a) on 2 folds of jsrt, pooled;
    seed003: two multi-class CNNs; pretraining: a stand-in."""
    results = tmp_path / "results"
    _run(results, "seed000", "model_a", "split", "nih")
    _auroc(results / "evaluation/seed000/model_a/split", 0.7, "[0.6, 0.8]", "0.75")
    start = {"study": "seed000", "stage": "model_a", "column": "split"}
    for stage, pooled in (("model_b", (0.62, "[0.50, 0.74]")), ("model_c", (0.7, "[0.58, 0.81]"))):
        for fold in ("fold_0", "fold_1"):
            init = start if stage == "model_c" else None
            _run(results, "seed000", stage, fold, "jsrt", init_stage=init)
            _auroc(results / "evaluation/seed000" / stage / fold, 0.5, "[0.2, 0.8]")
            _write(results / "cam/seed000" / stage / fold / "cam_grid.png", PNG)
        _auroc(results / "evaluation/seed000" / stage / "pooled", *pooled)
    for stage, accuracy, ci in (
        ("smallcnn_v1", 0.3, "[0.2, 0.4]"),
        ("smallcnn_v3", 0.6, "[0.5, 0.7]"),
    ):
        _run(results, "seed003", stage, "split", "imagefolder6", task="multiclass")
        _multiclass(results / "evaluation/seed003" / stage / "split", accuracy, ci)
    _write(results / "cam/seed003/smallcnn_v3/split/cam_grid.png", PNG)
    _run(results, "pretraining", "densenet121", "split", "pretrain")
    _auroc(results / "evaluation/pretraining/densenet121/split", 0.9, "[0.88, 0.92]")
    return results


def _report(results: Path, **kwargs) -> tuple[str, list[str]]:
    doc, problems = build_report(results, results, scale="demo", **kwargs)
    return to_markdown(doc), problems


def _rows(text: str, first: str) -> list[str]:
    """The table rows of ``text`` that start with the cell ``first``."""
    return [line for line in text.splitlines() if line.startswith(f"| {first} |")]


@pytest.mark.parametrize(
    ("args", "said"),
    [
        ((0.61, 0.83), "learned"),
        ((0.45, 0.7), "not distinguishable from baseline"),
        ((0.2, 0.4), "worse than baseline"),
        ((1.0, 1.0), "too few test images to tell"),
        ((1.0, 1.0, 0.5, 240), "learned"),  # every one of 240 images right: a real interval
        ((None, None), "no interval"),
        ((0.3, 0.4, 0.25), "learned"),  # an accuracy above a majority share of 0.25
        ((0.3, 0.4, None), "no baseline"),
    ],
)
def test_the_verdict_is_the_interval_against_the_baseline(args, said) -> None:
    assert verdict(*args) == said


def test_one_row_per_study_its_last_stage_by_default(results: Path) -> None:
    text, _ = _report(results)
    study = text[: text.index("## Every model")]
    assert study.index("| study | headline model | metric | ours [95% CI] | baseline |") > 0
    assert _rows(study, "seed000") == [
        "| seed000 | model_c, pooled over 2 folds | AUROC | 0.700 [0.580, 0.810] | chance 0.5 "
        "| – | **learned** |"
    ]
    # multi-class: accuracy against the majority class's share, the paper's number beside it
    assert _rows(study, "seed003") == [
        "| seed003 | smallcnn_v3 | accuracy | 0.600 [0.500, 0.700] | majority 0.250 "
        "| Seed 003 0.810 | **learned** |"
    ]
    assert not _rows(study, "pretraining")  # a stand-in is no study of a paper
    assert "2 of 2 studies learned" in study


def test_stages_not_trained_at_this_scale_are_named_under_the_first_table(results: Path) -> None:
    text, problems = _report(results, skipped={"seed003": ["vgg19_bn"]})
    first = text[: text.index("## Every model")]
    assert (
        "Not trained at scale demo (their stages in params.yaml say `enabled: false` at this "
        "scale): seed003/vgg19_bn." in first
    )
    without, same_problems = _report(results)
    assert problems == same_problems  # not missing: not expected
    assert "Not trained" not in without


def test_headlines_json_names_the_headline_stage(results: Path) -> None:
    text, problems = _report(results, headlines={"seed000": "model_a", "seed003": "smallcnn_v1"})
    study = text[: text.index("## Every model")]
    assert _rows(study, "seed000")[0].startswith("| seed000 | model_a | AUROC | 0.700 [0.600")
    assert "| Paper X 0.750 |" in _rows(study, "seed000")[0]
    assert _rows(study, "seed003") == [
        "| seed003 | smallcnn_v1 | accuracy | 0.300 [0.200, 0.400] | majority 0.250 "
        "| Seed 003 0.810 | not distinguishable from baseline |"
    ]
    text, problems = _report(results, headlines={"seed000": "model_z"})
    assert "| seed000 | model_z (no such stage) |" in text
    assert "missing headline stage seed000/model_z" in problems


def test_every_model_pools_folds_and_shows_accuracy_against_the_majority(results: Path) -> None:
    text, _ = _report(results)
    table = text[text.index("## Every model") : text.index("## What this report read")]
    seed000 = _rows(table, "seed000")
    assert [r.split(" | ")[1:3] for r in seed000] == [
        ["model_a", "split"],
        ["model_b", "pooled over 2 folds"],
        ["model_c", "pooled over 2 folds"],
    ]  # one pooled row per k-fold stage, no fold rows
    assert seed000[2].startswith("| seed000 | model_c | pooled over 2 folds | 0.700 [0.580, 0.810]")
    v3 = _rows(table, "seed003")[1]
    assert "| 0.900 [0.850, 0.950] | learned | 0.600 [0.500, 0.700] | 0.250 | learned |" in v3
    assert "Seed 003 accuracy 0.810" in v3
    v1 = _rows(table, "seed003")[0]  # the verdict without the baseline its column names
    assert "| 0.300 [0.200, 0.400] | 0.250 | not distinguishable |" in v1
    assert _rows(table, "pretraining")  # the stand-ins are models all the same


def test_without_a_pooled_folder_each_fold_has_its_row(results: Path) -> None:
    for stage in ("model_b", "model_c"):
        for path in (results / "evaluation/seed000" / stage / "pooled").iterdir():
            path.unlink()
        (results / "evaluation/seed000" / stage / "pooled").rmdir()
    text, _ = _report(results)
    table = text[text.index("## Every model") : text.index("## What this report read")]
    assert [r.split(" | ")[2] for r in _rows(table, "seed000")] == [
        "split",
        *["fold_0", "fold_1"] * 2,
    ]
    study = text[: text.index("## Every model")]
    assert "| seed000 | model_c, fold_0 only, no pooled evaluation | AUROC |" in study


def test_an_older_multiclass_evaluation_takes_its_majority_share_from_metrics_json(
    results: Path,
) -> None:
    folder = results / "evaluation/seed003/smallcnn_v3/split"
    counts = {"images": {"a": 10, "b": 10}, "positives": {"a": 7, "b": 3}}
    _multiclass(folder, 0.6, None, **counts)  # no interval, no majority_share row
    text, _ = _report(results)
    assert "| seed003 | smallcnn_v3 | accuracy | 0.600 | majority 0.700 |" in text
    assert "| no interval |" in _rows(text[: text.index("## Every model")], "seed003")[0]
    _multiclass(folder, 0.6, None, majority_share=0.4, **counts)
    assert "| accuracy | 0.600 | majority 0.400 |" in _report(results)[0]


@pytest.mark.parametrize(
    ("c_interval", "said"),
    [
        ("[0.58, 0.81]", "The intervals overlap: at this demo scale, transfer from model_a (nih) "
         "is not distinguishable from training on jsrt alone."),
        ("[0.80, 0.90]", "The intervals do not overlap: at this demo scale, transfer from "
         "model_a (nih) helped."),
        ("[0.10, 0.40]", "The intervals do not overlap: at this demo scale, transfer from "
         "model_a (nih) hurt."),
    ],
)  # fmt: skip
def test_transfer_is_stated_whichever_way_it_comes_out(
    results: Path, c_interval: str, said: str
) -> None:
    _auroc(results / "evaluation/seed000/model_c/pooled", 0.7, c_interval)
    text, _ = _report(results)
    low, high = json.loads(c_interval)
    assert (
        "**Transfer (seed000):** model_c (started from model_a) AUROC "
        f"0.700 [{low:.3f}, {high:.3f}] vs model_b (no transfer) 0.620 [0.500, 0.740] "
        f"(pooled over 2 folds). {said}"
    ) in text
    assert text.index("**Transfer (seed000):**") < text.index("## Every model")


def test_no_transfer_sentence_without_a_stage_trained_alone(results: Path) -> None:
    _run(results, "seed000", "model_b", "fold_0", "nih")  # another dataset
    assert "**Transfer" not in _report(results)[0]


def test_thumbnails_inline_in_markdown_and_embedded_in_html(results: Path) -> None:
    doc, _ = build_report(results, results, scale="demo")
    text, page = to_markdown(doc), to_html(doc)
    grid = next(line for line in text.splitlines() if line.startswith("| ROC |"))
    roc = "evaluation/seed000/model_c/pooled/roc.png"  # the pooled ROC of a k-fold headline
    assert f'<a href="{roc}"><img src="{roc}" alt="ROC of seed000" height="150"></a>' in grid
    cams = next(line for line in text.splitlines() if line.startswith("| CAM grid |"))
    assert 'src="cam/seed000/model_c/fold_0/cam_grid.png"' in cams  # CAMs are drawn per fold
    assert 'src="cam/seed003/smallcnn_v3/split/cam_grid.png"' in cams
    assert text.index("| ROC |") < text.index("## Every model")
    encoded = base64.b64encode(PNG).decode()
    assert page.count(f'src="data:image/png;base64,{encoded}"') == 4  # 2 ROC, 2 CAM grids
    assert '<table class="thumbs">' in page
    assert f'<a href="{roc}">' in page


def test_a_missing_figure_is_named_in_its_thumbnail(results: Path) -> None:
    (results / "cam/seed003/smallcnn_v3/split/cam_grid.png").unlink()
    text, _ = _report(results)
    cams = next(line for line in text.splitlines() if line.startswith("| CAM grid |"))
    assert cams.endswith("| no CAM grid |")


def test_a_stage_without_maps_of_its_own_shows_its_cam_comparison(results: Path) -> None:
    for folder in (results / "cam/seed000/model_c").iterdir():
        (folder / "cam_grid.png").unlink()
        folder.rmdir()
    _write(results / "cam_compare/seed000/model_b_vs_model_c/fold_0.png", PNG)
    text, _ = _report(results)
    cams = next(line for line in text.splitlines() if line.startswith("| CAM grid |"))
    assert 'src="cam_compare/seed000/model_b_vs_model_c/fold_0.png"' in cams


def _localisation(folder: Path, blob: bool) -> None:
    rows = [
        {"finding": "Nodule", "boxes": 4, "pointing_game": 0.5},
        {"finding": "all", "boxes": 4, "pointing_game": 0.5},
    ]
    found: dict = {"findings": rows}
    if blob:
        found["centred_blob"] = [{**r, "pointing_game": 0.25} for r in rows]
        found["margin"] = {"pointing_game": 0.25}
    _write(folder / "localisation.json", json.dumps(found))


def test_pointing_game_beside_a_centred_blob_where_recorded(results: Path) -> None:
    _localisation(results / "cam/seed003/smallcnn_v3/split", blob=True)
    _localisation(results / "cam/seed000/model_c/fold_0", blob=False)
    text, _ = _report(results)
    assert "seed003/smallcnn_v3 (split) 0.500 vs centred blob 0.250, 4 boxes" in text
    assert "seed000/model_c (fold_0) 0.500 (no centred-blob score), 4 boxes" in text


def _cascade(results: Path, with_baseline: bool) -> None:
    _run(results, "seed002", "module_iii", "split", "cascade_chest")
    _auroc(results / "evaluation/seed002/module_iii/split", 0.7, "[0.62, 0.78]")
    folder = results / "evaluation/seed002/end_to_end"
    predictions = pd.DataFrame(
        {
            "true_type": ["chest"] * 6 + ["hand"] * 3 + ["not_xray"],
            "true_abnormal": [True, False, False, False, None, None, None, None, None, None],
            "end_to_end_right": [True] * 8 + [False] * 2,
        }
    )
    folder.mkdir(parents=True)
    predictions.to_csv(folder / "predictions.csv", index=False)
    metrics = {"heldout": "x", "images": 10, "end_to_end_accuracy": 0.8}
    metrics["paper"] = {"end_to_end_accuracy": 0.91}
    if with_baseline:
        metrics |= {"end_to_end_accuracy_ci": [0.7, 0.9], "majority_share": 0.5}
    _write(folder / "metrics.json", json.dumps(metrics))


@pytest.mark.parametrize("with_baseline", [True, False])
def test_the_cascade_end_to_end_against_its_majority_baseline(
    results: Path, with_baseline: bool
) -> None:
    _cascade(results, with_baseline)
    text, _ = _report(results)
    (row,) = _rows(text[text.index("## Every model") :], "seed002")[1:]
    cells = row.split(" | ")
    assert cells[1:3] == ["the cascade end to end", "held-out set"]
    # chest, normal: 3 normal chests + 2 chests without labels of 10 images
    share = "0.500"
    assert cells[6] == share
    ci = cells[5]
    assert ci.startswith("0.800 [") and (ci == "0.800 [0.700, 0.900]") == with_baseline
    assert cells[-1] == "paper accuracy 0.910 |"


def test_majority_baseline_is_the_best_constant_answer() -> None:
    types = pd.Series(["chest"] * 6 + ["hand"] * 3 + ["not_xray"])
    abnormal = pd.Series([True, False, False, False, None, None, None, None, None, None])
    assert majority_baseline(types, abnormal) == ("chest, normal", 0.5)
    assert majority_baseline(pd.Series(["hand", "hand", "foot"]), pd.Series([None] * 3)) == (
        "hand",
        pytest.approx(2 / 3),
    )
    assert majority_baseline(pd.Series([], dtype=str), pd.Series([], dtype=object)) is None


def test_accuracy_interval_brackets_the_share() -> None:
    right = pd.Series([True] * 30 + [False] * 10)
    low, high = accuracy_interval(right)
    assert low < 0.75 < high
    assert accuracy_interval(right) == [low, high]  # the same resamples every time
    assert accuracy_interval(pd.Series([], dtype=bool)) is None
    entries = baselines(
        pd.DataFrame({"true_type": ["a", "b"], "true_abnormal": [None, None],
                      "end_to_end_right": [True, False]})
    )  # fmt: skip
    assert entries["majority_class"] == "a" and entries["majority_share"] == 0.5
    assert entries["bootstrap"]["resamples"] == 1000


def test_first_screen_comes_first(results: Path) -> None:
    text, _ = _report(results)
    order = [
        "Scale demo;",
        "| study | headline model |",
        "studies learned",
        "| ROC |",
        "## Every model",
        "## What this report read",
        "## Missing outputs",
    ]
    assert [text.index(s) for s in order] == sorted(text.index(s) for s in order)


def test_cli_headlines_json(results: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "report.md"
    args = ["report", "--results", str(results), "--out", str(out)]
    assert main([*args, "--headlines-json", '{"seed003": "smallcnn_v1"}']) == 0
    assert "| seed003 | smallcnn_v1 | accuracy |" in out.read_text()
    with pytest.raises(SystemExit) as err:
        main([*args, "--headlines-json", '{"seed003": ["smallcnn_v1"]}'])
    assert err.value.code == 2
    assert '{"study": "stage", ...}' in capsys.readouterr().err

"""`cxr report` on a small hand-made results tree: tables, captions, papers' numbers, gaps."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cxr.cli import main
from cxr.layout import Layout
from cxr.reporting import write_report
from cxr.reporting.discovery import discover, read_run
from cxr.reporting.document import to_html, to_markdown
from cxr.reporting.provenance import data_of
from cxr.reporting.report import build_report

RECIPE = {
    "architecture": "densenet121",
    "init": "imagenet",
    "transfer": "frozen",
    "epochs": 5,
    "input_size": 64,
}


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def _model(results: Path, study: str, stage: str, column: str, name: str, start=None, **data):
    """A run.json of data set ``name``, the model of ``start`` (study, stage, column) its
    init; ``data``: fields of its ``data`` block in place of those made up from these."""
    init_stage = dict(zip(("study", "stage", "column"), start, strict=True)) if start else None
    run = {
        "recipe": {**RECIPE, "study": study, "stage": stage},
        "data": {
            "folder": f"results/preprocessed/{name}/eq_64",
            "dataset": name,
            "preset": "eq_64",
            "split": f"results/splits/{name}/official.parquet",
            "init": "results/models/{}/{}/{}/model.pt".format(*start) if start else None,
            "init_stage": init_stage,
            **data,
        },
        "epochs_run": 4,
        "best_epoch": 2,
    }
    _write(results / "models" / study / stage / column / "run.json", json.dumps(run))


def _evaluation(folder: Path, auroc: float, figures=("roc", "pr", "confusion", "reliability")):
    _write(
        folder / "headline.csv",
        "metric,value,ci,Seed 001 DenseNet121\n"
        f'auroc_macro,{auroc},"[0.61, 0.83]",\nlabel_accuracy,0.62,,0.84\n',
    )
    _write(
        folder / "metrics.csv",
        "finding,images,positives,auroc,auroc_low,auroc_high,ChestX-ray14 auroc,sensitivity\n"
        f"Nodule,100,10,{auroc},0.61,0.83,0.67,0.5\n",
    )
    for name in figures:
        _write(folder / f"{name}.png", "png")


@pytest.fixture
def results(tmp_path: Path) -> Path:
    """Two studies: one `split` model (CAM, one figure missing), and a 2-fold stage."""
    results = tmp_path / "results"
    _model(results, "study_one", "main", "split", "nih")
    _evaluation(results / "evaluation/study_one/main/split", 0.7123, ("roc", "pr", "confusion"))
    cam = results / "cam/study_one/main/split"
    _write(
        cam / "localisation.csv",
        "finding,boxes,pointing_game,iobb_acc@0.1,iobb_acc@0.5,iou_acc@0.5,mean_iobb,mean_iou,"
        "paper_iobb_acc@0.1\nNodule,3,0.333,0.667,0.0,0.0,0.2,0.1,0.16\n",
    )
    _write(cam / "cam_grid.png", "png")
    for fold in ("fold_0", "fold_1"):
        _model(results, "study_two", "model_c", fold, "jsrt", start=("a", "model_a", "split"))
        _evaluation(results / "evaluation/study_two/model_c" / fold, 0.8)
    folds = results / "evaluation/study_two/model_c/folds"
    _write(
        folds / "table.md",
        "# 2 folds: mean ± std (%)\n\n|  | accuracy |\n|---|---|\n"
        "| ours | 47.62 ± 17.17 |\n| Seed 000 Model C | 74.43 ± 6.01 |\n",
    )
    metrics = {"auroc_macro": {"mean": 0.8, "std": 0.01, "n": 2}}
    _write(folds / "folds.json", json.dumps({"metrics": metrics}))
    return results


SOURCES = {"nih": "synthetic", "jsrt": "real"}


def _markdown(results: Path, **kwargs) -> tuple[str, list[str]]:
    doc, problems = build_report(results, results, sources=SOURCES, scale="demo", **kwargs)
    return to_markdown(doc), problems


def test_tables_beside_the_papers_numbers(results: Path) -> None:
    text, _ = _markdown(results)
    assert "## study_one / main" in text
    assert "## study_two / model_c" in text
    # headline: ours with its interval, the paper's column beside it
    assert "| auroc_macro | 0.712 | [0.610, 0.830] |  |" in text
    assert "| label_accuracy | 0.620 |  | 0.840 |" in text
    # per finding: AUROC with its interval and the published AUROC beside it
    assert "| Nodule | 100 | 10 | 0.712 [0.610, 0.830] | 0.670 |" in text
    # the fold summary, the paper row, and the overall mean ± std
    assert "| Seed 000 Model C | 74.43 ± 6.01 |" in text
    assert "| auroc_macro | 0.800 ± 0.010 | 2 |" in text
    # localisation with the published numbers
    assert "paper_iobb_acc@0.1" in text
    assert "| split | Nodule | 3 | 0.333 | 0.667 |" in text
    # figures are linked relative to the report
    assert "[ROC](evaluation/study_one/main/split/roc.png)" in text
    assert "[CAM grid](cam/study_one/main/split/cam_grid.png)" in text


def test_every_table_has_a_caption_with_settings_and_source(results: Path) -> None:
    doc, _ = build_report(results, results, sources=SOURCES, scale="demo")
    captions = [b.caption for b in doc.blocks if hasattr(b, "caption")]
    assert len(captions) >= 8
    study_captions = [c for c in captions if c.startswith("study_")]
    for caption in study_captions:
        assert "architecture densenet121" in caption
        assert "init imagenet" in caption
        assert "transfer frozen" in caption
        assert "epochs 5 (ran 4, best 3)" in caption
        assert "input 64 px" in caption
        assert "scale demo" in caption
    assert all("(synthetic miniature)" in c for c in study_captions if "study_one" in c)
    assert all("(real data)" in c for c in study_captions if "study_two" in c)
    assert any("init imagenet then model_a/split" in c for c in study_captions)
    text = to_markdown(doc)
    assert "nih, SYNTHETIC" in text  # the stage's own paragraph says it plainly
    assert "jsrt, real" in text


def test_a_missing_figure_is_reported(results: Path) -> None:
    text, problems = _markdown(results)
    assert "missing results/evaluation/study_one/main/split/reliability.png" in problems
    assert "**missing** (reliability.png)" in text
    assert "## Missing outputs" in text
    assert "- missing results/evaluation/study_one/main/split/reliability.png" in text


def test_expected_studies_order_and_absent_stage(results: Path) -> None:
    expected = {"study_two": ["model_c"], "study_one": ["main", "extra"]}
    text, problems = _markdown(results, expected=expected)
    assert text.index("## study_two / model_c") < text.index("## study_one / main")
    assert any("study_one/extra" in p for p in problems)


def test_timings_grouped_by_study(results: Path, tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    header = "s\th:m:s\tmax_rss\n"
    _write(logs / "train/study_one/main/split.benchmark.tsv", header + "12.5\t0:00:12\t900\n")
    _write(logs / "evaluate/study_one/main/split.benchmark.tsv", header + "2.5\t0:00:02\t500\n")
    _write(logs / "ingest/nih.benchmark.tsv", header + "3.0\t0:00:03\t100\n")
    text, _ = _markdown(results, logs=logs)
    assert "## How long each job took" in text
    assert "| study_one | 2 | 15.0 | train study_one/main/split (12.5 s) |" in text
    assert "| (data preparation, shared) | 1 | 3.0 |" in text


def test_html_twin_and_cli(results: Path, tmp_path: Path) -> None:
    out, html = tmp_path / "out" / "report.md", tmp_path / "out" / "report.html"
    args = ["report", "--results", str(results), "--out", str(out), "--html", str(html)]
    args += ["--sources-json", json.dumps(SOURCES), "--scale", "demo"]
    assert main(args) == 0
    assert "## study_one / main" in out.read_text()
    page = html.read_text()
    assert page.startswith("<!DOCTYPE html>")
    assert "<b>Table 1.</b>" in page
    assert "<b>missing</b> (reliability.png)" in page


def test_bad_source_is_a_usage_error(results: Path, tmp_path: Path, capsys) -> None:
    args = ["report", "--results", str(results), "--out", str(tmp_path / "r.md")]
    with pytest.raises(SystemExit) as err:
        main([*args, "--sources-json", '{"nih": "fake"}'])
    assert err.value.code == 2
    assert "synthetic or real" in capsys.readouterr().err
    assert not (tmp_path / "r.md").exists()


def test_refuses_to_replace_what_cxr_did_not_write(results: Path, tmp_path: Path) -> None:
    out, html = tmp_path / "report.md", tmp_path / "report.html"
    html.write_text("mine")
    with pytest.raises(ValueError, match=r"report\.html"):
        write_report(results, out, html=html)
    assert not out.exists()
    assert html.read_text() == "mine"


def test_html_escapes_text(results: Path) -> None:
    doc, _ = build_report(results, results)
    doc.title = "<script>"
    assert "<script>" not in to_html(doc).split("<style>")[0]


def test_a_cascade_study_gets_its_end_to_end_table_after_its_modules(results: Path) -> None:
    _model(results, "cascade", "module_i", "split", "cascade_xray")
    _evaluation(results / "evaluation/cascade/module_i/split", 0.9)
    folder = results / "evaluation/cascade/end_to_end"
    _write(
        folder / "table.md",
        "# The cascade end to end\n\n| source | images | end to end | paper end to end |\n"
        "|---|---|---|---|\n| nih | 3 | 0.667 |  |\n| all | 5 | 0.600 | 0.910 |\n",
    )
    made = {
        "preset": "plain_64",
        "chest_fraction": 0.1,
        "sets": {"cascade_heldout": {"by_source": {"nih": {"test": 3}, "mura": {"test": 2}}}},
        "dropped_near_duplicates_of_heldout": ["xray_types/chest/1.png"],
        "dropped_across_train_and_val": 4,
    }
    _write(results / "metrics/cascade/plain_64.json", json.dumps(made))
    _write(results / "metrics/cascade/tiny_32.json", "{}")  # another preset's sets: not read
    # the held-out set's preset is what its stats.json records, not its folder's name
    heldout = results / "preprocessed/cascade_heldout/renamed"
    stats = {"dataset": "cascade_heldout", "preset": {"name": "plain_64", "size": 64}}
    _write(heldout / "stats.json", json.dumps(stats))
    _write(folder / "metrics.json", json.dumps({"heldout": str(heldout)}))
    doc, problems = build_report(
        results, results, sources={"cascade_heldout": "synthetic"}, scale="demo"
    )
    text = to_markdown(doc)
    modules = text.index("## cascade / module_i")
    end = text.index("## cascade / the cascade end to end")
    assert modules < end
    assert "Held-out mixed set (plain_64): mura 2, nih 3 images" in text
    assert "1 training image(s) were left out of every module" in text
    assert "| all | 5 | 0.600 | 0.910 |" in text
    assert "Data: synthetic." in text[end:]
    assert problems == [
        "missing results/evaluation/cascade/end_to_end/routes.png",
        "missing results/evaluation/study_one/main/split/reliability.png",
    ]


# -- provenance: what run.json and stats.json record, never what the folders are named --------


def _captions(results: Path, study: str, sources=SOURCES) -> list[str]:
    doc, _ = build_report(results, results, sources=sources, scale="demo")
    return [b.caption for b in doc.blocks if getattr(b, "caption", "").startswith(study)]


def _labels(results: Path, stage: str, folder: Path, stats: dict | None) -> None:
    """An evaluation of ``study/<stage>/split`` whose labels are ``folder``'s index.parquet."""
    evaluation = results / "evaluation/study" / stage / "split"
    _evaluation(evaluation, 0.7)
    labels = {"alignment": {"labels": str(folder / "index.parquet")}}
    _write(evaluation / "metrics.json", json.dumps(labels))
    if stats is not None:
        _write(folder / "stats.json", json.dumps(stats))


def test_dataset_preset_and_init_stage_come_from_run_json(tmp_path: Path) -> None:
    results = tmp_path / "results"
    start = {"study": "s", "stage": "first", "column": "fold_1"}
    _model(
        results,
        "study",
        "main",
        "split",
        "jsrt",
        folder="elsewhere/x",
        dataset="nih",
        preset="p64",
        init="weights/start.pt",
        init_stage=start,
    )
    _evaluation(results / "evaluation/study/main/split", 0.7)
    captions = _captions(results, "study")
    assert captions
    for caption in captions:
        assert "init imagenet then first/fold_1," in caption
        assert "preset p64," in caption
        assert "Data: nih (synthetic miniature)." in caption
        assert "elsewhere" not in caption and "jsrt" not in caption


def test_init_weights_without_a_recorded_stage_are_named_as_given(tmp_path: Path) -> None:
    results = tmp_path / "results"
    _model(results, "study", "main", "split", "nih", init="weights/start.pt", init_stage=None)
    _evaluation(results / "evaluation/study/main/split", 0.7)
    assert all("init imagenet then weights/start.pt," in c for c in _captions(results, "study"))


def test_without_run_json_the_labels_stats_json_says(tmp_path: Path) -> None:
    results = tmp_path / "results"
    folder = tmp_path / "tensors/anything"  # named neither after the dataset nor the preset
    _labels(results, "main", folder, {"dataset": "nih", "preset": {"name": "p64", "size": 64}})
    stage = discover(Layout(results=str(results)))[0]
    assert data_of(stage, Layout(results=str(results))) == ("nih", "p64")
    text, problems = _markdown(results)
    assert "Data: nih, SYNTHETIC" in text
    assert "Data: nih (synthetic miniature)." in text
    assert any("run.json (the recipe)" in p for p in problems)


def test_run_json_fields_it_lacks_come_from_the_labels_stats_json(tmp_path: Path) -> None:
    results = tmp_path / "results"
    _model(results, "study", "main", "split", "jsrt", dataset=None, preset=None)
    _labels(results, "main", tmp_path / "t/jsrt/eq_64", {"dataset": "nih", "preset": "p64"})
    for caption in _captions(results, "study"):
        assert "preset p64," in caption
        assert "Data: nih (synthetic miniature)." in caption


def test_when_nothing_records_it_the_dataset_is_unknown(tmp_path: Path) -> None:
    results = tmp_path / "results"
    _model(results, "study", "main", "split", "nih", dataset=None, preset=None)
    _labels(results, "main", tmp_path / "preprocessed/nih/eq_64", None)  # no stats.json
    captions = _captions(results, "study")
    assert captions
    assert all("Data: unknown dataset." in c and "preset" not in c for c in captions)


def test_a_mixed_set_names_its_sources(tmp_path: Path) -> None:
    results = tmp_path / "results"
    _model(results, "study", "main", "split", "x", dataset=["jsrt", "nih"])
    _evaluation(results / "evaluation/study/main/split", 0.7)
    assert all(
        "Data: jsrt+nih (synthetic and real mixed)." in c for c in _captions(results, "study")
    )
    text, _ = _markdown(results)
    assert "Data: jsrt+nih, synthetic and real sources mixed." in text
    both = {"jsrt": "synthetic", "nih": "synthetic"}
    assert all("(synthetic miniature)" in c for c in _captions(results, "study", both))


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("dataset", 3),
        ("dataset", ["nih", 3]),
        ("preset", {"name": "p64"}),
        ("init_stage", "first/fold_1"),
        ("init_stage", {"study": "s", "stage": "first"}),
    ],
)
def test_run_json_provenance_of_the_wrong_type_is_refused(
    tmp_path: Path, field: str, value: object
) -> None:
    results = tmp_path / "results"
    _model(results, "study", "main", "split", "nih", **{field: value})
    with pytest.raises(ValueError, match=rf"data\.{field} of the wrong type"):
        read_run(results / "models/study/main/split/run.json")

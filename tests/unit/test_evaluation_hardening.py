"""What the evaluation verbs record when they accept imperfect input: the threshold rule each
output really got, a partial evaluation, the model evaluated, an output without labels; and the
links train-summary and report check."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from cxr.data.index import build_index, finding_column
from cxr.evaluation.report import evaluate
from cxr.reporting.document import to_markdown
from cxr.reporting.report import build_report
from cxr.training.summary import write_summary


def write_index(path: Path, findings: dict[str, list[float]]) -> Path:
    ids = [f"i{n}" for n in range(len(next(iter(findings.values()))))]
    rows = [
        {"image_id": i, "path": i, "width": 8, "height": 8, "mode": "L"}
        | {finding_column(f): v[k] for f, v in findings.items()}
        for k, i in enumerate(ids)
    ]
    build_index(rows, "test").to_parquet(path, index=False)
    return path


def write_preds(path: Path, ids: list[str], **probs: list[float]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame({"image_id": ids, **{f"prob_{k}": v for k, v in probs.items()}}).to_parquet(
        path, index=False
    )
    return path


def model_folder(folder: Path, run_id: str) -> Path:
    """A ``cxr train`` folder as train-summary reads it."""
    folder.mkdir(parents=True)
    run = {
        "run_id": run_id,
        "recipe": {"study": "s", "stage": "a"},
        "data": {"split_column": "split"},
        "epochs_run": 1,
        "best_epoch": 0,
        "best_val_loss": 0.5,
        "timings": {"training_s": 1.0},
    }
    (folder / "run.json").write_text(json.dumps(run))
    (folder / "history.csv").write_text("epoch,val_loss,val_auroc\n0,0.5,\n")
    return folder


@pytest.fixture
def two_findings(tmp_path: Path) -> tuple[Path, Path, Path]:
    """Test images i0-i3 and validation images i4-i7 where Mass is negative throughout."""
    index = write_index(
        tmp_path / "index.parquet",
        {"Nodule": [0, 1, 0, 1, 0, 1, 0, 1], "Mass": [0, 1, 0, 1, 0, 0, 0, 0]},
    )
    ids = [f"i{n}" for n in range(8)]
    p = [0.1, 0.9, 0.3, 0.7]
    test = write_preds(tmp_path / "test.parquet", ids[:4], Nodule=p, Mass=p)
    val = write_preds(tmp_path / "val.parquet", ids[4:], Nodule=[0.2, 0.8, 0.1, 0.6], Mass=p)
    return index, test, val


def test_a_youden_fallback_is_recorded_per_output(two_findings, tmp_path, caplog):
    index, test, val = two_findings
    m = evaluate(test, index, tmp_path / "out", val_predictions=val, resamples=10)
    how = m["threshold"]
    assert how["method"] == "mixed"
    assert how["requested"] == "youden"
    assert how["per_output"] == {"Nodule": "youden", "Mass": "fixed"}
    assert how["fallback_0.5"] == ["Mass"]
    assert how["values"]["Mass"] == 0.5
    assert "no Youden threshold for Mass" in caplog.text
    assert "threshold 0.5, not Youden's" in (tmp_path / "out" / "metrics.md").read_text()


def test_a_partial_evaluation_is_recorded(two_findings, tmp_path):
    index, test, _ = two_findings
    split = tmp_path / "split.csv"
    split.write_text("image_id,split\n" + "".join(f"i{n},test\n" for n in range(5)))
    with pytest.raises(ValueError, match=r"1 image\(s\) of .*split == test are not predicted"):
        evaluate(test, index, tmp_path / "no", split=split)
    m = evaluate(test, index, tmp_path / "out", split=split, allow_partial=True, resamples=10)
    assert m["alignment"]["partial_allowed"] is True
    assert m["alignment"]["labels_missing_from_predictions"] == {"count": 1, "first": ["i4"]}
    assert "PARTIAL" in (tmp_path / "out" / "metrics.md").read_text()
    assert not (tmp_path / "no").exists()


def test_the_model_of_predictions_in_a_train_folder_is_recorded(two_findings, tmp_path):
    index, test, _ = two_findings
    model = model_folder(tmp_path / "model", "run-a")
    preds = write_preds(model / "predictions" / "test.parquet", ["i0", "i1"], Nodule=[0.2, 0.8])
    m = evaluate(preds, index, tmp_path / "out", resamples=10)
    assert m["model"] == {"folder": str(model), "run_id": "run-a"}
    assert m["run_id"] is None  # nothing logged to MLflow without --model
    other = evaluate(test, index, tmp_path / "ext", resamples=10)
    assert other["model"] == {"folder": None, "run_id": None}


def test_an_output_without_any_known_label_is_undefined(tmp_path):
    index = write_index(
        tmp_path / "index.parquet", {"Nodule": [0, 1, 0, 1], "Mass": [float("nan")] * 4}
    )
    test = write_preds(
        tmp_path / "t.parquet",
        ["i0", "i1", "i2", "i3"],
        Nodule=[0.1, 0.9, 0.2, 0.8],
        Mass=[0.5] * 4,
    )
    m = evaluate(test, index, tmp_path / "out", resamples=10)
    assert m["auroc"] == {"Nodule": 1.0, "Mass": None}
    assert m["images"]["Mass"] == 0
    assert m["sensitivity"]["Mass"] is None


def test_train_summary_joins_only_the_evaluation_of_its_model(tmp_path):
    model = model_folder(tmp_path / "model", "run-a")
    evaluation = tmp_path / "eval"
    evaluation.mkdir()
    metrics = {"task": "binary", "auroc_macro": 0.75, "model": {"folder": "m", "run_id": "run-a"}}
    (evaluation / "metrics.json").write_text(json.dumps(metrics))
    summary = write_summary(model, tmp_path / "s.json", evaluation)
    assert summary["test_auroc_macro"] == 0.75
    assert summary["val_auroc"] is None  # undefined in history.csv: null, not NaN
    json.loads((tmp_path / "s.json").read_text())  # valid JSON
    (evaluation / "metrics.json").write_text(json.dumps(metrics | {"model": {"run_id": "run-b"}}))
    with pytest.raises(ValueError, match=r"evaluates the model of run run-b .*not this model's"):
        write_summary(model, tmp_path / "t.json", evaluation)
    assert not (tmp_path / "t.json").exists()


def test_a_report_of_no_configured_study_says_so(tmp_path):
    (tmp_path / "results").mkdir()
    doc, problems = build_report(tmp_path / "results", tmp_path, expected={})
    assert problems == []
    assert "None expected: the configuration names no study" in to_markdown(doc)
    with pytest.raises(ValueError, match="no study found"):
        build_report(tmp_path / "results", tmp_path)

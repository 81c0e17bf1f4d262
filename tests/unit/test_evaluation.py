"""Evaluation: real metrics on small cases computed by hand, alignment, outputs, folds, MLflow."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import balanced_accuracy_score, f1_score, roc_auc_score

from cxr.data.index import build_index, finding_column
from cxr.evaluation.bootstrap import WeightedAuroc, bootstrap_accuracy, bootstrap_auroc
from cxr.evaluation.calibration import expected_calibration_error, reliability
from cxr.evaluation.folds import summarize_folds
from cxr.evaluation.paper import REFERENCES
from cxr.evaluation.report import evaluate
from cxr.evaluation.tables import headline

#: The hand case: positives scored .35 .8 .9, negatives .1 .4 .6 -> 7 of 9 pairs ordered.
Y = [0, 0, 1, 1, 0, 1]
P = [0.1, 0.4, 0.35, 0.8, 0.6, 0.9]


def write_index(path: Path, ids: list[str], patients: list[str] | None = None, **labels) -> Path:
    """An ingested index of ``ids``: ``findings={name: [1/0/nan]}`` and/or ``label=[...]``."""
    findings = labels.get("findings", {})
    rows = [
        {
            "image_id": image_id,
            "path": image_id,
            "patient_id": patients[i] if patients else None,
            "width": 8,
            "height": 8,
            "mode": "L",
            "label": labels["label"][i] if "label" in labels else None,
            **{finding_column(f): float(v[i]) for f, v in findings.items()},
        }
        for i, image_id in enumerate(ids)
    ]
    build_index(rows, "test").to_parquet(path, index=False)
    return path


def write_preds(path: Path, ids: list[str], **probs: list[float]) -> Path:
    frame = pd.DataFrame({"image_id": ids, **{f"prob_{k}": v for k, v in probs.items()}})
    if path.suffix == ".csv":
        frame.to_csv(path, index=False)
    else:
        frame.to_parquet(path, index=False)
    return path


@pytest.fixture
def hand(tmp_path: Path) -> tuple[Path, Path]:
    ids = [f"i{n}" for n in range(6)]
    index = write_index(tmp_path / "index.parquet", ids, findings={"Nodule": Y})
    return write_preds(tmp_path / "test.parquet", ids, Nodule=P), index


def test_hand_computed_auc_rates_and_interval(hand, tmp_path):
    pred, index = hand
    m = evaluate(pred, index, tmp_path / "out", resamples=500, seed=3)
    assert m["task"] == "binary"
    assert m["auroc"]["Nodule"] == pytest.approx(7 / 9)
    assert m["auroc_macro"] == m["auroc_micro"] == pytest.approx(7 / 9)
    # at 0.5: predicted positive .6 .8 .9 -> tp 2, fp 1, fn 1, tn 2
    assert (m["tp"]["Nodule"], m["fp"]["Nodule"], m["fn"]["Nodule"], m["tn"]["Nodule"]) == (
        2,
        1,
        1,
        2,
    )
    for name in ("sensitivity", "specificity", "ppv", "npv", "accuracy", "f1"):
        assert m[name]["Nodule"] == pytest.approx(2 / 3), name
    assert m["prevalence"]["Nodule"] == pytest.approx(0.5)
    assert m["detection_rate"]["Nodule"] == pytest.approx(2 / 6)
    assert m["detection_prevalence"]["Nodule"] == pytest.approx(3 / 6)
    predicted = (np.array(P) >= 0.5).astype(int)
    assert m["f1"]["Nodule"] == pytest.approx(f1_score(Y, predicted))
    assert m["balanced_accuracy"]["Nodule"] == pytest.approx(balanced_accuracy_score(Y, predicted))
    low, high = m["auroc_ci"]["Nodule"]
    assert 0 <= low <= 7 / 9 <= high <= 1
    assert m["bootstrap"]["unit"] == "image"  # no patient ids in this index
    again = evaluate(pred, index, tmp_path / "again", resamples=500, seed=3)
    assert again["auroc_ci"] == m["auroc_ci"]  # deterministic for the seed
    other = evaluate(pred, index, tmp_path / "other", resamples=500, seed=4)
    assert other["auroc_ci"] != m["auroc_ci"]
    assert json.loads((tmp_path / "out" / "metrics.json").read_text())["auroc"] == m["auroc"]


def test_output_folder(hand, tmp_path):
    pred, index = hand
    out = tmp_path / "out"
    evaluate(pred, index, out, resamples=50, paper="seed000-model-a")
    files = {p.name for p in out.iterdir()}
    assert {
        "metrics.json",
        "metrics.csv",
        "metrics.md",
        "headline.csv",
        "roc.csv",
        "pr.csv",
    } <= files
    assert {"calibration.csv", "confusion.csv", "confusion_matrix.csv"} <= files
    for png in ("roc.png", "pr.png", "confusion.png", "reliability.png"):
        assert (out / png).read_bytes()[:4] == b"\x89PNG"
    roc = pd.read_csv(out / "roc.csv")
    assert list(roc.columns) == ["finding", "fpr", "tpr"]
    assert set(roc["finding"]) == {"Nodule"}
    confusion = pd.read_csv(out / "confusion.csv")
    assert list(confusion.columns) == ["actual", "predicted"]
    assert len(confusion) == 6
    table = pd.read_csv(out / "metrics.csv")
    assert table.loc[0, "Seed 000 Model A sensitivity"] == pytest.approx(0.8271)
    assert "Seed 000 Model A" in (out / "metrics.md").read_text()


def test_a_perfect_separation_has_the_interval_1_1(tmp_path):
    ids = [f"i{n}" for n in range(8)]
    index = write_index(
        tmp_path / "index.parquet", ids, findings={"Mass": [0, 0, 0, 0, 1, 1, 1, 1]}
    )
    pred = write_preds(tmp_path / "p.parquet", ids, Mass=[0.1, 0.2, 0.3, 0.4, 0.6, 0.7, 0.8, 0.9])
    m = evaluate(pred, index, tmp_path / "out", resamples=200)
    assert m["auroc"]["Mass"] == 1.0
    assert m["auroc_ci"]["Mass"] == [1.0, 1.0]


def test_weighted_auroc_matches_sklearn_and_patients_resample_differently():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 60)
    scores = np.round(rng.random(60), 1)  # many ties
    every_image_once = np.ones((1, 60))
    score = WeightedAuroc(y, scores, np.arange(60), 60)
    assert score(every_image_once)[0] == pytest.approx(roc_auc_score(y, scores))
    # 15 patients of 4 identical images each: the images are not independent
    patient = np.arange(60) // 4
    targets = rng.integers(0, 2, 15)[patient][:, None].astype(float)
    probs = rng.random(15)[patient][:, None]
    images = bootstrap_auroc(targets, probs, np.arange(60), 300, seed=1)
    patients = bootstrap_auroc(targets, probs, patient, 300, seed=1)
    assert images.shape == patients.shape == (300, 1)
    # resampling images as if independent understates the spread (about 2x here)
    assert np.std(patients) > 1.5 * np.std(images)


def test_patient_resampling_in_evaluate(tmp_path):
    ids = [f"i{n}" for n in range(12)]
    patients = [f"p{n // 3}" for n in range(12)]
    y = [0, 0, 1, 1, 0, 1, 0, 1, 0, 0, 1, 1]
    p = [0.2, 0.3, 0.4, 0.9, 0.5, 0.6, 0.1, 0.8, 0.45, 0.3, 0.55, 0.7]
    by_patient = write_index(tmp_path / "a.parquet", ids, patients, findings={"Edema": y})
    by_image = write_index(tmp_path / "b.parquet", ids, findings={"Edema": y})
    pred = write_preds(tmp_path / "p.parquet", ids, Edema=p)
    a = evaluate(pred, by_patient, tmp_path / "a", resamples=300)
    b = evaluate(pred, by_image, tmp_path / "b", resamples=300)
    assert (a["bootstrap"]["unit"], b["bootstrap"]["unit"]) == ("patient", "image")
    assert a["auroc"] == b["auroc"]
    assert a["auroc_ci"] != b["auroc_ci"]


def test_a_finding_with_one_class_is_undefined(tmp_path):
    ids = [f"i{n}" for n in range(6)]
    findings = {"Nodule": Y, "Hernia": [0] * 6, "Edema": [1, 0, np.nan, 1, 0, 0]}
    index = write_index(tmp_path / "index.parquet", ids, findings=findings)
    pred = write_preds(tmp_path / "p.parquet", ids, Nodule=P, Hernia=P, Edema=P)
    m = evaluate(pred, index, tmp_path / "out", resamples=100)
    assert m["task"] == "multilabel"
    assert m["auroc"]["Hernia"] is None
    assert m["auroc_ci"]["Hernia"] is None
    assert m["sensitivity"]["Hernia"] is None  # no positives
    assert m["specificity"]["Hernia"] == pytest.approx(3 / 6)
    # Edema: image i2 unknown; positives .1 .8 vs negatives .6 .9 .4 -> 2 of 6 pairs
    assert m["alignment"]["unlabelled"] == {"Nodule": 0, "Hernia": 0, "Edema": 1}
    assert m["auroc"]["Edema"] == pytest.approx(2 / 6)
    assert m["auroc_macro"] == pytest.approx((7 / 9 + 2 / 6) / 2)
    saved = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert saved["auroc"]["Hernia"] is None
    # 14-label accuracy of seed 001: correct labels / known labels, at 0.5
    correct = 4 + 3 + sum((np.array(P)[[0, 1, 3, 4, 5]] >= 0.5) == np.array([1, 0, 1, 0, 0]))
    assert m["label_accuracy"] == pytest.approx(correct / 17)
    assert m["label_accuracy_at_0.5"] == m["label_accuracy"]


def test_an_nih_style_csv_names_the_images_missing_on_each_side(tmp_path, caplog):
    ids = [f"0000000{n}_000.png" for n in range(6)]
    findings = {"Atelectasis": Y, "Pleural_Thickening": Y[::-1], "Effusion": [1, 0, 0, 1, 0, 0]}
    index = write_index(
        tmp_path / "index.parquet", ids, [str(n) for n in range(6)], findings=findings
    )
    csv = tmp_path / "other_model.csv"
    kept = ids[1:] + ["99999999_000.png"]  # the first index image unpredicted; one unknown image
    pd.DataFrame(
        {
            "Image Index": kept,
            "Atelectasis": P[1:] + [0.5],
            "Pleural Thickening": P[1:] + [0.5],
            "Effusion": P[1:] + [0.5],
            "Patient Age": 40,
        }
    ).to_csv(csv, index=False)
    with pytest.raises(ValueError, match=r"1 predicted image.*not in the labels.*--allow-partial"):
        evaluate(csv, index, tmp_path / "out", resamples=50)
    with caplog.at_level(logging.WARNING):
        m = evaluate(csv, index, tmp_path / "out", resamples=50, allow_partial=True)
    assert m["alignment"]["partial_allowed"] is True
    report = m["alignment"]
    assert report["predictions_missing_from_labels"] == {"count": 1, "first": ["99999999_000.png"]}
    assert report["labels_missing_from_predictions"] == {"count": 1, "first": [ids[0]]}
    assert report["images_evaluated"] == 5
    assert report["ignored_columns"] == ["Patient Age"]
    assert m["outputs"] == ["Atelectasis", "Pleural_Thickening", "Effusion"]  # index order
    assert "99999999_000.png" in caplog.text
    assert ids[0] in caplog.text
    assert "99999999_000.png" in (tmp_path / "out" / "metrics.md").read_text()


def test_pipeline_predictions_do_not_miss_the_other_sides(tmp_path):
    ids = [f"i{n}" for n in range(10)]
    y = [0, 1] * 5
    index = write_index(tmp_path / "index.parquet", ids, findings={"Nodule": y})
    test = ids[6:]
    frame = pd.DataFrame(
        {"image_id": test, "prob_Nodule": [0.2, 0.7, 0.4, 0.9], "finding_Nodule": y[6:]}
    )
    frame.to_parquet(tmp_path / "test.parquet", index=False)
    m = evaluate(tmp_path / "test.parquet", index, tmp_path / "out", resamples=20)
    assert m["alignment"]["labels_missing_from_predictions"]["count"] == 0
    assert m["alignment"]["truth_disagreements"] == {}
    split = pd.DataFrame({"image_id": ids, "split": ["train"] * 5 + ["test"] * 5})
    split.to_csv(tmp_path / "split.csv", index=False)
    with pytest.raises(ValueError, match=r"1 image\(s\) of .*split == test.* not predicted"):
        evaluate(tmp_path / "test.parquet", index, tmp_path / "x", split=tmp_path / "split.csv")
    m = evaluate(
        tmp_path / "test.parquet",
        index,
        tmp_path / "out2",
        split=tmp_path / "split.csv",
        resamples=20,
        allow_partial=True,
    )
    assert m["alignment"]["labels_missing_from_predictions"] == {"count": 1, "first": ["i5"]}


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (pd.DataFrame({"id": ["i0"], "prob_Nodule": [0.5]}), "no image id column"),
        (pd.DataFrame({"image_id": ["i0"], "prob_Cat": [0.5]}), "no probability column"),
        (pd.DataFrame({"image_id": ["i0", "i1"], "prob_Nodule": [0.5, 1.2]}), r"\[0, 1\].*i1"),
        (pd.DataFrame({"image_id": ["i0", "i1"], "Nodule": [np.nan, 0.2]}), r"\[0, 1\].*i0"),
        (pd.DataFrame({"image_id": ["i0", "i0"], "Nodule": [0.1, 0.2]}), "listed twice"),
    ],
)
def test_bad_predictions_name_the_file_and_the_problem(hand, tmp_path, frame, message):
    _, index = hand
    bad = tmp_path / "bad.csv"
    frame.to_csv(bad, index=False)
    with pytest.raises(ValueError, match=message) as err:
        evaluate(bad, index, tmp_path / "out")
    assert str(bad) in str(err.value)
    assert not (tmp_path / "out").exists()


def test_multiclass_confusion_and_diseases_predicted_normal(tmp_path):
    classes = ["COVID", "Normal", "Viral Pneumonia"]
    truth = ["COVID", "COVID", "COVID", "Normal", "Normal", "Viral Pneumonia", "Viral Pneumonia"]
    guess = ["COVID", "Normal", "COVID", "Normal", "COVID", "Normal", "Viral Pneumonia"]
    ids = [f"i{n}" for n in range(len(truth))]
    index = write_index(tmp_path / "index.parquet", ids, label=truth)
    probs = {c: [0.8 if g == c else 0.1 for g in guess] for c in classes}
    pred = write_preds(tmp_path / "p.parquet", ids, **probs)
    m = evaluate(pred, index, tmp_path / "out", resamples=50)
    assert m["task"] == "multiclass"
    assert m["confusion"] == {
        "labels": classes,
        "matrix": [[2, 1, 0], [1, 1, 0], [0, 1, 1]],
    }
    assert m["predicted_as_normal"] == {"COVID": 1, "Viral Pneumonia": 1}
    assert m["accuracy_overall"] == pytest.approx(4 / 7)
    assert m["sensitivity"]["COVID"] == pytest.approx(2 / 3)
    assert m["specificity"]["Normal"] == pytest.approx(3 / 5)  # 2 of the 5 others called Normal
    assert m["threshold"]["method"] == "argmax"
    assert "top label" in m["ece"]
    confusion = pd.read_csv(tmp_path / "out" / "confusion.csv")
    assert confusion.value_counts().to_dict()[("COVID", "Normal")] == 1
    assert (tmp_path / "out" / "predicted_as_normal.csv").exists()


def multiclass(tmp_path: Path, truth: list[str], guess: list[str], **kw) -> dict:
    """evaluate() of a multi-class case where each image's guessed class gets 0.8."""
    classes = sorted(set(truth))
    ids = [f"i{n}" for n in range(len(truth))]
    index = write_index(tmp_path / "index.parquet", ids, label=truth)
    probs = {c: [0.8 if g == c else 0.2 / (len(classes) - 1) for g in guess] for c in classes}
    pred = write_preds(tmp_path / "p.parquet", ids, **probs)
    return evaluate(pred, index, tmp_path / "out", **kw)


def test_multiclass_accuracy_has_an_interval_and_the_majority_baseline(tmp_path):
    truth = ["B", "A", "B", "C", "B", "A"]  # B: 3 of 6
    guess = ["B", "A", "A", "C", "B", "B"]  # 4 of 6 right
    m = multiclass(tmp_path, truth, guess, resamples=300, seed=5)
    assert m["accuracy_overall"] == pytest.approx(4 / 6)
    assert (m["majority_class"], m["majority_share"]) == ("B", 0.5)
    low, high = m["accuracy_overall_ci"]
    assert 0 <= low <= 4 / 6 <= high <= 1
    (tmp_path / "again").mkdir()
    again = multiclass(tmp_path / "again", truth, guess, resamples=300, seed=5)
    assert again["accuracy_overall_ci"] == m["accuracy_overall_ci"]  # deterministic
    head = pd.read_csv(tmp_path / "out" / "headline.csv")
    assert head["metric"].tolist() == [
        "auroc_macro", "auroc_micro", "accuracy_overall", "majority_share", "ece_macro",
    ]  # fmt: skip
    rows = head.set_index("metric")
    assert json.loads(rows.loc["accuracy_overall", "ci"]) == [low, high]
    assert json.loads(rows.loc["auroc_macro", "ci"]) == m["auroc_macro_ci"]
    assert rows.loc["majority_share", "value"] == 0.5
    assert pd.isna(rows.loc["majority_share", "ci"])
    text = (tmp_path / "out" / "metrics.md").read_text()
    assert "| majority_share | 0.500 |" in text
    assert "Majority class: B (50.0% of the images evaluated)" in text
    assert "AUROC and accuracy intervals" in text
    assert json.loads((tmp_path / "out" / "metrics.json").read_text())["majority_class"] == "B"


def test_a_tie_for_the_majority_goes_to_the_first_class(tmp_path):
    m = multiclass(tmp_path, ["B", "A", "B", "A", "C"], ["A"] * 5, resamples=20)
    assert (m["majority_class"], m["majority_share"]) == ("A", 0.4)


def test_the_accuracy_interval_lies_above_the_majority_for_a_good_classifier(tmp_path):
    truth = ["A", "B", "C"] * 20
    guess = ["B", "C"] + truth[2:]  # 58 of 60 right
    m = multiclass(tmp_path, truth, guess, resamples=500)
    assert m["majority_share"] == pytest.approx(1 / 3)
    assert m["accuracy_overall_ci"][0] > m["majority_share"]


def test_the_accuracy_interval_holds_the_majority_for_a_constant_guess(tmp_path):
    truth = ["A"] * 15 + ["B"] * 9 + ["C"] * 6
    m = multiclass(tmp_path, truth, ["A"] * 30, resamples=500)
    assert m["accuracy_overall"] == m["majority_share"] == 0.5
    low, high = m["accuracy_overall_ci"]
    assert low < m["majority_share"] < high


def test_the_accuracy_resamples_are_the_auroc_resamples():
    """bootstrap_accuracy draws the patients bootstrap_auroc draws for the same seed."""
    rng = np.random.default_rng(2)
    groups = np.arange(40) // 2  # 20 patients of two images
    correct = rng.integers(0, 2, 40).astype(bool)
    drawn = np.random.default_rng(7).integers(0, 20, size=(100, 20))
    counts = np.stack([np.bincount(row, minlength=20) for row in drawn])[:, groups]
    expected = (counts * correct).sum(axis=1) / counts.sum(axis=1)
    assert bootstrap_accuracy(correct, groups, 100, seed=7) == pytest.approx(expected)


def test_binary_and_multilabel_headlines_have_no_majority(hand, two_outputs, tmp_path):
    for k, (pred, index) in enumerate((hand, two_outputs)):
        m = evaluate(pred, index, tmp_path / f"out{k}", resamples=20)
        assert not {"majority_share", "majority_class", "accuracy_overall_ci"} & set(m)
        head = pd.read_csv(tmp_path / f"out{k}" / "headline.csv")
        assert "majority_share" not in set(head["metric"])
        assert head["ci"].notna().tolist() == (head["metric"] == "auroc_macro").tolist()


@pytest.fixture
def two_outputs(tmp_path: Path) -> tuple[Path, Path]:
    """A multi-label case: Nodule and Mass of six images."""
    ids = [f"i{n}" for n in range(6)]
    index = write_index(
        tmp_path / "ml.parquet", ids, findings={"Nodule": Y, "Mass": [1, 0, 0, 1, 1, 0]}
    )
    return write_preds(tmp_path / "ml_test.parquet", ids, Nodule=P, Mass=P[::-1]), index


def test_youden_threshold_is_chosen_on_validation(tmp_path):
    ids = [f"v{n}" for n in range(6)] + [f"t{n}" for n in range(4)]
    y = [0, 0, 0, 1, 1, 1] + [0, 1, 0, 1]
    index = write_index(tmp_path / "index.parquet", ids, findings={"Nodule": y})
    # on validation the positives score >= 0.3 and the negatives below: Youden picks 0.3
    val = write_preds(tmp_path / "val.parquet", ids[:6], Nodule=[0.1, 0.2, 0.25, 0.3, 0.35, 0.9])
    test = write_preds(tmp_path / "test.parquet", ids[6:], Nodule=[0.28, 0.32, 0.1, 0.45])
    m = evaluate(test, index, tmp_path / "out", val_predictions=val, resamples=20)
    assert m["threshold"]["method"] == "youden"
    assert m["threshold"]["values"] == {"Nodule": pytest.approx(0.3)}
    assert (m["sensitivity"]["Nodule"], m["specificity"]["Nodule"]) == (1.0, 1.0)
    fixed = evaluate(test, index, tmp_path / "fixed", threshold="fixed", resamples=20)
    assert fixed["sensitivity"]["Nodule"] == 0.0  # at 0.5 nothing is positive
    with pytest.raises(ValueError, match="validation"):
        evaluate(test, index, tmp_path / "x", threshold="youden")


def test_expected_calibration_error_by_hand():
    table = reliability(np.array([0.05, 0.05, 0.95, 0.95]), np.array([0, 1, 1, 1]))
    assert table["count"].tolist() == [2] + [0] * 13 + [2]
    # half the predictions off by |0.5 - 0.05|, half by |1 - 0.95|
    assert expected_calibration_error(table) == pytest.approx(0.5 * 0.45 + 0.5 * 0.05)
    assert reliability(np.array([1.0, 1 / 15]), np.array([1, 1]))["count"].tolist()[-1] == 1


def test_fold_summary_mean_and_std(tmp_path):
    accuracy, sensitivity = [0.6, 0.7, 0.8], [0.5, 0.4, 0.9]
    files = []
    for k, (acc, sens) in enumerate(zip(accuracy, sensitivity, strict=True)):
        path = tmp_path / f"fold{k}.json"
        metrics = {
            "task": "binary",
            "auroc": {"malignant": 0.7 + k / 10},
            "accuracy": {"malignant": acc},
            "sensitivity": {"malignant": sens},
            "specificity": {"malignant": None},
            "auroc_macro": 0.7 + k / 10,
        }
        path.write_text(json.dumps(metrics))
        files.append(path)
    summary = summarize_folds(files, tmp_path / "folds", paper="seed000-model-b")
    stats = summary["metrics"]
    assert stats["accuracy/malignant"]["mean"] == pytest.approx(0.7)
    assert stats["accuracy/malignant"]["std"] == pytest.approx(np.std(accuracy, ddof=1))
    assert stats["sensitivity/malignant"]["n"] == 3
    assert "specificity/malignant" not in stats  # undefined in every fold
    table = pd.read_csv(tmp_path / "folds" / "table.csv", keep_default_na=False)
    assert table.loc[0, "accuracy"] == "70.00 ± 10.00"
    assert table.loc[1, "sensitivity"] == "45.67 ± 21.36"  # the paper's Model B row
    assert "± " in (tmp_path / "folds" / "table.md").read_text()


def test_paper_numbers_are_those_of_the_seeds():
    chexnet = REFERENCES["seed002"][1]
    assert chexnet.label == "CheXNet"
    assert chexnet.metrics["auroc"]["Pleural_Thickening"] == 0.80
    assert len(chexnet.metrics["auroc"]) == 14
    assert REFERENCES["seed000-model-c"][0].std["sensitivity"] == {"*": 0.1533}
    # the mean of the 14 printed AUROCs stands beside our macro AUROC
    assert chexnet.headline() == {
        "auroc_macro": round(sum(chexnet.metrics["auroc"].values()) / 14, 4)
    }
    assert headline({"auroc_macro": 0.7}, REFERENCES["seed002"])["CheXNet"].tolist() == [0.8357]


def test_metrics_and_folder_are_logged_to_the_model_run(hand, tmp_path, monkeypatch):
    from mlflow import MlflowClient

    uri = f"file://{tmp_path}/mlruns"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    client = MlflowClient(uri)  # explicit: an earlier test may have set mlflow's global URI
    run_id = client.create_run(client.create_experiment("nih")).info.run_id
    model = tmp_path / "model"
    model.mkdir()
    (model / "run.json").write_text(json.dumps({"run_id": run_id}))
    pred, index = hand
    m = evaluate(pred, index, tmp_path / "out", model=model, resamples=20)
    assert m["run_id"] == run_id
    logged = client.get_run(run_id).data.metrics
    assert logged["test/auroc_macro"] == pytest.approx(7 / 9)
    assert logged["test/auroc/Nodule"] == pytest.approx(7 / 9)
    assert "test/sensitivity/Nodule" in logged
    names = {a.path for a in client.list_artifacts(run_id, "evaluation")}
    assert {"evaluation/metrics.json", "evaluation/roc.png"} <= names

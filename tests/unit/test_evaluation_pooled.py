"""cxr pool-folds: the folds' test predictions pooled and scored as cxr evaluate scores them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score
from test_evaluation import write_index, write_preds

from cxr.cli import main
from cxr.evaluation.pooled import pool_folds
from cxr.evaluation.report import evaluate

#: Three folds of four images each; fold k validates on fold k+1's test side (as kfold does).
Y = [0, 1, 0, 1, 1, 0, 0, 1, 0, 1, 1, 0]
P = [0.2, 0.7, 0.4, 0.9, 0.6, 0.3, 0.55, 0.5, 0.1, 0.8, 0.45, 0.35]
VAL = [0.3, 0.6, 0.1, 0.9]  # each fold's scores of its validation images


def train_folder(root: Path, name: str, test: list[int], val: list[int], stage: str = "b") -> Path:
    """A ``cxr train`` folder of stage ``s/<stage>`` testing images ``test``."""
    folder = root / stage / name
    (folder / "predictions").mkdir(parents=True)
    run = {"run_id": f"run_{stage}_{name}", "recipe": {"study": "s", "stage": stage}}
    (folder / "run.json").write_text(json.dumps(run))
    ids = [f"i{n}" for n in test]
    write_preds(folder / "predictions" / "test.parquet", ids, Nodule=[P[n] for n in test])
    scores = [VAL[k % len(VAL)] for k in range(len(val))]
    write_preds(folder / "predictions" / "val.parquet", [f"i{n}" for n in val], Nodule=scores)
    return folder


@pytest.fixture
def folds(tmp_path: Path) -> tuple[list[Path], Path]:
    ids = [f"i{n}" for n in range(12)]
    index = write_index(tmp_path / "index.parquet", ids, findings={"Nodule": Y})
    sides = [list(range(4 * k, 4 * k + 4)) for k in range(3)]
    models = [train_folder(tmp_path, f"fold_{k}", sides[k], sides[(k + 1) % 3]) for k in range(3)]
    return models, index


def test_the_pooled_auroc_is_that_of_the_concatenation(folds, tmp_path):
    models, index = folds
    m = pool_folds(models, index, tmp_path / "out", resamples=200)
    assert m["auroc_macro"] == pytest.approx(roc_auc_score(Y, P))
    low, high = m["auroc_macro_ci"]
    assert low <= m["auroc_macro"] <= high
    assert m["alignment"]["images_evaluated"] == m["images"]["Nodule"] == 12
    pooled = json.loads((tmp_path / "out" / "pooled.json").read_text())
    assert pooled == m["pooled"]
    assert pooled["images"] == sum(f["images"] for f in pooled["folds"]) == 12
    assert [f["run_id"] for f in pooled["folds"]] == [f"run_b_fold_{k}" for k in range(3)]
    assert pooled["stage"] == "s/b"
    head = pd.read_csv(tmp_path / "out" / "headline.csv").set_index("metric")
    assert json.loads(head.loc["auroc_macro", "ci"]) == [low, high]
    assert "majority_share" not in head.index  # binary
    for name in ("metrics.json", "metrics.md", "roc.png", "confusion.png", "roc.csv"):
        assert (tmp_path / "out" / name).is_file(), name


def test_each_fold_is_classified_at_its_own_youden_threshold(folds, tmp_path):
    """The pooled confusion counts are the sums of the folds' as cxr evaluate counts them."""
    models, index = folds
    m = pool_folds(models, index, tmp_path / "out", resamples=20)
    each = [
        evaluate(f / "predictions/test.parquet", index, tmp_path / f"e{k}", resamples=20,
                 val_predictions=f / "predictions/val.parquet")
        for k, f in enumerate(models)
    ]  # fmt: skip
    for count in ("tp", "fp", "fn", "tn"):
        assert m[count]["Nodule"] == sum(e[count]["Nodule"] for e in each), count
    how = m["threshold"]
    assert how["method"] == "youden"
    assert [h["values"] for h in how["folds"].values()] == [e["threshold"]["values"] for e in each]
    assert "values" not in how  # the folds' thresholds differ
    table = pd.read_csv(tmp_path / "out" / "metrics.csv")
    assert table.loc[0, "threshold"] == "per fold"
    fixed = pool_folds(models, index, tmp_path / "fixed", threshold="fixed", resamples=20)
    assert fixed["threshold"]["values"] == {"Nodule": 0.5}
    assert fixed["tp"]["Nodule"] == sum(p >= 0.5 and y for p, y in zip(P, Y, strict=True))


def test_overlapping_test_sides_are_refused(folds, tmp_path):
    models, index = folds
    twice = train_folder(tmp_path, "fold_3", [3, 4, 5], [6, 7, 8])  # i3 is fold_0's too
    message = (
        r"fold_0/predictions/test\.parquet and .*fold_3/predictions/test\.parquet: 1 image\(s\) "
        r"in both test sides \(e\.g\. i3\)"
    )
    with pytest.raises(ValueError, match=message):
        pool_folds([*models, twice], index, tmp_path / "out", resamples=20)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("which", "message"),
    [
        ("one", r"1 fold\(s\) given \(.*fold_0\): pooling needs the models of at least two"),
        ("twice", r"fold_0: the same model \(run run_b_fold_0\) as .*fold_0: each fold must be"),
        ("stages", r"c/fold_1: a model of s/c, unlike .*b/fold_0 \(of s/b\): the folds of one"),
    ],
)
def test_folds_that_cannot_be_pooled_are_refused(folds, tmp_path, which, message):
    models, index = folds
    given = {
        "one": models[:1],
        "twice": [models[0], models[0]],
        "stages": [models[0], train_folder(tmp_path, "fold_1", [4, 5, 6, 7], [8], stage="c")],
    }[which]
    with pytest.raises(ValueError, match=message):
        pool_folds(given, index, tmp_path / "out", resamples=20)
    assert not (tmp_path / "out").exists()


def test_pooled_multiclass_folds(tmp_path):
    truth = ["A", "B", "A", "C", "A", "B"]
    ids = [f"i{n}" for n in range(6)]
    index = write_index(tmp_path / "index.parquet", ids, label=truth)
    models = []
    for k, side in enumerate(([0, 1, 2], [3, 4, 5])):
        folder = tmp_path / f"fold_{k}"
        (folder / "predictions").mkdir(parents=True)
        (folder / "run.json").write_text(json.dumps({"run_id": f"r{k}"}))
        probs = {c: [0.6 if truth[n] == c else 0.2 for n in side] for c in "ABC"}
        write_preds(folder / "predictions" / "test.parquet", [ids[n] for n in side], **probs)
        models.append(folder)
    m = pool_folds(models, index, tmp_path / "out", resamples=50)
    assert m["accuracy_overall"] == 1.0
    assert (m["majority_class"], m["majority_share"]) == ("A", 0.5)
    assert m["threshold"]["method"] == "argmax"  # no validation side needed
    assert pd.read_csv(tmp_path / "out" / "metrics.csv")["threshold"].eq("argmax").all()


def test_cxr_pool_folds(folds, tmp_path):
    models, index = folds
    argv = ["pool-folds", "--labels", str(index), "--out", str(tmp_path / "out")]
    argv += [a for m in models for a in ("--model", str(m))]
    assert main([*argv, "--threshold", "youden", "--resamples", "20", "--seed", "3"]) == 0
    m = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert m["bootstrap"] | {"level": 0} == {
        "resamples": 20, "seed": 3, "level": 0, "unit": "image", "method": "percentile",
    }  # fmt: skip
    assert np.isclose(m["auroc_macro"], roc_auc_score(Y, P))

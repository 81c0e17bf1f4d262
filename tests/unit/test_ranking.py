"""cxr.evaluation.ranking against sklearn.metrics, on random, tied and one-class scores."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics

from cxr.evaluation import ranking
from cxr.evaluation.auroc import rank_auroc


def cases() -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(0)
    out = []
    for n in (2, 3, 7, 50, 400):
        y = rng.integers(0, 2, n)
        y[0], y[-1] = 0, 1
        out.append((y, rng.random(n)))  # distinct scores
        out.append((y, np.round(rng.random(n), 1)))  # many ties
        out.append((y, np.full(n, 0.5)))  # one score
    return out


@pytest.mark.parametrize(("y", "scores"), cases())
def test_curves_and_areas_are_sklearns(y: np.ndarray, scores: np.ndarray) -> None:
    for ours, theirs in zip(
        ranking.roc_curve(y, scores), metrics.roc_curve(y, scores), strict=True
    ):
        np.testing.assert_allclose(ours, theirs)
    for ours, theirs in zip(
        ranking.precision_recall_curve(y, scores),
        metrics.precision_recall_curve(y, scores),
        strict=True,
    ):
        np.testing.assert_allclose(ours, theirs)
    assert ranking.average_precision(y, scores) == pytest.approx(
        metrics.average_precision_score(y, scores), abs=1e-12
    )
    assert rank_auroc(y, scores) == pytest.approx(metrics.roc_auc_score(y, scores), abs=1e-12)


def test_confusion_counts_are_sklearns() -> None:
    rng = np.random.default_rng(1)
    truth, guess = rng.integers(0, 4, 300), rng.integers(0, 4, 300)
    np.testing.assert_array_equal(
        ranking.confusion_matrix(truth, guess, range(4)),
        metrics.confusion_matrix(truth, guess, labels=range(4)),
    )
    np.testing.assert_array_equal(
        ranking.confusion_matrix(truth, guess, [0, 1]),  # classes outside labels: not counted
        metrics.confusion_matrix(truth, guess, labels=[0, 1]),
    )
    np.testing.assert_array_equal(
        ranking.one_vs_rest_counts(truth, guess, 4),
        metrics.multilabel_confusion_matrix(truth, guess, labels=range(4)).reshape(4, 4),
    )


def test_an_evaluation_imports_no_sklearn() -> None:
    import subprocess
    import sys

    code = (
        "import sys, cxr.evaluation.report, cxr.evaluation.metrics, cxr.evaluation.curves; "
        "print(any(m.startswith('sklearn') for m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"

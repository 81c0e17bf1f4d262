"""`cxr pool-folds`: the test predictions of a k-fold stage's folds, pooled and scored as one.

Each image of a k-fold split is tested by exactly one fold's model, so the folds' test sides
together cover the set once: pooled, they give one AUROC (with its bootstrap interval) over
every image instead of k small ones. Each fold is aligned with the labels as ``cxr evaluate``
aligns it. A thresholded metric classifies each image at its own fold's threshold: Youden's
chosen on that fold's validation side (what ``cxr evaluate`` does for each fold; the pooled
validation sides cannot serve, as each is another fold's test side), or the fixed one. The
pooled images are then scored and written by :func:`cxr.evaluation.report.score`, as ``cxr
evaluate`` scores and writes, with ``pooled.json`` listing the folds. Nothing is logged to
MLflow: the pooled numbers belong to no single model's run.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path

import numpy as np

from cxr.core.readers import read_json_object
from cxr.evaluation.inputs import Cohort, align, pool
from cxr.evaluation.paper import Paper, references
from cxr.evaluation.report import run_id_of, score, thresholds_of, validation


@dataclass(frozen=True)
class Fold:
    """One fold's ``cxr train`` folder: its run, its stage and its predictions."""

    folder: Path
    run_id: str
    stage: str  # <study>/<stage> of its recipe (else its parent folder)

    def predictions(self, side: str) -> Path:
        path = self.folder / "predictions" / f"{side}.parquet"
        if not path.is_file():
            raise ValueError(
                f"{self.folder}: holds no predictions/{side}.parquet: not a folder cxr train wrote"
            )
        return path


def read_fold(folder: str | Path) -> Fold:
    """The fold of a ``cxr train`` folder, from its run.json."""
    folder = Path(folder)
    run = read_json_object(folder / "run.json", "a run.json written by cxr train")
    recipe = run.get("recipe") if isinstance(run.get("recipe"), dict) else {}
    names = [recipe.get("study"), recipe.get("stage")]
    stage = "/".join(names) if all(isinstance(n, str) for n in names) else str(folder.parent)
    return Fold(folder, run_id_of(folder), stage)


def check_folds(folds: Sequence[Fold]) -> None:
    """Refuse fewer than two folds, folds of different stages, and a model given twice."""
    if len(folds) < 2:
        given = ", ".join(str(f.folder) for f in folds) or "none"
        raise ValueError(
            f"{len(folds)} fold(s) given ({given}): pooling needs the models of at least two "
            "folds of one stage (--model, repeated)"
        )
    first, seen = folds[0], {}
    for fold in folds:
        if fold.stage != first.stage:
            raise ValueError(
                f"{fold.folder}: a model of {fold.stage}, unlike {first.folder} (of "
                f"{first.stage}): the folds of one stage are pooled"
            )
        if fold.run_id in seen:
            raise ValueError(
                f"{fold.folder}: the same model (run {fold.run_id}) as {seen[fold.run_id]}: "
                "each fold must be given once"
            )
        seen[fold.run_id] = fold.folder


def check_disjoint(tests: Sequence[Cohort]) -> None:
    """Refuse folds whose test sides share an image: pooled, it would be tested twice."""
    for a, b in combinations(tests, 2):
        shared = np.intersect1d(a.image_ids, b.image_ids)
        if len(shared):
            raise ValueError(
                f"{a.report['predictions']} and {b.report['predictions']}: {len(shared)} "
                f"image(s) in both test sides (e.g. {shared[0]}): pooled, an image would be "
                "tested twice; pool the folds of one k-fold split"
            )


def _thresholds(
    folds: Sequence[Fold],
    tests: Sequence[Cohort],
    labels: str | Path,
    threshold: str | float | None,
) -> tuple[dict[str, np.ndarray], dict]:
    """Each image's threshold per output (its fold's, chosen as ``cxr evaluate`` chooses it
    for that fold) and how they were chosen."""
    youden = tests[0].task != "multiclass" and threshold in (None, "youden")
    chosen = []
    for fold, test in zip(folds, tests, strict=True):
        val = validation(fold.predictions("val"), labels, test) if youden else None
        chosen.append(thresholds_of(test, threshold, val))
    values = [each for each, _ in chosen]
    per_image = {
        o: np.concatenate(
            [np.full(len(t.image_ids), v[o]) for t, v in zip(tests, values, strict=True)]
        )
        for o in values[0]
    }
    return per_image, _how(folds, [how for _, how in chosen])


def _how(folds: Sequence[Fold], hows: list[dict]) -> dict:
    """metrics.json's ``threshold`` of pooled folds: one method if every fold had it (else
    mixed), one ``values`` if every fold had the same, and each fold's under ``folds``."""
    methods = {h["method"] for h in hows}
    how = {"method": methods.pop() if len(methods) == 1 else "mixed", "rule": hows[0]["rule"]}
    values = [h.get("values") for h in hows]
    if values[0] and all(v == values[0] for v in values):
        how["values"] = values[0]
    elif values[0]:
        how["rule"] += "; each fold's images at that fold's own threshold"
    fallback = [
        f"{fold.folder.name}: {output}"
        for fold, h in zip(folds, hows, strict=True)
        for output in h.get("fallback_0.5", [])
    ]
    if fallback:
        how["fallback_0.5"] = fallback
    return how | {"folds": {str(f.folder): h for f, h in zip(folds, hows, strict=True)}}


def pool_folds(
    models: Sequence[str | Path],
    labels: str | Path,
    out: str | Path,
    *,
    threshold: str | float | None = None,
    task: str | None = None,
    paper: Paper = None,
    resamples: int = 1000,
    seed: int = 0,
    level: float = 0.95,
    normal: str = "Normal",
) -> dict:
    """Pool the test predictions of the folds whose ``cxr train`` folders are ``models``,
    score them against the index ``labels`` as ``cxr evaluate`` does, write folder ``out``
    (its files, and ``pooled.json``); return the metrics.

    ``threshold``: ``"youden"`` (each fold's, on its own validation side; the default),
    ``"fixed"`` (0.5) or a number. Refuses fewer than two folds, folds of different stages or
    given twice, and folds whose test sides share an image."""
    folds = [read_fold(m) for m in models]
    check_folds(folds)
    refs = references(paper)
    first = align(folds[0].predictions("test"), labels, task=task)
    tests = [first] + [
        align(f.predictions("test"), labels, task=first.task, outputs=first.outputs)
        for f in folds[1:]
    ]
    check_disjoint(tests)
    thresholds, how = _thresholds(folds, tests, labels, threshold)
    cohort = pool(tests, labels)
    pooled = {
        "stage": folds[0].stage,
        "folds": [
            {"model": str(f.folder), "run_id": f.run_id, "images": len(t.image_ids)}
            for f, t in zip(folds, tests, strict=True)
        ],
        "images": len(cohort.image_ids),
    }
    return score(
        cohort, thresholds, how, out, refs=refs, resamples=resamples, seed=seed, level=level,
        normal=normal, extra={"pooled": pooled},
    )  # fmt: skip

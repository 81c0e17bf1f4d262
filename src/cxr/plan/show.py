"""The plan as a person reads it (``cxr plan``), or as JSON."""

from __future__ import annotations

import json
import textwrap
from dataclasses import asdict

from cxr.plan.parts import SPLIT, Cam, Cascade, CompareCams, Stage, Study
from cxr.plan.plan import Plan

WIDTH = 100


def as_json(plan: Plan) -> str:
    """Every dataset and study of the plan, resolved at its scale, as JSON."""
    trained = {study.name for study in plan.trained}
    return json.dumps(
        {
            "scale": plan.scale,
            "seed": plan.seed,
            "datasets": {name: asdict(dataset) for name, dataset in plan.datasets.items()},
            "studies": {
                name: {"trained": name in trained, **asdict(study)}
                for name, study in plan.studies.items()
            },
        },
        indent=2,
    )


def as_text(plan: Plan) -> str:
    """The studies and their stages: data, split columns, recipe, evaluation, CAMs, cascade."""
    lines = [f"Scale {plan.scale}, seed {plan.seed}.", "", "Datasets:"]
    for dataset in plan.datasets.values():
        state = "" if dataset.enabled else " (disabled)"
        lines.append(f"  {dataset.name}: {dataset.source}, {dataset.folder}{state}")
    for study in plan.studies.values():
        lines += ["", f"Study {study.name}: {_status(plan, study)}"]
        for stage in study.stages.values():
            lines += _stage(stage, plan.presets[stage.preset]["size"])
        if study.skipped:
            lines.append(f"  not trained at scale {plan.scale}: {', '.join(study.skipped)}")
        if study.compare is not None:
            lines += _wrap("  compare_cams ", _compare(study.compare))
        if study.cascade is not None:
            lines += _wrap("  cascade ", _cascade(study.cascade))
    return "\n".join(lines) + "\n"


def _status(plan: Plan, study: Study) -> str:
    if not study.enabled:
        return "disabled"
    missing = sorted({s.dataset for s in study.stages.values() if not plan.available(s.dataset)})
    return f"not trained ({', '.join(missing)} not enabled)" if missing else "trained"


def _stage(stage: Stage, size: int) -> list[str]:
    start = ""
    if stage.init_from is not None:
        source = SPLIT if set(stage.init_columns.values()) == {SPLIT} else "same fold"
        owner = f"{stage.init_study}/" if stage.init_study else ""
        start = f", from {owner}{stage.init_from}'s {source} model"
    recipe = " ".join(
        f"{key}={_value(value)}"
        for key, value in sorted(stage.recipe.items())
        if key not in ("study", "stage")
    )
    papers = ", ".join(stage.evaluate.paper) or "none"
    return [
        *_wrap(
            f"  {stage.name}: ",
            f"{stage.dataset} / {stage.preset} ({size} px) / {stage.split} -> "
            f"{_columns(stage.columns)}{start}",
        ),
        *_field("recipe", recipe),
        *_field("evaluate", f"threshold {stage.evaluate.threshold}; papers beside: {papers}"),
        *_field("cam", _cam(stage.cam)),
    ]


def _columns(columns: tuple[str, ...]) -> str:
    """Split columns: ``split``, or ``folds 0-9`` (``folds 0, 2``)."""
    if columns == (SPLIT,):
        return SPLIT
    numbers = [int(column.removeprefix("fold_")) for column in columns]
    if len(numbers) > 2 and numbers == list(range(numbers[0], numbers[-1] + 1)):
        return f"folds {numbers[0]}-{numbers[-1]}"
    return "folds " + ", ".join(map(str, numbers))


def _value(value: object) -> str:
    """A recipe value on one line (a list or mapping as compact JSON)."""
    return (
        json.dumps(value, separators=(",", ":")) if isinstance(value, dict | list) else str(value)
    )


def _field(name: str, text: str) -> list[str]:
    return _wrap(f"    {name:<9}", text)


def _wrap(head: str, text: str) -> list[str]:
    """``text`` after ``head``, wrapped under itself."""
    return textwrap.wrap(
        text, WIDTH, initial_indent=head, subsequent_indent=" " * len(head), break_on_hyphens=False
    )


def _cam(cam: Cam | None) -> str:
    if cam is None:
        return "none"
    images = "all test images" if cam.max_images == "all" else f"at most {cam.max_images} images"
    return f"{cam.method}, top {cam.top_k}, {cam.images} in the figure, {images}"


def _compare(compare: CompareCams) -> str:
    return (
        f"{' vs '.join(compare.labels)} on {_columns(compare.columns)} ({compare.method},"
        f" {compare.images} images each)"
    )


def _cascade(cascade: Cascade) -> str:
    sources = ", ".join(f"{name} ({scheme})" for name, scheme in cascade.sources.items())
    return (
        f"modules {', '.join(cascade.modules)} at {cascade.preset}; held out: the test sides of"
        f" {sources}; chest fraction {cascade.chest_fraction}"
    )

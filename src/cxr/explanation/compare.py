"""`cam-compare`: the heatmaps of several models side by side on the same images.

Seed 000 compares where Model B (JSRT only) and Model C (NIH, then JSRT) look on the JSRT
test images of a fold, with the known nodule position drawn. One PNG, one row per image:

    image + its ground truth | model 1's heatmap | model 2's heatmap | ...

Every heatmap is of the same output (the models' positive class) and carries the model's
probability in its title; the ground truth (a JSRT nodule's circle, any other dataset's boxes)
is drawn on every panel, so a heatmap can be read against it. The models must be different,
have been trained on the images' dataset, take their size and all have the output drawn (their
other outputs may differ: a one-finding model beside a 14-finding one). The figure reuses
what ``cxr cam`` draws with: :class:`~cxr.explanation.heatmaps.Explainer`,
:func:`~cxr.explanation.inputs.load_model`, :func:`~cxr.explanation.inputs.side_rows` and
:func:`~cxr.explanation.figures.grid`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from cxr.core.atomic import atomic_path
from cxr.explanation.figures import Panel, grid, ground_truth
from cxr.explanation.heatmaps import METHODS, Explainer
from cxr.explanation.inputs import (
    TrainedModel,
    check_trained_on,
    default_device,
    load_model,
    side_rows,
)
from cxr.explanation.localisation import parse_boxes
from cxr.explanation.run import boxed_first, check_size, supports_cam
from cxr.explanation.settings import CompareSettings

log = logging.getLogger(__name__)

NAMES = {"cam": "CAM", "gradcam": "Grad-CAM", "gradcam++": "Grad-CAM++"}


def compare_cams(
    models: Sequence[str | Path],
    labels: Sequence[str] | None,
    data_dir: str | Path,
    split_table: str | Path,
    column: str,
    out_png: str | Path,
    images: int = CompareSettings.images,
    side: str = CompareSettings.side,
    method: str = CompareSettings.method,
    output: str | None = CompareSettings.output,
    device: str | torch.device | None = None,
) -> dict:
    """Draw the heatmaps of ``models`` (folders of ``cxr train``) side by side on the first
    ``images`` images that ``column`` of ``split_table`` puts in ``side`` (those with
    ground-truth boxes first); writes ``out_png`` and returns what it drew.

    ``labels`` title the models' columns (default: the folder names). ``method`` ``auto`` takes
    CAM for a model ending in global average pooling and one linear layer, else Grad-CAM.
    ``output`` names the output whose heatmap is drawn; by default the models' only output.
    """
    if len(models) < 1:
        raise ValueError("cam-compare needs at least one model")
    names = _labels(models, labels)
    if method not in (*METHODS, "auto"):
        raise ValueError(f"unknown CAM method {method!r}; known: auto, {', '.join(METHODS)}")
    if images < 1:
        raise ValueError(f"images must be >= 1, got {images}")
    device = torch.device(device) if device is not None else default_device()
    trained = [load_model(m, device) for m in models]
    wanted = output or _only_output(trained, models)
    index, tensors, rows = side_rows(data_dir, split_table, side, column)
    for folder, model in zip(models, trained, strict=True):
        check_trained_on(folder, data_dir)
        check_size(folder, model, data_dir, tensors)
        if wanted not in model.outputs:
            raise ValueError(f"{folder} has no output {wanted!r} (has {', '.join(model.outputs)})")
    rows = boxed_first(index, rows, images)
    pixels = torch.from_numpy(np.asarray(tensors[rows]))[:, None]
    maps, probabilities, methods = [], [], []
    for model in trained:
        chosen = method
        if chosen == "auto":
            chosen = "cam" if supports_cam(model.model, model.spec.input_size) else "gradcam"
        c = model.outputs.index(wanted)
        result = Explainer(model.model, chosen)(
            model.inputs(pixels), lambda logits, c=c: torch.full((len(logits), 1), c)
        )
        maps.append(result.maps[:, 0].numpy())
        probabilities.append(model.probabilities(result.logits)[:, c].numpy())
        methods.append(chosen)
    figure, drawn = [], []
    for i, row in enumerate(map(int, rows)):
        record = index.iloc[row]
        image_id = str(record["image_id"])
        boxes, circles = ground_truth(record, parse_boxes(record["boxes"]))
        truth = _text(record.get("label"))
        image = np.asarray(tensors[row])
        marked = "nodule" if circles else "ground truth"
        first = Panel(
            image, None, image_id, wanted, float("nan"), boxes, circles,
            title=f"image + {marked}\n{image_id}" + (f" ({truth})" if truth else ""),
        )  # fmt: skip
        panels = [first]
        for name, heat, prob in zip(names, maps, probabilities, strict=True):
            title = f"{name}\np({wanted}) = {float(prob[i]):.3f}"
            panels.append(Panel(image, heat[i], image_id, wanted, float(prob[i]), boxes, circles,
                                title))  # fmt: skip
        figure.append(panels)
        drawn.append(
            {"image_id": image_id, "label": truth, "nodule": bool(circles),
             **{name: float(prob[i]) for name, prob in zip(names, probabilities, strict=True)}}
        )  # fmt: skip
    used = " / ".join(dict.fromkeys(NAMES[m] for m in methods))
    title = f"{used} heatmaps of {wanted} · {side} images of {column}"
    if any(d["nodule"] for d in drawn):
        title += " · circle: the nodule's position"
    with atomic_path(out_png) as work:
        grid(figure, work, title)
    log.info("cam-compare: %d model(s) on %d image(s) -> %s", len(models), len(rows), out_png)
    return {"models": [str(m) for m in models], "labels": names, "methods": methods,
            "output": wanted, "column": column, "side": side, "images": drawn}  # fmt: skip


def _labels(models: Sequence[str | Path], labels: Sequence[str] | None) -> list[str]:
    """The column titles: ``labels``, else each folder's name (its path where names repeat);
    refuses a model given twice and titles that repeat."""
    folders = [Path(m).resolve() for m in models]
    twice = next((m for m, f in zip(models, folders, strict=True) if folders.count(f) > 1), None)
    if twice is not None:
        raise ValueError(f"--model {twice} is given twice; compare different models")
    if labels:
        if len(labels) != len(models):
            raise ValueError(f"{len(labels)} label(s) for {len(models)} model(s)")
        repeated = next((name for name in labels if list(labels).count(name) > 1), None)
        if repeated is not None:
            raise ValueError(f"--label {repeated!r} is given twice; give each model its own")
        return list(labels)
    names = [Path(m).name for m in models]
    return names if len(set(names)) == len(names) else [str(m) for m in models]


def _text(value: object) -> str:
    """An index cell as text; a missing one as ''."""
    return "" if value is None or bool(pd.isna(value)) else str(value)


def _only_output(trained: Sequence[TrainedModel], models: Sequence[str | Path]) -> str:
    """The output every model shares when each has exactly one (a binary model's class)."""
    outputs = {model.outputs for model in trained}
    if len(outputs) == 1 and len(next(iter(outputs))) == 1:
        return next(iter(outputs))[0]
    listed = "; ".join(f"{m}: {', '.join(t.outputs)}" for m, t in zip(models, trained, strict=True))
    raise ValueError(f"name the output whose heatmaps are compared (--output); outputs: {listed}")

"""Localisation against a centred blob: a heatmap on an off-centre box beats it, the blob hits a
central box, both are scored on the same boxes, flat maps earn nothing, the JSON round-trips."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from cxr.explanation.localisation import (
    BLOB_SIGMA,
    MARGIN_METRICS,
    SCORERS,
    Box,
    accuracy_table,
    baseline_entries,
    centred_blob,
    detected_box,
    is_flat,
    margin,
    pointing_hit,
    pointing_sentence,
    score_boxes,
    side_by_side,
    to_markdown,
)

SIDE = 64


def peaked(box: Box, shape: tuple[int, int] = (SIDE, SIDE)) -> np.ndarray:
    """A Gaussian heatmap peaked at ``box``'s centre, about as wide as the box."""
    rows, cols = np.mgrid[: shape[0], : shape[1]] + 0.5
    cy, cx = box.y + box.h / 2, box.x + box.w / 2
    return np.exp(-(((cols - cx) / box.w) ** 2 + ((rows - cy) / box.h) ** 2) * 2)


def records(boxes: list[Box], heatmap_of: object) -> list[dict]:
    """Per-box score records as ``cxr cam`` collects them, for ``heatmap_of(box)``."""
    out = []
    for i, box in enumerate(boxes):
        (scores,) = score_boxes(heatmap_of(box), [box])
        out.append({"image_id": f"i{i}", "finding": box.label, **scores})
    return out


#: Off-centre boxes in the lung fields of a 64 px image (upper left, lower right, apex).
BOXES = [
    Box("Mass", 8, 10, 10, 10),
    Box("Mass", 44, 40, 12, 10),
    Box("Nodule", 12, 6, 6, 6),
    Box("Effusion", 40, 44, 18, 14),
]


def tables(boxes: list[Box]) -> tuple[pd.DataFrame, pd.DataFrame]:
    model = accuracy_table(records(boxes, peaked))
    blob = accuracy_table(records(boxes, lambda b: centred_blob((SIDE, SIDE))), paper=False)
    return model, blob


def test_centred_blob_is_a_centred_gaussian_of_the_named_width() -> None:
    blob = centred_blob((SIDE, SIDE))
    assert blob.shape == (SIDE, SIDE) and blob.max() == pytest.approx(1.0, abs=1e-3)
    assert not blob.flags.writeable
    np.testing.assert_allclose(blob, blob[::-1, ::-1])  # symmetric about the centre
    # the half-maximum disc: radius sqrt(2 ln 2) sigma
    radius = math.sqrt(2 * math.log(2)) * BLOB_SIGMA * SIDE
    box = detected_box(blob)
    assert box is not None and box.w == pytest.approx(2 * radius, abs=2)
    assert box.x + box.w / 2 == pytest.approx(SIDE / 2)
    assert centred_blob((30, 40)).shape == (30, 40)


def test_a_heatmap_on_an_off_centre_box_beats_the_blob() -> None:
    model, blob = tables(BOXES)
    gains = margin(model, blob)
    assert set(gains) == set(MARGIN_METRICS)
    assert all(gains[m] > 0 for m in MARGIN_METRICS), gains
    everything = model.set_index("finding").loc["all"]
    assert everything["pointing_game"] == 1.0
    assert blob.set_index("finding").loc["all", "pointing_game"] == 0.0
    sentence = pointing_sentence(model, blob)
    assert sentence == (
        "The CAM points at the box for 100.0% of the 4 boxes, a centred blob for 0.0%: "
        "100.0 points better."
    )


@pytest.mark.parametrize("side", [64, 63])  # even: four tied centre pixels; odd: one
def test_the_blob_hits_a_box_at_the_centre(side: int) -> None:
    central = Box("Cardiomegaly", side / 2 - 8, side / 2 - 6, 16, 12)
    (scores,) = score_boxes(centred_blob((side, side)), [central])
    assert scores["pointing"] and scores["iobb"] > 0
    model = accuracy_table([{"image_id": "a", "finding": "Cardiomegaly", **scores}])
    assert model.set_index("finding").loc["all", "pointing_game"] == 1.0


def test_blob_rows_have_the_model_rows_findings_and_boxes() -> None:
    model, blob = tables(BOXES)
    assert list(blob["finding"]) == list(model["finding"]) == ["Effusion", "Mass", "Nodule", "all"]
    assert list(blob["boxes"]) == list(model["boxes"]) == [1, 2, 1, 4]
    assert not any(c.startswith("paper_") for c in blob.columns)
    both = side_by_side(model, blob)
    assert list(both.columns[:3]) == ["finding", "scorer", "boxes"]
    assert list(both["scorer"]) == list(SCORERS) * 4  # each blob row under its model row
    assert list(both["finding"]) == [f for f in model["finding"] for _ in SCORERS]
    assert both["boxes"].tolist() == [1, 1, 2, 2, 1, 1, 4, 4]
    blob_rows = both[both["scorer"] == "centred_blob"]
    assert blob_rows["paper_iobb_acc@0.1"].isna().all()
    assert "| Effusion | centred_blob | 1 |" in to_markdown(both)


def test_json_entries_round_trip() -> None:
    model, blob = tables(BOXES)
    entries = baseline_entries(model, blob)
    assert set(entries) == {"centred_blob_heatmap", "centred_blob", "margin"}
    assert json.loads(json.dumps(entries)) == entries
    assert [r["finding"] for r in entries["centred_blob"]] == list(model["finding"])
    assert entries["margin"]["pointing_game"] == pytest.approx(1.0)
    empty = accuracy_table([])
    none = baseline_entries(empty, accuracy_table([], paper=False))
    assert json.loads(json.dumps(none)) == none  # no boxes: nulls, not NaN
    assert none["margin"] == dict.fromkeys(MARGIN_METRICS)
    assert pointing_sentence(empty, empty).startswith("No boxes were scored")


@pytest.mark.parametrize("value", [0.0, 1.0, np.nan])
def test_a_flat_heatmap_earns_nothing(value: float) -> None:
    """Before: a flat map pointed at pixel (0, 0) (argmax's first tie) and a flat positive one
    detected the whole image, so a large box earned its share of the image as IoBB."""
    flat = np.full((SIDE, SIDE), value)
    assert is_flat(flat)
    corner, whole = Box("Mass", 0, 0, 8, 8), Box("Cardiomegaly", 0, 0, SIDE, SIDE)
    assert not pointing_hit(flat, corner) and not pointing_hit(flat, whole)
    assert detected_box(flat) is None
    for scores in score_boxes(flat, [corner, whole, Box("Effusion", 4, 20, 40, 40)]):
        assert scores == {"pointing": False, "iou": 0.0, "iobb": 0.0}


def test_tied_maxima_hit_only_when_all_lie_in_the_box() -> None:
    heat = np.zeros((SIDE, SIDE))
    heat[10, 10] = heat[50, 50] = 1.0  # two equal peaks
    assert not pointing_hit(heat, Box("Mass", 5, 5, 10, 10))  # holds only the first
    assert not pointing_hit(heat, Box("Mass", 45, 45, 10, 10))  # holds only the second
    assert pointing_hit(heat, Box("Mass", 5, 5, 50, 50))  # holds both

"""`cam`: heatmaps of a trained model on one side of a split, their localisation of the
ground-truth boxes, and a figure grid, written into one output folder.

The folder (it appears atomically, complete or not at all) holds:

- ``cam_grid.png``: a few images (those with ground-truth boxes first) x their top-k outputs;
- ``localisation.json`` / ``.csv`` / ``.md``: per finding, the pointing game and the IoBB and
  IoU accuracies at each T(IoBB), beside the ChestX-ray14 paper's numbers and those of a
  centred blob (a heatmap that ignores the image) scored on the same boxes, and the model's
  margin over the blob;
- ``boxes.csv``: one row per scored ground-truth box (image, finding, pointing, IoU, IoBB);
- ``top_k.csv``: each image's top-k outputs and their probabilities;
- ``cam.json``: method, images, seconds, peak memory and what was scored.

Images stream through in batches from the memory-mapped tensor; only per-box numbers and the
few figure panels are kept, so memory stays flat over any number of images.
"""

from __future__ import annotations

import json
import logging
import resource
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import psutil
import torch

from cxr.core.atomic import atomic_path
from cxr.explanation.figures import Panel, grid, ground_truth
from cxr.explanation.heatmaps import METHODS, Explainer, top_k
from cxr.explanation.inputs import (
    TrainedModel,
    check_trained_on,
    default_device,
    load_model,
    side_rows,
)
from cxr.explanation.localisation import (
    PAPER_IOBB_ACCURACY,
    THRESHOLDS,
    Box,
    accuracy_table,
    baseline_entries,
    centred_blob,
    parse_boxes,
    pointing_sentence,
    score_boxes,
    side_by_side,
    table_records,
    to_markdown,
)
from cxr.explanation.settings import CamSettings
from cxr.training.data import Prefetcher, TensorBatches

log = logging.getLogger(__name__)

GRID_FILE, SUMMARY_FILE = "cam_grid.png", "cam.json"


@dataclass
class BatchResult:
    """What one batch leaves behind: small records and the figure panels it holds."""

    images: int
    top_k: list[dict] = field(default_factory=list)
    boxes: list[dict] = field(default_factory=list)
    blob: list[dict] = field(default_factory=list)  # the same boxes scored by a centred blob
    panels: dict[int, list[Panel]] = field(default_factory=dict)  # tensor row -> its top-k


def truth_outputs(outputs: Sequence[str], box_labels: set[str]) -> dict[str, int]:
    """Which output's heatmap each box label is scored with: the output of the same name;
    for a one-output model named after no box label (JSRT ``malignant``, say), every box."""
    exact = {name: i for i, name in enumerate(outputs) if name in box_labels}
    if len(outputs) == 1 and not exact:
        return dict.fromkeys(box_labels, 0)
    return exact


def explain_rows(
    trained: TrainedModel,
    method: str,
    index: pd.DataFrame,
    images: np.ndarray,
    rows: np.ndarray,
    k: int = 4,
    batch_size: int = 32,
    box_fraction: float = 0.5,
    figure_rows: Sequence[int] = (),
    layer: str = CamSettings.layer,
) -> Iterator[BatchResult]:
    """Explain the images of tensor ``rows`` batch by batch: top-k heatmaps, the heatmap of each
    ground-truth box's finding, scores of those boxes (and of a centred blob on them), and
    panels of ``figure_rows``."""
    explainer = Explainer(trained.model, method, layer)
    boxes = {int(r): parse_boxes(index["boxes"].iat[int(r)]) for r in rows}
    labels = {b.label for listed in boxes.values() for b in listed}
    mapping = truth_outputs(trained.outputs, labels)
    ids = index["image_id"].astype(str).to_numpy()
    wanted_panels = set(map(int, figure_rows))
    cuda = explainer.device.type == "cuda"
    batches = TensorBatches(images, rows, batch_size, shuffle=False, scale=False)
    for pixels, batch in Prefetcher(batches, pin=cuda):
        extra = [
            sorted({mapping[b.label] for b in boxes[int(r)] if b.label in mapping}) for r in batch
        ]

        def choose(logits: torch.Tensor, extra: list[list[int]] = extra) -> torch.Tensor:
            return _with_truth(top_k(logits, k).cpu(), extra)

        pixels = pixels.to(explainer.device, non_blocking=True)  # uint8: a quarter of the bytes
        result = explainer(trained.inputs(pixels), choose)
        probs = trained.probabilities(result.logits)
        maps, targets = result.maps.numpy(), result.targets.numpy()
        shown = min(k, probs.shape[1])
        out = BatchResult(images=len(batch))
        for b, row in enumerate(map(int, batch)):
            for rank in range(shown):
                c = int(targets[b, rank])
                out.top_k.append(
                    {"image_id": ids[row], "rank": rank + 1, "output": trained.outputs[c],
                     "probability": float(probs[b, c])}
                )  # fmt: skip
            for box in boxes[row]:
                if box.label not in mapping:
                    continue
                c = mapping[box.label]
                j = int(np.flatnonzero(targets[b] == c)[0])
                (scores,) = score_boxes(maps[b, j], [box], box_fraction)
                (blob,) = score_boxes(centred_blob(maps[b, j].shape), [box], box_fraction)
                out.boxes.append(
                    {"image_id": ids[row], "finding": box.label, "output": trained.outputs[c],
                     "probability": float(probs[b, c]), **scores}
                )  # fmt: skip
                out.blob.append({"image_id": ids[row], "finding": box.label, **blob})
            if row in wanted_panels:
                out.panels[row] = _panels(
                    trained, index, images, row, probs[b], targets[b, :shown], maps[b], boxes[row]
                )
        yield out


def _with_truth(top: torch.Tensor, extra: list[list[int]]) -> torch.Tensor:
    """Top-k columns, then each row's ground-truth outputs not among them (padded with its
    first target, a repeat that costs one heatmap and is never read)."""
    added = [[c for c in wanted if c not in set(top[b].tolist())] for b, wanted in enumerate(extra)]
    width = max((len(a) for a in added), default=0)
    if not width:
        return top
    pad = [a + [int(top[b, 0])] * (width - len(a)) for b, a in enumerate(added)]
    return torch.cat([top, torch.tensor(pad, dtype=top.dtype)], 1)


def _panels(
    trained: TrainedModel,
    index: pd.DataFrame,
    images: np.ndarray,
    row: int,
    probs: torch.Tensor,
    targets: np.ndarray,
    maps: np.ndarray,
    boxes: list[Box],
) -> list[Panel]:
    record = index.iloc[row]
    drawn, circles = ground_truth(record, boxes)
    return [
        Panel(
            image=np.array(images[row]),
            heatmap=maps[j].copy(),
            image_id=str(record["image_id"]),
            output=trained.outputs[int(c)],
            probability=float(probs[int(c)]),
            boxes=drawn,
            circles=circles,
        )
        for j, c in enumerate(targets)
    ]


def boxed_first(index: pd.DataFrame, rows: np.ndarray, max_images: int | None) -> np.ndarray:
    """Rows with ground-truth boxes first (so a capped run still scores them), capped."""
    has_box = index["boxes"].iloc[rows].notna().to_numpy()
    ordered = np.concatenate([rows[has_box], rows[~has_box]])
    return ordered if max_images is None else ordered[: max(int(max_images), 0)]


def check_size(
    model_dir: str | Path, trained: TrainedModel, data_dir: str | Path, images: np.ndarray
) -> None:
    """Refuse images of another size than the model takes."""
    size = trained.spec.input_size
    if images.shape[1:] != (size, size):
        raise ValueError(
            f"--data {data_dir} holds {images.shape[1]}x{images.shape[2]} images but "
            f"{model_dir} takes {size}x{size}: use the preset it was trained on"
        )


def supports_cam(model: torch.nn.Module, size: int) -> bool:
    """Whether ``model`` ends in global average pooling and one linear layer (CAM proper),
    tried on two random images of ``size``."""
    device = next(model.parameters()).device
    probe = torch.rand(2, 1, size, size, generator=torch.Generator().manual_seed(0))
    try:
        Explainer(model, "cam")(probe.to(device), lambda logits: logits.argmax(1, keepdim=True))
    except ValueError:
        return False
    return True


def cam(
    model_dir: str | Path,
    data_dir: str | Path,
    split_table: str | Path,
    out_dir: str | Path,
    method: str = CamSettings.method,
    top_k: int = CamSettings.top_k,
    layer: str = CamSettings.layer,
    side: str = CamSettings.side,
    column: str = CamSettings.column,
    max_images: int | None = CamSettings.max_images,
    batch_size: int = CamSettings.batch_size,
    figure_images: int = CamSettings.figure_images,
    box_fraction: float = 0.5,
    device: str | torch.device | None = None,
) -> dict:
    """Heatmaps of ``model_dir``'s model on ``side`` of ``column``; writes ``out_dir``, returns
    the ``cam.json`` summary. ``method`` auto: CAM where the model allows it (and ``layer`` is
    the last), else Grad-CAM."""
    if method not in (*METHODS, "auto"):
        raise ValueError(f"unknown CAM method {method!r}; known: auto, {', '.join(METHODS)}")
    if top_k < 1 or batch_size < 1:
        raise ValueError(f"top_k and batch_size must be >= 1 (got {top_k}, {batch_size})")
    started = time.perf_counter()
    device = torch.device(device) if device is not None else default_device()
    trained = load_model(model_dir, device)
    if method == "auto":
        pooled = layer == "last" and supports_cam(trained.model, trained.spec.input_size)
        method = "cam" if pooled else "gradcam"
    Explainer(trained.model, method, layer)  # fails early for a model without a feature map
    index, images, rows = side_rows(data_dir, split_table, side, column)
    check_trained_on(model_dir, data_dir)
    check_size(model_dir, trained, data_dir, images)
    rows = boxed_first(index, rows, max_images)
    figure_rows = [int(r) for r in rows[:figure_images]]
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    process, peak_rss, done = psutil.Process(), 0, 0
    top, scored, blob, panels = [], [], [], {}
    for result in explain_rows(
        trained, method, index, images, rows, top_k, batch_size, box_fraction, figure_rows, layer
    ):
        done += result.images
        top += result.top_k
        scored += result.boxes
        blob += result.blob
        panels.update(result.panels)
        peak_rss = max(peak_rss, process.memory_info().rss)
        log.debug("cam: %d / %d images", done, len(rows))
    seconds = time.perf_counter() - started
    table, blob_table = accuracy_table(scored), accuracy_table(blob, paper=False)
    summary = {
        "method": method,
        "layer": layer,
        "model": str(model_dir),
        "architecture": trained.spec.architecture,
        "data": str(data_dir),
        "split": str(split_table),
        "column": column,
        "side": side,
        "top_k": min(top_k, len(trained.outputs)),
        "images": done,
        "boxes_scored": len(scored),
        "box_fraction": box_fraction,
        "thresholds": list(THRESHOLDS),
        "device": str(device),
        "seconds": seconds,
        "images_per_second": done / max(seconds, 1e-9),
        "peak_rss_mb": peak_rss / 2**20,
        "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "cuda_peak_mb": (
            torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None
        ),
    }
    title = f"{method} · {trained.spec.architecture} · {side} (top {summary['top_k']})"
    with atomic_path(out_dir) as work:
        work.mkdir()
        grid([panels[r] for r in figure_rows if r in panels], work / GRID_FILE, title)
        side_by_side(table, blob_table).to_csv(work / "localisation.csv", index=False)
        (work / "localisation.md").write_text(_markdown(table, blob_table, summary))
        localisation = {
            "method": method,
            "box_fraction": box_fraction,
            "detected_box": (
                f"heatmap >= {box_fraction:g} x its max; bounding box of the largest "
                "8-connected region"
            ),
            "thresholds": list(THRESHOLDS),
            "paper": {"source": "ChestX-ray14 (Wang et al. 2017) Table 4, ResNet-50",
                      "iobb_accuracy": {str(t): v for t, v in PAPER_IOBB_ACCURACY.items()}},
            "findings": table_records(table),
            **baseline_entries(table, blob_table),
        }  # fmt: skip
        (work / "localisation.json").write_text(json.dumps(localisation, indent=2) + "\n")
        pd.DataFrame(scored).to_csv(work / "boxes.csv", index=False)
        pd.DataFrame(top).to_csv(work / "top_k.csv", index=False)
        (work / SUMMARY_FILE).write_text(json.dumps(summary, indent=2) + "\n")
    log.info(
        "cam: %s heatmaps of %d images, %d boxes scored in %.1f s -> %s",
        method,
        done,
        len(scored),
        seconds,
        out_dir,
    )
    return summary


def _markdown(model: pd.DataFrame, blob: pd.DataFrame, summary: dict) -> str:
    head = (
        f"# Localisation: {summary['method']} on {summary['architecture']}, "
        f"{summary['side']} ({summary['images']} images, {summary['boxes_scored']} boxes)\n\n"
        f"Detected box: heatmap >= {summary['box_fraction']:g} x its max, bounding box of the "
        "largest 8-connected region. `iobb_acc@T`: share of ground-truth boxes with IoBB >= T; "
        "`paper_iobb_acc@0.1`: ChestX-ray14 paper, Table 4 (ResNet-50). Under each model row, "
        "`centred_blob`: a centred Gaussian heatmap that ignores the image, on the same boxes.\n\n"
        f"{pointing_sentence(model, blob, summary['method'] + ' heatmap')}\n\n"
    )
    return head + to_markdown(side_by_side(model, blob))

"""`cascade-evaluate`: seed 002's cascade, end to end, on its held-out mixed set.

Each held-out image goes through the modules as a served image would: Module I says X-ray or
not; only an X-ray reaches Module II (its type); only an image Module II calls ``chest`` reaches
Module III (its 14 findings, each at the threshold Module III's evaluation chose). An image is
right end to end when every module it should pass through answers right:

- a photograph: Module I calls it not an X-ray;
- an X-ray: Module I calls it an X-ray and Module II names its type;
- a chest X-ray with known findings: also Module III's verdict, abnormal (any finding at or over
  its threshold) or normal, matches the labels.

The folder (atomic) holds ``predictions.csv`` (one row per image: truth, each module's answer,
correctness), ``metrics.json`` (with the end-to-end accuracy's bootstrap interval and the
majority baseline: :mod:`cxr.cascade.baseline`), ``table.md`` (per source and overall, the
paper's 0.91 beside ours) and ``routes.png`` (true type against where the cascade sent the
image).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from cxr import tracking
from cxr.cascade.baseline import baselines
from cxr.cascade.sets import CHEST, NOT_XRAY, SETS, XRAY
from cxr.core.atomic import atomic_path
from cxr.core.readers import read_json_object
from cxr.data.index import FINDING_PREFIX, finding_columns
from cxr.evaluation import figures, tables
from cxr.evaluation.report import run_id_of
from cxr.explanation.inputs import (
    TrainedModel,
    data_identity,
    load_model,
    read_run,
    trained_on,
)
from cxr.splits.files import read_data

log = logging.getLogger(__name__)

#: Seed 002's reported end-to-end accuracy.
PAPER_END_TO_END = 0.91
BATCH = 64


def probabilities(model: TrainedModel, images: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """``model``'s output probabilities for ``images[rows]`` (N, outputs), in batches."""
    out = np.zeros((len(rows), len(model.outputs)), dtype=np.float32)
    device = next(model.model.parameters()).device
    with torch.inference_mode():
        for start in range(0, len(rows), BATCH):
            pixels = torch.from_numpy(images[rows[start : start + BATCH]]).unsqueeze(1)
            logits = model.model(model.inputs(pixels.to(device)))
            out[start : start + len(pixels)] = model.probabilities(logits).cpu().numpy()
    return out


def _classes(model: TrainedModel, images: np.ndarray, rows: np.ndarray) -> tuple[list, list]:
    """Arg-max class and its probability of each image of ``rows``."""
    if model.activation != "softmax":
        raise ValueError(f"{model.spec.architecture}: a cascade module must be multi-class")
    probs = probabilities(model, images, rows)
    best = probs.argmax(axis=1)
    return [model.outputs[i] for i in best], probs[np.arange(len(rows)), best].tolist()


#: Each module's role in ``--modules`` order, the cascade set it trains on, and its outputs.
ROLES = (
    ("I", SETS["xray"], f"a multi-class model of {NOT_XRAY}, {XRAY}"),
    ("II", SETS["type"], f"a multi-class model of the X-ray types ({CHEST} among them)"),
    ("III", SETS["chest"], "a multi-label model of the held-out set's findings"),
)


def read_heldout(heldout: str | Path) -> tuple[pd.DataFrame, np.ndarray]:
    """The index and images of the held-out set written by ``cxr cascade-sets``."""
    index, images = read_data(heldout)
    holds = data_identity(heldout)
    if holds != SETS["heldout"]:
        raise ValueError(
            f"--heldout {heldout}: holds {holds}, not the held-out set of cxr cascade-sets "
            f"(preprocessed/{SETS['heldout']}/<preset>)"
        )
    missing = [c for c in ("image_id", "dataset", "label") if c not in index]
    if missing:
        raise ValueError(f"--heldout {heldout}: its index has no column {', '.join(missing)}")
    return index, images


def _describe(folder: str | Path, model: TrainedModel) -> str:
    """What a model folder is: its activation, outputs and the data it was trained on."""
    data, holds = trained_on(folder)
    shown = ", ".join(model.outputs[:6]) + (", ..." if len(model.outputs) > 6 else "")
    kind = "multi-label" if model.activation == "sigmoid" else "multi-class"
    return f"a {kind} model of {shown}, trained on {holds or data or 'unrecorded data'}"


def fits_role(role: str, model: TrainedModel, findings: set[str]) -> bool:
    """Whether ``model``'s outputs are those of the module ``role``."""
    outputs = set(model.outputs)
    if role == "I":
        return model.activation == "softmax" and outputs == {NOT_XRAY, XRAY}
    if role == "II":
        return model.activation == "softmax" and CHEST in outputs and not {NOT_XRAY, XRAY} & outputs
    return model.activation == "sigmoid" and outputs == findings


def check_modules(
    folders: tuple[str | Path, ...],
    modules: tuple[TrainedModel, ...],
    heldout: str | Path,
    index: pd.DataFrame,
    images: np.ndarray,
) -> None:
    """Refuse a module of another role (its outputs, or the cascade set it trained on; so a
    folder given twice too) or taking another image size than the held-out set's."""
    findings = {c.removeprefix(FINDING_PREFIX) for c in finding_columns(index)}
    for at, (folder, model, (role, name, kind)) in enumerate(
        zip(folders, modules, ROLES, strict=True), start=1
    ):
        where = f"--modules position {at} (Module {role}) {folder}"
        holds = trained_on(folder)[1]
        if (holds is not None and holds != name) or not fits_role(role, model, findings):
            raise ValueError(
                f"{where}: is {_describe(folder, model)}; Module {role} is {kind} trained on {name}"
            )
        size = model.spec.input_size
        if images.shape[1:] != (size, size):
            raise ValueError(
                f"{where}: takes {size}x{size} images but --heldout {heldout} holds "
                f"{images.shape[1]}x{images.shape[2]}; use the held-out set of its preset"
            )


def _entry(metrics: dict, key: str, name: str) -> object:
    """``metrics[key][name]``, or None where metrics.json records no such entry."""
    part = metrics.get(key)
    return part.get(name) if isinstance(part, dict) else None


def _check_evaluated(evaluation: Path, metrics: dict, module: str | Path) -> None:
    """Refuse an evaluation of another model than ``module``: its MLflow run where both record
    one, else the model folder (or the predictions under it) that metrics.json names."""
    run_id = metrics.get("run_id") or _entry(metrics, "model", "run_id")
    own = read_run(module).get("run_id")
    if run_id and own:
        if run_id == own:
            return
        raise ValueError(
            f"--chest-evaluation {evaluation}: evaluates MLflow run {run_id}, not Module III's "
            f"({module}: run {own}); pass Module III's cxr evaluate folder"
        )
    recorded = _entry(metrics, "model", "folder") or _entry(metrics, "alignment", "predictions")
    target = Path(module).resolve()
    if recorded and target in (
        Path(str(recorded)).resolve(),
        *Path(str(recorded)).resolve().parents,
    ):
        return
    raise ValueError(
        f"--chest-evaluation {evaluation}: evaluates {recorded or 'unrecorded predictions'}, "
        f"not Module III's ({module}); pass Module III's cxr evaluate folder"
    )


def chest_thresholds(
    evaluation: Path | None, module: str | Path, outputs: tuple[str, ...]
) -> dict[str, float]:
    """Module III's per-finding thresholds from its ``cxr evaluate`` folder, else 0.5 each."""
    if evaluation is None:
        return dict.fromkeys(outputs, 0.5)
    path = evaluation / "metrics.json"
    if not path.is_file():
        raise ValueError(
            f"--chest-evaluation {evaluation}: no metrics.json; is it a folder of cxr evaluate?"
        )
    metrics = read_json_object(path, "a metrics.json of cxr evaluate")
    _check_evaluated(evaluation, metrics, module)
    how = metrics.get("threshold") if isinstance(metrics.get("threshold"), dict) else {}
    chosen = how.get("values")
    if not isinstance(chosen, dict):
        raise ValueError(
            f"{path}: holds no per-finding thresholds (method {how.get('method')}); "
            "--chest-evaluation takes Module III's multi-label evaluation"
        )
    missing = [o for o in outputs if not isinstance(chosen.get(o), int | float)]
    if missing:
        raise ValueError(f"{path}: no threshold for {', '.join(missing)}")
    return {o: float(chosen[o]) for o in outputs}


def run_cascade(
    images: np.ndarray,
    index: pd.DataFrame,
    modules: tuple[TrainedModel, TrainedModel, TrainedModel],
    thresholds: dict[str, float],
) -> pd.DataFrame:
    """Each image's truth, the modules' answers and whether each is right (one row per image)."""
    xray_model, type_model, chest_model = modules
    if XRAY not in xray_model.outputs:
        raise ValueError(f"Module I's outputs {xray_model.outputs} have no {XRAY!r} class")
    truth_type = index["label"].astype(str).to_numpy()
    findings = [c.removeprefix(FINDING_PREFIX) for c in finding_columns(index)]
    table = pd.DataFrame(
        {
            "image_id": index["image_id"].astype(str),
            "source": index["dataset"].astype(str),
            "true_type": truth_type,
        }
    )
    everyone = np.arange(len(index))
    table["module_i"], table["module_i_prob"] = _classes(xray_model, images, everyone)
    reached_ii = np.flatnonzero(table["module_i"].to_numpy() == XRAY)
    table["module_ii"], table["module_ii_prob"] = None, np.nan
    if len(reached_ii):
        answers, probs = _classes(type_model, images, reached_ii)
        table.loc[reached_ii, "module_ii"], table.loc[reached_ii, "module_ii_prob"] = answers, probs
    reached_iii = np.flatnonzero(table["module_ii"].to_numpy() == CHEST)
    table["predicted_abnormal"], table["predicted_findings"] = None, None
    if len(reached_iii):
        probs = probabilities(chest_model, images, reached_iii)
        cut = np.array([thresholds[o] for o in chest_model.outputs])
        positive = probs >= cut
        table.loc[reached_iii, "predicted_abnormal"] = positive.any(axis=1)
        table.loc[reached_iii, "predicted_findings"] = [
            "|".join(o for o, p in zip(chest_model.outputs, row, strict=True) if p)
            for row in positive
        ]
    labels = index[finding_columns(index)]
    known = labels.notna().all(axis=1).to_numpy() & bool(findings)
    true_abnormal = np.where(known, labels.eq(1).any(axis=1).to_numpy(), None)
    is_xray = truth_type != NOT_XRAY
    table["true_abnormal"] = pd.array(true_abnormal, dtype="boolean")
    table["module_i_right"] = (table["module_i"] == XRAY).to_numpy() == is_xray
    table["routed_right"] = table["module_i_right"] & (
        ~is_xray | (table["module_ii"].to_numpy() == truth_type)
    )
    scored = table["true_abnormal"].notna() & table["routed_right"]
    verdict = table["predicted_abnormal"].astype("boolean") == table["true_abnormal"]
    table["verdict_right"] = verdict.where(scored)
    table["end_to_end_right"] = table["routed_right"] & (
        ~table["true_abnormal"].notna().to_numpy() | verdict.fillna(False).to_numpy()
    )
    return table


def _share(series: pd.Series) -> float | None:
    known = series.dropna()
    return float(known.astype(bool).mean()) if len(known) else None


def accuracy_table(table: pd.DataFrame) -> pd.DataFrame:
    """Accuracy of each step, per source and overall (the last row)."""
    parts = [(str(s), g) for s, g in table.groupby("source", sort=True)] + [("all", table)]
    return pd.DataFrame(
        [
            {
                "source": name,
                "images": len(part),
                "Module I": _share(part["module_i_right"]),
                "routing (I + II)": _share(part["routed_right"]),
                "Module III verdict": _share(part["verdict_right"]),
                "end to end": _share(part["end_to_end_right"]),
                "paper end to end": PAPER_END_TO_END if name == "all" else None,
            }
            for name, part in parts
        ]
    )


def _routes(table: pd.DataFrame) -> tuple[list[str], np.ndarray]:
    """True type (rows) against where the cascade sent the image (columns)."""
    route = table["module_ii"].where(table["module_i"] == XRAY, NOT_XRAY).astype(str)
    labels = sorted(set(table["true_type"]) | set(route), key=lambda t: (t == NOT_XRAY, t))
    matrix = pd.crosstab(table["true_type"], route).reindex(
        index=labels, columns=labels, fill_value=0
    )
    return labels, matrix.to_numpy()


def _baseline_line(metrics: dict) -> str:
    """The line under table.md: the end-to-end accuracy's interval and the majority baseline."""
    ci, share = metrics["end_to_end_accuracy_ci"], metrics["majority_share"]
    if ci is None or share is None:
        return ""
    return (
        f"\nEnd to end {metrics['end_to_end_accuracy']:.3f} (95% CI {ci[0]:.3f}-{ci[1]:.3f}); "
        f"majority baseline {share:.3f} (always answering {metrics['majority_class']}).\n"
    )


def evaluate_cascade(
    heldout: str | Path,
    module_i: str | Path,
    module_ii: str | Path,
    module_iii: str | Path,
    out: str | Path,
    *,
    chest_evaluation: str | Path | None = None,
    summary: str | Path | None = None,
) -> dict:
    """Run the cascade of the three ``cxr train`` folders over the held-out set folder
    ``heldout`` (``cxr cascade-sets``); write ``out`` (and the headline accuracies, for DVC's
    metrics, to ``summary``); return its metrics."""
    index, images = read_heldout(heldout)
    folders = (module_i, module_ii, module_iii)
    tracking.check_store()  # an unreachable server fails now, not after the work
    modules = tuple(load_model(m, torch.device("cpu")) for m in folders)
    check_modules(folders, modules, heldout, index, images)
    evaluation = Path(chest_evaluation) if chest_evaluation else None
    thresholds = chest_thresholds(evaluation, module_iii, modules[2].outputs)
    table = run_cascade(images, index, modules, thresholds)
    frame = accuracy_table(table)
    overall = frame.iloc[-1]
    metrics = {
        "heldout": str(heldout),
        "images": len(table),
        "module_i_accuracy": overall["Module I"],
        "routing_accuracy": overall["routing (I + II)"],
        "module_iii_verdict_accuracy": overall["Module III verdict"],
        "end_to_end_accuracy": overall["end to end"],
        **baselines(table),
        "paper": {"end_to_end_accuracy": PAPER_END_TO_END},
        "thresholds": thresholds,
        "by_source": frame.set_index("source").drop(columns="paper end to end").to_dict("index"),
        "run_id": run_id_of(module_iii),
    }
    labels, matrix = _routes(table)
    with atomic_path(out) as work:
        work.mkdir()
        table.to_csv(work / "predictions.csv", index=False)
        (work / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
        (work / "table.md").write_text(
            "# Seed 002: the cascade end to end on the held-out mixed set\n\n"
            + tables.markdown(frame)
            + _baseline_line(metrics)
        )
        figures.confusion_figure(
            labels, matrix, work / "routes.png", "True type (rows) vs the cascade's route"
        )
    if summary is not None:
        kept = ("images", "majority_share")
        headline = {k: v for k, v in metrics.items() if k in kept or k.endswith("accuracy")}
        with atomic_path(summary) as tmp:
            tmp.write_text(json.dumps({**headline, "paper": metrics["paper"]}, indent=2) + "\n")
    logged = {
        f"cascade/{k}": float(v)
        for k, v in metrics.items()
        if (k.endswith("accuracy") or k == "majority_share") and v is not None
    }
    tracking.log_to_run(metrics["run_id"], logged, Path(out), "cascade")
    return metrics

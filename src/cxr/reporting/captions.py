"""What every caption says of a stage: its settings (the recipe, the data's preset and split)
and where its data came from (synthetic or real)."""

from __future__ import annotations

from pathlib import Path

from cxr.layout import Layout
from cxr.reporting.discovery import Stage
from cxr.reporting.provenance import data_of, started_from


def settings_text(stage: Stage, layout: Layout, scale: str | None) -> str:
    recipe = stage.run.get("recipe") or {}
    if not recipe:
        return "Settings: unknown (no run.json)."

    def get(key: str) -> str:
        value = recipe.get(key)
        return "–" if value in (None, "") else str(value)

    epochs = get("epochs")
    if "epochs_run" in stage.run:
        epochs += f" (ran {stage.run['epochs_run']}"
        if "best_epoch" in stage.run:
            epochs += f", best {int(stage.run['best_epoch']) + 1}"
        epochs += ")"
    _, preset = data_of(stage, layout)
    split = (stage.run.get("data") or {}).get("split")
    init = get("init")
    start = started_from(stage.run)
    if str(stage.run.get("init_source", "")).startswith("synthetic pretraining"):
        init = f"synthetic pretraining ({start}), not ImageNet"
    elif start:
        init += f" then {start}"
    parts = [
        f"architecture {get('architecture')}",
        f"init {init}",
        f"transfer {get('transfer')}",
        f"epochs {epochs}",
        f"input {get('input_size')} px",
        f"scale {scale or 'unknown'}",
    ]
    if preset:
        parts.append(f"preset {preset}")
    if split:
        parts.append(f"split {Path(split).stem}")
    return "Settings: " + ", ".join(parts) + "."


def data_text(stage: Stage, layout: Layout, sources: dict[str, str], short: bool = False) -> str:
    dataset, _ = data_of(stage, layout)
    if dataset is None:
        return "Data: unknown dataset."
    names = dataset if isinstance(dataset, list) else [dataset]
    dataset = "+".join(names)  # a mixed set: its sources' names
    kinds = {sources.get(name) for name in names}
    source = kinds.pop() if len(kinds) == 1 else (None if None in kinds else "mixed")
    if short:
        what = {"synthetic": "synthetic miniature", "real": "real data"}
        what["mixed"] = "synthetic and real mixed"
        return f"Data: {dataset} ({what.get(source, 'source not given')})."
    if source == "synthetic":
        return (
            f"Data: {dataset}, SYNTHETIC (cxr's generated miniature): our numbers show the "
            "pipeline works, they are not comparable to the papers' numbers on the real data."
        )
    if source == "real":
        return f"Data: {dataset}, real (the downloaded dataset)."
    if source == "mixed":
        return f"Data: {dataset}, synthetic and real sources mixed."
    return f"Data: {dataset}, source not given (synthetic or real unknown)."

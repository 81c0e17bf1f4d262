"""Where the cascade's three modules come from: the pipeline's ``results/`` layout, or versions
of the MLflow model registry; with each module's preset and Module III's thresholds.

A module is a folder with ``model.pt`` (a weights-only state dict), ``model.json`` (the recipe
cxr rebuilds the network from) and ``run.json`` (the data it trained on, hence its preset).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from cxr.core.readers import read_json_object
from cxr.data.presets import Preset
from cxr.layout import Layout

#: The cascade study and its modules' stage names, as params.yaml names them.
STUDY = "seed002_cascade"
STAGES = ("module_i", "module_ii", "module_iii")
ROLES = ("I", "II", "III")
PRESET_FILE = "preset.json"


@dataclass(frozen=True)
class ModuleFiles:
    """One module's folder and where it comes from (a path, or a registry version)."""

    role: str
    folder: Path
    source: str  # the folder, or models:/<name>/<version>
    name: str | None = None  # registered model name
    version: str | None = None
    run_id: str | None = None


@dataclass(frozen=True)
class CascadeFiles:
    """The three modules, and Module III's evaluation folder (its thresholds) if there is one."""

    modules: tuple[ModuleFiles, ModuleFiles, ModuleFiles]
    chest_evaluation: Path | None
    cam: dict  # Module III's cam.json of the pipeline where there is one ({} otherwise)


def from_results(results: Path, study: str = STUDY) -> CascadeFiles:
    """The modules the pipeline trained under ``results`` (cxr.layout's scheme)."""
    layout = Layout(results=str(results))
    modules = []
    for role, stage in zip(ROLES, STAGES, strict=True):
        folder = Path(layout.model(study, stage, "split"))
        if not (folder / "model.pt").is_file():
            raise ValueError(
                f"--models {results}: no Module {role} at {folder} (model.pt missing); run the "
                "pipeline first (make run), or pass --model-uri"
            )
        modules.append(ModuleFiles(role, folder, str(folder), run_id=_run_id(folder)))
    evaluation = Path(layout.evaluation(study, STAGES[2], "split"))
    cam_file = Path(layout.cam(study, STAGES[2], "split")) / "cam.json"
    cam = read_json_object(cam_file, "a cam.json of cxr cam") if cam_file.is_file() else {}
    return CascadeFiles(
        tuple(modules),  # type: ignore[arg-type]
        evaluation if (evaluation / "metrics.json").is_file() else None,
        cam,
    )


def from_registry(uris: list[str], work: Path) -> CascadeFiles:
    """The three registry versions ``uris`` (Module I, II, III), downloaded under ``work``;
    Module III's thresholds from the evaluation logged to its run."""
    from cxr import tracking

    modules = []
    for at, (role, uri) in enumerate(zip(ROLES, uris, strict=True)):
        got = tracking.download_model(uri, work / f"module_{at}")
        modules.append(
            ModuleFiles(role, got.folder, f"models:/{got.name}/{got.version}", got.name,
                        got.version, got.run_id)
        )  # fmt: skip
    evaluation = None
    run_id = modules[2].run_id
    if run_id:
        found = tracking.download_run_file(run_id, "evaluation/metrics.json", work / "evaluation")
        evaluation = found.parent if found else None
    return CascadeFiles(tuple(modules), evaluation, {})  # type: ignore[arg-type]


def _run_id(folder: Path) -> str | None:
    path = folder / "run.json"
    if not path.is_file():
        return None
    return read_json_object(path, "a run.json of cxr train").get("run_id")


def preset_of(folder: Path) -> Preset:
    """The preset a module's images were preprocessed with: its preset.json (a registered
    model), else the stats.json of the tensors its run.json says it trained on."""
    own = folder / PRESET_FILE
    if own.is_file():
        return Preset.from_dict(_preset_dict(read_json_object(own, "a preset.json"), own))
    run = read_json_object(folder / "run.json", "a run.json of cxr train")
    data = run.get("data") if isinstance(run.get("data"), dict) else {}
    recorded = data.get("folder")
    if recorded:
        for root in (Path.cwd(), *folder.resolve().parents):
            stats = root / recorded / "stats.json"
            if stats.is_file():
                preset = read_json_object(stats, "a stats.json of cxr preprocess").get("preset")
                if isinstance(preset, dict):
                    return Preset.from_dict(_preset_dict(preset, stats))
    raise ValueError(
        f"{folder}: cannot tell its preset: no {PRESET_FILE}, and the stats.json of the "
        f"tensors it trained on ({recorded or 'unrecorded'}, preset "
        f"{data.get('preset') or 'unrecorded'}) is not there"
    )


def _preset_dict(preset: dict, where: Path) -> dict:
    try:
        return {k: tuple(v) if k == "steps" else v for k, v in preset.items()}
    except TypeError:
        raise ValueError(f"{where}: not a preset: {json.dumps(preset)[:200]}") from None


def training_source(folder: Path, params: Path | None) -> str | None:
    """``synthetic``, ``real`` or ``mixed ...`` for the data a module trained on, as the
    pipeline's params.yaml says its sources are; None where that cannot be told."""
    if params is None or not params.is_file():
        return None
    try:
        import yaml

        from cxr.plan.load import load

        run = read_json_object(folder / "run.json", "a run.json of cxr train")
        dataset = (run.get("data") or {}).get("dataset")
        sources = load(yaml.safe_load(params.read_text())).report_sources()
    except Exception:  # params of another version, an unreadable file: unknown, not fatal
        return None
    return sources.get(dataset) if isinstance(dataset, str) else None

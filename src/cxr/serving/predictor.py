"""The cascade on one image: the three models loaded once, then Module I (X-ray or not),
Module II (which X-ray), Module III (14 findings at the thresholds chosen in evaluation) and a
Grad-CAM of the most probable finding(s), as the pipeline preprocessed its images."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from cxr.cascade.evaluate import ROLES as CASCADE_ROLES
from cxr.cascade.evaluate import chest_thresholds, fits_role
from cxr.cascade.sets import CHEST, NOT_XRAY, XRAY
from cxr.data.presets import Preset
from cxr.data.transforms import apply_preset
from cxr.explanation.heatmaps import Explainer
from cxr.explanation.inputs import TrainedModel, load_model
from cxr.serving import overlay
from cxr.serving.bundle import CascadeFiles, ModuleFiles, preset_of, training_source

#: The Grad-CAM drawn: Module III's own cam settings where the pipeline recorded them.
METHOD = "gradcam"


@dataclass(frozen=True)
class Module:
    """One loaded module: its network, the preset of its images and where it comes from."""

    files: ModuleFiles
    model: TrainedModel
    preset: Preset
    trained_on: str | None  # synthetic, real, mixed ...; None: unknown

    def describe(self) -> dict:
        return {
            "module": self.files.role,
            "source": self.files.source,
            "registered_name": self.files.name,
            "version": self.files.version,
            "run_id": self.files.run_id,
            "architecture": self.model.spec.architecture,
            "input_size": self.model.spec.input_size,
            "preset": self.preset.name or None,
            "outputs": list(self.model.outputs),
            "trained_on": self.trained_on,
        }


@dataclass
class Result:
    """One image's verdicts (``report``: JSON-able) and its pictures (RGB / gray arrays)."""

    report: dict
    image: np.ndarray
    overlays: dict[str, np.ndarray] = field(default_factory=dict)


def _check(modules: tuple[Module, Module, Module]) -> None:
    """Refuse a module of another role (Module I must be not_xray/xray, and so on)."""
    findings = set(modules[2].model.outputs)
    for module, (role, name, kind) in zip(modules, CASCADE_ROLES, strict=True):
        if not fits_role(role, module.model, findings):
            raise ValueError(
                f"{module.files.source}: outputs {', '.join(module.model.outputs[:6])} do not "
                f"fit Module {role}: {kind} (trained on {name})"
            )


class Predictor:
    """The cascade's three models, loaded once; :meth:`predict` is safe from several threads
    (one image at a time: Grad-CAM hooks the network)."""

    def __init__(
        self, files: CascadeFiles, *, top_k: int = 1, params: Path | None = Path("params.yaml")
    ) -> None:
        device = torch.device("cpu")
        loaded = []
        for f in files.modules:
            model = load_model(f.folder, device)
            loaded.append(Module(f, model, preset_of(f.folder), training_source(f.folder, params)))
        self.modules: tuple[Module, Module, Module] = tuple(loaded)  # type: ignore[assignment]
        _check(self.modules)
        chest = self.modules[2]
        self.thresholds = chest_thresholds(
            files.chest_evaluation, chest.files.folder, chest.model.outputs
        )
        self.thresholds_from = "evaluation" if files.chest_evaluation else "default 0.5"
        layer = files.cam.get("layer") or (
            "previous" if chest.model.spec.input_size <= 64 else "last"
        )
        self.cam = {"method": METHOD, "layer": layer}
        self.explainer = Explainer(chest.model.model, METHOD, layer)
        self.top_k = top_k
        self._lock = threading.Lock()

    @property
    def synthetic(self) -> bool:
        """Whether any module was trained on synthetic data (the page says so)."""
        return any("synthetic" in (m.trained_on or "") for m in self.modules)

    def describe(self) -> dict:
        """The models served: what ``GET /api/models`` answers."""
        return {
            "modules": [m.describe() for m in self.modules],
            "thresholds": self.thresholds,
            "thresholds_from": self.thresholds_from,
            "heatmap": self.cam,
            "trained_on_synthetic_data": self.synthetic,
        }

    def _pixels(self, module: Module, gray: np.ndarray, cache: dict) -> torch.Tensor:
        if module.preset not in cache:
            cache[module.preset] = apply_preset(gray, module.preset)
        size = module.model.spec.input_size
        img = cache[module.preset]
        if img.shape != (size, size):
            raise ValueError(
                f"{module.files.source}: takes {size}x{size} images but its preset "
                f"{module.preset.name} makes {img.shape[1]}x{img.shape[0]}"
            )
        return module.model.inputs(torch.from_numpy(np.ascontiguousarray(img))[None, None])

    def _probabilities(self, module: Module, x: torch.Tensor) -> dict[str, float]:
        with torch.inference_mode():
            probs = module.model.probabilities(module.model.model(x))[0].tolist()
        return dict(zip(module.model.outputs, (round(p, 6) for p in probs), strict=True))

    def predict(self, gray: np.ndarray) -> Result:
        """The cascade's verdicts on one 2D uint8 image (radiograph polarity)."""
        with self._lock:
            return self._predict(gray)

    def _predict(self, gray: np.ndarray) -> Result:
        cache: dict = {}
        first, second, chest = self.modules
        report: dict = {"image": {"width": gray.shape[1], "height": gray.shape[0]}}
        probs = self._probabilities(first, self._pixels(first, gray, cache))
        answer = max(probs, key=probs.get)
        report["module_i"] = {"answer": answer, "score": probs[answer], "probabilities": probs}
        report["module_ii"] = report["module_iii"] = None
        result = Result(report, overlay.display(gray))
        if answer != XRAY:
            report["verdict"] = NOT_XRAY
            report["summary"] = f"not an X-ray (score {probs[answer]:.2f})"
            return result
        probs = self._probabilities(second, self._pixels(second, gray, cache))
        kind = max(probs, key=probs.get)
        report["module_ii"] = {"answer": kind, "score": probs[kind], "probabilities": probs}
        if kind != CHEST:
            report["verdict"] = "other_xray"
            report["summary"] = f"an X-ray of another body part: {kind} (score {probs[kind]:.2f})"
            return result
        x = self._pixels(chest, gray, cache)
        probs = self._probabilities(chest, x)
        found = [o for o in chest.model.outputs if probs[o] >= self.thresholds[o]]
        ranked = sorted(chest.model.outputs, key=lambda o: -probs[o])[: self.top_k]
        report["module_iii"] = {
            "probabilities": probs,
            "thresholds": self.thresholds,
            "findings": sorted(found, key=lambda o: -probs[o]),
            "abnormal": bool(found),
        }
        report["verdict"] = CHEST
        report["summary"] = "chest X-ray: " + (
            ", ".join(f"{o} ({probs[o]:.2f})" for o in report["module_iii"]["findings"])
            or "no finding above its threshold"
        )
        targets = torch.tensor([[chest.model.outputs.index(o) for o in ranked]])
        with torch.enable_grad():
            maps = self.explainer(x, lambda _logits: targets).maps[0].numpy()
        report["heatmaps"] = [{"finding": o, "probability": probs[o], **self.cam} for o in ranked]
        for o, heat in zip(ranked, maps, strict=True):
            result.overlays[o] = overlay.draw(gray, heat, chest.preset)
        return result

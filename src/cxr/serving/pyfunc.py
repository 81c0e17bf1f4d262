"""MLflow's loader of a model logged by cxr (``mlflow.pyfunc.load_model``): rebuilds the
network from model.json and loads the weights-only model.pt; nothing is unpickled.

Imports no MLflow: MLflow imports this module by name (the logged model's ``loader_module``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from cxr.explanation.inputs import TrainedModel, load_model


class CxrModel:
    """A pyfunc model: ``predict`` maps a normalised float batch (B, 1, H, W) to its logits."""

    def __init__(self, trained: TrainedModel) -> None:
        self.trained = trained

    def predict(self, model_input: np.ndarray, params: dict | None = None) -> np.ndarray:
        x = torch.from_numpy(np.ascontiguousarray(model_input, dtype=np.float32))
        with torch.inference_mode():
            return self.trained.model(x).float().numpy()


def _load_pyfunc(data_path: str) -> CxrModel:
    """The model whose files (model.pt, model.json) lie in ``data_path``."""
    return CxrModel(load_model(Path(data_path), torch.device("cpu")))

"""``cxr predict``: the cascade over files and folders, one bad file never stopping the rest."""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd
from tqdm import tqdm

from cxr.core.atomic import atomic_path
from cxr.data.images import BadImage
from cxr.serving import inputs, report
from cxr.serving.predictor import Predictor

log = logging.getLogger(__name__)


def predict_paths(predictor: Predictor, paths: list[Path], out: Path) -> pd.DataFrame:
    """Run the cascade on every image of ``paths`` into the folder ``out`` (atomic): a JSON per
    image, overlays, and ``summary.csv``; returns the summary."""
    items = list(report.walk(paths))
    rows = []
    with atomic_path(out) as work:
        work.mkdir()
        for path, stem in tqdm(items, desc="cxr predict", unit="image", disable=None):
            result, error = None, None
            try:
                result = predictor.predict(inputs.decode(inputs.read_file(path)))
            except BadImage as err:
                error = str(err)
            except (ValueError, RuntimeError, MemoryError) as err:  # a decoder's or torch's
                error = f"{type(err).__name__}: {err}"
            if error:
                log.warning("%s: %s", path, error)
            rows.append(report.write_image(work, stem, path, result, error))
        frame = report.write_summary(work, rows)
    return frame

"""How long `cxr evaluate` takes on an NIH-sized test side (25,596 images, 14 findings,
~2,800 patients, 1,000 patient resamples), on synthetic predictions.

    .venv/bin/python benchmarks/evaluation_speed.py [OUT_DIR]
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from cxr.core.datasets import NIH_FINDINGS
from cxr.data.index import build_index, finding_column
from cxr.evaluation.report import evaluate


def main(out: Path) -> None:
    rng = np.random.default_rng(0)
    n = 25_596
    ids = [f"{k:08d}_000.png" for k in range(n)]
    prevalence = np.linspace(0.002, 0.2, len(NIH_FINDINGS))
    truth = rng.random((n, len(NIH_FINDINGS))) < prevalence
    probs = np.clip(0.3 * truth + 0.7 * rng.random(truth.shape), 0, 1)
    rows = [
        {"image_id": i, "path": i, "patient_id": str(k // 9), "width": 1, "height": 1, "mode": "L"}
        for k, i in enumerate(ids)
    ]
    index = build_index(rows, "nih")
    for j, finding in enumerate(NIH_FINDINGS):
        index[finding_column(finding)] = truth[:, j].astype(float)
    index.to_parquet(out / "index.parquet", index=False)
    pred = pd.DataFrame(
        {"image_id": ids, **{f"prob_{f}": probs[:, j] for j, f in enumerate(NIH_FINDINGS)}}
    )
    pred.to_parquet(out / "test.parquet", index=False)
    start = time.perf_counter()
    metrics = evaluate(out / "test.parquet", out / "index.parquet", out / "eval", paper="seed002")
    print(
        f"{n} images x {len(NIH_FINDINGS)} findings, 1000 resamples: "
        f"{time.perf_counter() - start:.1f} s; macro AUROC {metrics['auroc_macro']:.3f} "
        f"{metrics['auroc_macro_ci']}"
    )


if __name__ == "__main__":
    if len(sys.argv) > 1:
        main(Path(sys.argv[1]))
    else:
        with tempfile.TemporaryDirectory() as tmp:
            main(Path(tmp))

"""One chest X-ray through the whole cascade (decode, three modules, Grad-CAM, overlay PNG):
p50 and p95 over 100 images, the models loaded once. Goal 0.3 s, limit 1 s on this CPU.

    .venv/bin/python benchmarks/predict_latency.py [--models results] [--images DIR] [--n 100]

Images: the real NIH sample beside the checkout (../shared/real/nih/images), cycled to --n.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from cxr.serving import bundle, overlay
from cxr.serving.inputs import decode
from cxr.serving.predictor import Predictor

REAL = Path(__file__).resolve().parents[2] / "shared" / "real" / "nih" / "images"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=Path, default=Path("results"))
    parser.add_argument("--images", type=Path, default=REAL)
    parser.add_argument("--n", type=int, default=100)
    args = parser.parse_args()
    files = sorted(args.images.glob("*.png"))
    if not files:
        raise SystemExit(f"no PNG images in {args.images}")
    start = time.perf_counter()
    predictor = Predictor(bundle.from_results(args.models))
    loaded = time.perf_counter() - start
    data = [files[k % len(files)].read_bytes() for k in range(args.n)]
    predictor.predict(decode(data[0]))  # warm-up
    seconds, verdicts, chest = [], {}, []
    for blob in data:
        t = time.perf_counter()
        result = predictor.predict(decode(blob))
        for picture in result.overlays.values():
            overlay.png_bytes(picture)
        overlay.png_bytes(result.image)
        seconds.append(time.perf_counter() - t)
        chest.append(result.report["verdict"] == "chest")
        verdicts[result.report["verdict"]] = verdicts.get(result.report["verdict"], 0) + 1
    ms = np.array(seconds) * 1000
    print(json.dumps({
        "images": args.n,
        "torch_threads": torch.get_num_threads(),
        "models_loaded_s": round(loaded, 2),
        "architectures": [m.model.spec.architecture for m in predictor.modules],
        "input_size": predictor.modules[2].model.spec.input_size,
        "verdicts": verdicts,
        "p50_ms": round(float(np.percentile(ms, 50)), 1),
        "p95_ms": round(float(np.percentile(ms, 95)), 1),
        "max_ms": round(float(ms.max()), 1),
        "chest_p50_ms": round(float(np.percentile(ms[chest], 50)), 1) if any(chest) else None,
        "chest_p95_ms": round(float(np.percentile(ms[chest], 95)), 1) if any(chest) else None,
    }, indent=2))  # fmt: skip


if __name__ == "__main__":
    main()

"""Tiny cascades for the serving tests: three small CNNs saved the pipeline's way (model.pt a
weights-only state dict, model.json, run.json; the tensors' stats.json with the preset;
Module III's evaluation with its thresholds) in a ``results/`` layout.

Module I is trained here, in seconds, on the real NIH images (X-rays) against scikit-image's
photographs, so that the page's two uploads take the two routes; without the NIH sample it
answers "xray" to everything. Module II answers one chosen type; Module III is untrained.
"""

from __future__ import annotations

import json
import shutil
import socket
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from cxr.data.decode import read_gray, to_gray_uint8
from cxr.data.presets import Preset
from cxr.data.transforms import apply_preset
from cxr.training.models import ModelSpec, build_model, head

REPO = Path(__file__).resolve().parents[2]
REAL_IMAGES = REPO.parent / "shared" / "real" / "nih" / "images"
SIZE = 32
PRESET = Preset(size=SIZE, name=f"plain_{SIZE}")
FINDINGS = (
    "Atelectasis", "Cardiomegaly", "Consolidation", "Edema", "Effusion", "Emphysema",
    "Fibrosis", "Hernia", "Infiltration", "Mass", "Nodule", "Pleural_Thickening", "Pneumonia",
    "Pneumothorax",
)  # fmt: skip
TYPES = ("chest", "elbow", "hand")
MEAN, STD = 0.5, 0.25
#: Photographs the page test uploads: never seen by Module I.
HELD_OUT_PHOTO = "chelsea"
TRAIN_PHOTOS = ("astronaut", "coffee", "rocket", "camera", "cat", "coins", "clock", "page", "text")


def real_images() -> list[Path]:
    return sorted(REAL_IMAGES.glob("*.png")) if REAL_IMAGES.is_dir() else []


def held_out_xray() -> Path:
    """The real chest X-ray the tests upload (Module I never trained on it)."""
    found = real_images()
    if not found:
        pytest.skip(f"real NIH images not found at {REAL_IMAGES} (not shipped with cxr)")
    return found[0]


def photo_png(tmp: Path, name: str = HELD_OUT_PHOTO) -> Path:
    """A real photograph (scikit-image's) as a colour JPEG file."""
    import skimage.data

    path = tmp / f"{name}.jpg"
    cv2.imwrite(str(path), cv2.cvtColor(getattr(skimage.data, name)(), cv2.COLOR_RGB2BGR))
    return path


def _card(spec: ModelSpec, outputs: tuple[str, ...], multilabel: bool) -> dict:
    return {
        **spec.to_dict(),
        "output_names": list(outputs),
        "task": "multilabel" if multilabel else "multiclass",
        "activation": "sigmoid" if multilabel else "softmax",
        "normalize": "dataset",
        "mean": MEAN,
        "std": STD,
        "pixel_scale": 255,
    }


def _photos(rng: np.random.Generator) -> list[np.ndarray]:
    import skimage.data

    out = []
    for name in TRAIN_PHOTOS:
        img = getattr(skimage.data, name)()
        gray = to_gray_uint8(img, order="RGB")
        for _ in range(8):
            h, w = gray.shape
            ch, cw = int(h * rng.uniform(0.5, 1)), int(w * rng.uniform(0.5, 1))
            y, x = rng.integers(0, h - ch + 1), rng.integers(0, w - cw + 1)
            out.append(apply_preset(np.ascontiguousarray(gray[y : y + ch, x : x + cw]), PRESET))
    return out


def _train_module_i(model: torch.nn.Module) -> None:
    """Module I learns X-ray (the real NIH images but the held-out one) vs photograph."""
    rng = np.random.default_rng(0)
    xrays = [apply_preset(read_gray(p), PRESET) for p in real_images()[1:]]
    photos = _photos(rng)
    x = torch.from_numpy(np.stack(photos + xrays)).unsqueeze(1).float()
    x = (x - 255 * MEAN) / (255 * STD)
    y = torch.tensor([0] * len(photos) + [1] * len(xrays))
    torch.manual_seed(0)
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(60):
        optimiser.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        optimiser.step()
    model.eval()


def _answer(model: torch.nn.Module, index: int) -> None:
    """A model that always answers output ``index`` (its head: no weights, one bias)."""
    with torch.no_grad():
        last = head(model)
        last.weight.zero_()
        last.bias.zero_()
        last.bias[index] = 6.0


def _save(folder: Path, model: torch.nn.Module, card: dict, run_id: str, data: str) -> None:
    folder.mkdir(parents=True)
    torch.save({k: v.detach().clone() for k, v in model.state_dict().items()}, folder / "model.pt")
    (folder / "model.json").write_text(json.dumps(card, indent=2))
    run = {"run_id": run_id, "data": {"folder": data, "dataset": data.split("/")[2],
                                      "preset": PRESET.name}}  # fmt: skip
    (folder / "run.json").write_text(json.dumps(run, indent=2))


def build_cascade(root: Path, module_ii_answer: str = "chest", *, train: bool = True) -> Path:
    """A results folder under ``root`` holding a tiny cascade; returns it. ``train``: Module I
    learns X-ray vs photograph where the real images are, else it answers "xray"."""
    results = root / "results"
    for name in ("cascade_xray", "cascade_type", "cascade_chest"):
        stats = results / "preprocessed" / name / PRESET.name
        stats.mkdir(parents=True)
        preset = {**PRESET.__dict__, "steps": list(PRESET.steps)}
        (stats / "stats.json").write_text(json.dumps({"preset": preset, "cascade": name}))
    models = results / "models" / "seed002_cascade"
    torch.manual_seed(0)
    specs = [ModelSpec("smallcnn_v1", n, SIZE) for n in (2, len(TYPES), len(FINDINGS))]
    nets = [build_model(spec, init="random") for spec in specs]
    if train and real_images():
        _train_module_i(nets[0])
    else:
        _answer(nets[0], 1)
    _answer(nets[1], TYPES.index(module_ii_answer))
    outputs = (("not_xray", "xray"), TYPES, FINDINGS)
    sets = ("cascade_xray", "cascade_type", "cascade_chest")
    for k, stage in enumerate(("module_i", "module_ii", "module_iii")):
        card = _card(specs[k], outputs[k], multilabel=k == 2)
        data = f"results/preprocessed/{sets[k]}/{PRESET.name}"
        _save(models / stage / "split", nets[k], card, f"tiny-{stage}", data)
    evaluation = results / "evaluation" / "seed002_cascade" / "module_iii" / "split"
    evaluation.mkdir(parents=True)
    thresholds = {f: 0.3 + 0.02 * i for i, f in enumerate(FINDINGS)}
    metrics = {"run_id": "tiny-module_iii", "threshold": {"method": "youden", "values": thresholds}}
    (evaluation / "metrics.json").write_text(json.dumps(metrics))
    return results


@pytest.fixture(scope="session")
def cascade(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A results folder with a tiny cascade (Module II answers chest)."""
    return build_cascade(tmp_path_factory.mktemp("cascade"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def server(cascade: Path, tmp_path_factory: pytest.TempPathFactory):
    """``cxr serve`` of the tiny cascade on a free port: (url, process)."""
    import httpx

    port = free_port()
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [str(Path(sys.executable).parent / "cxr"), "serve", "--models", str(cascade),
             "--port", str(port), "--max-upload-mb", "2"],
            cwd=cascade.parent, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"cxr serve exited with {proc.returncode}: {log.read_text()[-2000:]}")
        try:
            if httpx.get(f"{url}/api/health", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.2)
    else:
        proc.kill()
        pytest.fail(f"cxr serve did not answer within 60 s: {log.read_text()[-2000:]}")
    yield url, proc
    proc.terminate()
    proc.wait(timeout=30)


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        pytest.skip("Debian's chromium is not installed (apt-get install chromium; .ci/run does)")
    return found


def bomb_png(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height (its data is one tiny row: never decoded)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\0" * (width + 1))) + chunk(b"IEND", b"")
    )  # fmt: skip

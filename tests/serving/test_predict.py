"""``cxr predict`` on folders of good and bad files; models from results/ or the registry."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from cxr.cli import main
from cxr.serving import bundle
from cxr.serving.predictor import Predictor
from serving.conftest import FINDINGS, bomb_png, build_cascade, held_out_xray, photo_png

CHEST = np.tile(np.linspace(30, 220, 300, dtype=np.float32), (260, 1)).astype(np.uint8)


def write_inputs(folder: Path) -> dict[str, str]:
    """Every kind of input a user has, good and bad: {file: expected error or ''}."""
    folder.mkdir()
    sub = folder / "more"
    sub.mkdir()
    cv2.imwrite(str(folder / "gray8.png"), CHEST)
    cv2.imwrite(str(folder / "gray16.png"), CHEST.astype(np.uint16) * 257)
    cv2.imwrite(str(sub / "rgb.jpg"), np.dstack([CHEST] * 3))
    Image.fromarray(np.dstack([CHEST] * 3 + [np.full_like(CHEST, 255)])).save(sub / "rgba.png")
    (folder / "notes.txt").write_text("not an image\n")
    (folder / "empty.png").write_bytes(b"")
    (folder / "truncated.png").write_bytes((folder / "gray8.png").read_bytes()[:200])
    (folder / "dangling.png").symlink_to(folder / "gone.png")
    (folder / "bomb.png").write_bytes(bomb_png(30_000, 30_000))
    (folder / ".hidden.png").write_bytes(b"OS litter: left out")
    return {
        "gray8.png": "", "gray16.png": "", "more/rgb.jpg": "", "more/rgba.png": "",
        "notes.txt": "not an image", "empty.png": "empty file", "truncated.png": "truncated PNG",
        "dangling.png": "unreadable", "bomb.png": "decompression bomb",
    }  # fmt: skip


def test_a_folder_with_every_kind_of_bad_input_is_done_whole(cascade, tmp_path):
    expected = write_inputs(tmp_path / "in")
    out = tmp_path / "out"
    assert main(["predict", str(tmp_path / "in"), "--models", str(cascade), "--out", str(out)]) == 0
    summary = pd.read_csv(out / "summary.csv", keep_default_na=False)
    files = {str(Path(f).relative_to(tmp_path / "in")): row for f, row in
             zip(summary["file"], summary.to_dict("records"), strict=True)}  # fmt: skip
    assert set(files) == set(expected)  # the hidden file left out, nothing else
    for name, error in expected.items():
        row = files[name]
        record = json.loads((out / row["json"]).read_text())
        if error:
            assert row["status"] == "error", name
            assert error in row["error"] and error in record["error"]
        else:
            assert row["status"] == "ok", (name, row["error"])
            assert record["module_i"]["answer"] in ("xray", "not_xray")
            assert set(record["module_i"]["probabilities"]) == {"xray", "not_xray"}
    chest = [r for r in files.values() if r["verdict"] == "chest"]
    for row in chest:
        record = json.loads((out / row["json"]).read_text())
        assert set(record["module_iii"]["probabilities"]) == set(FINDINGS)
        (name,) = record["overlays"].values()
        picture = cv2.imread(str(out / name))
        assert picture.shape[2] == 3 and picture.shape[0] > 0
    assert [p.name for p in tmp_path.glob(".out*")] == [".out.cxr-output"]  # no work folder


def test_routes_report_each_modules_answer(tmp_path):
    results = build_cascade(tmp_path, module_ii_answer="hand", train=False)
    predictor = Predictor(bundle.from_results(results), params=None)
    other = predictor.predict(CHEST)
    assert other.report["verdict"] == "other_xray"
    assert other.report["module_ii"]["answer"] == "hand"
    assert "another body part: hand (score" in other.report["summary"]
    assert other.report["module_iii"] is None and not other.overlays
    described = predictor.describe()
    assert [m["module"] for m in described["modules"]] == ["I", "II", "III"]
    assert described["thresholds_from"] == "evaluation"
    assert described["modules"][2]["preset"] == "plain_32"


def test_real_xray_and_photograph_take_their_routes(cascade, tmp_path):
    xray = held_out_xray()
    predictor = Predictor(bundle.from_results(cascade), top_k=2, params=None)
    from cxr.serving.inputs import decode

    chest = predictor.predict(decode(xray.read_bytes()))
    assert chest.report["verdict"] == "chest"
    assert len(chest.report["heatmaps"]) == 2 == len(chest.overlays)
    assert chest.report["module_iii"]["findings"] == sorted(
        chest.report["module_iii"]["findings"],
        key=lambda f: -chest.report["module_iii"]["probabilities"][f],
    )
    photo = predictor.predict(decode(photo_png(tmp_path).read_bytes()))
    assert photo.report["verdict"] == "not_xray"
    assert photo.report["summary"].startswith("not an X-ray (score")


def test_a_module_of_another_role_is_refused(cascade, tmp_path):
    results = shutil.copytree(cascade, tmp_path / "results")
    models = results / "models" / "seed002_cascade"
    shutil.rmtree(models / "module_i")
    shutil.copytree(models / "module_ii", models / "module_i")
    with pytest.raises(ValueError, match="do not fit Module I"):
        Predictor(bundle.from_results(results), params=None)
    with pytest.raises(SystemExit, match="2"):
        main(["predict", str(tmp_path), "--models", str(tmp_path / "nowhere"), "--out", "o"])


def test_models_from_the_registry_load_without_unpickling(cascade, tmp_path, monkeypatch):
    """The pipeline's way: each module logged and registered; predict serves chosen versions."""
    from cxr import tracking
    from cxr.explanation.inputs import load_model

    monkeypatch.chdir(cascade.parent)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/mlflow.db")
    models = cascade / "models" / "seed002_cascade"
    for stage in ("module_i", "module_ii", "module_iii"):
        folder = models / stage / "split"
        with tracking.training_run("seed002_cascade", stage, None, {}, {}) as run:
            run.log_artifact(folder / "model.json")
            run.log_artifact(folder / "run.json")
            model = load_model(folder, torch.device("cpu")).model
            name = run.log_model(model, np.zeros((2, 1, 32, 32), np.float32))
        assert name == f"cxr-seed002_cascade-{stage}"
        if stage == "module_iii":
            evaluation = cascade / "evaluation/seed002_cascade/module_iii/split"
            tracking.log_to_run(run.run_id, {}, evaluation, "evaluation")
    uris = [f"models:/cxr-seed002_cascade-{s}/1" for s in ("module_i", "module_ii")]
    uris.append("models:/cxr-seed002_cascade-module_iii/latest")
    got = tracking.download_model(uris[2], tmp_path / "dl")
    assert sorted(p.name for p in got.folder.iterdir()) == [
        "model.json",
        "model.pt",
        "preset.json",
        "run.json",
    ]
    mlmodel = (got.folder.parents[1] / "MLmodel").read_text()
    assert "loader_module: cxr.serving.pyfunc" in mlmodel
    assert "pickle" not in mlmodel
    torch.load(got.folder / "model.pt", weights_only=True)  # tensors only
    image = tmp_path / "in.png"
    cv2.imwrite(str(image), CHEST)
    out = tmp_path / "out"
    assert main(["predict", str(image), "--model-uri", *uris, "--out", str(out)]) == 0
    record = json.loads((out / "in.png.json").read_text())
    assert record["status"] == "ok"
    assert main(["predict", str(image), "--model-uri", uris[0], uris[1],
                 "models:/cxr-nothing/1", "--out", str(tmp_path / "o2")]) == 1  # fmt: skip
    assert not os.path.exists(tmp_path / "o2")

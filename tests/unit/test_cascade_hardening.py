"""The cascade and heatmap verbs refuse inputs that would give a silently wrong result: sources
missing, repeated or swapped, a model shown images of another dataset, a damaged checkpoint,
and Module III thresholds borrowed from another model's evaluation."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from test_cam import write_folder
from test_cascade import sources  # noqa: F401 (a fixture)

from cxr.cascade.evaluate import chest_thresholds
from cxr.cascade.sets import SOURCES, Source, build_cascade_sets, check_sources
from cxr.data.index import build_index
from cxr.data.preprocess import INDEX_FILE, STATS_FILE, TENSOR_FILE
from cxr.explanation.inputs import check_trained_on, load_model
from cxr.training.checkpoint import file_digest


def folders(root: Path, preset: str = "p32") -> list[Source]:
    """The cascade's four sources as folders <dataset>/<preset> holding only the stats.json that
    records the preset, and empty split files."""
    out = []
    for name in SOURCES:
        (root / name / preset).mkdir(parents=True)
        stats = {"dataset": name, "preset": {"name": preset, "size": 32}}
        (root / name / preset / STATS_FILE).write_text(json.dumps(stats))
        (root / f"{name}.parquet").touch()
        out.append(Source(name, root / name / preset, root / f"{name}.parquet"))
    return out


def test_check_sources_wants_the_four_datasets_once_at_the_preset(tmp_path: Path) -> None:
    given = folders(tmp_path)
    check_sources(given, "p32")
    with pytest.raises(ValueError, match=r"the cascade also needs mura \(body parts"):
        check_sources([s for s in given if s.dataset != "mura"], "p32")
    with pytest.raises(ValueError, match=r"--source jsrt: not a source of the cascade"):
        check_sources([*given, Source("jsrt", tmp_path, tmp_path / "j.parquet")], "p32")
    with pytest.raises(ValueError, match=r"the same dataset as --source nih"):
        check_sources([*given, given[-1]], "p32")
    twin = Source("mura", given[-1].data, given[2].split)
    with pytest.raises(ValueError, match=r"the same folder as --source nih"):
        check_sources([*given[:2], given[3], twin], "p32")
    with pytest.raises(ValueError, match=r"--preset p64: .* is a folder of preset 'p32'"):
        check_sources(given, "p64")


def test_a_source_of_another_dataset_is_refused(
    sources: list[Source],  # noqa: F811
    tmp_path: Path,
) -> None:
    photos, types, nih = sources
    swapped = [
        Source("not_xray", nih.data, nih.split),
        types,
        Source("nih", photos.data, photos.split),
    ]
    with pytest.raises(ValueError, match=r"--source not_xray .*: holds nih images"):
        build_cascade_sets(swapped, tmp_path / "out", "p32")
    crossed = [photos, types, Source("nih", nih.data, types.split)]
    with pytest.raises(ValueError, match=r"xray_types\.parquet is not a split of .*nih"):
        build_cascade_sets(crossed, tmp_path / "out", "p32")
    assert not (tmp_path / "out").exists()


def test_a_damaged_checkpoint_is_named(tmp_path: Path) -> None:
    model = write_folder(tmp_path, "smallcnn_v1", ("Mass",))
    weights = (model / "model.pt").read_bytes()
    (model / "model.pt").write_bytes(weights[: len(weights) // 2])
    with pytest.raises(ValueError, match=r"model\.pt: not a readable checkpoint .*truncated"):
        load_model(model, torch.device("cpu"))
    other = write_folder(tmp_path, "densenet121", ("Mass",))
    (model / "model.pt").write_bytes((other / "model.pt").read_bytes())
    with pytest.raises(ValueError, match=r"model\.pt does not fit .*model\.json \(smallcnn_v1"):
        load_model(model, torch.device("cpu"))


def dataset_folder(root: Path, dataset: str) -> Path:
    folder = root / dataset
    folder.mkdir()
    np.save(folder / TENSOR_FILE, np.full((2, 8, 8), len(dataset), np.uint8))
    rows = [{"image_id": f"{i}.png", "path": f"{i}.png", "width": 8, "height": 8, "mode": "L"}
            for i in range(2)]  # fmt: skip
    build_index(rows, dataset.split("_")[0]).to_parquet(folder / INDEX_FILE, index=False)
    (folder / STATS_FILE).write_text(json.dumps({"mean": 0.5, "std": 0.2}))
    return folder


def test_a_model_explains_only_images_of_its_own_dataset(tmp_path: Path) -> None:
    nih, again, jsrt = (dataset_folder(tmp_path, d) for d in ("nih", "nih_other", "jsrt"))
    model = write_folder(tmp_path, "smallcnn_v1", ("Nodule",))
    data = {"folder": str(nih), "tensor_digest": file_digest(nih / TENSOR_FILE)}
    (model / "run.json").write_text(json.dumps({"run_id": "r", "data": data}))
    check_trained_on(model, nih)
    check_trained_on(model, again)  # another preprocess of the same dataset
    with pytest.raises(ValueError, match=r"--data .*jsrt holds jsrt images but .* trained on nih"):
        check_trained_on(model, jsrt)
    nih.rename(tmp_path / "moved")  # the training folder is gone: only its tensor vouches
    check_trained_on(model, tmp_path / "moved")
    with pytest.raises(ValueError, match=r"which is gone, and these are not its images"):
        check_trained_on(model, again)


def evaluation(root: Path, **metrics: object) -> Path:
    folder = root / "evaluation"
    folder.mkdir(exist_ok=True)
    (folder / "metrics.json").write_text(json.dumps(metrics))
    return folder


def test_module_iii_thresholds_come_from_its_own_evaluation(tmp_path: Path) -> None:
    module = tmp_path / "module_iii"
    module.mkdir()
    (module / "run.json").write_text(json.dumps({"run_id": "mine"}))
    values = {"threshold": {"method": "youden", "values": {"Nodule": 0.3}}}
    own = evaluation(tmp_path, run_id="mine", **values)
    assert chest_thresholds(own, module, ("Nodule",)) == {"Nodule": 0.3}
    with pytest.raises(ValueError, match=r"evaluates MLflow run theirs, not Module III's"):
        chest_thresholds(evaluation(tmp_path, run_id="theirs", **values), module, ("Nodule",))
    by_path = {"alignment": {"predictions": str(module / "predictions" / "test.parquet")}}
    assert chest_thresholds(evaluation(tmp_path, **by_path, **values), module, ("Nodule",))
    elsewhere = {"alignment": {"predictions": "elsewhere.csv"}}
    with pytest.raises(ValueError, match=r"evaluates elsewhere\.csv, not Module III's"):
        chest_thresholds(evaluation(tmp_path, **elsewhere, **values), module, ("Nodule",))
    argmax = {"threshold": {"method": "argmax"}}
    with pytest.raises(ValueError, match=r"no per-finding thresholds \(method argmax\)"):
        chest_thresholds(evaluation(tmp_path, run_id="mine", **argmax), module, ("Nodule",))

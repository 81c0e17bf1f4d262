"""Rule-level and workflow tests: the real Snakefile runs the real rules on tiny miniatures."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import BIN, REPO, snakemake, tiny_params
from PIL import Image

from cxr.datasets import DATASETS
from cxr.index import boxes_from_json, finding_columns
from cxr.ingest import relative_files

pytestmark = pytest.mark.workflow


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A workdir where the default target ran once on the tiny configuration."""
    workdir = tmp_path_factory.mktemp("workflow")
    (workdir / "params.yaml").write_text(yaml.safe_dump(tiny_params()))
    snakemake(workdir)
    return workdir


def synthetic(built: Path, dataset: str) -> Path:
    return built / "data" / "synthetic" / dataset


def ingested(built: Path, dataset: str) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    folder = built / "results" / "ingest" / dataset
    summary = json.loads((built / "results" / "metrics" / "ingest" / f"{dataset}.json").read_text())
    return (
        pd.read_parquet(folder / "index.parquet"),
        pd.read_csv(folder / "index.manifest.csv"),
        summary,
    )


# --- synth rule: what it writes matches the real formats ------------------------------------


def test_synth_nih_csvs_have_the_real_headers(built: Path) -> None:
    root = synthetic(built, "nih")
    entry = root / "Data_Entry_2017_v2020.csv"
    assert entry.read_text().splitlines()[0] == (
        "Image Index,Finding Labels,Follow-up #,Patient ID,Patient Age,Patient Gender,"
        "View Position,OriginalImage[Width,Height],OriginalImagePixelSpacing[x,y]"
    )
    assert pd.read_csv(entry).shape[1] == 11
    bbox_lines = (root / "BBox_List_2017.csv").read_text().splitlines()
    assert bbox_lines[0] == "Image Index,Finding Label,Bbox [x,y,w,h],,,"
    assert all(len(line.split(",")) == 6 for line in bbox_lines[1:])


def test_synth_nih_boxes_lie_inside_and_name_a_finding_of_their_image(built: Path) -> None:
    root = synthetic(built, "nih")
    entry = pd.read_csv(root / "Data_Entry_2017_v2020.csv").set_index("Image Index")
    boxes = pd.read_csv(root / "BBox_List_2017.csv").iloc[:, :6]
    boxes.columns = ["image", "label", "x", "y", "w", "h"]
    assert len(boxes) > 0
    for row in boxes.itertuples():
        assert row.x >= 0 and row.x + row.w <= 1024 and row.y >= 0 and row.y + row.h <= 1024
        findings = entry.loc[row.image, "Finding Labels"].split("|")
        assert {"Infiltrate": "Infiltration"}.get(row.label, row.label) in findings


def test_synth_nih_split_lists_are_patient_disjoint(built: Path) -> None:
    root = synthetic(built, "nih")
    patients = {
        name: {line[:8] for line in (root / name).read_text().splitlines()}
        for name in ("train_val_list.txt", "test_list.txt")
    }
    assert patients["train_val_list.txt"] and patients["test_list.txt"]
    assert not patients["train_val_list.txt"] & patients["test_list.txt"]


def test_synth_nih_has_gray_and_rgba_pngs(built: Path) -> None:
    modes = {Image.open(p).mode for p in (synthetic(built, "nih") / "images").glob("*.png")}
    assert modes == {"L", "RGBA"}


def test_synth_jsrt_files_are_exactly_2048_squared_big_endian_12_bit(built: Path) -> None:
    images = sorted((synthetic(built, "jsrt")).rglob("*.IMG"))
    assert images
    for path in images:
        assert path.stat().st_size == 8_388_608
    pixels = np.fromfile(images[0], dtype=">u2")
    assert pixels.max() <= 4095
    clinical = next(synthetic(built, "jsrt").rglob("CLNDAT_EN.txt")).read_bytes()
    assert b"\r" in clinical and b"\n" not in clinical and b"\t" in clinical


def test_synth_covid_has_the_current_layout(built: Path) -> None:
    root = next(synthetic(built, "covid_radiography").rglob("Viral Pneumonia"))
    assert (root / "images").is_dir() and (root / "masks").is_dir()
    image = next((root / "images").glob("*.png"))
    assert Image.open(root / "masks" / image.name).size == (256, 256)


def test_synth_mura_csvs_have_no_header_and_trailing_slashes(built: Path) -> None:
    root = next(synthetic(built, "mura").rglob("train_labeled_studies.csv")).parent
    first = (root / "train_image_paths.csv").read_text().splitlines()[0]
    assert first.startswith("MURA-v1.1/train/XR_") and first.endswith(".png")
    study, label = (root / "train_labeled_studies.csv").read_text().splitlines()[0].split(",")
    assert study.endswith("/") and label in {"0", "1"}
    assert study.rstrip("/").endswith("_positive" if label == "1" else "_negative")


def test_synth_imagefolder6_has_three_splits_of_six_classes(built: Path) -> None:
    root = synthetic(built, "imagefolder6")
    for split in ("train", "validation", "test"):
        classes = sorted(p.name for p in (root / split).iterdir() if p.is_dir())
        assert classes == [
            "Covid-19",
            "Effusions",
            "Infiltration",
            "No-Findings",
            "Pneumonia",
            "Pneumothorax",
        ]


# --- ingest rule: one uniform index, and a manifest that accounts for everything --------------


@pytest.mark.parametrize("dataset", DATASETS)
def test_ingest_manifest_accounts_for_every_file(built: Path, dataset: str) -> None:
    index, manifest, summary = ingested(built, dataset)
    on_disk = set(relative_files(synthetic(built, dataset)))
    files = manifest[manifest["kind"] == "file"]
    assert set(files["item"]) == on_disk
    assert not files["item"].duplicated().any()
    kept = set(files.loc[files["status"] == "kept", "item"])
    assert set(index["path"]) <= kept
    assert (manifest.loc[manifest["status"] == "skipped", "reason"].str.len() > 0).all()
    assert summary["images"] == len(index) > 0


@pytest.mark.parametrize("dataset", DATASETS)
def test_ingest_index_is_uniform(built: Path, dataset: str) -> None:
    index, _manifest, _summary = ingested(built, dataset)
    assert (index["dataset"] == dataset).all()
    assert index["image_id"].is_unique
    assert (index["width"] > 0).all() and (index["height"] > 0).all()
    has_labels = index["label"].notna() | index[finding_columns(index)].notna().any(axis=1)
    assert has_labels.all(), "every image carries a class or finding labels"
    for row in index.dropna(subset=["boxes"]).itertuples():
        for box in boxes_from_json(row.boxes):
            assert box["x"] >= 0 and box["x"] + box["w"] <= row.width + 1e-6
            assert box["y"] >= 0 and box["y"] + box["h"] <= row.height + 1e-6


def test_ingest_nih_rescales_boxes_to_the_file_size(built: Path) -> None:
    index, _m, _s = ingested(built, "nih")
    raw = pd.read_csv(synthetic(built, "nih") / "BBox_List_2017.csv").iloc[:, :6]
    raw.columns = ["image", "label", "x", "y", "w", "h"]
    first = raw.iloc[0]
    row = index.set_index("image_id").loc[first["image"]]
    box = next(
        b
        for b in boxes_from_json(row["boxes"])
        if b["x"] == pytest.approx(first["x"] * row["width"] / 1024, abs=0.01)
    )
    assert box["w"] == pytest.approx(first["w"] * row["width"] / 1024, abs=0.01)


# --- the workflow as a whole -------------------------------------------------------------------


def test_second_run_has_nothing_to_do(built: Path) -> None:
    proc = snakemake(built, "-n")
    assert "Nothing to be done" in proc.stdout + proc.stderr


def test_changing_one_dataset_reruns_only_that_dataset(built: Path, tmp_path: Path) -> None:
    params = yaml.safe_load((built / "params.yaml").read_text())
    params["datasets"]["nih"]["synthetic"]["n"] += 1
    (built / "params.yaml").write_text(yaml.safe_dump(params))
    try:
        out = snakemake(built, "-n").stdout
    finally:
        (built / "params.yaml").write_text(yaml.safe_dump(tiny_params()))
    jobs = dict(re.findall(r"^(synth|ingest)\s+(\d+)$", out, flags=re.MULTILINE))
    assert jobs == {"synth": "1", "ingest": "1"}
    assert "wildcards: dataset=nih" in out and "dataset=jsrt" not in out


def test_invalid_params_fail_at_parse_time_with_the_key(workdir: Path) -> None:
    params = tiny_params()
    params["datasets"]["nih"]["source"] = "downloaded"
    (workdir / "params.yaml").write_text(yaml.safe_dump(params))
    proc = snakemake(workdir, "-n", check=False)
    assert proc.returncode != 0
    assert "downloaded" in proc.stderr and "source" in proc.stderr


def test_real_dataset_is_read_from_its_root_and_its_dvc_pointer(
    workdir: Path, real_nih: Path
) -> None:
    params = {
        "seed": 0,
        "datasets": {
            "nih": {**tiny_params()["datasets"]["nih"], "source": "real", "root": "data/raw/nih"}
        },
    }
    (workdir / "params.yaml").write_text(yaml.safe_dump(params))
    shutil.copytree(real_nih, workdir / "data" / "raw" / "nih")
    snakemake(workdir)
    index = pd.read_parquet(workdir / "results" / "ingest" / "nih" / "index.parquet")
    assert len(index) == 51
    assert (workdir / "data" / "raw" / "nih.dvc").exists() is False
    (workdir / "data" / "raw" / "nih.dvc").write_text("outs:\n- md5: 0\n  path: nih\n")
    dry = snakemake(workdir, "-n").stdout
    assert "ingest" in dry and "nih.dvc" in dry


@pytest.mark.slow
def test_dvc_repro_runs_the_workflow_and_reports_metrics(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    for name in ("Snakefile", "dvc.yaml", "workflow", "src", "profiles"):
        src = REPO / name
        (shutil.copytree if src.is_dir() else shutil.copy)(src, repo / name)
    params = tiny_params()
    params["datasets"] = {k: params["datasets"][k] for k in ("nih", "covid_radiography")}
    (repo / "params.yaml").write_text(yaml.safe_dump(params))
    env = {"PATH": f"{BIN}:/usr/bin:/bin", "HOME": str(tmp_path), "DVC_NO_ANALYTICS": "1"}

    def run(*cmd: str) -> str:
        proc = subprocess.run(cmd, cwd=repo, env=env, capture_output=True, text=True, check=False)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        return proc.stdout + proc.stderr

    run("git", "init", "-q")
    run(str(BIN / "dvc"), "init", "-q")
    run(str(BIN / "dvc"), "config", "core.analytics", "false")
    run(str(BIN / "dvc"), "repro")
    shown = json.loads(run(str(BIN / "dvc"), "metrics", "show", "--json"))
    assert "results/metrics/ingest/nih.json" in json.dumps(shown)
    assert "Nothing to be done" in run(str(BIN / "dvc"), "repro")

"""Rule-level and workflow tests: the real Snakefile runs the real rules on tiny miniatures."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import BIN, dvc_project, snakemake, tiny_params
from PIL import Image

from cxr.core.datasets import DATASETS, PRETRAIN
from cxr.data.index import boxes_from_json, finding_columns
from cxr.data.presets import Preset
from cxr.data.transforms import apply_preset
from cxr.ingest.folders import files_under

#: The datasets of the tiny configuration (every one but the pretraining corpus, which
#: tests/workflow/test_pretraining.py generates and reads with NIH's reader).
TINY_DATASETS = list(tiny_params()["datasets"])


def test_the_tiny_configuration_ingests_every_dataset_but_the_corpus() -> None:
    assert set(DATASETS) - set(TINY_DATASETS) == {PRETRAIN}


pytestmark = pytest.mark.workflow


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


@pytest.mark.parametrize("dataset", TINY_DATASETS)
def test_ingest_manifest_accounts_for_every_file(built: Path, dataset: str) -> None:
    index, manifest, summary = ingested(built, dataset)
    on_disk = set(files_under(synthetic(built, dataset)))
    files = manifest[manifest["kind"] == "file"]
    assert set(files["item"]) == on_disk
    assert not files["item"].duplicated().any()
    kept = set(files.loc[files["status"] == "kept", "item"])
    assert set(index["path"]) <= kept
    assert (manifest.loc[manifest["status"] == "skipped", "reason"].str.len() > 0).all()
    assert summary["images"] == len(index) > 0


@pytest.mark.parametrize("dataset", TINY_DATASETS)
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


def test_gallery_shows_one_row_per_dataset(built: Path) -> None:
    figure = Image.open(built / "results" / "figures" / "ingest_gallery.png")
    rows = len(tiny_params()["datasets"])
    assert figure.format == "PNG"
    assert figure.height > rows * 150  # about 2 inches per dataset row at 110 dpi
    assert np.asarray(figure.convert("L")).std() > 20  # pictures, not a blank canvas


# --- the workflow as a whole -------------------------------------------------------------------


def test_second_run_has_nothing_to_do(built: Path) -> None:
    proc = snakemake(built, "-n")
    assert "Nothing to be done" in proc.stdout + proc.stderr


def dry_run_with(built: Path, params: dict) -> str:
    """What a dry run plans in ``built`` under edited params (restored afterwards)."""
    (built / "params.yaml").write_text(yaml.safe_dump(params))
    try:
        return snakemake(built, "-n").stdout
    finally:
        (built / "params.yaml").write_text(yaml.safe_dump(tiny_params()))


def test_changing_one_dataset_reruns_only_that_dataset(built: Path) -> None:
    params = tiny_params()
    params["datasets"]["nih"]["synthetic"]["n"] += 1
    out = dry_run_with(built, params)
    jobs = dict(re.findall(r"^(synth|ingest)\s+(\d+)$", out, flags=re.MULTILINE))
    assert jobs == {"synth": "1", "ingest": "1"}
    assert "cxr synth nih" in out
    assert "cxr synth jsrt" not in out


def test_invalid_params_fail_at_parse_time_with_the_key(workdir: Path) -> None:
    params = tiny_params()
    params["datasets"]["nih"]["source"] = "downloaded"
    (workdir / "params.yaml").write_text(yaml.safe_dump(params))
    proc = snakemake(workdir, "-n", check=False)
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "downloaded" in output
    assert "source" in output


def test_real_nih_sample_is_ingested_and_preprocessed_through_the_rules(
    workdir: Path, real_nih: Path
) -> None:
    params = tiny_params()
    params["datasets"] = {"nih": {**params["datasets"]["nih"], "source": "real"}}
    params["preprocess"]["build"] = {"nih": ["tiny_eq"]}
    params["split"] = {"nih": {"random": {"method": "random", "ratios": [0.6, 0.2, 0.2]}}}
    params.pop("training")  # the tiny studies read schemes this test leaves out
    (workdir / "params.yaml").write_text(yaml.safe_dump(params))
    shutil.copytree(real_nih, workdir / "data" / "raw" / "nih")
    snakemake(workdir)

    index = pd.read_parquet(workdir / "results" / "ingest" / "nih" / "index.parquet")
    assert len(index) == 51
    row = index.set_index("image_id").loc["00000100_000.png"]
    assert [c for c in finding_columns(index) if row[c] == 1] == [
        "finding_Atelectasis",
        "finding_Effusion",
        "finding_Infiltration",
    ]
    assert (index["mode"] == "RGBA").sum() == 6
    assert index["boxes"].notna().sum() == 12

    out = workdir / "results" / "preprocessed" / "nih" / "tiny_eq"
    tensor = np.load(out / "images.npy", mmap_mode="r")
    pre = pd.read_parquet(out / "index.parquet")
    assert tensor.shape == (51, 32, 32)
    preset = Preset.from_dict(params["preprocess"]["presets"]["tiny_eq"])
    for r in pre[pre["mode"] == "RGBA"].itertuples():
        gray = np.asarray(Image.open(real_nih / r.path).convert("L"))
        assert np.array_equal(tensor[r.tensor_row], apply_preset(gray, preset)), r.image_id

    pointer = workdir / "data" / "raw" / "nih.dvc"
    pointer.write_text("outs:\n- md5: 0\n  path: nih\n")  # as `dvc add data/raw/nih` would
    dry = snakemake(workdir, "-n").stdout
    assert "ingest" in dry
    assert "data/raw/nih.dvc" in dry


# --- preprocess, split and leakage rules -------------------------------------------------------


def built_presets() -> list[tuple[str, str]]:
    build = tiny_params()["preprocess"]["build"]
    return [(d, p) for d, presets in build.items() for p in presets]


@pytest.mark.parametrize(("dataset", "preset"), built_presets())
def test_preprocess_writes_the_tensor_index_and_stats(
    built: Path, dataset: str, preset: str
) -> None:
    folder = built / "results" / "preprocessed" / dataset / preset
    size = tiny_params()["preprocess"]["presets"][preset]["size"]
    tensor = np.load(folder / "images.npy", mmap_mode="r")
    index = pd.read_parquet(folder / "index.parquet")
    ingest_index, _m, _s = ingested(built, dataset)
    rejected = pd.read_csv(folder / "manifest.csv").query("status == 'rejected'")
    assert tensor.shape == (len(index), size, size)
    assert tensor.dtype == np.uint8
    assert len(index) + len(rejected) == len(ingest_index)
    kept = ingest_index[~ingest_index["image_id"].isin(rejected["image_id"])]
    assert index["image_id"].tolist() == kept["image_id"].tolist()
    assert float(tensor.std()) > 0
    stats = json.loads((folder / "stats.json").read_text())
    assert 0 < stats["mean"] < 1
    assert 0 < stats["std"] < 0.5
    for row in index.dropna(subset=["boxes"]).itertuples():
        for box in boxes_from_json(row.boxes):
            assert 0 <= box["x"] <= box["x"] + box["w"] <= size
            assert 0 <= box["y"] <= box["y"] + box["h"] <= size


def leakage_reports_of(built: Path) -> list[Path]:
    return sorted((built / "results" / "metrics" / "splits").rglob("*.json"))


def test_every_split_has_a_clean_leakage_report(built: Path) -> None:
    schemes = tiny_params()["split"]
    reports = leakage_reports_of(built)
    cascade_sets = 3  # the tiny cascade's module sets, split `heldout`
    assert len(reports) == sum(len(s) for s in schemes.values()) + cascade_sets
    for path in reports:
        report = json.loads(path.read_text())
        for column in report["splits"].values():
            assert column["overlap"] == {
                "groups": 0,
                "identical_images": 0,
                "near_duplicates": 0,
                "patients": 0,
            }
            assert sum(side["images"] for side in column["sides"].values()) == report["images"]


def test_duplicates_rule_lists_the_planted_covid_copies_and_draws_them(built: Path) -> None:
    from cxr.synth.covid_radiography import plan_items

    params = tiny_params()
    items = plan_items(params["datasets"]["covid_radiography"]["synthetic"]["n"], params["seed"])
    name = {item.index: item.file_name for item in items}
    planted = {
        frozenset((name[i.duplicate_of], i.file_name)) for i in items if i.duplicate_of is not None
    }
    assert planted
    table = pd.read_csv(built / "results" / "duplicates" / "covid_radiography.csv")
    assert list(table.columns) == ["group", "size", "image_ids", "max_distance"]
    assert {frozenset(ids.split("|")) for ids in table["image_ids"]} == planted
    assert (table["max_distance"] <= 0.07).all()
    with Image.open(built / "results" / "duplicates" / "covid_radiography.png") as figure:
        assert figure.height > 100
    splits = pd.read_parquet(
        next((built / "results" / "splits" / "covid_radiography").glob("*.parquet"))
    ).set_index("image_id")
    for pair in planted:
        assert splits.loc[list(pair), "group"].nunique() == 1


def test_nih_official_split_keeps_the_official_test_list(built: Path) -> None:
    splits = pd.read_parquet(built / "results" / "splits" / "nih" / "official.parquet")
    listed = set((synthetic(built, "nih") / "test_list.txt").read_text().split())
    in_test = set(splits.loc[splits["split"] == "test", "image_id"])
    assert in_test == listed & set(splits["image_id"])
    assert set(splits["split"]) == {"train", "val", "test"}


def test_jsrt_kfold_tests_each_case_once(built: Path) -> None:
    splits = pd.read_parquet(built / "results" / "splits" / "jsrt" / "cv3.parquet")
    folds = [c for c in splits.columns if c.startswith("fold_")]
    assert len(folds) == 3
    assert ((splits[folds] == "test").sum(axis=1) == 1).all()


def test_a_planted_leak_fails_the_workflow_and_names_the_patient(
    built: Path, tmp_path: Path
) -> None:
    work = tmp_path / "w"
    shutil.copytree(built, work, symlinks=True)
    split_file = work / "results" / "splits" / "nih" / "official.parquet"
    splits = pd.read_parquet(split_file)
    counts = splits.groupby("patient_id")["image_id"].transform("size")
    row = splits.index[(splits["split"] == "train") & (counts > 1)][0]
    patient = splits.loc[row, "patient_id"]
    splits.loc[row, "split"] = "test"
    splits.to_parquet(split_file, index=False)
    report = work / "results" / "metrics" / "splits" / "nih" / "official.json"

    proc = snakemake(
        work,
        str(report.relative_to(work)),
        "--force",
        "--allowed-rules",
        "check_leakage",
        check=False,
    )
    log = (work / "logs" / "check_leakage" / "nih_official.log").read_text()
    assert proc.returncode != 0
    assert f"patient {patient} is in" in log
    assert not report.exists()


def test_editing_one_preset_reruns_only_its_tensors(built: Path) -> None:
    params = tiny_params()
    params["preprocess"]["presets"]["tiny_pad"]["size"] = 20
    out = dry_run_with(built, params)
    jobs = dict(re.findall(r"^(\w+)\s+(\d+)$", out, flags=re.MULTILINE))
    jobs.pop("total", None)
    # jsrt, mura and xray_types use tiny_pad; mura's and xray_types' splits and duplicate
    # groups are made from it. Those two splits feed the tiny cascade's sets, so its three
    # modules (and their checks, evaluations, CAMs) follow; no other study's job does.
    modules = {"train": "3", "evaluate": "3", "cam": "3", "train_summary": "3"}
    assert jobs == {
        "preprocess": "3", "split": "2", "check_leakage": "5", "duplicates": "2",
        "cascade_sets": "1", **modules, "cascade_evaluate": "1", "report": "1", "all": "1",
    }  # fmt: skip


@pytest.mark.slow
def test_dvc_repro_runs_the_workflow_and_reports_metrics(tmp_path: Path) -> None:
    _, run = dvc_project(tmp_path, ("nih", "covid_radiography"))
    run(str(BIN / "dvc"), "repro")
    shown = json.loads(run(str(BIN / "dvc"), "metrics", "show", "--json"))
    assert "results/metrics/ingest/nih.json" in json.dumps(shown)
    assert "Nothing to be done" in run(str(BIN / "dvc"), "repro")

"""NIH ChestX-ray14: the synthetic miniature keeps the real format, and the ingester reads it back
(both layouts, partial downloads, bad input) as well as the real 51-image sample."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from cxr.data.index import IngestError, Manifest, boxes_from_json, finding_column
from cxr.ingest import ingest
from cxr.ingest import nih as nih_ingest
from cxr.synth import nih as nih_synth
from cxr.synth import rng_for, synthesize
from cxr.synth.chest import NIH_FINDINGS

REAL_NIH = Path(__file__).resolve().parents[2].parent / "shared" / "real" / "nih"
HEADER = (
    "Image Index,Finding Labels,Follow-up #,Patient ID,Patient Age,Patient Gender,View Position,"
    "OriginalImage[Width,Height],OriginalImagePixelSpacing[x,y]"
)
BBOX_HEADER = "Image Index,Finding Label,Bbox [x,y,w,h],,,"
FINDING_COLUMNS = [finding_column(f) for f in NIH_FINDINGS]
N, SIZE, SEED = 40, 64, 7


@pytest.fixture(scope="module")
def box_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return synthesize("nih", tmp_path_factory.mktemp("box") / "nih", n=N, size=SIZE, seed=SEED)


@pytest.fixture(scope="module")
def kaggle_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("kaggle") / "nih"
    return synthesize("nih", out, n=N, size=SIZE, seed=SEED, variant="kaggle")


@pytest.fixture
def box_copy(box_root: Path, tmp_path: Path) -> Path:
    """A private copy of the Box-layout miniature that a test may damage."""
    return Path(shutil.copytree(box_root, tmp_path / "nih"))


def entry_table(root: Path) -> pd.DataFrame:
    """The generated entry CSV read plainly with pandas (v2020 if present, else legacy)."""
    v2020 = root / "Data_Entry_2017_v2020.csv"
    return pd.read_csv(v2020 if v2020.exists() else root / "Data_Entry_2017.csv")


def bbox_table(root: Path) -> pd.DataFrame:
    names = ["image", "label", "x", "y", "w", "h", "_1", "_2", "_3"]
    return pd.read_csv(root / "BBox_List_2017.csv", names=names, skiprows=1)


def split_names(root: Path, file: str) -> list[str]:
    return (root / file).read_text().split("\n")


def label_set(text: str) -> set[str]:
    return set() if text == "No Finding" else set(text.split("|"))


def reasons(manifest: Manifest, kind: str) -> dict[str, str]:
    """``{item: reason}`` of the skipped manifest entries of ``kind``."""
    return {
        item: reason
        for k, item, status, reason in manifest.rows
        if k == kind and status == "skipped"
    }


# ----------------------------------------------------------------------------- format


def test_header_constants_are_the_spec_headers() -> None:
    assert nih_ingest.ENTRY_HEADER == HEADER
    assert nih_ingest.BBOX_HEADER == BBOX_HEADER


def test_v2020_csv_has_the_raw_11_field_header_and_lf_lines(box_root: Path) -> None:
    raw = (box_root / "Data_Entry_2017_v2020.csv").read_bytes()
    assert b"\r" not in raw and b'"' not in raw and raw.endswith(b"\n")
    lines = raw.decode("ascii").splitlines()
    assert lines[0] == HEADER
    assert len(lines) == N + 1
    table = entry_table(box_root)
    assert list(table.columns)[-4:] == [
        "OriginalImage[Width",
        "Height]",
        "OriginalImagePixelSpacing[x",
        "y]",
    ]
    assert table.shape == (N, 11)
    assert (table["OriginalImagePixelSpacing[x"] == table["y]"]).all()
    assert set(table["View Position"]) <= {"PA", "AP"}
    assert set(table["Patient Gender"]) <= {"M", "F"}
    for text in table["Finding Labels"]:
        assert text == "No Finding" or label_set(text) <= set(NIH_FINDINGS)


def test_v2020_rows_are_grouped_by_patient_in_chronological_order(box_root: Path) -> None:
    table = entry_table(box_root)
    assert (table["Patient ID"] == table["Image Index"].str[:8].astype(int)).all()
    assert table["Patient ID"].is_monotonic_increasing  # grouped, IDs 1..P
    assert table["Patient ID"].iloc[0] == 1
    for _pid, rows in table.groupby("Patient ID"):
        assert list(rows["Follow-up #"]) == list(range(len(rows)))
        assert rows["Patient Age"].is_monotonic_increasing
        assert sorted(rows["Image Index"].str[9:12].astype(int)) == list(range(len(rows)))
    suffix = table["Image Index"].str[9:12].astype(int)
    assert (suffix != table["Follow-up #"]).any(), "one patient's suffixes must be out of order"
    views = table.groupby("Patient ID")["View Position"].nunique()
    assert (views == 2).any(), "one patient must have both PA and AP images"


def test_legacy_csv_has_trailing_commas_and_impossible_ages(kaggle_root: Path) -> None:
    lines = (kaggle_root / "Data_Entry_2017.csv").read_text().splitlines()
    assert lines[0] == HEADER + ","
    assert all(line.endswith(",") for line in lines)
    table = entry_table(kaggle_root)
    assert table.shape == (N, 12)
    assert table["Unnamed: 11"].isna().all()
    assert (table["Patient Age"] > 100).any()
    assert table["Image Index"].is_monotonic_increasing
    assert (table["Follow-up #"] == table["Image Index"].str[9:12].astype(int)).all()


def test_kaggle_folders_hold_contiguous_runs_of_sorted_names(kaggle_root: Path) -> None:
    folders = sorted(kaggle_root.glob("images_*"))
    assert len(folders) >= 2
    runs = [sorted(p.name for p in (f / "images").glob("*.png")) for f in folders]
    assert [name for run in runs for name in run] == sorted(entry_table(kaggle_root)["Image Index"])
    assert len(runs[0]) < len(runs[1])
    assert not (kaggle_root / "images").exists()


def test_bbox_file_format_and_content(box_root: Path) -> None:
    lines = (box_root / "BBox_List_2017.csv").read_text().splitlines()
    assert lines[0] == BBOX_HEADER
    assert len(lines[0].split(",")) == 9
    assert lines[1:] and all(len(line.split(",")) == 6 for line in lines[1:])
    boxes = bbox_table(box_root)
    findings = dict(
        zip(*(entry_table(box_root)[c] for c in ("Image Index", "Finding Labels")), strict=True)
    )
    assert "Infiltrate" in set(boxes["label"]) and "Infiltration" not in set(boxes["label"])
    assert set(boxes["label"]) <= {"Infiltrate", *nih_ingest.BOX_FINDINGS}
    for row in boxes.itertuples():
        label = "Infiltration" if row.label == "Infiltrate" else row.label
        assert label in label_set(findings[row.image])
        assert row.x >= 0 and row.y >= 0 and row.w > 0 and row.h > 0
        assert row.x + row.w <= 1024 and row.y + row.h <= 1024
    per_image = boxes.groupby("image")["label"]
    assert per_image.size().max() >= 2
    assert (per_image.nunique() == per_image.size()).all()


def test_split_lists_are_patient_disjoint_and_cover_all_images(box_root: Path) -> None:
    for file in ("train_val_list.txt", "test_list.txt"):
        raw = (box_root / file).read_bytes()
        assert b"\r" not in raw and not raw.endswith(b"\n")
    train_val = split_names(box_root, "train_val_list.txt")
    test = split_names(box_root, "test_list.txt")
    assert sorted(train_val + test) == sorted(entry_table(box_root)["Image Index"])
    assert {n[:8] for n in train_val}.isdisjoint({n[:8] for n in test})
    assert 0.1 < len(test) / N < 0.45


def test_png_modes_rgba_and_gray(box_root: Path) -> None:
    modes = {}
    for path in sorted((box_root / "images").glob("*.png")):
        with Image.open(path) as im:
            modes[path.name] = im.mode
            assert im.size == (SIZE, SIZE)
            if im.mode == "RGBA":
                px = np.asarray(im)
                assert (px[..., 0] == px[..., 1]).all() and (px[..., 1] == px[..., 2]).all()
                assert (px[..., 3] == 255).all()
    assert len(modes) == N
    assert "RGBA" in modes.values()
    assert set(modes.values()) == {"L", "RGBA"}


def test_full_size_images_are_1024(tmp_path: Path) -> None:
    root = synthesize("nih", tmp_path / "nih", n=4, size=1024, seed=1)
    for path in (root / "images").glob("*.png"):
        with Image.open(path) as im:
            assert im.size == (1024, 1024)


def test_same_seed_gives_identical_bytes(box_root: Path, tmp_path: Path) -> None:
    again = synthesize("nih", tmp_path / "again", n=N, size=SIZE, seed=SEED)
    for file in (
        "Data_Entry_2017_v2020.csv",
        "BBox_List_2017.csv",
        "train_val_list.txt",
        "test_list.txt",
    ):
        assert (again / file).read_bytes() == (box_root / file).read_bytes(), file
    for path in sorted((box_root / "images").glob("*.png"))[:: N // 5]:
        assert (again / "images" / path.name).read_bytes() == path.read_bytes()
    other = synthesize("nih", tmp_path / "other", n=N, size=SIZE, seed=SEED + 1)
    assert (other / "Data_Entry_2017_v2020.csv").read_bytes() != (
        box_root / "Data_Entry_2017_v2020.csv"
    ).read_bytes()


def test_statistics_of_a_1000_image_plan() -> None:
    plans = nih_synth.plan_images(rng_for(0, 0), 1000)
    assert len(plans) == 1000
    assert len({p.name for p in plans}) == 1000
    patients = nih_synth.patients_of(plans)
    sizes = sorted(len(v) for v in patients.values())
    assert sizes[len(sizes) // 2] == 1 and 100 < len(patients) < 500
    assert max(sizes) <= 1000 // 15
    assert 0.45 < np.mean([not p.findings for p in plans]) < 0.62
    assert 0.5 < np.mean([p.view == "PA" for p in plans]) < 0.7
    for name in NIH_FINDINGS:
        assert sum(name in p.findings for p in plans) >= 2, name


# ----------------------------------------------------------------------------- round trip


@pytest.mark.parametrize("layout", ["box", "kaggle"])
def test_round_trip_reproduces_labels_boxes_and_splits(layout: str, request) -> None:
    root: Path = request.getfixturevalue(f"{layout}_root")
    index, manifest = ingest("nih", root)
    table = entry_table(root).set_index("Image Index")
    assert sorted(index["image_id"]) == sorted(table.index)
    assert set(manifest.counts()["label_row"]) == {"kept"}
    indexed = index.set_index("image_id")
    for name, row in table.iterrows():
        got = indexed.loc[name]
        positives = {f for f in NIH_FINDINGS if got[finding_column(f)] == 1.0}
        assert positives == label_set(row["Finding Labels"]), name
        assert got["patient_id"] == str(row["Patient ID"])
        assert got["view"] == row["View Position"] and got["sex"] == row["Patient Gender"]
        assert got["follow_up"] == row["Follow-up #"]
        assert got["path"] == next(root.rglob(name)).relative_to(root).as_posix()
        age = row["Patient Age"]
        assert (np.isnan(got["age"]) and age > 120) or got["age"] == age
    assert (indexed[["width", "height"]] == SIZE).all().all()
    expected_boxes = bbox_table(root)
    for name, rows in expected_boxes.groupby("image"):
        got = {b["label"]: b for b in boxes_from_json(indexed.loc[name, "boxes"])}
        assert len(got) == len(rows)
        for r in rows.itertuples():
            box = got["Infiltration" if r.label == "Infiltrate" else r.label]
            scale = SIZE / 1024
            assert [box[k] for k in "xywh"] == pytest.approx(
                [r.x * scale, r.y * scale, r.w * scale, r.h * scale], abs=1e-3
            )
    assert indexed["boxes"].notna().sum() == expected_boxes["image"].nunique()
    test = set(split_names(root, "test_list.txt"))
    assert (
        indexed["source_split"] == ["test" if n in test else "train_val" for n in indexed.index]
    ).all()


def test_partial_kaggle_download(kaggle_root: Path, tmp_path: Path) -> None:
    root = Path(shutil.copytree(kaggle_root, tmp_path / "nih"))
    gone = sorted(p.name for p in (root / "images_002" / "images").glob("*.png"))
    shutil.rmtree(root / "images_002")
    index, manifest = ingest("nih", root)
    assert sorted(index["image_id"]) == sorted(set(entry_table(root)["Image Index"]) - set(gone))
    skipped = reasons(manifest, "label_row")
    assert {i.split(":", 1)[1] for i in skipped} == set(gone)
    assert set(skipped.values()) == {"no image file"}
    for item, reason in reasons(manifest, "box_row").items():
        assert item.split(":")[1] in gone and "image not in index" in reason
    assert {i.split(":", 1)[1] for i in reasons(manifest, "split_row")} == set(gone)


# ----------------------------------------------------------------------------- bad input


def test_bad_files_and_rows_are_skipped_with_reasons(box_copy: Path) -> None:
    names = sorted(p.name for p in (box_copy / "images").glob("*.png"))
    truncated, relabelled, extra = names[0], names[1], names[2]
    png = box_copy / "images" / truncated
    png.write_bytes(png.read_bytes()[:-40])
    csv = box_copy / "Data_Entry_2017_v2020.csv"
    lines = csv.read_text().splitlines()
    row = next(i for i, line in enumerate(lines) if line.startswith(relabelled))
    fields = lines[row].split(",")
    lines[row] = ",".join([fields[0], "Foo|Mass", *fields[2:]])
    duplicate = next(line for line in lines[1:] if line.startswith(extra))
    csv.write_text("\n".join([*lines, duplicate]) + "\n")
    (box_copy / "notes.txt").write_text("my notes\n")
    (box_copy / "images" / "99999999_000.png").write_bytes(
        (box_copy / "images" / extra).read_bytes()
    )
    (box_copy / "more" / "images").mkdir(parents=True)
    shutil.copy(box_copy / "images" / extra, box_copy / "more" / "images" / extra)
    healthy = entry_table(box_copy).query("`Finding Labels` == 'No Finding'")["Image Index"].iloc[0]
    boxed = bbox_table(box_copy).query("image not in [@truncated, @relabelled]").iloc[0]
    with open(box_copy / "BBox_List_2017.csv", "a") as fh:
        fh.write(f"{healthy},Mass,10,10,50,50\n{boxed.image},{boxed.label},1000,10,50,50\n")

    index, manifest = ingest("nih", box_copy)
    files, rows = reasons(manifest, "file"), manifest.rows
    assert truncated not in set(index["image_id"]) and relabelled not in set(index["image_id"])
    assert "truncated" in files[f"images/{truncated}"]
    assert "not part of the nih layout" in files["notes.txt"]
    assert "no usable label row" in files["images/99999999_000.png"]
    assert files[f"more/images/{extra}"] == f"duplicate basename; kept images/{extra}"
    label_rows = [
        (item, reason)
        for kind, item, status, reason in rows
        if kind == "label_row" and status == "skipped"
    ]
    item = "Data_Entry_2017_v2020.csv:{}"
    assert (item.format(relabelled), "unknown label 'Foo'") in label_rows
    assert any(i == item.format(extra) and "duplicate Image Index" in r for i, r in label_rows)
    assert any(i == item.format(truncated) and "truncated" in r for i, r in label_rows)
    assert len(index) == N - 2
    boxes = reasons(manifest, "box_row")
    assert (
        "box label 'Mass' not among the image's findings"
        in boxes[f"BBox_List_2017.csv:{healthy}:Mass"]
    )
    assert "box outside the image" in boxes[f"BBox_List_2017.csv:{boxed.image}:{boxed.label}"]


def test_legacy_age_strings_and_patient_sex_header(box_copy: Path) -> None:
    csv = box_copy / "Data_Entry_2017_v2020.csv"
    lines = csv.read_text().splitlines()
    lines[0] = lines[0].replace("Patient Gender", "Patient Sex")
    first, second = lines[1].split(","), lines[2].split(",")
    first[4], second[4] = "058Y", "003M"
    lines[1:3] = [",".join(first), ",".join(second)]
    csv.write_text("\n".join(lines) + "\n")
    index, _ = ingest("nih", box_copy)
    ages = index.set_index("image_id")["age"]
    assert ages[first[0]] == 58 and ages[second[0]] == pytest.approx(0.25)


@pytest.mark.parametrize(
    ("line", "edit", "message"),
    [
        (0, lambda f: ["Image Idx", *f[1:]], "line 1: header"),
        (3, lambda f: [f[0], f[1], f[2], "abc", *f[4:]], "line 4: Patient ID is not an integer"),
        (2, lambda f: [*f, "x", "y"], "line 3: 13 fields, expected 11"),
        (4, lambda f: f[:-3], "line 5: 8 fields"),
        (5, lambda f: [*f[:4], "old", *f[5:]], "line 6: Patient Age"),
    ],
)
def test_malformed_entry_csv_raises_naming_file_and_line(box_copy: Path, line, edit, message):
    csv = box_copy / "Data_Entry_2017_v2020.csv"
    lines = csv.read_text().splitlines()
    lines[line] = ",".join(edit(lines[line].split(",")))
    csv.write_text("\n".join(lines) + "\n")
    with pytest.raises(IngestError, match=r"Data_Entry_2017_v2020\.csv") as err:
        ingest("nih", box_copy)
    assert message in str(err.value)


def test_missing_entry_csv_says_what_was_looked_for(box_copy: Path) -> None:
    (box_copy / "Data_Entry_2017_v2020.csv").unlink()
    with pytest.raises(IngestError, match=r"Data_Entry_2017_v2020\.csv and Data_Entry_2017\.csv"):
        ingest("nih", box_copy)


def test_split_lists_tolerate_a_trailing_newline(box_copy: Path) -> None:
    for file in ("train_val_list.txt", "test_list.txt"):
        path = box_copy / file
        path.write_text(path.read_text() + "\n")
    index, manifest = ingest("nih", box_copy)
    assert index["source_split"].notna().all()
    assert "split_row" not in manifest.counts()


# ----------------------------------------------------------------------------- real sample


def test_real_sample_ingests_all_51_images() -> None:
    if not (REAL_NIH / "Data_Entry_2017_v2020.csv").exists():
        pytest.skip(f"real NIH sample not found at {REAL_NIH} (it is not shipped with cxr)")
    index, manifest = ingest("nih", REAL_NIH)
    assert len(index) == 51
    assert manifest.counts()["label_row"] == {"kept": 51}
    rows = index.set_index("image_id")
    first = rows.loc["00000100_000.png"]
    positives = {f for f in NIH_FINDINGS if first[finding_column(f)] == 1.0}
    assert positives == {"Atelectasis", "Effusion", "Infiltration"}
    assert (first["patient_id"], first["view"], first["age"], first["sex"]) == (
        "100",
        "PA",
        60,
        "M",
    )
    assert rows.loc["00000679_000.png", FINDING_COLUMNS].sum() == 0  # No Finding
    assert rows.loc["00016587_000.png", "follow_up"] == 57
    assert (rows["mode"] == "RGBA").sum() == 6
    assert rows["boxes"].notna().sum() == 12
    nodule = boxes_from_json(rows.loc["00002578_000.png", "boxes"])
    assert nodule == [{"label": "Nodule", "x": 796.444, "y": 327.247, "w": 78.019, "h": 59.598}]
    assert rows["source_split"].isna().all()
    assert (rows[["width", "height"]] == 1024).all().all()

"""JSRT: the miniature keeps the raw and clinical-file formats; the ingester reads them."""

from __future__ import annotations

import math
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from cxr.data.images import JSRT_BYTES
from cxr.data.index import boxes_from_json
from cxr.ingest import ingest
from cxr.ingest.jsrt import parse_record
from cxr.synth import synthesize
from cxr.synth.jsrt import plan_cases

N, SIZE, SEED = 5, 128, 7
CLNDAT = "Clinical_Information/CLNDAT_EN.txt"
CNNDAT = "Clinical_Information/CNNDAT_EN.TXT"


@pytest.fixture(scope="module")
def jsrt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return synthesize("jsrt", tmp_path_factory.mktemp("m") / "jsrt", n=N, size=SIZE, seed=SEED)


@pytest.fixture
def jsrt_copy(jsrt: Path, tmp_path: Path) -> Path:
    """A hard-linked copy that a test may change (replace files, not write into them)."""
    return Path(shutil.copytree(jsrt, tmp_path / "jsrt", copy_function=os.link))


def read_be(path: Path) -> np.ndarray:
    return np.fromfile(path, dtype=">u2").reshape(2048, 2048)


def clndat_records(root: Path) -> list[list[str]]:
    text = (root / CLNDAT).read_bytes().decode("latin-1")
    return [[f for f in rec.split("\t") if f] for rec in text.split("\r") if rec.strip()]


def manifest_reason(manifest, item: str) -> str:
    return next(reason for _k, it, status, reason in manifest.rows if it == item)


def test_layout_and_class_mix(jsrt: Path) -> None:
    names = sorted(p.name for p in (jsrt / "All247images").iterdir())
    labels = [c.label for c in plan_cases(N, SEED)]
    assert {"malignant", "benign", "non-nodule"} <= set(labels)
    n_nodule = sum(lab != "non-nodule" for lab in labels)
    expected = [f"JPCLN{i:03d}.IMG" for i in range(1, n_nodule + 1)]
    expected += [f"JPCNN{i:03d}.IMG" for i in range(1, N - n_nodule + 1)]
    assert names == expected
    assert sorted(p.name for p in (jsrt / "Clinical_Information").iterdir()) == [
        "CLNDAT_EN.txt",
        "CNNDAT_EN.TXT",
    ]


def test_raw_images_are_big_endian_12_bit_film_density(jsrt: Path) -> None:
    for path in (jsrt / "All247images").iterdir():
        assert path.stat().st_size == JSRT_BYTES == 8_388_608
    img = read_be(jsrt / "All247images" / "JPCNN001.IMG").astype(np.float64)
    assert img.max() <= 4095
    lung = np.mean([img[780:940, 560:700].mean(), img[780:940, 1350:1490].mean()])
    mediastinum = img[800:1100, 970:1080].mean()
    assert lung > mediastinum + 300, "lung fields must be high (film-density polarity)"
    little = np.fromfile(jsrt / "All247images" / "JPCNN001.IMG", dtype="<u2").astype(np.float64)
    assert little.max() > 4095
    assert abs(np.corrcoef(little, img.ravel())[0, 1]) < 0.5


def test_clinical_files_use_cr_and_tabs(jsrt: Path) -> None:
    cl = (jsrt / CLNDAT).read_bytes()
    assert b"\n" not in cl
    entries = cl.decode("latin-1").split("\r")
    records = [e for e in entries if e.startswith("JPCLN")]
    assert len(entries) == len(records) + 2, "two trailing junk entries"
    assert all(len(r.split("\t")) >= 10 for r in records)
    assert any(r.split("\t")[3] == "?" for r in records)
    assert any("(" in r.split("\t")[8] for r in records)
    assert any(len(r.split("\t")) > 10 for r in records), "a diagnosis spills over a tab"
    nn = (jsrt / CNNDAT).read_bytes()
    assert b"\n" not in nn and b"\t" not in nn and b"  " in nn
    assert nn.decode().split("\r")[0].split()[3] == "non-nodule"


def test_round_trip(jsrt: Path) -> None:
    index, manifest = ingest("jsrt", jsrt)
    assert len(index) == N
    assert list(index["label"]) == [c.label for c in plan_cases(N, SEED)]
    assert set(index["mode"]) == {"raw12be"} and set(index["width"]) == {2048}
    rows = index.set_index("image_id")
    for rec in clndat_records(jsrt):
        row = rows.loc[rec[0]]
        assert row["label"] == rec[7]
        assert (row["nodule_x"], row["nodule_y"]) == (int(rec[5]), int(rec[6]))
        assert 5 <= row["nodule_size_mm"] == int(rec[2]) <= 40
        assert row["finding_Nodule"] == 1.0
        assert math.isnan(row["age"]) if rec[3] == "?" else row["age"] == int(rec[3])
        (box,) = boxes_from_json(row["boxes"])
        assert box["x"] + box["w"] / 2 == pytest.approx(int(rec[5]), abs=0.01)
        assert box["w"] == pytest.approx(int(rec[2]) / 0.175, abs=0.01)
        assert row["diagnosis"] == " ".join(rec[9:])
    assert index["age"].isna().sum() == 1
    assert set(index.loc[index["label"] == "non-nodule", "finding_Nodule"]) == {0.0}
    assert manifest.counts()["label_row"] == {"kept": N}


def test_truncated_image_is_skipped_with_the_reason(jsrt_copy: Path) -> None:
    bad = jsrt_copy / "All247images" / "JPCLN001.IMG"
    data = bad.read_bytes()
    bad.unlink()
    bad.write_bytes(data[:1000])
    index, manifest = ingest("jsrt", jsrt_copy)
    assert "JPCLN001.IMG" not in set(index["image_id"])
    reason = manifest_reason(manifest, "All247images/JPCLN001.IMG")
    assert "wrong byte count 1,000" in reason


def test_old_layout_other_line_endings_and_bad_rows(jsrt_copy: Path) -> None:
    images = jsrt_copy / "All247images"
    (jsrt_copy / "Nodule154images").mkdir()
    (jsrt_copy / "NonNodule93images").mkdir()
    for path in sorted(images.iterdir()):
        folder = "Nodule154images" if "LN" in path.name else "NonNodule93images"
        path.rename(jsrt_copy / folder / path.name.replace(".IMG", ".img"))
    images.rmdir()
    (jsrt_copy / "NonNodule93images" / "JPCNN001.img").unlink()
    cl = jsrt_copy / CLNDAT
    text = cl.read_bytes().replace(b"\r", b"\r\n")
    cl.unlink()
    cl.write_bytes(text + b"JPCLN099.IMG\tfive\t?\r\n")
    nn = jsrt_copy / CNNDAT
    rows = nn.read_bytes().split(b"\r")
    nn.unlink()
    nn.write_bytes(b"".join(rows).rstrip() + b"\n")  # one line: records mashed together
    index, manifest = ingest("jsrt", jsrt_copy)
    assert len(index) == N - 1
    assert index["path"].str.contains("Nodule154images/JPCLN001.img").any()
    reasons = {reason for kind, _i, status, reason in manifest.rows if status == "skipped"}
    assert "no image file" in reasons
    assert any(r.startswith("unparseable row at line") and "JPCLN099" in r for r in reasons)


def test_parse_record_variants() -> None:
    spaced = "JPCLN003.IMG 5 30 63 female 1303 447 malignant l.upper lobe(S1+2) lung cancer"
    record = parse_record(spaced, "x")
    assert (record.label, record.age, record.sex) == ("malignant", 63, "F")
    assert record.extras["location"] == "l.upper lobe(S1+2)"
    assert record.extras["diagnosis"] == "lung cancer"
    tabbed = "JPCLN001.IMG\t5\t15\t?\tmale\t1634\t692\tbenign\tl.upper lobe\t\tpulmonary\thematoma"
    record = parse_record(tabbed, "x")
    assert math.isnan(record.age) and record.extras["nodule_x"] == 1634
    assert record.extras["diagnosis"] == "pulmonary hematoma"
    plain = parse_record("JPCNN010.IMG 54  male non-nodule", "x")
    assert (plain.label, plain.age, plain.sex) == ("non-nodule", 54, "M")
    with pytest.raises(ValueError, match="subtlety"):
        parse_record("JPCLN001.IMG\t9\t15\t50\tmale\t1\t2\tbenign", "x")


def test_deterministic_for_a_seed(jsrt: Path, tmp_path: Path) -> None:
    again = synthesize("jsrt", tmp_path / "again", n=N, size=SIZE, seed=SEED)
    assert (again / CLNDAT).read_bytes() == (jsrt / CLNDAT).read_bytes()
    assert (again / CNNDAT).read_bytes() == (jsrt / CNNDAT).read_bytes()
    name = "All247images/JPCLN002.IMG"
    assert (again / name).read_bytes() == (jsrt / name).read_bytes()

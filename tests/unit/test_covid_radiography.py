"""COVID-19 Radiography Database: the miniature keeps the update-2 layout; the ingester reads it."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from cxr.ingest import ingest
from cxr.ingest.folders import files_under
from cxr.synth import synthesize

N, SIZE, SEED = 12, 64, 3
CLASSES = ("COVID", "Lung_Opacity", "Normal", "Viral Pneumonia")
DATASET = "COVID-19_Radiography_Dataset"


@pytest.fixture(scope="module")
def covid(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("m") / "covid"
    return synthesize("covid_radiography", out, n=N, size=SIZE, seed=SEED)


@pytest.fixture
def covid_copy(covid: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(covid, tmp_path / "covid"))


def names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_layout(covid: Path) -> None:
    root = covid / DATASET
    assert names(covid) == [DATASET]
    assert names(root) == sorted(
        [*CLASSES, *(f"{c}.metadata.xlsx" for c in CLASSES), "README.md.txt"]
    )
    total = 0
    for cls in CLASSES:
        assert names(root / cls) == ["images", "masks"]
        count = len(names(root / cls / "images"))
        assert count >= 2
        expected = sorted(f"{cls}-{k}.png" for k in range(1, count + 1))
        assert names(root / cls / "images") == expected == names(root / cls / "masks")
        total += count
    assert total == N
    assert (root / "Viral Pneumonia" / "images" / "Viral Pneumonia-1.png").is_file()


def test_images_and_masks(covid: Path) -> None:
    modes = []
    for cls in CLASSES:
        for path in (covid / DATASET / cls / "images").iterdir():
            with Image.open(path) as im:
                assert im.size == (SIZE, SIZE)
                modes.append(im.mode)
            with Image.open(path.parent.parent / "masks" / path.name) as mask:
                assert mask.size == (256, 256) and mask.mode == "RGB"
                values = np.asarray(mask)
            assert set(np.unique(values)) <= {0, 255} and values.max() == 255
    assert "RGB" in modes and modes.count("L") > len(modes) // 2


def test_metadata_workbooks(covid: Path) -> None:
    for cls in CLASSES:
        frame = pd.read_excel(covid / DATASET / f"{cls}.metadata.xlsx", dtype=str)
        assert list(frame.columns) == ["FILE NAME", "FORMAT", "SIZE", "URL"]
        assert len(frame) == len(names(covid / DATASET / cls / "images"))
        assert set(frame["SIZE"]) == {"256*256"} and set(frame["FORMAT"]) == {"PNG"}
        assert frame["URL"].str.startswith("https://").all()
    normal = pd.read_excel(covid / DATASET / "Normal.metadata.xlsx", dtype=str)
    assert normal["FILE NAME"].iloc[0] == "NORMAL-1"


def test_round_trip(covid: Path) -> None:
    index, manifest = ingest("covid_radiography", covid)
    assert len(index) == N
    folders = index["path"].str.split("/").str[1]
    assert (index["label"] == folders).all()
    assert set(index["label"]) == set(CLASSES)
    assert index["patient_id"].isna().all() and set(index["body_part"]) == {"chest"}
    normal_1 = index.set_index("image_id").loc["Normal-1.png"]
    assert normal_1["url"].startswith("https://"), "NORMAL-1 in the workbook names Normal-1.png"
    assert normal_1["mask_path"] == f"{DATASET}/Normal/masks/Normal-1.png"
    assert index["url"].notna().all() and index["mask_path"].notna().all()
    counts = manifest.counts()
    assert counts["label_row"] == {"kept": N}
    assert counts["file"] == {"kept": 2 * N + 5}  # images, masks, 4 workbooks, README


def test_litter_unknown_class_and_bad_images(covid_copy: Path) -> None:
    root = covid_copy / DATASET
    (root / "Normal" / "images" / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    (root / "Pneumothorax" / "images").mkdir(parents=True)
    shutil.copy(
        root / "COVID" / "images" / "COVID-1.png", root / "Pneumothorax" / "images" / "P-1.png"
    )
    covid_2 = root / "COVID" / "images" / "COVID-2.png"
    covid_2.write_bytes(covid_2.read_bytes()[:200])
    (root / "Normal" / "images" / "Normal-1.png").unlink()
    index, manifest = ingest("covid_radiography", covid_copy)
    assert len(index) == N - 2
    status = {item: (s, reason) for _k, item, s, reason in manifest.rows}
    assert status[f"{DATASET}/Normal/images/.DS_Store"][0] == "skipped"
    assert status[f"{DATASET}/Pneumothorax/images/P-1.png"] == (
        "skipped",
        "unknown class folder 'Pneumothorax'",
    )
    assert status[f"{DATASET}/COVID/images/COVID-2.png"][0] == "skipped"
    assert "truncated PNG" in status[f"{DATASET}/COVID/images/COVID-2.png"][1]
    assert status[f"{DATASET}/Normal.metadata.xlsx:2"] == ("skipped", "no image file")
    assert status[f"{DATASET}/Normal/masks/Normal-1.png"][0] == "skipped"
    assert set(status) == set(files_under(covid_copy)) | {
        item for kind, item, _s, _r in manifest.rows if kind == "label_row"
    }


def test_older_flat_layout(covid: Path, tmp_path: Path) -> None:
    old = tmp_path / "COVID-19 Radiography Database"
    for folder, source in (
        ("COVID", "COVID/images/COVID-1.png"),
        ("NORMAL", "Normal/images/Normal-2.png"),
    ):
        (old / folder).mkdir(parents=True)
        shutil.copy(covid / DATASET / source, old / folder / f"{folder} (1).png")
    index, _manifest = ingest("covid_radiography", tmp_path)
    assert sorted(index["label"]) == ["COVID", "Normal"]
    assert index["mask_path"].isna().all()


def test_deterministic_for_a_seed(covid: Path, tmp_path: Path) -> None:
    again = synthesize("covid_radiography", tmp_path / "again", n=N, size=SIZE, seed=SEED)
    files = sorted(files_under(covid))
    assert sorted(files_under(again)) == files
    for rel in files:
        assert (again / rel).read_bytes() == (covid / rel).read_bytes(), rel

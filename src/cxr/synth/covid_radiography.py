"""Synthetic miniature of the COVID-19 Radiography Database, "update 2" layout (spec section 3).

Writes::

    COVID-19_Radiography_Dataset/
      COVID/images/COVID-1.png ...          COVID/masks/COVID-1.png ...
      Lung_Opacity/images/...               Lung_Opacity/masks/...
      Normal/images/...                     Normal/masks/...
      Viral Pneumonia/images/Viral Pneumonia-1.png ...   (the space is real)
      COVID.metadata.xlsx  Lung_Opacity.metadata.xlsx  Normal.metadata.xlsx
      Viral Pneumonia.metadata.xlsx  README.md.txt

Images are ``size`` x ``size`` 8-bit grayscale PNGs (a few RGB); masks are 256x256 3-channel
0/255 lung masks with the image's file name. Normal metadata names are upper-case without
extension (``NORMAL-1``), and ``SIZE`` says ``256*256`` whatever the image size, as in the real
files.
"""

from __future__ import annotations

import io
import re
import zipfile
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from cxr.data.images import write_gray_png, write_rgb
from cxr.synth import parallel_map, rng_for, scaled_counts
from cxr.synth.chest import Finding, finding_box, lung_mask, render_chest, sample_anatomy, to_uint8

DEFAULT_N = 400
DEFAULT_SIZE = 299
VARIANTS: tuple[str, ...] = ("v4",)

DATASET_FOLDER = "COVID-19_Radiography_Dataset"
#: Real class counts of update 2 (21,165 images).
CLASS_COUNTS = {"COVID": 3616, "Lung_Opacity": 6012, "Normal": 10192, "Viral Pneumonia": 1345}
MASK_SIDE = 256
RGB_FRACTION = 0.02
#: Share of images that re-publish an earlier image of their class, slightly re-exposed: the real
#: database collects the same radiographs from several sources, so it holds near-duplicates.
DUPLICATE_FRACTION = 0.02
METADATA_COLUMNS = ["FILE NAME", "FORMAT", "SIZE", "URL"]
#: Source collections and how many images each gave (spec 3.5); paediatric sources flagged.
SOURCES: dict[str, list[tuple[str, int, bool]]] = {
    "COVID": [
        ("https://bimcv.cipf.es/bimcv-projects/bimcv-covid19/", 2473, False),
        ("https://github.com/ml-workgroup/covid-19-image-repository/tree/master/png", 183, False),
        ("https://sirm.org/category/senza-categoria/covid-19/", 559, False),
        ("https://github.com/armiro/COVID-CXNet", 400, False),
    ],
    "Lung_Opacity": [
        ("https://www.kaggle.com/c/rsna-pneumonia-detection-challenge/data", 6012, False),
    ],
    "Normal": [
        ("https://www.kaggle.com/c/rsna-pneumonia-detection-challenge/data", 8851, False),
        ("https://www.kaggle.com/paultimothymooney/chest-xray-pneumonia", 1341, True),
    ],
    "Viral Pneumonia": [
        ("https://www.kaggle.com/paultimothymooney/chest-xray-pneumonia", 1345, True),
    ],
}
#: Key of the generator that draws the table-level choices (kept apart from image keys).
_TABLE_KEY = 0xC0F1D
_FIXED_TIME = "2021-03-01T00:00:00Z"


@dataclass(frozen=True)
class Item:
    """One image to render: its class, file name, source and how it is stored."""

    cls: str
    number: int
    index: int
    seed: int
    url: str
    paediatric: bool
    rgb: bool
    duplicate_of: int | None = None  # index of the item whose picture this one re-publishes

    @property
    def file_name(self) -> str:
        return f"{self.cls}-{self.number}.png"


def generate(out: Path, n: int, size: int, seed: int, variant: str) -> None:
    """Write ``n`` images with their masks, the four metadata workbooks and the README."""
    root = out / DATASET_FOLDER
    items = plan_items(n, seed)
    for cls in CLASS_COUNTS:
        (root / cls / "images").mkdir(parents=True)
        (root / cls / "masks").mkdir()
    parallel_map(_render_item, [(item, root, size) for item in items], desc="covid_radiography")
    for cls in CLASS_COUNTS:
        rows = [item for item in items if item.cls == cls]
        write_metadata(root / f"{cls}.metadata.xlsx", metadata_frame(cls, rows))
    (root / "README.md.txt").write_text(readme_text(items), encoding="utf-8")


def plan_items(n: int, seed: int) -> list[Item]:
    """Class, number, source and storage mode of every image, deterministically for ``seed``."""
    rng = rng_for(seed, _TABLE_KEY)
    minimum = 2 if n >= 8 else 1 if n >= 4 else 0
    counts = scaled_counts(n, CLASS_COUNTS, minimum)
    rgb = set(rng.choice(n, size=max(1, round(n * RGB_FRACTION)), replace=False).tolist())
    items, index = [], 0
    for cls, count in counts.items():
        sources = _source_list(cls, count, rng)
        for number in range(1, count + 1):
            url, paediatric = sources[number - 1]
            items.append(Item(cls, number, index, seed, url, paediatric, index in rgb))
            index += 1
    return plant_duplicates(items, rng)


def plant_duplicates(items: list[Item], rng: np.random.Generator) -> list[Item]:
    """Turn a few items into near-duplicates of an earlier original of the same class."""
    n_dup = round(len(items) * DUPLICATE_FRACTION)
    candidates = [i for i, item in enumerate(items) if item.number > 1]
    copies = set(rng.choice(candidates, size=min(n_dup, len(candidates)), replace=False).tolist())
    for i in sorted(copies):
        item = items[i]
        originals = [j.index for j in items[:i] if j.cls == item.cls and j.index not in copies]
        source = items[int(rng.choice(originals))]
        items[i] = replace(item, duplicate_of=source.index, paediatric=source.paediatric)
    return items


def _source_list(cls: str, count: int, rng: np.random.Generator) -> list[tuple[str, bool]]:
    """The source of each of ``count`` images of ``cls``, in the real proportions, shuffled."""
    sources = SOURCES[cls]
    weights = {str(k): w for k, (_url, w, _child) in enumerate(sources)}
    counts = scaled_counts(count, weights, minimum=0)
    flat = [(sources[int(k)][0], sources[int(k)][2]) for k, c in counts.items() for _ in range(c)]
    order = rng.permutation(len(flat))
    return [flat[i] for i in order]


def _render_item(job: tuple[Item, Path, int]) -> None:
    """Render one chest with its class pattern; write the image and its lung mask."""
    item, root, size = job
    original = item.index if item.duplicate_of is None else item.duplicate_of
    rng = rng_for(item.seed, original)
    age = rng.uniform(1, 5) if item.paediatric else rng.uniform(20, 85)
    view = "AP" if item.cls in ("COVID", "Lung_Opacity") and rng.random() < 0.4 else "PA"
    anatomy = sample_anatomy(rng, view=view, age=age, sex=str(rng.choice(["M", "F"])))
    findings = []
    if item.cls != "Normal":
        findings.append(Finding(item.cls, finding_box(item.cls, anatomy, rng)))
    image = to_uint8(render_chest(anatomy, findings, size, rng))
    if item.duplicate_of is not None:  # re-exposed copy: a small brightness change
        shift = int(rng_for(item.seed, item.index).integers(-6, 7))
        image = np.clip(image.astype(np.int16) + shift, 0, 255).astype(np.uint8)
    image_path = root / item.cls / "images" / item.file_name
    if item.rgb:
        write_rgb(image_path, image)
    else:
        write_gray_png(image_path, image)
    mask = lung_mask(anatomy, MASK_SIDE).astype(np.uint8) * 255
    write_rgb(root / item.cls / "masks" / item.file_name, mask)


def metadata_frame(cls: str, items: list[Item]) -> pd.DataFrame:
    """The rows of ``<cls>.metadata.xlsx``; Normal names are ``NORMAL-k`` without extension."""
    names = [
        f"NORMAL-{item.number}" if cls == "Normal" else f"{cls}-{item.number}" for item in items
    ]
    return pd.DataFrame(
        {
            "FILE NAME": names,
            "FORMAT": ["PNG"] * len(items),
            "SIZE": ["256*256"] * len(items),
            "URL": [item.url for item in items],
        },
        columns=METADATA_COLUMNS,
    )


def write_metadata(path: Path, frame: pd.DataFrame) -> None:
    """Write a one-sheet workbook with byte-stable timestamps (so reruns give identical files)."""
    buffer = io.BytesIO()
    with pd.ExcelWriter(buffer, engine="openpyxl") as writer:
        frame.to_excel(writer, index=False, sheet_name="Sheet1")
    path.write_bytes(_fixed_timestamps(buffer.getvalue()))


def _fixed_timestamps(xlsx: bytes) -> bytes:
    """Rewrite the zip entries' dates and the document created/modified times to a constant."""
    source = zipfile.ZipFile(io.BytesIO(xlsx))
    target_buffer = io.BytesIO()
    with zipfile.ZipFile(target_buffer, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            data = source.read(info.filename)
            if info.filename == "docProps/core.xml":
                data = re.sub(
                    rb"(<dcterms:(created|modified)[^>]*>)[^<]*",
                    rb"\g<1>" + _FIXED_TIME.encode(),
                    data,
                )
            entry = zipfile.ZipInfo(info.filename, date_time=(1980, 1, 1, 0, 0, 0))
            entry.compress_type = zipfile.ZIP_DEFLATED
            target.writestr(entry, data)
    return target_buffer.getvalue()


def readme_text(items: list[Item]) -> str:
    """A README in the spirit of the real one: what the classes are, counts and sources."""
    counts = {cls: sum(item.cls == cls for item in items) for cls in CLASS_COUNTS}
    lines = [
        "COVID-19 CHEST X-RAY DATABASE (synthetic miniature written by cxr)",
        "",
        "Chest X-ray images of COVID-19 positive cases together with Normal, Lung Opacity",
        "(non-COVID lung infection) and Viral Pneumonia images, each with a lung mask.",
        "",
        *(f"{cls}: {count} images" for cls, count in counts.items()),
        "",
        "All the images are in Portable Network Graphics (PNG) file format and resolution",
        "are 299*299 pixels. The masks are 256*256 pixels and share the image's file name.",
        "The source of every image is in the URL column of <class>.metadata.xlsx.",
        "",
    ]
    return "\n".join(lines)

"""Ingest NIH ChestX-ray14 as downloaded: the Box layout or the Kaggle layout (datasets.md §1).

Box: flat ``images/*.png`` with ``Data_Entry_2017_v2020.csv``. Kaggle: ``images_001/images/`` ...
``images_012/images/`` with the legacy ``Data_Entry_2017.csv`` (trailing comma, ages > 100).
Both may carry ``BBox_List_2017.csv``, ``train_val_list.txt`` and ``test_list.txt``. Images are
found by a recursive search for ``*.png`` (any depth, no folder boundaries assumed) and joined
on ``Image Index``, so a partial download ingests the images it has.
"""

from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd
from tqdm import tqdm

from cxr.core.datasets import NIH_FINDINGS
from cxr.data.images import BadImage, ImageInfo, is_hidden, probe
from cxr.data.index import IngestError, Manifest, boxes_to_json, finding_column
from cxr.ingest.folders import HIDDEN_REASON, files_under

NO_FINDING = "No Finding"

V2020_CSV = "Data_Entry_2017_v2020.csv"
LEGACY_CSV = "Data_Entry_2017.csv"
#: Entry CSVs in order of preference.
ENTRY_CSVS: tuple[str, ...] = (V2020_CSV, LEGACY_CSV)
#: The raw header: 9 logical names, two holding unquoted commas, so 11 fields.
ENTRY_FIELDS: tuple[str, ...] = (
    "Image Index",
    "Finding Labels",
    "Follow-up #",
    "Patient ID",
    "Patient Age",
    "Patient Gender",
    "View Position",
    "OriginalImage[Width",
    "Height]",
    "OriginalImagePixelSpacing[x",
    "y]",
)
ENTRY_HEADER = ",".join(ENTRY_FIELDS)
#: Some copies of the v2020 CSV say "Patient Sex" (torchxrayvision's comment).
HEADER_ALIASES = {"Patient Sex": "Patient Gender"}
#: Short internal names of the 11 fields, plus the legacy trailing empty field.
_COLUMNS = (
    "image",
    "labels",
    "follow_up",
    "patient",
    "age",
    "sex",
    "view",
    "orig_width",
    "orig_height",
    "spacing_x",
    "spacing_y",
)
_EXTRA = "_trailing"

BBOX_CSV = "BBox_List_2017.csv"
BBOX_HEADER = "Image Index,Finding Label,Bbox [x,y,w,h],,,"
#: The 8 labels that have boxes, spelled as in the entry CSV.
BOX_FINDINGS: tuple[str, ...] = (
    "Atelectasis",
    "Cardiomegaly",
    "Effusion",
    "Infiltration",
    "Mass",
    "Nodule",
    "Pneumonia",
    "Pneumothorax",
)
#: The bbox file spells Infiltration as "Infiltrate".
BOX_LABEL_TO_FINDING = {"Infiltrate": "Infiltration"}
#: Box coordinates are always in the 1024 x 1024 space of the full-size PNGs.
BOX_SPACE = 1024

SPLIT_LISTS = {"train_val_list.txt": "train_val", "test_list.txt": "test"}

_AGE_PATTERN = r"^(\d+(?:\.\d+)?)([YMD]?)$"
_AGE_UNIT_YEARS = {"": 1.0, "Y": 1.0, "M": 1 / 12, "D": 1 / 365.25}
_MAX_AGE = 120
_PROBE_THREADS = 8
_PROBE_CHUNK = 256
#: Columns of the typed entry table that fill a LabelRow after line and findings, in order.
_ROW_VALUES = _COLUMNS[2:10]  # follow_up ... spacing_x


class LabelRow(NamedTuple):
    """One usable row of the entry CSV."""

    line: int
    findings: frozenset[str]
    follow_up: int
    patient_id: int
    age: float
    sex: str | None
    view: str | None
    orig_width: int | None
    orig_height: int | None
    pixel_spacing: float


def ingest(root: Path, manifest: Manifest) -> list[dict]:
    """One index row per image that has both a readable PNG and a valid entry-CSV row."""
    entry_csv = find_entry_csv(root, manifest)
    table = read_entry_csv(entry_csv)
    label_rows = screen_label_rows(table, entry_csv.name, manifest)
    files = find_png_files(root, manifest)
    infos = probe_labelled_files(root, files, label_rows, entry_csv.name, manifest)
    for name in sorted(label_rows.keys() - files.keys()):
        manifest.skip("label_row", f"{entry_csv.name}:{name}", "no image file")
    boxes = read_boxes(root, label_rows, infos, manifest)
    splits = read_split_lists(root, infos.keys(), manifest)
    return [
        index_row(name, files[name], label_rows[name], info, boxes.get(name), splits)
        for name, info in sorted(infos.items())
    ]


# ----------------------------------------------------------------------------- entry CSV


def find_entry_csv(root: Path, manifest: Manifest) -> Path:
    """The preferred entry CSV present under ``root``; a second one is recorded as superseded."""
    present = [root / name for name in ENTRY_CSVS if (root / name).is_file()]
    if not present:
        raise IngestError(f"nih: no entry CSV under {root}: looked for {' and '.join(ENTRY_CSVS)}")
    manifest.keep("file", present[0].name, "entry CSV")
    for other in present[1:]:
        manifest.skip("file", other.name, f"superseded by {present[0].name}")
    return present[0]


def read_entry_csv(path: Path) -> dict[str, list]:
    """Parse the entry CSV into typed columns, plus ``line`` (the 1-based line in the file).

    Raises :class:`IngestError` naming the file and line for a wrong header, a row with the
    wrong number of fields, or a value that cannot be parsed (non-integer Patient ID, bad age).
    """
    check_entry_header(path)
    check_field_counts(path)
    try:
        raw = pd.read_csv(
            path,
            header=None,
            skiprows=1,
            names=[*_COLUMNS, _EXTRA],
            dtype=str,
            na_filter=False,
            index_col=False,
            skip_blank_lines=False,
            encoding="utf-8",
        )
    except (pd.errors.ParserError, UnicodeDecodeError) as err:
        raise IngestError(f"nih: {path.name}: cannot be parsed: {str(err).strip()}") from err
    raw = raw.apply(lambda col: col.str.strip())
    raw["line"] = np.arange(len(raw)) + 2
    raw = raw[raw[list(_COLUMNS)].ne("").any(axis=1)]  # blank lines
    return typed_entry_columns(raw, path.name)


def check_entry_header(path: Path) -> None:
    """Raise unless line 1 is the 11-field header (trailing comma and "Patient Sex" allowed)."""
    with open(path, encoding="utf-8", errors="replace") as fh:
        first = fh.readline()
    fields = first.lstrip("\ufeff").rstrip("\r\n").split(",")
    while fields and fields[-1] == "" and len(fields) > len(ENTRY_FIELDS):
        fields.pop()
    fields = [HEADER_ALIASES.get(f.strip(), f.strip()) for f in fields]
    if tuple(fields) != ENTRY_FIELDS:
        raise IngestError(
            f"nih: {path.name}: line 1: header {first.strip()!r} is not the NIH entry header "
            f"{ENTRY_HEADER!r}"
        )


def check_field_counts(path: Path) -> None:
    """Raise at the first data line that does not have 11 fields (12 with a trailing comma)."""
    expected = len(ENTRY_FIELDS)
    with open(path, encoding="utf-8", errors="replace") as fh:
        next(fh, None)
        for number, line in enumerate(fh, start=2):
            count = line.count(",") + 1
            if count not in (expected, expected + 1) and line.strip():
                raise IngestError(
                    f"nih: {path.name}: line {number}: {count} fields, expected {expected} "
                    f"(or {expected + 1} with a trailing comma)"
                )


def typed_entry_columns(raw: pd.DataFrame, file: str) -> dict[str, list]:
    """Check and convert the raw string columns to Python values; raise at a malformed value."""
    _require(raw, raw["image"].ne(""), file, "empty Image Index", "image")
    _require(raw, raw[_EXTRA].eq(""), file, "an unexpected 12th field", _EXTRA)
    for col, what in (("follow_up", "Follow-up #"), ("patient", "Patient ID")):
        _require(raw, raw[col].str.fullmatch(r"\d+"), file, f"{what} is not an integer", col)
    numbers = {}
    for col, what in (
        ("orig_width", "OriginalImage[Width"),
        ("orig_height", "Height]"),
        ("spacing_x", "OriginalImagePixelSpacing[x"),
    ):
        numbers[col] = pd.to_numeric(raw[col], errors="coerce")
        ok = numbers[col].notna() | raw[col].eq("")
        _require(raw, ok, file, f"{what} is not a number", col)
    return {
        "line": raw["line"].tolist(),
        "image": raw["image"].tolist(),
        "labels": raw["labels"].tolist(),
        "follow_up": [int(v) for v in raw["follow_up"]],
        "patient": [int(v) for v in raw["patient"]],
        "age": parse_ages(raw, file).tolist(),
        "sex": [v if v in ("M", "F") else None for v in raw["sex"]],
        "view": [v or None for v in raw["view"]],
        "orig_width": [_int_or_none(v) for v in numbers["orig_width"]],
        "orig_height": [_int_or_none(v) for v in numbers["orig_height"]],
        "spacing_x": numbers["spacing_x"].astype("float64").tolist(),
    }


def parse_ages(raw: pd.DataFrame, file: str) -> np.ndarray:
    """Ages in years: ``58`` or legacy ``058Y`` / ``003M`` / ``010D``; > 120 or empty -> NaN."""
    parts = raw["age"].str.extract(_AGE_PATTERN)
    _require(
        raw,
        parts[0].notna() | raw["age"].eq(""),
        file,
        "Patient Age is not an age like 58 or 058Y",
        "age",
    )
    years = parts[0].astype("float64") * parts[1].map(_AGE_UNIT_YEARS).astype("float64")
    return years.where(years <= _MAX_AGE).to_numpy(dtype="float64", na_value=np.nan)


def _require(raw: pd.DataFrame, ok: pd.Series, file: str, problem: str, column: str) -> None:
    """Raise an :class:`IngestError` at the first row where ``ok`` is false."""
    bad = ~ok.fillna(False).astype(bool)
    if bad.any():
        first = raw.loc[bad].iloc[0]
        raise IngestError(f"nih: {file}: line {first['line']}: {problem} (value {first[column]!r})")


def screen_label_rows(table: dict[str, list], file: str, manifest: Manifest) -> dict[str, LabelRow]:
    """Usable rows by Image Index; unknown labels and duplicates are skipped in the manifest."""
    rows: dict[str, LabelRow] = {}
    columns = [table[c] for c in ("line", "image", "labels", *_ROW_VALUES)]
    for line, image, labels, *values in zip(*columns, strict=True):
        findings, problem = parse_finding_labels(labels)
        if image in rows:
            problem = f"duplicate Image Index (first at line {rows[image].line})"
        if problem:
            manifest.skip("label_row", f"{file}:{image}", problem)
        else:
            rows[image] = LabelRow(int(line), findings, *values)
    return rows


def _int_or_none(value: float) -> int | None:
    return None if math.isnan(value) else int(value)


@lru_cache(maxsize=4096)
def parse_finding_labels(text: str) -> tuple[frozenset[str], str]:
    """The findings of a ``Finding Labels`` value, or an empty set and what is wrong with it."""
    names = {part.strip() for part in text.split("|") if part.strip()}
    unknown = sorted(names - set(NIH_FINDINGS) - {NO_FINDING})
    if not names:
        return frozenset(), "empty Finding Labels"
    if unknown:
        return frozenset(), "unknown label " + ", ".join(repr(u) for u in unknown)
    if NO_FINDING in names and len(names) > 1:
        return frozenset(), f"{NO_FINDING!r} together with findings {text!r}"
    return frozenset(names - {NO_FINDING}), ""


# ----------------------------------------------------------------------------- image files


def find_png_files(root: Path, manifest: Manifest) -> dict[str, str]:
    """``{basename: relative path}`` of every PNG under ``root``, at any depth.

    A basename found in two folders keeps the first path in sorted order; the other is
    skipped naming the kept one. Hidden OS litter (``._x.png``) is skipped.
    """
    found: dict[str, str] = {}
    for rel in _relative_pngs(root):
        name = rel.rsplit("/", 1)[-1]
        if is_hidden(Path(name)):
            manifest.skip("file", rel, HIDDEN_REASON)
        elif name in found:
            manifest.skip("file", rel, f"duplicate basename; kept {found[name]}")
        else:
            found[name] = rel
    return found


def _relative_pngs(root: Path) -> list[str]:
    return [rel for rel in files_under(root) if rel.lower().endswith(".png")]


def probe_labelled_files(
    root: Path,
    files: dict[str, str],
    label_rows: dict[str, LabelRow],
    file: str,
    manifest: Manifest,
) -> dict[str, ImageInfo]:
    """Header-probe every image that has a label row; record each file and its label row."""
    for name in sorted(files.keys() - label_rows.keys()):
        manifest.skip("file", files[name], f"no usable label row in {file}")
    names = sorted(files.keys() & label_rows.keys())
    results = probe_many([os.path.join(root, files[n]) for n in names])
    infos: dict[str, ImageInfo] = {}
    for name, result in zip(names, results, strict=True):
        if isinstance(result, BadImage):
            manifest.skip("file", files[name], f"bad image: {result}")
            manifest.skip("label_row", f"{file}:{name}", f"image file unusable: {result}")
        else:
            manifest.keep("file", files[name])
            manifest.keep("label_row", f"{file}:{name}")
            infos[name] = result
    return infos


def probe_many(paths: list[str]) -> list[ImageInfo | BadImage]:
    """:func:`probe` each path (header and end marker only); chunks over threads for slow disks."""
    chunks = [paths[i : i + _PROBE_CHUNK] for i in range(0, len(paths), _PROBE_CHUNK)]
    results: list[ImageInfo | BadImage] = []
    bar = tqdm(total=len(paths), desc="nih: probing images", unit="img", leave=False)
    with bar, ThreadPoolExecutor(_PROBE_THREADS) as pool:
        for chunk_results in pool.map(_probe_chunk, chunks):
            results.extend(chunk_results)
            bar.update(len(chunk_results))
    return results


def _probe_chunk(paths: list[str]) -> list[ImageInfo | BadImage]:
    return [_probe_or_error(p) for p in paths]


def _probe_or_error(path: str) -> ImageInfo | BadImage:
    try:
        return probe(path)
    except BadImage as err:
        return err


# ----------------------------------------------------------------------------- boxes, splits


def read_boxes(
    root: Path, label_rows: dict[str, LabelRow], infos: dict[str, ImageInfo], manifest: Manifest
) -> dict[str, list[dict]]:
    """Boxes of ``BBox_List_2017.csv`` per image, rescaled from 1024 space to the file's pixels."""
    path = root / BBOX_CSV
    if not path.is_file():
        return {}
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    if not lines or lines[0].lstrip("\ufeff").split(",")[:2] != ["Image Index", "Finding Label"]:
        first = lines[0] if lines else ""
        raise IngestError(f"nih: {BBOX_CSV}: line 1: header {first!r} is not {BBOX_HEADER!r}")
    manifest.keep("file", BBOX_CSV, "bounding boxes")
    boxes: dict[str, list[dict]] = {}
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        fields = [f.strip() for f in line.split(",")]
        item = f"{BBOX_CSV}:{':'.join(fields[:2])}"
        box, problem = parse_box_row(fields, label_rows, infos)
        if problem:
            manifest.skip("box_row", item, f"line {number}: {problem}")
        else:
            manifest.keep("box_row", item)
            boxes.setdefault(fields[0], []).append(box)
    return boxes


def parse_box_row(
    fields: list[str], label_rows: dict[str, LabelRow], infos: dict[str, ImageInfo]
) -> tuple[dict, str]:
    """A box in the image's pixels, or an empty dict and what is wrong with the row."""
    if len(fields) < 6:
        return {}, f"expected 6 fields, got {len(fields)}"
    name, raw_label = fields[0], fields[1]
    try:
        x, y, w, h = (float(v) for v in fields[2:6])
    except ValueError:
        return {}, f"coordinates {fields[2:6]} are not numbers"
    label = BOX_LABEL_TO_FINDING.get(raw_label, raw_label)
    if name not in infos:
        return {}, "image not in index"
    if label not in label_rows[name].findings:
        return {}, f"box label {raw_label!r} not among the image's findings"
    if not box_inside(x, y, w, h):
        return {}, f"box outside the image ({x:g}, {y:g}, {w:g}, {h:g} in 1024x1024 space)"
    sx, sy = infos[name].width / BOX_SPACE, infos[name].height / BOX_SPACE
    return {"label": label, "x": x * sx, "y": y * sy, "w": w * sx, "h": h * sy}, ""


def box_inside(x: float, y: float, w: float, h: float, tol: float = 1e-6) -> bool:
    """Whether a non-empty box lies inside the 1024 x 1024 box space."""
    coords = (x, y, w, h)
    return (
        all(math.isfinite(v) for v in coords)
        and w > 0
        and h > 0
        and x >= -tol
        and y >= -tol
        and x + w <= BOX_SPACE + tol
        and y + h <= BOX_SPACE + tol
    )


def read_split_lists(
    root: Path, names: set[str] | frozenset[str], manifest: Manifest
) -> dict[str, str] | None:
    """``{Image Index: "train_val" | "test"}`` from the list files, or None when there are none.

    Names that match no indexed image, and names listed in both files, are skipped.
    """
    present = [(f, s) for f, s in SPLIT_LISTS.items() if (root / f).is_file()]
    if not present:
        return None
    splits: dict[str, str] = {}
    conflicted: set[str] = set()
    for file, split in present:
        manifest.keep("file", file, "split list")
        for line in (root / file).read_text(encoding="utf-8", errors="replace").splitlines():
            name = line.strip()
            if not name:
                continue
            if name not in names:
                manifest.skip("split_row", f"{file}:{name}", "image not in index")
            elif splits.get(name, split) != split:
                manifest.skip("split_row", f"{file}:{name}", f"also listed as {splits[name]}")
                conflicted.add(name)
            else:
                splits[name] = split
    for name in conflicted:
        splits.pop(name, None)
    return splits


# ----------------------------------------------------------------------------- index rows


def index_row(
    name: str,
    path: str,
    row: LabelRow,
    info: ImageInfo,
    boxes: list[dict] | None,
    splits: dict[str, str] | None,
) -> dict:
    """The index dict of one image: core columns, 14 findings, NIH extras."""
    return {
        "image_id": name,
        "path": path,
        "patient_id": str(row.patient_id),
        "study_id": None,
        "view": row.view,
        "body_part": "chest",
        "source_split": None if splits is None else splits.get(name),
        "label": None,
        "boxes": boxes_to_json(boxes),
        "age": row.age,
        "sex": row.sex,
        "width": info.width,
        "height": info.height,
        "mode": info.mode,
        **{finding_column(f): float(f in row.findings) for f in NIH_FINDINGS},
        "follow_up": row.follow_up,
        "orig_width": row.orig_width,
        "orig_height": row.orig_height,
        "pixel_spacing": row.pixel_spacing,
    }

"""Ingest the JSRT database as distributed: raw ``.IMG`` files plus the two clinical text files.

Accepts ``All247images/`` or the older ``Nodule154images/`` + ``NonNodule93images/`` folders, or
the files anywhere below the root, with any extension case. The clinical files are read with
CR, CRLF or LF record endings, tabs or runs of spaces, ``?`` ages and latin-1 text (spec 2.4).
"""

from __future__ import annotations

import itertools
import math
import re
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from cxr.data.images import BadImage, is_hidden, probe_jsrt
from cxr.data.index import IngestError, Manifest, boxes_to_json, finding_column
from cxr.ingest.folders import HIDDEN_REASON, files_under

PIXEL_MM = 0.175
IMAGE_NAME = re.compile(r"JPC[LN]N\d{3}\.IMG", re.IGNORECASE)
RECORD_END = re.compile(r"\r\n|\r|\n")
CLINICAL_FILES = ("clndat_en.txt", "cnndat_en.txt")
JAPANESE_CLINICAL = re.compile(r"C[LN]NDAT_J\b", re.IGNORECASE)
#: A location at the start of space-separated text, e.g. ``l.upper lobe(S1+2)``.
LOCATION = re.compile(r"[lr]\.\s*\w+\s+lobe(\s*\([^)]*\))?", re.IGNORECASE)
SEXES = {"male": "M", "m": "M", "female": "F", "f": "F"}


@dataclass
class Record:
    """One parsed clinical row."""

    name: str  # canonical (upper-case) image file name
    item: str  # manifest id: "<clinical file>:<line>"
    label: str
    age: float
    sex: str | None
    extras: dict = field(default_factory=dict)


def ingest(root: Path, manifest: Manifest) -> list[dict]:
    """One row per usable ``.IMG``; every image, clinical file and clinical row in ``manifest``."""
    images, clinical = find_files(root, manifest)
    if not clinical:
        raise IngestError(
            f"jsrt: no clinical file (CLNDAT_EN.txt or CNNDAT_EN.TXT) anywhere under {root}"
        )
    records = read_clinical(root, clinical, manifest)
    rows = []
    for name, rel in images.items():
        row = _image_row(
            root, rel, records.get(name), manifest, missing=_missing_file(name, clinical)
        )
        if row is not None:
            rows.append(row)
    used = {PurePosixPath(r["path"]).name.upper() for r in rows}
    for name, record in records.items():
        if name in used:
            manifest.keep("label_row", record.item)
        elif name in images:
            manifest.skip("label_row", record.item, "image file unusable (see its file entry)")
        else:
            manifest.skip("label_row", record.item, "no image file")
    return rows


def find_files(root: Path, manifest: Manifest) -> tuple[dict[str, str], dict[str, str]]:
    """Image paths by canonical name, and clinical-file paths by lower-case name.

    Shallower copies win over deeper duplicates; duplicates and OS litter go to the manifest.
    """
    images: dict[str, str] = {}
    clinical: dict[str, str] = {}
    for rel in sorted(files_under(root), key=lambda p: (p.count("/"), p)):
        name = PurePosixPath(rel).name
        if is_hidden(Path(name)):
            manifest.skip("file", rel, HIDDEN_REASON)
        elif IMAGE_NAME.fullmatch(name):
            _claim(images, name.upper(), rel, manifest)
        elif name.lower() in CLINICAL_FILES:
            _claim(clinical, name.lower(), rel, manifest)
        elif JAPANESE_CLINICAL.match(name):
            manifest.skip("file", rel, "Japanese clinical file (the English one is read)")
    return images, clinical


def _claim(found: dict[str, str], key: str, rel: str, manifest: Manifest) -> None:
    if key in found:
        manifest.skip("file", rel, f"duplicate of {found[key]}")
    else:
        found[key] = rel


def _missing_file(name: str, clinical: dict[str, str]) -> str:
    wanted = "clndat_en.txt" if name.startswith("JPCLN") else "cnndat_en.txt"
    return "" if wanted in clinical else f" ({wanted.upper()} not found)"


def read_clinical(root: Path, clinical: dict[str, str], manifest: Manifest) -> dict[str, Record]:
    """Parse both clinical files into records by image name; bad or duplicate rows are skipped."""
    records: dict[str, Record] = {}
    for rel in clinical.values():
        manifest.keep("file", rel, "clinical information")
        for lineno, text in split_records(decode((root / rel).read_bytes())):
            item = f"{rel}:{lineno}"
            try:
                record = parse_record(text, item)
            except ValueError as err:
                manifest.skip("label_row", item, f"unparseable row at line {lineno}: {err}")
                continue
            if record.name in records:
                first = records[record.name].item
                manifest.skip(
                    "label_row", item, f"duplicate row for {record.name} (first: {first})"
                )
            else:
                records[record.name] = record
    return records


def decode(raw: bytes) -> str:
    """UTF-8 (BOM tolerated) where valid, latin-1 otherwise."""
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def split_records(text: str) -> list[tuple[int, str]]:
    """``(line number, record text)`` for every non-blank record.

    Splits on any line ending, then at every image name, so records mashed onto one line
    (a CR file read as LF) come apart; text before the first name stays a record of its own.
    """
    out = []
    for lineno, line in enumerate(RECORD_END.split(text), start=1):
        starts = [m.start() for m in IMAGE_NAME.finditer(line)]
        cuts = sorted({0, *starts, len(line)})
        for begin, end in itertools.pairwise(cuts):
            piece = line[begin:end]
            if piece.strip():
                out.append((lineno, piece))
    return out


def parse_record(text: str, item: str) -> Record:
    """Parse one CLNDAT (nodule) or CNNDAT (non-nodule) record, told apart by the file name."""
    head = text.strip().split(None, 1)[0] if text.strip() else ""
    if not IMAGE_NAME.fullmatch(head):
        raise ValueError(
            f"does not start with a JPCLNnnn.IMG/JPCNNnnn.IMG name: {text.strip()!r:.60}"
        )
    name = head.upper()
    if name.startswith("JPCLN"):
        return _parse_nodule(name, text, item)
    return _parse_non_nodule(name, text, item)


def _parse_nodule(name: str, text: str, item: str) -> Record:
    fields = _nodule_fields(text)
    if len(fields) < 8:
        raise ValueError(f"{name}: expected at least 8 fields, found {len(fields)}")
    label = fields[7].lower()
    if label not in ("malignant", "benign"):
        raise ValueError(f"{name}: malignant/benign field is {fields[7]!r}")
    subtlety = _number(fields[1], "subtlety")
    if subtlety not in (1, 2, 3, 4, 5):
        raise ValueError(f"{name}: subtlety {fields[1]!r} is not 1..5")
    extras = {
        "nodule_x": _number(fields[5], "x"),
        "nodule_y": _number(fields[6], "y"),
        "nodule_size_mm": _number(fields[2], "size"),
        "subtlety": subtlety,
        "location": fields[8] if len(fields) > 8 else None,
        "diagnosis": " ".join(fields[9:]) or None,
    }
    return Record(name, item, label, _age(fields[3]), _sex(fields[4]), extras)


def _nodule_fields(text: str) -> list[str]:
    """Tab-separated fields without the empty ones; space-separated text is split too."""
    if "\t" in text:
        return [f.strip() for f in text.split("\t") if f.strip()]
    words = text.split()
    rest = " ".join(words[8:])
    match = LOCATION.match(rest)
    if match:
        return [*words[:8], match.group(0), *rest[match.end() :].split()]
    return words


def _parse_non_nodule(name: str, text: str, item: str) -> Record:
    fields = text.split()
    if len(fields) < 3:
        raise ValueError(f"{name}: expected name, age and sex, found {len(fields)} fields")
    if len(fields) > 3 and fields[3].lower() != "non-nodule":
        raise ValueError(f"{name}: fourth field is {fields[3]!r}, expected 'non-nodule'")
    return Record(name, item, "non-nodule", _age(fields[1]), _sex(fields[2]))


def _number(text: str, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{what} {text!r} is not a number") from None
    if not math.isfinite(value):
        raise ValueError(f"{what} {text!r} is not a number")
    return value


def _age(text: str) -> float:
    return math.nan if text.strip() == "?" else _number(text, "age")


def _sex(text: str) -> str | None:
    sex = SEXES.get(text.strip().lower())
    if sex is None and text.strip() != "?":
        raise ValueError(f"sex {text!r} is not male/female")
    return sex


def _image_row(
    root: Path, rel: str, record: Record | None, manifest: Manifest, missing: str
) -> dict | None:
    """The index row of one image, or ``None`` (with the reason in ``manifest``)."""
    if record is None:
        manifest.skip("file", rel, f"no clinical row for this image{missing}")
        return None
    try:
        info = probe_jsrt(root / rel)
    except (BadImage, OSError) as err:
        manifest.skip("file", rel, str(err))
        return None
    manifest.keep("file", rel)
    name = PurePosixPath(rel).name
    return {
        "image_id": name,
        "path": rel,
        "patient_id": PurePosixPath(name).stem,
        "view": "PA",
        "body_part": "chest",
        "label": record.label,
        finding_column("Nodule"): 0.0 if record.label == "non-nodule" else 1.0,
        "boxes": _nodule_boxes(record),
        "age": record.age,
        "sex": record.sex,
        "width": info.width,
        "height": info.height,
        "mode": info.mode,
        **_extras(record),
    }


def _nodule_boxes(record: Record) -> str | None:
    """One "Nodule" box centred on the clinical x, y with a side of size_mm / 0.175 pixels."""
    if record.label == "non-nodule":
        return None
    side = record.extras["nodule_size_mm"] / PIXEL_MM
    x = record.extras["nodule_x"] - side / 2
    y = record.extras["nodule_y"] - side / 2
    return boxes_to_json([{"label": "Nodule", "x": x, "y": y, "w": side, "h": side}])


def _extras(record: Record) -> dict:
    keys = ("nodule_x", "nodule_y", "nodule_size_mm", "subtlety", "location", "diagnosis")
    numeric = {"nodule_x", "nodule_y", "nodule_size_mm", "subtlety"}
    return {k: record.extras.get(k, math.nan if k in numeric else None) for k in keys}

"""Ingest MURA v1.1 as downloaded: the four header-less CSVs and the study folders.

``root`` may be ``MURA-v1.1/`` itself or its parent (any folder whose child holds the CSVs).
Paths in the CSVs are relative to the parent of ``MURA-v1.1`` (``MURA-v1.1/train/...``); they are
resolved inside the folder that holds the CSVs, whatever that folder is called now.

One row per image listed in ``{train,valid}_image_paths.csv`` whose file exists and decodes. Its
label is the label of its study in ``*_labeled_studies.csv`` (``1`` = abnormal), which must
agree with the study folder's suffix (``positive`` = 1, true of every real study). Columns:
``image_id`` = the path as in the CSV (relative to the dataset's parent, unique), ``path``
relative to ``root``, ``patient_id`` ``patientNNNNN``, ``study_id`` ``XR_PART/patientNNNNN/studyK``
(``studyK`` restarts per body part, so the key includes the part), ``body_part`` lower case,
``source_split`` ``train``/``valid``, ``label`` ``abnormal``/``normal``, ``study_label`` 0/1.

The manifest has every file under the dataset folder (kept, or skipped: hidden OS files, files not
listed in any CSV, undecodable images, images whose label row was skipped) and every CSV row as
``label_row`` ``<csv name>:<line>`` (kept, or skipped: malformed, no image file, study without a
label, label disagreeing with the folder suffix, duplicates).
"""

from __future__ import annotations

import csv
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from cxr.data.images import BadImage, is_hidden, probe
from cxr.data.index import IngestError, Manifest
from cxr.ingest.folders import HIDDEN_REASON, Tree
from cxr.ingest.folders import walk as walk_tree

ROOT_NAME = "MURA-v1.1"
SPLITS: tuple[str, ...] = ("train", "valid")
PARTS: tuple[str, ...] = ("ELBOW", "FINGER", "FOREARM", "HAND", "HUMERUS", "SHOULDER", "WRIST")
LABELS = {0: "normal", 1: "abnormal"}
SUFFIX_LABELS = {"negative": 0, "positive": 1}

NOT_LISTED_REASON = "not listed in train_image_paths.csv or valid_image_paths.csv"
NO_FILE_REASON = "no image file"
NO_LABEL_REASON = "study has no label row"
DISAGREE_REASON = "label disagrees with the study folder suffix"
MALFORMED_REASON = "malformed row"
DUPLICATE_REASON = "duplicate row"
STUDY_ROW_SKIPPED_REASON = "the study's label row was skipped"

_STUDY = (
    r"(?P<split>[a-z]+)/XR_(?P<part>[A-Z]+)/(?P<patient>patient\d+)/"
    r"(?P<study>study\d+)_(?P<suffix>positive|negative)"
)
STUDY_PATTERN = re.compile(_STUDY)
IMAGE_PATTERN = re.compile(_STUDY + r"/(?P<image>[^/]+)")


def image_paths_csv(split: str) -> str:
    return f"{split}_image_paths.csv"


def labeled_studies_csv(split: str) -> str:
    return f"{split}_labeled_studies.csv"


@dataclass(frozen=True)
class StudyPath:
    """A parsed study folder: ``rel`` is relative to the dataset folder, without trailing slash."""

    rel: str
    split: str
    part: str
    patient: str
    study: str
    suffix_label: int

    @property
    def study_id(self) -> str:
        return f"XR_{self.part}/{self.patient}/{self.study}"


@dataclass
class StudyLabel:
    """A study's label row: where it is and whether any image used it."""

    label: int
    item: str
    problem: str = ""  # why the row was skipped; its images are skipped too
    used: bool = False
    images_listed: int = 0


@dataclass
class _Walk:
    """What one ingest knows: the dataset folder, its files, and which ones rows accounted for."""

    base: Path
    prefix: str  # path of ``base`` relative to the ingest root, "" or ending in "/"
    on_disk: set[str]  # files relative to ``base``
    manifest: Manifest
    handled: set[str] = field(default_factory=set)


def ingest(root: Path, manifest: Manifest) -> list[dict]:
    """Rows for the MURA images under ``root`` (see the module docstring)."""
    tree = walk_tree(root)
    base = find_dataset_folder(root, tree)
    prefix = "" if base == root else f"{base.name}/"
    on_disk = {rel.removeprefix(prefix) for rel in tree.files if rel.startswith(prefix)}
    state = _Walk(base, prefix, on_disk, manifest)
    rows: list[dict] = []
    for split in SPLITS:
        if not _split_present(base, split):
            continue
        labels = read_study_labels(base / labeled_studies_csv(split), split, manifest)
        rows += _ingest_images(state, split, labels)
        _account_for_study_rows(labels, split, manifest)
    _account_for_files(state)
    return rows


def find_dataset_folder(root: Path, tree: Tree) -> Path:
    """The folder holding the CSVs: ``root`` itself, or a child (``MURA-v1.1`` preferred)."""
    if _has_csvs(root):
        return root
    children = [root / name for name in tree.folders_in("") if _has_csvs(root / name)]
    if not children:
        raise IngestError(
            f"mura: no {image_paths_csv('train')} or {image_paths_csv('valid')} in {root} or in "
            f"a folder inside it (expected {ROOT_NAME}/ with the four CSVs)"
        )
    named = [d for d in children if d.name == ROOT_NAME]
    return (named or children)[0]


def _has_csvs(folder: Path) -> bool:
    return any(os.path.isfile(folder / image_paths_csv(s)) for s in SPLITS)  # False if unreadable


def _split_present(base: Path, split: str) -> bool:
    """Whether ``split``'s CSV pair is there; half a pair is an error."""
    images, studies = base / image_paths_csv(split), base / labeled_studies_csv(split)
    if images.is_file() != studies.is_file():
        present, missing = (images, studies) if images.is_file() else (studies, images)
        raise IngestError(
            f"mura: {present} exists but {missing.name} is missing beside it; "
            f"images cannot be labelled without it"
        )
    return images.is_file()


def read_rows(path: Path) -> list[tuple[int, list[str]]]:
    """``(line number, cells)`` of a header-less CSV, blank lines left out."""
    with open(path, newline="", encoding="utf-8-sig") as fh:
        reader = csv.reader(fh)
        return [(reader.line_num, cells) for cells in reader if any(c.strip() for c in cells)]


def parse_csv_path(text: str, pattern: re.Pattern[str]) -> tuple[str, re.Match[str]] | None:
    """Strip the dataset folder from a CSV path; returns (path in the folder, match) or None."""
    path = text.strip().replace("\\", "/").removeprefix("./").rstrip("/")
    parts = path.split("/")
    if parts and parts[0] not in (*SPLITS, "test"):
        parts = parts[1:]  # "MURA-v1.1" (or whatever the folder was called)
    rel = "/".join(parts)
    match = pattern.fullmatch(rel)
    return (rel, match) if match else None


def parse_study(text: str) -> StudyPath | str:
    """A study folder from a CSV cell, or the reason it is not one."""
    parsed = parse_csv_path(text, STUDY_PATTERN)
    if parsed is None:
        return f"{MALFORMED_REASON}: not a MURA study folder {text.strip()!r}"
    rel, m = parsed
    if m["part"] not in PARTS:
        return f"{MALFORMED_REASON}: unknown body part XR_{m['part']}"
    return StudyPath(
        rel, m["split"], m["part"], m["patient"], m["study"], SUFFIX_LABELS[m["suffix"]]
    )


def read_study_labels(path: Path, split: str, manifest: Manifest) -> dict[str, StudyLabel]:
    """Study folder -> label from ``*_labeled_studies.csv``; bad rows go to the manifest."""
    labels: dict[str, StudyLabel] = {}
    for line, cells in read_rows(path):
        item = f"{path.name}:{line}"
        result = _parse_label_row(cells, split)
        if isinstance(result, str):
            manifest.skip("label_row", item, result)
            continue
        study, label = result
        if study.rel in labels:
            first = labels[study.rel].item
            manifest.skip(
                "label_row", item, f"{DUPLICATE_REASON}: study already labelled at {first}"
            )
            continue
        labels[study.rel] = StudyLabel(label, item)
        if label != study.suffix_label:
            suffix = "positive" if study.suffix_label else "negative"
            problem = f"{DISAGREE_REASON}: label {label} but folder suffix '{suffix}'"
            labels[study.rel].problem = problem
            manifest.skip("label_row", item, f"{problem} ({study.rel}/)")
    return labels


def _parse_label_row(cells: list[str], split: str) -> tuple[StudyPath, int] | str:
    if len(cells) != 2:
        return f"{MALFORMED_REASON}: expected 2 columns (study folder, label), got {len(cells)}"
    study = parse_study(cells[0])
    if isinstance(study, str):
        return study
    if study.split != split:
        return f"{MALFORMED_REASON}: a {study.split}/ study in the {split} file"
    if cells[1].strip() not in ("0", "1"):
        return f"{MALFORMED_REASON}: label {cells[1].strip()!r} is not 0 or 1"
    return study, int(cells[1])


def _ingest_images(walk: _Walk, split: str, labels: dict[str, StudyLabel]) -> list[dict]:
    """Rows for the images listed in ``<split>_image_paths.csv``."""
    csv_path = walk.base / image_paths_csv(split)
    rows, seen = [], {}
    for line, cells in read_rows(csv_path):
        item = f"{csv_path.name}:{line}"
        parsed = _parse_image_row(cells, split)
        if isinstance(parsed, str):
            walk.manifest.skip("label_row", item, parsed)
            continue
        rel, m = parsed
        if rel in seen:
            walk.manifest.skip("label_row", item, f"{DUPLICATE_REASON}: same image as {seen[rel]}")
            continue
        seen[rel] = item
        row = _image_row(walk, split, rel, m, labels, item)
        if row is not None:
            rows.append(row)
    return rows


def _parse_image_row(cells: list[str], split: str) -> tuple[str, re.Match[str]] | str:
    if len(cells) != 1:
        return f"{MALFORMED_REASON}: expected 1 column (an image path), got {len(cells)}"
    parsed = parse_csv_path(cells[0], IMAGE_PATTERN)
    if parsed is None:
        return f"{MALFORMED_REASON}: not a MURA image path {cells[0].strip()!r}"
    m = parsed[1]
    if m["part"] not in PARTS:
        return f"{MALFORMED_REASON}: unknown body part XR_{m['part']}"
    if m["split"] != split:
        return f"{MALFORMED_REASON}: a {m['split']}/ image in the {split} file"
    return parsed


def _image_row(
    walk: _Walk, split: str, rel: str, m: re.Match[str], labels: dict[str, StudyLabel], item: str
) -> dict | None:
    """The index row of one listed image, or None with the reasons in the manifest."""
    study_rel = rel.rsplit("/", 1)[0]
    label = labels.get(study_rel)
    if label is not None:
        label.images_listed += 1
    file_item = walk.prefix + rel
    if rel not in walk.on_disk:
        walk.manifest.skip("label_row", item, f"{NO_FILE_REASON}: {file_item}")
        return None
    walk.handled.add(rel)
    if label is None or label.problem:
        reason = (
            f"{NO_LABEL_REASON} in {labeled_studies_csv(split)} ({study_rel}/)"
            if label is None
            else f"{STUDY_ROW_SKIPPED_REASON} ({label.item}: {label.problem})"
        )
        walk.manifest.skip("label_row", item, reason)
        walk.manifest.skip("file", file_item, f"its label row was skipped: {reason}")
        return None
    try:
        info = probe(walk.base / rel)
    except BadImage as err:
        walk.manifest.skip("label_row", item, f"image unusable: {err}")
        walk.manifest.skip("file", file_item, str(err))
        return None
    label.used = True
    walk.manifest.keep("label_row", item)
    walk.manifest.keep("file", file_item)
    return {
        "image_id": f"{walk.base.resolve().name}/{rel}",
        "path": file_item,
        "patient_id": m["patient"],
        "study_id": f"XR_{m['part']}/{m['patient']}/{m['study']}",
        "body_part": m["part"].lower(),
        "source_split": split,
        "label": LABELS[label.label],
        "view": None,
        "width": info.width,
        "height": info.height,
        "mode": info.mode,
        "study_label": label.label,
    }


def _account_for_study_rows(labels: dict[str, StudyLabel], split: str, manifest: Manifest) -> None:
    """Keep the study rows that labelled an image; say why the others were not used."""
    for study_rel, label in labels.items():
        if label.problem:
            continue  # already skipped with its reason
        if label.used:
            manifest.keep("label_row", label.item)
        elif label.images_listed:
            manifest.skip("label_row", label.item, f"no usable image of {study_rel}/")
        else:
            manifest.skip(
                "label_row",
                label.item,
                f"no image of {study_rel}/ listed in {image_paths_csv(split)}",
            )


def _account_for_files(walk: _Walk) -> None:
    """Manifest entries for the files no CSV row accounted for."""
    csv_names = {f(s) for s in SPLITS for f in (image_paths_csv, labeled_studies_csv)}
    for rel in sorted(walk.on_disk - walk.handled):
        item = walk.prefix + rel
        if is_hidden(Path(rel)):
            walk.manifest.skip("file", item, HIDDEN_REASON)
        elif rel in csv_names:
            walk.manifest.keep("file", item, "label file")
        else:
            walk.manifest.skip("file", item, NOT_LISTED_REASON)

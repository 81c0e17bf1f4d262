"""Ingest the "which X-ray type" collection: one folder per type, ``<type>/<file>``.

The 14 types of the cascade's Module II (seed 002) are :data:`XRAY_TYPES`. Every folder directly
under ``root`` whose name is a type (case-insensitive; an ``XR_`` prefix as in MURA is allowed)
contributes its images, at any depth below it, with ``label`` = ``body_part`` = the type. The
collection has no patients, studies, views or splits (all NA); ``image_id`` is the path relative
to ``root``.

Skipped with a reason in the manifest: files of unknown folders, files directly under ``root``,
hidden OS files (``.DS_Store``, ``._x.png``, ``Thumbs.db``) and files in hidden folders,
non-image extensions, and images that do not decode.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from cxr.data.images import IMAGE_EXTENSIONS, is_hidden
from cxr.data.index import IngestError, Manifest
from cxr.ingest.folders import HIDDEN_REASON, files_under, probe_image_file

#: The X-ray types, in the order seed 002 lists them.
XRAY_TYPES: tuple[str, ...] = (
    "spine",
    "elbow",
    "finger",
    "forearm",
    "hand",
    "wrist",
    "knee",
    "foot",
    "ankle",
    "hip",
    "humerus",
    "shoulder",
    "dental",
    "chest",
)

OUTSIDE_REASON = "not inside an X-ray type folder"


def unknown_folder_reason(name: str) -> str:
    return f"unknown X-ray type folder '{name}'"


def not_image_reason(suffix: str) -> str:
    return f"not an image extension '{suffix}'"


def xray_type(folder_name: str) -> str | None:
    """The type a folder holds (``Chest``, ``XR_WRIST`` -> chest, wrist), or None."""
    name = folder_name.lower().removeprefix("xr_")
    return name if name in XRAY_TYPES else None


def ingest(root: Path, manifest: Manifest) -> list[dict]:
    """Rows for the images in the type folders under ``root`` (see the module docstring)."""

    rows: list[dict] = []
    known = 0
    for rel in files_under(root):
        path = PurePosixPath(rel)
        reason = _skip_reason(path)
        if reason:
            manifest.skip("file", rel, reason)
            continue
        known += 1
        row = _image_row(root, path, manifest)
        if row is not None:
            rows.append(row)
    if not known:
        raise IngestError(
            f"xray_types: no image folder named after an X-ray type under {root} "
            f"(expected folders such as {', '.join(XRAY_TYPES[:4])}, ...)"
        )
    return rows


def _skip_reason(path: PurePosixPath) -> str | None:
    """Why a file is not a candidate image of a known type folder, or None."""
    if any(is_hidden(Path(part)) or part.lower() == "__macosx" for part in path.parts):
        return HIDDEN_REASON
    if len(path.parts) < 2:
        return OUTSIDE_REASON
    if xray_type(path.parts[0]) is None:
        return unknown_folder_reason(path.parts[0])
    if path.suffix.lower() not in IMAGE_EXTENSIONS:
        return not_image_reason(path.suffix)
    return None


def _image_row(root: Path, path: PurePosixPath, manifest: Manifest) -> dict | None:
    rel = path.as_posix()
    info = probe_image_file(root, rel, manifest)
    if info is None:
        return None
    kind = xray_type(path.parts[0])
    return {
        "image_id": rel,
        "path": rel,
        "patient_id": None,
        "study_id": None,
        "view": None,
        "body_part": kind,
        "source_split": None,
        "label": kind,
        "width": info.width,
        "height": info.height,
        "mode": info.mode,
    }

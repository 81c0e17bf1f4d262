"""Ingest a folder of photographs that are not X-rays (the negative class of seed 002's
"X-ray or not" module, e.g. ImageNet images).

Every image file under the root, at any depth, with one of torchvision's image extensions
(any case) becomes a row with ``label`` and ``body_part`` "not_xray" and ``image_id`` = its
relative path. Hidden/OS files, other extensions and broken images are skipped with reasons.
"""

from __future__ import annotations

from pathlib import Path

from cxr.data.index import Manifest
from cxr.ingest.folders import files_under, image_row, probe_image_file

LABEL = "not_xray"


def ingest(root: Path, manifest: Manifest) -> list[dict]:
    """One row per usable image under ``root``; everything else recorded in ``manifest``."""
    rows = []
    for rel in files_under(root):
        info = probe_image_file(root, rel, manifest)
        if info is not None:
            rows.append(image_row(rel, info, label=LABEL, body_part=LABEL))
    return rows

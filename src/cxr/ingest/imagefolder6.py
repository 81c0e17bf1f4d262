"""Ingest the 6-class chest X-ray ImageFolder set of seed 003.

Layout ``root/{train,validation,test}/<class>/<image>`` with the classes ``Covid-19``,
``Effusions``, ``Infiltration``, ``No-Findings``, ``Pneumonia``, ``Pneumothorax`` (any
ImageFolder layout works; see :mod:`cxr.ingest.folders` for the rules). ``label`` is the
class folder name verbatim, ``class_index`` its position in the sorted class list.
"""

from __future__ import annotations

from pathlib import Path

from cxr.data.index import Manifest
from cxr.ingest.folders import image_folder_rows


def ingest(root: Path, manifest: Manifest) -> list[dict]:
    """One row per usable image under ``root``; everything else recorded in ``manifest``."""
    return image_folder_rows(root, manifest, body_part="chest")

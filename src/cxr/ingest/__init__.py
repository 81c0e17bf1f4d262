"""Read each dataset in its real on-disk layout into the uniform index (see :mod:`cxr.data.index`).

Each module ``cxr.ingest.<dataset>`` defines::

    def ingest(root: Path, manifest: Manifest) -> list[dict]

returning one dict per kept image (core columns of :data:`cxr.data.index.CORE_COLUMNS`, finding
columns, extras) and recording every file and label row it met in ``manifest``: kept, or
skipped with a reason. Problems that make the whole dataset unusable (no label file, empty
root) raise :class:`cxr.data.index.IngestError` naming the file and what is wrong.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from cxr.core.datasets import dataset_module
from cxr.data.index import IngestError, Manifest, build_index, write_index
from cxr.ingest.folders import walk


def ingest(dataset: str, root: str | Path) -> tuple[pd.DataFrame, Manifest]:
    """Ingest ``dataset`` found at ``root``; returns the typed index and its manifest."""
    root = Path(root)
    if not root.is_dir():
        raise IngestError(f"{dataset}: dataset root {root} is not a folder")
    manifest = Manifest()
    try:
        rows = dataset_module("ingest", dataset).ingest(root, manifest)
    except OSError as err:  # a label file it must read, unreadable
        raise IngestError(f"{dataset}: cannot read {err.filename}: {err.strerror}") from err
    account_for_all_files(root, manifest, dataset)
    index = build_index(rows, dataset)
    if index.empty:
        raise IngestError(
            f"{dataset}: no usable images under {root} (see the reasons: {manifest.counts()})"
        )
    return index, manifest


def account_for_all_files(root: Path, manifest: Manifest, dataset: str) -> None:
    """Record what the walk of ``root`` left out (links to folders walked already, unreadable
    folders and files, bad names), and every file that the ingester did not mention."""
    tree = walk(root)
    tree.record_problems(manifest)
    seen = {item for kind, item, _s, _r in manifest.rows if kind == "file"}
    for path in tree.files:
        if path not in seen:
            manifest.skip("file", path, f"not part of the {dataset} layout")


def ingest_to(
    dataset: str, root: str | Path, out: str | Path, summary: str | Path | None = None
) -> dict:
    """Ingest and write index, manifest and summary; returns the summary."""
    index, manifest = ingest(dataset, root)
    return write_index(index, manifest, out, summary)

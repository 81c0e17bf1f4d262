"""Ingest the COVID-19 Radiography Database as downloaded from Kaggle (spec section 3).

The dataset folder is the root itself or the shallowest folder below it (normally
``COVID-19_Radiography_Dataset/``) that holds class folders. Each class folder holds
``images/`` and ``masks/`` (update 2), or the PNGs directly (older releases: ``COVID (12).png``,
upper-case ``NORMAL``). The class comes from the folder name; ``<Class>.metadata.xlsx`` gives
each image's source ``URL``, matched on the lower-case stem (``NORMAL-1`` names ``Normal-1.png``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import pandas as pd

from cxr.data.images import IMAGE_EXTENSIONS, BadImage, ImageInfo, is_hidden, probe
from cxr.data.index import IngestError, Manifest
from cxr.ingest.folders import HIDDEN_REASON, Tree, walk

CLASSES = ("COVID", "Lung_Opacity", "Normal", "Viral Pneumonia")
#: Normalised folder (or workbook) names of each class, old releases included.
CLASS_ALIASES = {
    "covid": "COVID",
    "covid 19": "COVID",
    "lung opacity": "Lung_Opacity",
    "normal": "Normal",
    "viral pneumonia": "Viral Pneumonia",
}
METADATA_SUFFIX = ".metadata.xlsx"
MAX_SEARCH_DEPTH = 4


@dataclass
class MetadataRow:
    """One workbook row: where it is (for the manifest) and its source URL."""

    item: str
    url: str | None
    image: str | None = None  # image id it matched
    image_bad: bool = False


@dataclass
class ClassFolder:
    """What one class folder holds, by lower-case name."""

    cls: str
    images: list[Path] = field(default_factory=list)
    masks: dict[str, Path] = field(default_factory=dict)


def ingest(root: Path, manifest: Manifest) -> list[dict]:
    """One row per usable image; every image, mask, workbook row and README in ``manifest``."""
    tree = walk(root)
    folder = dataset_folder(root, tree)
    metadata = read_metadata_files(root, tree, folder, manifest)
    rows: list[dict] = []
    seen: dict[str, str] = {}
    for name in tree.folders_in(folder):
        sub = _join(folder, name)
        cls = canonical_class(name)
        if cls is None:
            _skip_tree(tree, sub, f"unknown class folder {name!r}", manifest)
            continue
        content = scan_class_folder(root, tree, sub, cls, manifest)
        rows += _class_rows(root, content, metadata.get(cls, {}), seen, manifest)
    _account_metadata_rows(metadata, manifest)
    return rows


def canonical_class(name: str) -> str | None:
    """The canonical class of a folder or workbook name (``covid``, ``NORMAL``, ...), else None."""
    key = " ".join(re.sub(r"[_\-]+", " ", name).lower().split())
    return CLASS_ALIASES.get(key)


def dataset_folder(root: Path, tree: Tree) -> str:
    """The root (""), or the shallowest folder below it that is not hidden, holding a known
    class folder (at most :data:`MAX_SEARCH_DEPTH` levels down)."""
    holders = {_parent(f) for f in tree.folders if canonical_class(PurePosixPath(f).name)}
    found = [f for f in holders if _depth(f) <= MAX_SEARCH_DEPTH and not _in_hidden(f)]
    if not found:
        raise IngestError(
            f"covid_radiography: no class folder ({', '.join(CLASSES)}) under {root}; expected "
            "COVID-19_Radiography_Dataset/<class>/images/*.png"
        )
    return min(found, key=lambda f: (_depth(f), f.split("/")))


def _parent(rel: str) -> str:
    return rel.rsplit("/", 1)[0] if "/" in rel else ""


def _depth(rel: str) -> int:
    return rel.count("/") + 1 if rel else 0


def _in_hidden(rel: str) -> bool:
    return any(is_hidden(Path(part)) for part in rel.split("/"))


def _join(folder: str, name: str) -> str:
    return f"{folder}/{name}" if folder else name


def _rel(root: Path, path: Path) -> str:
    return path.relative_to(root).as_posix()


def _skip_tree(tree: Tree, folder: str, reason: str, manifest: Manifest) -> None:
    for rel in tree.files_under(folder):
        manifest.skip("file", rel, reason)


def read_metadata_files(
    root: Path, tree: Tree, folder: str, manifest: Manifest
) -> dict[str, dict[str, MetadataRow]]:
    """Workbook rows by class and lower-case stem; also records the README files."""
    metadata: dict[str, dict[str, MetadataRow]] = {}
    for rel in tree.files_in(folder):
        path = root / rel
        if is_hidden(path):
            manifest.skip("file", rel, HIDDEN_REASON)
        elif path.name.lower().startswith("readme"):
            manifest.keep("file", rel, "readme")
        elif path.name.lower().endswith(METADATA_SUFFIX):
            _read_workbook(root, path, metadata, manifest)
    return metadata


def _read_workbook(
    root: Path, path: Path, metadata: dict[str, dict[str, MetadataRow]], manifest: Manifest
) -> None:
    rel = _rel(root, path)
    cls = canonical_class(path.name[: -len(METADATA_SUFFIX)])
    if cls is None:
        manifest.skip("file", rel, "metadata workbook of an unknown class")
        return
    try:
        frame = pd.read_excel(path, dtype=str, engine="openpyxl")
    except Exception as err:  # openpyxl and zipfile raise many types for a damaged workbook
        manifest.skip("file", rel, f"unreadable workbook: {err}")
        return
    columns = {str(c).strip().upper(): c for c in frame.columns}
    if "FILE NAME" not in columns:
        manifest.skip("file", rel, f"no 'FILE NAME' column (columns: {list(frame.columns)})")
        return
    manifest.keep("file", rel, "metadata")
    rows = metadata.setdefault(cls, {})
    names = frame[columns["FILE NAME"]]
    urls = frame[columns["URL"]] if "URL" in columns else None
    for i, name in enumerate(names):
        item = f"{rel}:{i + 2}"  # spreadsheet row number; row 1 is the header
        url = None if urls is None or pd.isna(urls.iloc[i]) else str(urls.iloc[i]).strip()
        if pd.isna(name) or not str(name).strip():
            manifest.skip("label_row", item, "empty FILE NAME")
        elif (key := stem_key(str(name))) in rows:
            manifest.skip("label_row", item, f"duplicate row (first: {rows[key].item})")
        else:
            rows[key] = MetadataRow(item, url)


def stem_key(name: str) -> str:
    """Lower-case name without an image extension: ``NORMAL-1`` and ``Normal-1.png`` agree."""
    name = name.strip()
    if name.lower().endswith(IMAGE_EXTENSIONS):
        name = name.rsplit(".", 1)[0]
    return name.lower()


def scan_class_folder(
    root: Path, tree: Tree, folder: str, cls: str, manifest: Manifest
) -> ClassFolder:
    """Image and mask files of one class folder (``images/`` + ``masks/``, or flat PNGs)."""
    subs = {name.lower(): _join(folder, name) for name in tree.folders_in(folder)}
    content = ClassFolder(cls)
    content.images = _files(root, tree, subs.get("images", folder), manifest)
    if "masks" in subs:
        for path in _files(root, tree, subs["masks"], manifest):
            content.masks[path.name.lower()] = path
    return content


def _files(root: Path, tree: Tree, folder: str, manifest: Manifest) -> list[Path]:
    """Image files directly in ``folder``; OS litter and non-images go to the manifest."""
    out = []
    for rel in tree.files_in(folder):
        path = root / rel
        if is_hidden(path):
            manifest.skip("file", rel, HIDDEN_REASON)
        elif path.suffix.lower() not in IMAGE_EXTENSIONS:
            manifest.skip("file", rel, "not an image file")
        else:
            out.append(path)
    return out


def _class_rows(
    root: Path,
    content: ClassFolder,
    metadata: dict[str, MetadataRow],
    seen: dict[str, str],
    manifest: Manifest,
) -> list[dict]:
    """Index rows of one class; its images and masks are accounted for in ``manifest``."""
    rows = []
    for path in content.images:
        rel, meta = _rel(root, path), metadata.get(stem_key(path.name))
        mask_path = content.masks.pop(path.name.lower(), None)
        info = _probe_image(rel, path, seen, manifest)
        if info is None:
            if meta is not None:
                meta.image_bad = True
            if mask_path is not None:
                manifest.skip("file", _rel(root, mask_path), "mask of an unusable image")
            continue
        mask = _usable_mask(root, mask_path, manifest)
        note = "" if meta is not None else f"no row in {content.cls}{METADATA_SUFFIX}"
        manifest.keep("file", rel, note)
        seen[path.name] = rel
        if meta is not None:
            meta.image = path.name
        rows.append(_row(path.name, rel, content.cls, info, mask, meta))
    for path in content.masks.values():
        manifest.skip("file", _rel(root, path), "mask without image file")
    return rows


def _probe_image(
    rel: str, path: Path, seen: dict[str, str], manifest: Manifest
) -> ImageInfo | None:
    """Header of one image, or None with the reason (duplicate name, bad file) recorded."""
    if path.name in seen:
        manifest.skip("file", rel, f"duplicate file name (first: {seen[path.name]})")
        return None
    try:
        return probe(path)
    except BadImage as err:
        manifest.skip("file", rel, str(err))
        return None


def _usable_mask(root: Path, path: Path | None, manifest: Manifest) -> str | None:
    """Relative path of a readable mask (recorded as kept), or None (a bad one is skipped)."""
    if path is None:
        return None
    rel = _rel(root, path)
    try:
        probe(path)
    except BadImage as err:
        manifest.skip("file", rel, f"mask: {err}")
        return None
    manifest.keep("file", rel, "mask")
    return rel


def _row(
    name: str, rel: str, cls: str, info: ImageInfo, mask: str | None, meta: MetadataRow | None
) -> dict:
    return {
        "image_id": name,
        "path": rel,
        "patient_id": None,
        "view": None,
        "body_part": "chest",
        "label": cls,
        "width": info.width,
        "height": info.height,
        "mode": info.mode,
        "mask_path": mask,
        "url": meta.url if meta is not None else None,
    }


def _account_metadata_rows(metadata: dict[str, dict[str, MetadataRow]], manifest: Manifest) -> None:
    for rows in metadata.values():
        for row in rows.values():
            if row.image is not None:
                manifest.keep("label_row", row.item)
            elif row.image_bad:
                manifest.skip("label_row", row.item, "image file unusable (see its file entry)")
            else:
                manifest.skip("label_row", row.item, "no image file")

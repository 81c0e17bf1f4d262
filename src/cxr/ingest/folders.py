"""Walking image folders the way torchvision's ``ImageFolder`` does, with a manifest entry for
everything met.

Layout ``root/<split>/<class>/**/<image>`` with ``<split>`` one of :data:`SPLIT_NAMES`
(matched case-insensitively, recorded as found), or ``root/<class>/**/<image>`` when no split
folder exists. Classes are the sorted class-folder names (case-sensitive, verbatim), taken from
the union of all splits; a class index is the position in that list, as in torchvision.

Deviation from torchvision, on purpose: hidden folders (``.ipynb_checkpoints``) and
``__MACOSX`` are never classes, and an empty class folder is reported instead of raising.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from cxr.images import IMAGE_EXTENSIONS, BadImage, ImageInfo, is_hidden, probe
from cxr.index import IngestError, Manifest

#: Split folder names accepted (compared lower-case).
SPLIT_NAMES = ("train", "val", "valid", "validation", "test")

HIDDEN_REASON = "hidden/OS file"
NOT_IMAGE_REASON = "not an image extension"
OUTSIDE_CLASS_REASON = "not inside a class folder"

_OS_FOLDERS = ("__macosx",)


@dataclass
class ClassFolder:
    """One ``<split>/<class>`` folder (``split`` is None when there is no split level)."""

    split: str | None
    name: str
    rel: str  # "/"-separated path relative to the dataset root


@dataclass
class FolderLayout:
    """What a dataset root holds: its splits (in the order found) and their class folders."""

    splits: list[str | None] = field(default_factory=list)
    folders: list[ClassFolder] = field(default_factory=list)

    @property
    def classes(self) -> list[str]:
        """Sorted union of class names over all splits (torchvision order)."""
        return sorted({f.name for f in self.folders})

    def classes_in(self, split: str | None) -> set[str]:
        return {f.name for f in self.folders if f.split == split}


def is_os_litter(rel: str) -> bool:
    """Whether any component of a relative path is hidden or OS litter (``__MACOSX``)."""
    parts = PurePosixPath(rel).parts
    return any(is_hidden(Path(p)) or p.lower() in _OS_FOLDERS for p in parts)


def has_image_extension(rel: str) -> bool:
    """Whether the file name ends in one of torchvision's image extensions (any case)."""
    return PurePosixPath(rel).suffix.lower() in IMAGE_EXTENSIONS


def files_under(root: Path, rel_folder: str = "") -> list[str]:
    """Every file under ``root / rel_folder`` (any depth, symlinks followed), as sorted
    "/"-separated paths relative to ``root``."""
    base = root / rel_folder if rel_folder else root
    out = []
    for folder, _dirs, files in os.walk(base, followlinks=True):
        rel = Path(folder).relative_to(root)
        out.extend((rel / f).as_posix() for f in files)
    return sorted(out)


def probe_image_file(root: Path, rel: str, manifest: Manifest) -> ImageInfo | None:
    """Check one file: OS litter, extension, then a cheap integrity probe.

    Records the file in ``manifest`` as kept or skipped (with the reason) and returns its
    :class:`ImageInfo`, or None when skipped.
    """
    if is_os_litter(rel):
        manifest.skip("file", rel, HIDDEN_REASON)
        return None
    if not has_image_extension(rel):
        manifest.skip("file", rel, NOT_IMAGE_REASON)
        return None
    try:
        info = probe(root / rel)
    except BadImage as err:
        manifest.skip("file", rel, str(err))
        return None
    manifest.keep("file", rel)
    return info


def image_row(rel: str, info: ImageInfo, **fields: object) -> dict:
    """An index row for the image at ``rel`` (image id = relative path) plus ``fields``."""
    return {
        "image_id": rel,
        "path": rel,
        "width": info.width,
        "height": info.height,
        "mode": info.mode,
        **fields,
    }


def is_split_name(name: str) -> bool:
    return name.lower() in SPLIT_NAMES


def scan_layout(root: Path, manifest: Manifest) -> FolderLayout:
    """Find the split and class folders under ``root``.

    Folders that are neither (hidden, unknown names beside split folders) and files outside
    any class folder are recorded in ``manifest`` as skipped.
    """
    top_dirs = _subfolders(root, "", manifest)
    split_dirs = [d for d in top_dirs if is_split_name(d)]
    layout = FolderLayout()
    if not split_dirs:
        layout.splits.append(None)
        layout.folders.extend(ClassFolder(None, d, d) for d in top_dirs)
        _skip_loose_files(root, "", manifest)
        return layout
    for other in sorted(set(top_dirs) - set(split_dirs)):
        manifest.skip("folder", other, f"not a split folder (expected one of {SPLIT_NAMES})")
    _skip_loose_files(root, "", manifest)
    for split in split_dirs:
        layout.splits.append(split)
        classes = _subfolders(root, split, manifest)
        layout.folders.extend(ClassFolder(split, c, f"{split}/{c}") for c in classes)
        _skip_loose_files(root, split, manifest)
    return layout


def _subfolders(root: Path, rel: str, manifest: Manifest) -> list[str]:
    """Sorted non-hidden sub-folder names of ``root / rel``; hidden ones recorded as skipped."""
    base = root / rel if rel else root
    names = sorted(e.name for e in os.scandir(base) if e.is_dir())
    kept = []
    for name in names:
        item = f"{rel}/{name}" if rel else name
        if is_os_litter(name):
            manifest.skip("folder", item, "hidden/OS folder")
            for path in files_under(root, item):
                manifest.skip("file", path, HIDDEN_REASON)
        else:
            kept.append(name)
    return kept


def _skip_loose_files(root: Path, rel: str, manifest: Manifest) -> None:
    """Record the files directly in ``root / rel``, which belong to no class."""
    base = root / rel if rel else root
    for name in sorted(e.name for e in os.scandir(base) if e.is_file()):
        item = f"{rel}/{name}" if rel else name
        manifest.skip("file", item, HIDDEN_REASON if is_os_litter(name) else OUTSIDE_CLASS_REASON)


def report_missing_classes(layout: FolderLayout, manifest: Manifest) -> None:
    """Record every class absent from a split that other splits have."""
    classes = layout.classes
    for split in layout.splits:
        for name in sorted(set(classes) - layout.classes_in(split)):
            manifest.skip(
                "class",
                f"{split}/{name}",
                f"class {name!r} missing from split {split!r} "
                "(class list built from the union of all splits)",
            )


def image_folder_rows(root: Path, manifest: Manifest, body_part: str) -> list[dict]:
    """Rows for every usable image of an ImageFolder-style dataset at ``root``.

    Each row has ``label`` = class name, ``source_split`` = split folder as found (None
    without a split level), ``body_part`` and the extra ``class_index``.
    """
    layout = scan_layout(root, manifest)
    if not layout.folders:
        raise IngestError(f"no class folders under {root} (expected root/<split>/<class>/...)")
    report_missing_classes(layout, manifest)
    class_index = {name: i for i, name in enumerate(layout.classes)}
    rows = []
    for folder in layout.folders:
        kept = _class_folder_rows(root, folder, manifest, body_part, class_index[folder.name])
        _record_class_folder(folder, len(kept), class_index[folder.name], manifest)
        rows.extend(kept)
    return rows


def _class_folder_rows(
    root: Path, folder: ClassFolder, manifest: Manifest, body_part: str, index: int
) -> list[dict]:
    rows = []
    for rel in files_under(root, folder.rel):
        info = probe_image_file(root, rel, manifest)
        if info is not None:
            rows.append(
                image_row(
                    rel,
                    info,
                    label=folder.name,
                    source_split=folder.split,
                    body_part=body_part,
                    class_index=index,
                )
            )
    return rows


def _record_class_folder(
    folder: ClassFolder, n_images: int, index: int, manifest: Manifest
) -> None:
    if n_images == 0:
        manifest.skip("class", folder.rel, "empty class folder (no usable images)")
    else:
        manifest.keep("class", folder.rel, f"class_index {index}, {n_images} images")

"""Walking image folders the way torchvision's ``ImageFolder`` does, with a manifest entry for
everything met.

Layout ``root/<split>/<class>/**/<image>`` with ``<split>`` one of :data:`SPLIT_NAMES`
(matched case-insensitively, recorded as found), or ``root/<class>/**/<image>`` when no split
folder exists. Classes are the sorted class-folder names (case-sensitive, verbatim), taken from
the union of all splits; a class index is the position in that list, as in torchvision.

Deviation from torchvision, on purpose: hidden folders (``.ipynb_checkpoints``) and
``__MACOSX`` are never classes, and an empty class folder is reported instead of raising.

Every ingester lists files through :func:`walk`, which walks each real folder once (see there).
"""

from __future__ import annotations

import os
import stat
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from cxr.data.images import IMAGE_EXTENSIONS, BadImage, ImageInfo, is_hidden, probe
from cxr.data.index import IngestError, Manifest

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


@dataclass
class Tree:
    """What :func:`walk` found under a root; paths are "/"-separated, relative to the root."""

    files: list[str] = field(default_factory=list)  # readable files, sorted
    folders: list[str] = field(default_factory=list)  # folders walked or unreadable, sorted
    problems: list[tuple[str, str, str]] = field(default_factory=list)  # (kind, item, reason)

    def files_in(self, rel: str) -> list[str]:
        """Files directly in folder ``rel`` ("" is the root)."""
        return _children(self.files, rel)

    def files_under(self, rel: str) -> list[str]:
        """Files at any depth under folder ``rel``."""
        prefix = f"{rel}/" if rel else ""
        return [p for p in self.files if p.startswith(prefix)]

    def folders_in(self, rel: str) -> list[str]:
        """Names of the folders directly in folder ``rel``."""
        return [p.rsplit("/", 1)[-1] for p in _children(self.folders, rel)]

    def folder_problem(self, rel: str) -> str | None:
        """Why folder ``rel`` could not be walked, or None."""
        return next((r for k, i, r in self.problems if k == "folder" and i == rel), None)

    def record_problems(self, manifest: Manifest) -> None:
        """Record everything the walk left out in ``manifest``."""
        for kind, item, reason in self.problems:
            manifest.skip(kind, item, reason)


def _children(paths: list[str], rel: str) -> list[str]:
    prefix = f"{rel}/" if rel else ""
    return [p for p in paths if p.startswith(prefix) and "/" not in p[len(prefix) :]]


def walk(root: Path) -> Tree:
    """Every file and folder under ``root``, each real folder walked once.

    Real folders are walked first, then symbolic links to folders, in sorted order; a folder
    (by device and inode) reached a second time is not walked again. Left out, in
    :attr:`Tree.problems`: such repeats, unreadable folders and files, broken links, special
    files and names that are not valid UTF-8. Raises :class:`IngestError` if ``root`` is
    unreadable.
    """
    return _Walker(root).run()


def files_under(root: Path) -> list[str]:
    """Every readable file under ``root``, as sorted "/"-separated relative paths (:func:`walk`)."""
    return walk(root).files


class _Walker:
    """State of one :func:`walk`: the folders claimed so far and the links still to follow."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.tree = Tree()
        self.claimed: dict[tuple[int, int], str] = {}
        self.links: deque[tuple[str, os.stat_result]] = deque()

    def run(self) -> Tree:
        try:
            self.claimed[_key(os.stat(self.root))] = ""
            entries = _sorted_entries(self.root)
        except OSError as err:
            raise IngestError(f"dataset root {self.root} is unreadable: {err.strerror}") from err
        self._walk_real(self._scan("", entries))
        while self.links:
            rel, st = self.links.popleft()
            if self._claim(rel, st, link=True):
                self._walk_real([rel])
        self.tree.files.sort()
        self.tree.folders.sort()
        return self.tree

    def _walk_real(self, folders: list[str]) -> None:
        """Walk ``folders`` (claimed already) and the real folders below them, in sorted order."""
        stack = folders[::-1]
        while stack:
            rel = stack.pop()
            try:
                entries = _sorted_entries(self.root / rel)
            except OSError as err:
                self._problem("folder", rel, f"unreadable folder: {err.strerror}")
                continue
            stack.extend(self._scan(rel, entries)[::-1])

    def _scan(self, rel: str, entries: list[os.DirEntry]) -> list[str]:
        """Sort out the entries of folder ``rel``; returns its real sub-folders to walk."""
        folders = []
        for entry in entries:
            item = f"{rel}/{entry.name}" if rel else entry.name
            try:
                if self._entry(item, entry):
                    folders.append(item)
            except OSError as err:
                self._problem("file", item, f"unreadable: {err.strerror}")
        return folders

    def _entry(self, item: str, entry: os.DirEntry) -> bool:
        """Record one entry; True for a real folder to walk."""
        if not _is_utf8(entry.name):
            kind = "folder" if entry.is_dir() else "file"
            self._problem(kind, item, f"{kind} name is not valid UTF-8 (rename it)")
        elif entry.is_symlink():
            self._link(item, entry.path)
        elif entry.is_dir(follow_symlinks=False):
            return self._claim(item, entry.stat(follow_symlinks=False), link=False)
        else:
            self._file(item, entry.path, entry.is_file(follow_symlinks=False))
        return False

    def _link(self, item: str, path: str) -> None:
        """Queue a link to a folder for after the real folders; take a link to a file now."""
        try:
            st = os.stat(path)
        except OSError as err:
            self._problem("file", item, f"broken symbolic link: {err.strerror}")
            return
        if stat.S_ISDIR(st.st_mode):
            self.links.append((item, st))
        else:
            self._file(item, path, stat.S_ISREG(st.st_mode))

    def _file(self, item: str, path: str, regular: bool) -> None:
        if not regular:
            self._problem("file", item, "not a regular file")
        elif not os.access(path, os.R_OK):
            self._problem("file", item, "unreadable file: Permission denied")
        else:
            self.tree.files.append(item)

    def _claim(self, item: str, st: os.stat_result, link: bool) -> bool:
        """Take folder ``item`` for walking unless its real folder was reached before."""
        first = self.claimed.setdefault(_key(st), item)
        if first == item:
            self.tree.folders.append(item)
            return True
        what = "link to a folder" if link else "folder"
        self._problem("folder", item, f"{what} already walked ({first or '.'})")
        return False

    def _problem(self, kind: str, item: str, reason: str) -> None:
        self.tree.problems.append((kind, item, reason))


def _key(st: os.stat_result) -> tuple[int, int]:
    return st.st_dev, st.st_ino


def _sorted_entries(folder: Path) -> list[os.DirEntry]:
    with os.scandir(folder) as entries:
        return sorted(entries, key=lambda e: e.name)


def _is_utf8(name: str) -> bool:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


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


def scan_layout(tree: Tree, manifest: Manifest) -> FolderLayout:
    """Find the split and class folders in a walked dataset ``tree``.

    Folders that are neither (hidden, unknown names beside split folders) and files outside
    any class folder are recorded in ``manifest`` as skipped.
    """
    top_dirs = _subfolders(tree, "", manifest)
    split_dirs = [d for d in top_dirs if is_split_name(d)]
    layout = FolderLayout()
    if not split_dirs:
        layout.splits.append(None)
        layout.folders.extend(ClassFolder(None, d, d) for d in top_dirs)
        _skip_loose_files(tree, "", manifest)
        return layout
    for other in sorted(set(top_dirs) - set(split_dirs)):
        manifest.skip("folder", other, f"not a split folder (expected one of {SPLIT_NAMES})")
    _skip_loose_files(tree, "", manifest)
    for split in split_dirs:
        layout.splits.append(split)
        classes = _subfolders(tree, split, manifest)
        layout.folders.extend(ClassFolder(split, c, f"{split}/{c}") for c in classes)
        _skip_loose_files(tree, split, manifest)
    return layout


def _subfolders(tree: Tree, rel: str, manifest: Manifest) -> list[str]:
    """Sorted non-hidden sub-folder names of folder ``rel``; hidden ones recorded as skipped."""
    kept = []
    for name in tree.folders_in(rel):
        item = f"{rel}/{name}" if rel else name
        if is_os_litter(name):
            manifest.skip("folder", item, "hidden/OS folder")
            for path in tree.files_under(item):
                manifest.skip("file", path, HIDDEN_REASON)
        else:
            kept.append(name)
    return kept


def _skip_loose_files(tree: Tree, rel: str, manifest: Manifest) -> None:
    """Record the files directly in folder ``rel``, which belong to no class."""
    for item in tree.files_in(rel):
        name = item.rsplit("/", 1)[-1]
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
    tree = walk(root)
    layout = scan_layout(tree, manifest)
    if not layout.folders:
        raise IngestError(f"no class folders under {root} (expected root/<split>/<class>/...)")
    report_missing_classes(layout, manifest)
    class_index = {name: i for i, name in enumerate(layout.classes)}
    rows = []
    for folder in layout.folders:
        index = class_index[folder.name]
        kept = _class_folder_rows(root, tree, folder, manifest, body_part, index)
        _record_class_folder(folder, len(kept), index, manifest, tree.folder_problem(folder.rel))
        rows.extend(kept)
    return rows


def _class_folder_rows(
    root: Path, tree: Tree, folder: ClassFolder, manifest: Manifest, body_part: str, index: int
) -> list[dict]:
    rows = []
    for rel in tree.files_under(folder.rel):
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
    folder: ClassFolder, n_images: int, index: int, manifest: Manifest, problem: str | None
) -> None:
    if n_images == 0:
        manifest.skip("class", folder.rel, problem or "empty class folder (no usable images)")
    else:
        manifest.keep("class", folder.rel, f"class_index {index}, {n_images} images")

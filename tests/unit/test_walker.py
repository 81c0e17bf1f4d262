"""The one folder walker of ``cxr ingest``: every real folder is walked once (symbolic-link
loops, two links to one folder), unreadable folders and files are reported as such, and file
names that are not UTF-8 are reported instead of aborting the ingest."""

from __future__ import annotations

import os
import pickle
import shutil
import tempfile
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pandas as pd
import pytest
from PIL import Image

from cxr.core.datasets import DATASETS, dataset_module
from cxr.data.index import IngestError, Manifest, manifest_path
from cxr.ingest import folders, ingest, ingest_to

T = TypeVar("T")
NOBODY = 65534  # uid and gid the unprivileged child runs as
SIZE = 32
DENIED = "Permission denied"
Rows = list[tuple[str, str, str, str]]


def generate(dataset: str, out: Path, n: int = 4) -> Path:
    """Write a small miniature of ``dataset`` into the new folder ``out``."""
    module = dataset_module("synth", dataset)
    out.mkdir(parents=True)
    module.generate(out, n=n, size=SIZE, seed=0, variant=module.VARIANTS[0])
    return out


def skipped(rows: Rows, kind: str) -> dict[str, str]:
    """``{item: reason}`` of the skipped manifest rows of ``kind``."""
    return {item: reason for k, item, status, reason in rows if k == kind and status == "skipped"}


# ----------------------------------------------------------------------------- unprivileged runs


class Shared:
    """A fresh folder under /tmp that uid 65534 may enter (pytest's tmp_path is private), and
    the paths a test locked inside it."""

    def __init__(self) -> None:
        self.path = Path(tempfile.mkdtemp())
        self.path.chmod(0o755)
        self.locked: list[Path] = []

    def lock(self, path: Path) -> None:
        path.chmod(0)
        self.locked.append(path)

    def remove(self) -> None:
        for path in self.locked:
            path.chmod(0o755)
        shutil.rmtree(self.path)


@pytest.fixture
def shared() -> Iterator[Shared]:
    folder = Shared()
    yield folder
    folder.remove()


def unprivileged(fn: Callable[[], T], blocked: Path) -> T:
    """``fn()`` run by a user who cannot read ``blocked`` (chmod 000): as uid 65534 in a forked
    child when the tests run as root, whom chmod does not stop, else right here."""
    if os.geteuid() != 0:
        if os.access(blocked, os.R_OK):
            pytest.skip(f"{blocked} stays readable after chmod 000")
        return fn()
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        _child(fn, blocked, write_end)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        outcome, value = pickle.load(pipe)
    os.waitpid(pid, 0)
    if outcome == "skip":
        pytest.skip(value)
    if outcome == "error":
        pytest.fail(f"in the unprivileged child:\n{value}")
    return value


def _child(fn: Callable[[], object], blocked: Path, write_end: int) -> None:
    """Drop to uid/gid 65534, run ``fn`` and send ``(outcome, value)`` back; never returns."""
    try:
        try:
            result = _drop_and_run(fn, blocked)
        except BaseException:
            result = ("error", traceback.format_exc())
        with os.fdopen(write_end, "wb") as pipe:
            pickle.dump(result, pipe)
    finally:
        os._exit(0)


def _drop_and_run(fn: Callable[[], object], blocked: Path) -> tuple[str, object]:
    try:
        os.setgroups([])
        os.setgid(NOBODY)
        os.setuid(NOBODY)
    except OSError as err:
        return "skip", f"cannot become uid {NOBODY} (chmod 000 does not stop root): {err}"
    if os.access(blocked, os.R_OK):
        return "skip", f"{blocked} stays readable for uid {NOBODY} after chmod 000"
    return "ok", fn()


def ingest_locked(dataset: str, root: Path, shared: Shared, *paths: Path) -> Rows | str:
    """Manifest rows, or the :class:`IngestError` message, of ingesting ``root`` as a user who
    cannot read ``paths``. Ingests once as we are first: that imports every module the ingest
    needs, which the child may not be allowed to read (a Python installed under /root)."""
    ingest(dataset, root)
    for path in paths:
        shared.lock(path)
    return unprivileged(lambda: _rows_or_error(dataset, root), paths[0])


def _rows_or_error(dataset: str, root: Path) -> Rows | str:
    try:
        return ingest(dataset, root)[1].rows
    except IngestError as err:
        return str(err)


# ----------------------------------------------------------------------------- the walker itself


def test_walk_prefers_real_folders_and_stops_loops(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "link").symlink_to("../b")  # sorts before the real b/
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "x.png").write_bytes(b"x")
    (tmp_path / "b" / "up").symlink_to("..")
    (tmp_path / "c.txt").write_text("c")
    tree = folders.walk(tmp_path)
    assert tree.files == ["b/x.png", "c.txt"]
    assert tree.folders == ["a", "b"]
    assert sorted(tree.problems) == [
        ("folder", "a/link", "link to a folder already walked (b)"),
        ("folder", "b/up", "link to a folder already walked (.)"),
    ]


def test_walk_leaves_out_special_files(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe.png")  # probing it would block forever
    tree = folders.walk(tmp_path)
    assert tree.files == []
    assert tree.problems == [("file", "pipe.png", "not a regular file")]


# ----------------------------------------------------------------------------- 1: links


@pytest.mark.parametrize(
    ("link", "target", "first"),
    [("train/Covid-19/loop", "..", "train"), ("train/Effusions/top", "../..", ".")],
)
def test_symlink_loop_does_not_multiply_images(
    tmp_path: Path, link: str, target: str, first: str
) -> None:
    root = generate("imagefolder6", tmp_path / "if6")
    n = len(ingest("imagefolder6", root)[0])
    (root / link).symlink_to(target)
    index, manifest = ingest("imagefolder6", root)
    assert len(index) == n
    assert skipped(manifest.rows, "folder") == {link: f"link to a folder already walked ({first})"}


def test_two_links_to_one_outside_folder_walk_it_once(tmp_path: Path) -> None:
    root = generate("imagefolder6", tmp_path / "if6")
    n = len(ingest("imagefolder6", root)[0])
    extra = tmp_path / "extra"
    extra.mkdir()
    for name in ("a.png", "b.png"):
        Image.new("L", (SIZE, SIZE)).save(extra / name)
    (root / "train" / "Covid-19" / "more").symlink_to(extra)
    (root / "train" / "Effusions" / "more").symlink_to(extra)
    index, manifest = ingest("imagefolder6", root)
    assert len(index) == n + 2
    linked = index[index["path"].str.contains("/more/")]
    assert sorted(linked["path"]) == ["train/Covid-19/more/a.png", "train/Covid-19/more/b.png"]
    assert set(linked["label"]) == {"Covid-19"}
    assert skipped(manifest.rows, "folder") == {
        "train/Effusions/more": "link to a folder already walked (train/Covid-19/more)"
    }


def test_nih_symlink_loop_adds_one_manifest_row(tmp_path: Path) -> None:
    root = generate("nih", tmp_path / "nih")
    index, manifest = ingest("nih", root)
    (root / "images" / "loop").symlink_to("..")
    looped_index, looped = ingest("nih", root)
    assert looped_index.equals(index)
    assert [row for row in looped.rows if row[0] != "folder"] == manifest.rows
    assert skipped(looped.rows, "folder") == {"images/loop": "link to a folder already walked (.)"}


def test_links_to_files_are_followed_and_broken_links_reported(tmp_path: Path) -> None:
    root = generate("not_xray", tmp_path / "nx")
    photo = sorted((root / "photos").iterdir())[0]
    alias = root / f"alias{photo.suffix}"
    alias.symlink_to(photo)
    (root / "dangling.png").symlink_to(root / "missing.png")
    index, manifest = ingest("not_xray", root)
    assert alias.name in set(index["path"])
    reason = skipped(manifest.rows, "file")["dangling.png"]
    assert reason == "broken symbolic link: No such file or directory"


# ----------------------------------------------------------------------------- 2: unreadable


@pytest.mark.parametrize("dataset", DATASETS)
def test_unreadable_folder_and_file_are_reported(dataset: str, shared: Shared) -> None:
    root = generate(dataset, shared.path / dataset)
    (root / "locked").mkdir()
    (root / "locked" / "inside.png").write_bytes(b"never read")
    (root / "locked.txt").write_text("never read")
    rows = ingest_locked(dataset, root, shared, root / "locked", root / "locked.txt")
    assert skipped(rows, "folder")["locked"] == f"unreadable folder: {DENIED}"
    assert skipped(rows, "file")["locked.txt"] == f"unreadable file: {DENIED}"


def test_unreadable_class_folder_is_not_called_empty(shared: Shared) -> None:
    root = generate("imagefolder6", shared.path / "if6")
    rows = ingest_locked("imagefolder6", root, shared, root / "train" / "Covid-19")
    assert skipped(rows, "class")["train/Covid-19"] == f"unreadable folder: {DENIED}"
    assert skipped(rows, "folder")["train/Covid-19"] == f"unreadable folder: {DENIED}"


def test_unreadable_image_is_reported_as_unreadable(shared: Shared) -> None:
    root = generate("nih", shared.path / "nih")
    image = sorted((root / "images").iterdir())[0]
    rows = ingest_locked("nih", root, shared, image)
    assert skipped(rows, "file")[f"images/{image.name}"] == f"unreadable file: {DENIED}"


def test_unreadable_label_file_is_an_ingest_error(shared: Shared) -> None:
    root = generate("mura", shared.path / "mura")
    studies = root / "MURA-v1.1" / "train_labeled_studies.csv"
    message = ingest_locked("mura", root, shared, studies)
    assert isinstance(message, str)
    assert "train_labeled_studies.csv" in message and DENIED in message


# ----------------------------------------------------------------------------- 3: names


def test_names_that_are_not_utf8_are_reported_and_the_ingest_goes_on(tmp_path: Path) -> None:
    root = generate("not_xray", tmp_path / "nx")
    photos = os.fsencode(root / "photos")
    os.mkdir(photos + b"/dir\xfe")
    for name in (b"/bad\xff.png", b"/dir\xfe/inner.png"):
        Image.new("L", (SIZE, SIZE)).save(os.fsdecode(photos + name))
    out = tmp_path / "index.parquet"
    summary = ingest_to("not_xray", root, out)
    assert summary["images"] == 4
    manifest = pd.read_csv(manifest_path(out), keep_default_na=False)
    reasons = dict(zip(manifest["item"], manifest["reason"], strict=True))
    assert reasons["photos/bad\\xff.png"] == "file name is not valid UTF-8 (rename it)"
    assert reasons["photos/dir\\xfe"] == "folder name is not valid UTF-8 (rename it)"


def test_manifest_escapes_names_that_are_not_utf8(tmp_path: Path) -> None:
    manifest = Manifest()
    manifest.skip("file", os.fsdecode(b"a/bad\xff.png"), "some reason")
    manifest.keep("file", Path(os.fsdecode(b"ok\xfe.png")))
    assert [row[1] for row in manifest.rows] == ["a/bad\\xff.png", "ok\\xfe.png"]
    manifest.to_frame().to_csv(tmp_path / "manifest.csv", index=False)

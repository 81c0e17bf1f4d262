"""The probe of a verb's --data: every verb that reads a cxr preprocess folder names a folder
that is not one, and a tensor or index that cannot be what it claims, in one line."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from harness import Case, check, probe_cases, run_case

PRE = "results/preprocessed/nih/tiny_eq"
SPLIT = "results/splits/nih/official.parquet"
MODEL = "results/models/tiny_multilabel/main/split"
RECIPE = (
    '{"study": "s", "task": "multilabel", "architecture": "smallcnn_v1", "epochs": 1, '
    '"input_size": 32}'
)


def bad_data(change: Callable[[Path], object]) -> Callable[[Path], None]:
    """A setup: a copy of the NIH tensors at ./bad, then ``change`` applied to it."""

    def setup(root: Path) -> None:
        shutil.copytree(root / PRE, root / "bad")
        change(root / "bad")

    return setup


def pickled(folder: Path) -> None:
    np.save(folder / "images.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)


def flat(folder: Path) -> None:
    np.save(folder / "images.npy", np.zeros((3, 4), dtype=np.float32))


def truncated(folder: Path) -> None:
    data = (folder / "images.npy").read_bytes()
    (folder / "images.npy").unlink()
    (folder / "images.npy").write_bytes(data[:100])


def garbage_index(folder: Path) -> None:
    (folder / "index.parquet").unlink()
    (folder / "index.parquet").write_bytes(b"PAR1 not really")


def no_tensor(folder: Path) -> None:
    (folder / "images.npy").unlink()


def other_index_from_root(folder: Path) -> None:
    (folder / "index.parquet").unlink()
    shutil.copy(folder.parent / "results/preprocessed/jsrt/tiny_eq/index.parquet", folder)


def empty(root: Path) -> None:
    (root / "empty").mkdir()


NOT_PRE = r"not a folder written by cxr preprocess \(no index\.parquet\)"
BROKEN = {
    "pickled": (pickled, r"bad/images\.npy: .*(pickled )?Python objects"),
    "flat": (flat, r"bad/images\.npy: not an image tensor of cxr preprocess"),
    "truncated": (truncated, r"bad/images\.npy: not a readable image tensor"),
    "garbage-index": (garbage_index, r"bad/index\.parquet: cannot read this index"),
    "no-tensor": (no_tensor, r"bad: not a folder written by cxr preprocess \(no images\.npy\)"),
    "rows-differ": (other_index_from_root, r"bad: index has \d+ rows but the tensor \d+"),
}
VERBS: dict[str, Callable[[str], tuple[str, ...]]] = {
    "duplicates": lambda data: ("duplicates", "--data", data, "--out", "d.csv"),
    "check-leakage": lambda data: (
        "check-leakage", "--split", SPLIT, "--data", data, "--out", "l.json",
    ),
    "split": lambda data: (
        "split", "--data", data, "--scheme-json", '{"method": "official"}', "--out", "s.parquet",
    ),
}  # fmt: skip

CASES = [
    Case(f"{verb}-{name}", build("bad"), message=message, setup=bad_data(change))
    for verb, build in VERBS.items()
    for name, (change, message) in BROKEN.items()
    if not (verb == "check-leakage" and name == "rows-differ")  # its own check names the split
]
CASES += [
    Case(f"{verb}-empty-folder", build("empty"), message=f"empty: {NOT_PRE}", setup=empty)
    for verb, build in VERBS.items()
]
CASES += [
    Case(f"{verb}-not-a-preprocess-folder", build("results/splits"), message=NOT_PRE)
    for verb, build in VERBS.items()
]
CASES += [
    Case(f"{verb}-data-is-a-file", build(SPLIT), rc=2, message="is a file, not a folder")
    for verb, build in VERBS.items()
]
CASES += [
    Case(f"{verb}-no-such-data", build("nowhere"), rc=2, message="no such folder: nowhere")
    for verb, build in VERBS.items()
]
CASES += [
    Case(
        "train-empty-folder",
        ("train", "--data", "empty", "--split", SPLIT, "--recipe-json", RECIPE, "--out", "m"),
        message=r"empty: not a folder written by cxr preprocess",
        setup=empty,
    ),
    Case(
        "train-pickled-tensor",
        ("train", "--data", "bad", "--split", SPLIT, "--recipe-json", RECIPE, "--out", "m"),
        message=r"Python objects",
        setup=bad_data(pickled),
    ),
    Case(
        "cam-empty-folder",
        ("cam", "--model", MODEL, "--data", "empty", "--split", SPLIT, "--out", "c"),
        message=r"empty: .*(not a folder written by cxr preprocess|no index\.parquet)",
        setup=empty,
    ),
    Case(
        "cam-truncated-tensor",
        ("cam", "--model", MODEL, "--data", "bad", "--split", SPLIT, "--out", "c"),
        message=r"bad/images\.npy: not a readable image tensor",
        setup=bad_data(truncated),
    ),
]


@probe_cases(CASES)
def test_data_probe(
    case: Case, world: Path, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture
) -> None:
    check(run_case(case, world, caplog, capsys), case)

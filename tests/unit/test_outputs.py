"""Outputs: never destroy what cxr did not write, one writer at a time, no leftovers."""

from __future__ import annotations

import multiprocessing
import os
import time
from pathlib import Path

import pytest

from cxr.core.atomic import OutputBusy, OutputRefused, atomic_path, output_mark


def write_folder(target: Path, name: str = "a") -> None:
    with atomic_path(target) as tmp:
        tmp.mkdir()
        (tmp / name).write_text(name)


def write_file(target: Path, text: str = "x") -> None:
    with atomic_path(target) as tmp:
        tmp.write_text(text)


def test_a_folder_cxr_did_not_write_is_never_replaced(tmp_path: Path) -> None:
    results = tmp_path / "results"
    (results / "deep").mkdir(parents=True)
    (results / "deep" / "paper.tex").write_text("months of work")
    with pytest.raises(OutputRefused, match=r"results: is a folder cxr did not write"):
        write_folder(results)
    assert (results / "deep" / "paper.tex").read_text() == "months of work"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results"]


def test_a_file_cxr_did_not_write_is_never_replaced(tmp_path: Path) -> None:
    target = tmp_path / "index.parquet"
    target.write_text("mine")
    with pytest.raises(OutputRefused, match="a file cxr did not write"):
        write_file(target)
    assert target.read_text() == "mine"


def test_a_symbolic_link_is_never_replaced(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    with pytest.raises(OutputRefused, match="symbolic link"):
        write_folder(tmp_path / "link")
    assert (tmp_path / "link").is_symlink()


def test_outputs_cxr_wrote_and_empty_folders_are_replaced(tmp_path: Path) -> None:
    write_file(tmp_path / "a.json", "1")
    assert output_mark(tmp_path / "a.json").is_file()
    write_file(tmp_path / "a.json", "2")
    assert (tmp_path / "a.json").read_text() == "2"
    (tmp_path / "empty").mkdir()
    write_folder(tmp_path / "empty", "b")
    assert output_mark(tmp_path / "empty").is_file()
    write_folder(tmp_path / "empty", "c")
    assert [p.name for p in (tmp_path / "empty").iterdir()] == ["c"]


def test_a_failed_write_leaves_nothing_and_keeps_the_old_output(tmp_path: Path) -> None:
    def crash() -> None:
        with atomic_path(tmp_path / "a.json") as tmp:
            tmp.write_text("half")
            raise RuntimeError("crash")

    write_file(tmp_path / "a.json", "old")
    with pytest.raises(RuntimeError):
        crash()
    assert (tmp_path / "a.json").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == [".a.json.cxr-output", "a.json"]


def test_the_work_folder_of_a_killed_run_is_cleaned_by_the_next_run(tmp_path: Path) -> None:
    stale = tmp_path / ".out.cxr-part" / "out"
    stale.mkdir(parents=True)
    (stale / "huge.npy").write_bytes(b"0" * 1000)
    old_style = tmp_path / ".out.k2j4h1.part"  # the name cxr 0.1.0 used
    old_style.mkdir()
    write_folder(tmp_path / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == [".out.cxr-output", "out"]


def _hold(target: str, started, release) -> None:
    with atomic_path(target) as tmp:
        tmp.write_text("first")
        started.set()
        release.wait(30)


def test_a_second_writer_is_told_and_the_first_one_wins(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("fork")
    started, release = ctx.Event(), ctx.Event()
    first = ctx.Process(target=_hold, args=(str(tmp_path / "x.json"), started, release))
    first.start()
    try:
        assert started.wait(30)
        with pytest.raises(OutputBusy, match="another cxr process is writing"):
            write_file(tmp_path / "x.json", "second")
    finally:
        release.set()
        first.join(30)
    assert first.exitcode == 0
    assert (tmp_path / "x.json").read_text() == "first"
    write_file(tmp_path / "x.json", "third")  # the lock is free again
    assert (tmp_path / "x.json").read_text() == "third"


def test_many_concurrent_writers_never_corrupt_the_output(tmp_path: Path) -> None:
    """Racing writers: each either writes a whole output or is refused; none crashes."""

    def race(k: int) -> None:
        deadline = time.time() + 5
        while time.time() < deadline:
            try:
                with atomic_path(tmp_path / "out") as tmp:
                    tmp.mkdir()
                    for i in range(20):
                        (tmp / f"{i}.txt").write_text(str(k))
                return
            except OutputBusy:
                time.sleep(0.001)
        os._exit(3)

    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=race, args=(k,)) for k in range(6)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(30)
    assert [p.exitcode for p in procs] == [0] * 6
    written = {f.read_text() for f in (tmp_path / "out").glob("*.txt")}
    assert len(written) == 1 and len(list((tmp_path / "out").glob("*.txt"))) == 20
    assert sorted(p.name for p in tmp_path.iterdir()) == [".out.cxr-output", "out"]

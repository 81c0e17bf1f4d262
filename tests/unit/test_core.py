"""Core contracts: atomic outputs, the index schema, the manifest, the CLI's error handling."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from cxr.cli import main
from cxr.core.atomic import atomic_path
from cxr.data.images import BadImage, probe, write_gray_png, write_rgba_png
from cxr.data.index import IngestError, Manifest, build_index, finding_column


def test_atomic_path_leaves_nothing_when_the_block_fails(tmp_path: Path) -> None:
    def generate_then_crash() -> None:
        with atomic_path(tmp_path / "out") as tmp:
            tmp.mkdir()
            (tmp / "half.png").write_bytes(b"x")
            raise RuntimeError("generator crashed")

    with pytest.raises(RuntimeError):
        generate_then_crash()
    assert list(tmp_path.iterdir()) == []


def test_atomic_path_replaces_a_folder_it_wrote(tmp_path: Path) -> None:
    target = tmp_path / "out"
    for content in ("old", "new"):
        with atomic_path(target) as tmp:
            tmp.mkdir()
            (tmp / content).write_text(content)
    assert [p.name for p in target.iterdir()] == ["new"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [".out.cxr-output", "out"]


def test_probe_reports_truncated_and_garbage_files(tmp_path: Path) -> None:
    import numpy as np

    good = tmp_path / "good.png"
    write_gray_png(good, np.zeros((32, 32), np.uint8))
    assert probe(good).mode == "L"
    rgba = tmp_path / "rgba.png"
    write_rgba_png(rgba, np.zeros((32, 32), np.uint8))
    assert probe(rgba).mode == "RGBA"
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes(good.read_bytes()[:-20])
    with pytest.raises(BadImage, match="truncated PNG"):
        probe(truncated)
    (tmp_path / "garbage.png").write_bytes(b"not an image at all")
    with pytest.raises(BadImage, match="not a readable image"):
        probe(tmp_path / "garbage.png")
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(BadImage, match="empty"):
        probe(tmp_path / "empty.png")


def test_build_index_types_columns_and_rejects_duplicate_ids() -> None:
    row = {
        "image_id": "a.png",
        "path": "images/a.png",
        "width": 8,
        "height": 8,
        "mode": "L",
        finding_column("Mass"): 1,
        "follow_up": 3,
    }
    index = build_index([row], "nih")
    assert list(index.columns[:3]) == ["dataset", "image_id", "path"]
    assert index[finding_column("Mass")].dtype == "float64"
    assert index.columns[-1] == "follow_up"
    with pytest.raises(IngestError, match=r"duplicate image ids.*a\.png"):
        build_index([row, row], "nih")


def test_manifest_counts_by_kind_and_reason() -> None:
    m = Manifest()
    m.keep("file", "a.png")
    m.skip("file", "b.png", "truncated PNG")
    m.skip("label_row", "x.csv:1", "no image file")
    assert m.counts() == {
        "file": {"kept": 1, "truncated PNG": 1},
        "label_row": {"no image file": 1},
    }
    assert list(m.to_frame().columns) == ["kind", "item", "status", "reason"]


def test_cli_names_a_missing_root_without_a_traceback(tmp_path: Path, capsys) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["ingest", "nih", "--root", str(tmp_path / "nowhere"), "--out", str(tmp_path / "i")])
    assert exit_.value.code == 2
    assert "argument --root: no such folder" in capsys.readouterr().err
    assert not (tmp_path / "i").exists()


def test_cli_rejects_an_unknown_variant(tmp_path: Path, caplog) -> None:
    assert main(["synth", "not_xray", "--out", str(tmp_path / "x"), "--variant", "zzz"]) == 1
    assert "unknown variant" in caplog.text
    assert not (tmp_path / "x").exists()


def test_index_roundtrips_through_parquet(tmp_path: Path) -> None:
    from cxr.data.index import read_index, write_index

    index = build_index(
        [{"image_id": "a", "path": "a", "width": 1, "height": 1, "mode": "L", "label": "x"}],
        "not_xray",
    )
    m = Manifest()
    m.keep("file", "a")
    summary = write_index(index, m, tmp_path / "i.parquet")
    pd.testing.assert_frame_equal(read_index(tmp_path / "i.parquet"), index)
    assert summary["images"] == 1 and (tmp_path / "i.manifest.csv").exists()
    assert (tmp_path / "i.summary.json").exists()


#: A fresh process allocates, touches and frees a 64 MB buffer 20 times, as a training step does
#: its activations: the page faults of the last 19, with glibc's defaults and after
#: keep_freed_memory().
_REFAULTS = """
import resource, sys
import numpy as np
if sys.argv[1] == "keep":
    from cxr.core.memory import keep_freed_memory
    assert keep_freed_memory()
np.ones(1 << 23)
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(19):
    np.ones(1 << 23)
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


@pytest.mark.skipif(sys.platform != "linux", reason="mallopt thresholds are glibc's")
def test_keep_freed_memory_reuses_freed_pages_instead_of_faulting_them_in_again() -> None:
    def faults(mode: str) -> int:
        cmd = [sys.executable, "-c", _REFAULTS, mode]
        return int(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout)

    assert faults("default") > 1000  # unmapped at each free, mapped and zeroed anew
    assert faults("keep") < 50  # the heap keeps the pages for the next one

"""The command line as a user meets it: no verb destroys a folder it did not write, argument
errors are one line, interrupts leave nothing behind and no process running."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

CXR = str(Path(sys.executable).parent / "cxr")


def cxr(*args: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [CXR, *args], cwd=cwd, capture_output=True, text=True, env=env, check=False, timeout=300
    )


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny ImageFolder dataset taken through synth, ingest, preprocess and split."""
    work = tmp_path_factory.mktemp("cli")
    steps = [
        ("synth", "imagefolder6", "--out", "raw", "--n", "60", "--size", "64"),
        ("ingest", "imagefolder6", "--root", "raw", "--out", "ingest/index.parquet"),
        ("preprocess", "--index", "ingest/index.parquet", "--root", "raw"),
        ("split", "--data", "pre", "--scheme-json", '{"method": "official"}'),
    ]
    extra = [(), (), ("--preset-json", '{"size": 32}', "--out", "pre"), ("--out", "s.parquet")]
    for step, more in zip(steps, extra, strict=True):
        proc = cxr(*step, *more, cwd=work)
        assert proc.returncode == 0, proc.stderr
    return work


VERBS = {
    "synth": ["synth", "not_xray", "--n", "4", "--size", "64"],
    "ingest": ["ingest", "imagefolder6", "--root", "raw"],
    "preprocess": [
        "preprocess", "--index", "ingest/index.parquet", "--root", "raw",
        "--preset-json", '{"size": 32}',
    ],
    "split": ["split", "--data", "pre", "--scheme-json", '{"method": "official"}'],
    "check-leakage": ["check-leakage", "--split", "s.parquet", "--data", "pre"],
    "duplicates": ["duplicates", "--data", "pre"],
    "gallery": ["gallery", "--panel", "x", "ingest/index.parquet", "raw"],
    "track-init": ["track-init", "--study", "s", "--stage", "t"],
}  # fmt: skip


@pytest.mark.parametrize("verb", VERBS)
def test_no_verb_replaces_a_folder_it_did_not_write(work: Path, verb: str) -> None:
    mine = work / f"mine_{verb}"
    (mine / "thesis").mkdir(parents=True)
    (mine / "thesis" / "chapter1.tex").write_text("precious")
    proc = cxr(*VERBS[verb], "--out", str(mine), cwd=work)
    assert proc.returncode == 1
    assert f"{mine}: is a folder cxr did not write" in proc.stderr
    assert (mine / "thesis" / "chapter1.tex").read_text() == "precious"
    assert "Traceback" not in proc.stderr
    assert not list(work.glob(f".mine_{verb}*"))  # no lock or work folder left


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["preprocess", "--index", "nope.parquet", "--root", "raw", "--preset-json", "{}",
          "--out", "o"], "argument --index: no such file: nope.parquet"),
        (["split", "--data", "pre", "--scheme-json", '{"method": "random", "ratio": [1, 0, 0]}',
          "--out", "o"], "argument --scheme-json: split scheme: unknown key(s) ['ratio']"),
        (["split", "--data", "pre", "--scheme-json", "{method: random}", "--out", "o"],
         "argument --scheme-json: not valid JSON"),
        (["split", "--data", "pre", "--scheme-json", '{"method": "random", "folds": "ten"}',
          "--out", "o"], "'folds' must be a number, got 'ten'"),
        (["preprocess", "--index", "ingest/index.parquet", "--root", "raw", "--preset-json",
          '{"size": 32, "step": ["resize"]}', "--out", "o"], "preset: unknown key(s) ['step']"),
        (["preprocess", "--index", "ingest/index.parquet", "--root", "raw", "--preset-json",
          '{"steps": ["resize"]}', "--out", "o"], "preset: missing key(s) ['size']"),
        (["preprocess", "--index", "ingest/index.parquet", "--root", "raw/train", "--preset-json",
          '{"size": 32}', "--workers", "0", "--out", "o"], "argument --workers: must be at least"),
        (["check-leakage", "--split", "pre", "--data", "pre", "--out", "o"],
         "argument --split: pre is a folder, not a file"),
        (["ingest", "imagefolder6", "--root", "nowhere", "--out", "o"],
         "argument --root: no such folder: nowhere"),
        (["gallery", "--panel", "x", "nowhere.parquet", "raw", "--out", "o"],
         "argument --panel: no such file: nowhere.parquet"),
        (["track-init", "--study", "a b", "--out", "o"],
         "argument --study: study 'a b': use letters"),
        (["train-summary", "--model", "pre", "--out", "o"],
         "argument --model: pre holds no run.json"),
    ],
    ids=["missing-index", "scheme-key", "bad-json", "wrong-type", "preset-key", "missing-key",
         "workers", "folder-as-file", "missing-root", "gallery-panel", "track-init-name",
         "train-summary-folder"],
)  # fmt: skip
def test_an_argument_error_is_one_line_naming_the_argument(
    work: Path, args: list[str], message: str
) -> None:
    proc = cxr(*args, cwd=work)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1, proc.stderr
    assert message in proc.stderr
    assert not (work / "o").exists()


def test_bad_input_is_one_line_and_a_traceback_only_with_verbose(work: Path) -> None:
    (work / "garbage.parquet").write_bytes(b"not parquet at all")
    args = ["check-leakage", "--split", "garbage.parquet", "--data", "pre", "--out", "o"]
    quiet = cxr(*args, cwd=work)
    assert quiet.returncode == 1
    assert "garbage.parquet: cannot read this split table" in quiet.stderr
    assert "Traceback" not in quiet.stderr
    verbose = cxr("-v", *args, cwd=work)
    assert verbose.returncode == 1
    assert "Traceback" in verbose.stderr


def children_of(pid: int) -> list[int]:
    """Live processes whose parent is ``pid``."""
    kids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid and fields[0] != "Z":
                kids.append(int(entry.name))
    return kids


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def default_sigint() -> None:
    """In the child: Ctrl-C's default action, even where pytest runs in a background job
    (which starts with SIGINT ignored, a disposition Python would keep)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start_long_synth(work: Path, out: str) -> tuple[subprocess.Popen, list[int]]:
    """A synth run with two workers, once its work folder and workers exist."""
    env = {**os.environ, "CXR_WORKERS": "2"}
    proc = subprocess.Popen(
        [CXR, "synth", "nih", "--n", "3000", "--size", "256", "--out", out],
        cwd=work, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        preexec_fn=default_sigint,
    )  # fmt: skip
    deadline = time.time() + 300  # generous: the machine may be busy
    while time.time() < deadline:
        workers = children_of(proc.pid)
        if len(workers) >= 2 and (work / f".{out}.cxr-part").exists():
            time.sleep(1.0)  # let the workers start rendering
            return proc, children_of(proc.pid)
        time.sleep(0.1)
    proc.kill()
    pytest.fail("synth did not start its workers in time")


def wait_gone(pids: list[int], seconds: float = 20) -> list[int]:
    deadline = time.time() + seconds
    while time.time() < deadline and any(alive(p) for p in pids):
        time.sleep(0.1)
    return [p for p in pids if alive(p)]


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_an_interrupt_leaves_no_output_no_work_folder_and_no_process(
    work: Path, sig: signal.Signals
) -> None:
    out = f"interrupted_{sig.name}"
    proc, workers = start_long_synth(work, out)
    proc.send_signal(sig)
    assert proc.wait(60) == 130
    assert "interrupted" in proc.stderr.read()
    assert wait_gone(workers) == []
    assert not list(work.glob(f"*{out}*")) and not list(work.glob(f".{out}*"))


@pytest.mark.slow
def test_kill_9_leaves_no_worker_and_the_next_run_cleans_up(work: Path) -> None:
    proc, workers = start_long_synth(work, "killed")
    assert workers
    proc.kill()
    proc.wait(30)
    assert wait_gone(workers) == [], "workers outlived their parent"
    assert (work / ".killed.cxr-part").exists()  # what kill -9 cannot clean up ...
    rerun = cxr("synth", "not_xray", "--n", "4", "--size", "64", "--out", "killed", cwd=work)
    assert rerun.returncode == 0, rerun.stderr
    assert not (work / ".killed.cxr-part").exists()  # ... the next run does
    assert (work / ".killed.cxr-output").exists()

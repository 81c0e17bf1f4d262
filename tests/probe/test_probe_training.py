"""The probe of `cxr train` and `cxr track-init`: bad recipes, labels that cannot be learned,
an --init that carries nothing, a broken or unreachable MLflow store, and orphan runs.

Every refusal comes before the MLflow run starts, so each case takes well under a second.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from harness import Case, check, probe_cases, run_case

from cxr import cli, tracking

NIH = "results/preprocessed/nih/tiny_eq"
NIH_SPLIT = "results/splits/nih/official.parquet"
COVID = "results/preprocessed/covid_radiography/tiny_eq"
COVID_SPLIT = "results/splits/covid_radiography/random_80_10_10.parquet"
JSRT_SPLIT = "results/splits/jsrt/cv3.parquet"
MODEL = "results/models/tiny_multilabel/main/split"
CASCADE = "results/models/tiny_cascade"
SMALLCNN_PT = "results/models/tiny_transfer/model_a/split/model.pt"
LOGREG_PT = "results/models/tiny_multiclass/logreg/split/model.pt"
#: A recipe that trains in seconds on COVID (a new study: its artifacts stay in the copy).
BASE = {
    "study": "probe",
    "stage": "s",
    "task": "multiclass",
    "architecture": "logreg",
    "input_size": 32,
    "loss": "cross_entropy",
    "epochs": 1,
    "batch_size": 16,
}
SMALLCNN = {**BASE, "architecture": "smallcnn_v1"}
NOT_STORE = r"mlflow\.db: .*move it away, or delete it if it holds no runs you need"


def recipe(**changes: object) -> str:
    """BASE with ``changes`` (a value of None drops the key) as JSON."""
    merged = {**BASE, **changes}
    return json.dumps({k: v for k, v in merged.items() if v is not None})


def train(
    *extra: str, cfg: str | None = None, data: str = COVID, split: str = COVID_SPLIT
) -> tuple[str, ...]:
    """A `cxr train` command line writing ./out."""
    cfg = recipe() if cfg is None else cfg
    return ("train", "--data", data, "--split", split, "--recipe-json", cfg, "--out", "out", *extra)


# -- setups: each writes new files only (the tree's files are hard links of the built one) ------


Change = Callable[[pd.DataFrame, pd.Series], pd.DataFrame]


def labels(change: Change, data: str = NIH, split: str = NIH_SPLIT) -> Callable[[Path], None]:
    """A setup: ./labels, the tensors of ``data`` with ``change(index, side of each row)``."""

    def setup(root: Path) -> None:
        folder = root / "labels"
        folder.mkdir()
        for name in ("images.npy", "stats.json", "manifest.csv"):
            os.link(root / data / name, folder / name)
        index = pd.read_parquet(root / data / "index.parquet")
        sides = pd.read_parquet(root / split).set_index("image_id")["split"]
        change(index, index["image_id"].map(sides)).to_parquet(folder / "index.parquet")

    return setup


def unknown(column: str, side: str | None = None) -> Change:
    """Make ``column`` unknown (NaN) on ``side`` (every side when None)."""

    def change(index: pd.DataFrame, sides: pd.Series) -> pd.DataFrame:
        rows = (sides == side).to_numpy() if side else slice(None)
        columns = [c for c in index if c.startswith("finding_")] if column == "findings" else column
        index.loc[rows, columns] = None if column == "label" else np.nan
        return index

    return change


def negative_on_train(column: str) -> Change:
    """Make ``column`` negative on the training side (known, but one class only)."""

    def change(index: pd.DataFrame, sides: pd.Series) -> pd.DataFrame:
        index.loc[(sides == "train").to_numpy(), column] = 0.0
        return index

    return change


def write(name: str, content: bytes | Callable[[Path], object]) -> Callable[[Path], None]:
    """A setup writing ./``name`` (bytes, or what ``content(path)`` writes)."""

    def setup(root: Path) -> None:
        if callable(content):
            content(root / name)
        else:
            (root / name).write_bytes(content)

    return setup


def truncated(path: Path) -> None:
    path.write_bytes((path.parent / SMALLCNN_PT).read_bytes()[:3000])


def resume_checkpoint(path: Path) -> None:
    torch.save({"fingerprint": "x", "state": {}, "model": {}, "optimizer": {}}, path)


def stats(text: str) -> Callable[[Path], None]:
    """A setup: ./labels with the COVID tensors and ``text`` as stats.json."""

    def setup(root: Path) -> None:
        labels(lambda index, _sides: index, COVID, COVID_SPLIT)(root)
        (root / "labels" / "stats.json").unlink()
        (root / "labels" / "stats.json").write_text(text)

    return setup


def replace_store(content: Callable[[Path], object]) -> Callable[[Path], None]:
    """A setup: ./mlflow.db replaced by what ``content(path)`` writes."""

    def setup(root: Path) -> None:
        (root / "mlflow.db").unlink()
        content(root / "mlflow.db")

    return setup


def half_migrated(root: Path) -> None:
    """The table an interrupted alembic migration leaves, added to the store (a copy)."""
    with contextlib.closing(sqlite3.connect(root / "mlflow.db")) as db:
        db.execute("CREATE TABLE _alembic_tmp_runs (id INTEGER)")
        db.commit()


def foreign_db(path: Path) -> None:
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.execute("CREATE TABLE notes (text TEXT)")
        db.commit()


def bad_recipe(name: str, message: str, **changes: object) -> Case:
    """A recipe refused as a usage error naming --recipe-json."""
    return Case(
        f"train-recipe-{name}",
        train(cfg=recipe(**changes)),
        rc=2,
        message=rf"argument --recipe-json: .*{message}",
    )


RECIPES = [
    bad_recipe("epochs-fraction", r"'epochs' must be a whole number >= 1, got 1\.5", epochs=1.5),
    bad_recipe("epochs-zero", r"'epochs' must be a whole number >= 1, got 0", epochs=0),
    bad_recipe("epochs-negative", r"'epochs' must be a whole number >= 1, got -3", epochs=-3),
    bad_recipe("epochs-string", r"'epochs' must be a whole number >= 1, got '10'", epochs="10"),
    bad_recipe("epochs-bool", r"'epochs' must be a whole number >= 1, got True", epochs=True),
    bad_recipe("epochs-whole-float", r"'epochs' must be a whole number", epochs=2.0),
    bad_recipe("seed-negative", r"'seed' must be a whole number in \[0, \d+\], got -1", seed=-1),
    bad_recipe("seed-fraction", r"'seed' must be a whole number", seed=0.5),
    bad_recipe("seed-too-big", r"'seed' must be a whole number in \[0, \d+\]", seed=2**64),
    bad_recipe("lr-zero", r"'lr' must be a number > 0, got 0", lr=0),
    bad_recipe("lr-negative", r"'lr' must be a number > 0, got -0\.1", lr=-0.1),
    bad_recipe("lr-string", r"'lr' must be a number > 0, got 'fast'", lr="fast"),
    bad_recipe("lr-nan", r"'lr' must be a number > 0, got nan", lr=float("nan")),
    bad_recipe("lr-infinite", r"'lr' must be a number > 0, got inf", lr=float("inf")),
    bad_recipe("weight-decay-negative", r"'weight_decay' must be a number >= 0", weight_decay=-1),
    bad_recipe("momentum-one", r"'momentum' must be a number in \[0, 1\), got 1", momentum=1),
    bad_recipe("betas-one", r"'betas' must be two numbers in \[0, 1\)", betas=[0.9]),
    bad_recipe("betas-at-one", r"'betas' must be two numbers in \[0, 1\)", betas=[0.9, 1.0]),
    bad_recipe("betas-string-item", r"'betas' must be a list of finite numbers", betas=[0.9, "a"]),
    bad_recipe("betas-not-list", r"'betas' must be a list, got 0\.9", betas=0.9),
    bad_recipe("batch-size-zero", r"'batch_size' must be a whole number >= 1", batch_size=0),
    bad_recipe("batch-size-fraction", r"'batch_size' must be a whole number", batch_size=2.5),
    bad_recipe("input-size-zero", r"'input_size' must be a whole number >= 1", input_size=0),
    bad_recipe("plateau-factor-one", r"'plateau_factor' must be a number in \(0, 1\)",
               plateau_factor=1),
    bad_recipe("plateau-patience-negative", r"'plateau_patience' must be a whole number >= 0",
               plateau_patience=-1),
    bad_recipe("early-stopping-fraction", r"'early_stopping' must be a whole number >= 0",
               early_stopping=0.5),
    bad_recipe("deterministic-string", r"'deterministic' must be true or false",
               deterministic="yes"),
    bad_recipe("augment-probability", r"augment\.hflip is a probability in \[0, 1\]",
               augment={"hflip": 2}),
    bad_recipe("augment-nan", r"augment: 'zoom' must be a finite number, got nan",
               augment={"zoom": float("nan")}),
    bad_recipe("augment-not-object", r"recipe augment must be a JSON object", augment="flip"),
    bad_recipe("augment-unknown-key", r"unknown key\(s\) \['flip'\]", augment={"flip": 1}),
    bad_recipe("unknown-key", r"unknown key\(s\) \['learning_rate'\]", learning_rate=0.1),
    bad_recipe("no-study", r"missing key\(s\) \['study'\]", study=None),
    bad_recipe("study-with-space", r"recipe study 'my study': use letters", study="my study"),
    bad_recipe("study-number", r"recipe study: a name, got 5", study=5),
    bad_recipe("stage-empty", r"recipe stage '': use letters", stage=""),
    bad_recipe("unknown-task", r"recipe task: unknown 'regression'", task="regression"),
    bad_recipe("findings-twice", r"each finding once", task="multilabel", loss="bce",
               findings=["Mass", "Mass"]),
    bad_recipe("findings-empty", r"recipe findings: a list of finding names", task="multilabel",
               loss="bce", findings=[]),
    bad_recipe("findings-not-names", r"'findings' must be a list, each item a str",
               task="multilabel", loss="bce", findings=["Mass", 3]),
    Case("train-recipe-not-object", train(cfg="[1, 2]"), rc=2, message="expected a JSON object"),
    Case("train-recipe-not-json", train(cfg="{epochs: 1}"), rc=2, message="not valid JSON"),
]  # fmt: skip

NIH_BINARY = recipe(task="binary", positive="Nodule", loss="bce", architecture="smallcnn_v1")
NIH_MULTILABEL = recipe(task="multilabel", loss="bce", findings=["Mass", "Nodule"])
UNLEARNABLE = r"labels with results/splits/nih/official\.parquet column split: "
LABELS = [
    Case(
        "train-binary-labels-all-unknown",
        train(cfg=NIH_BINARY, data="labels", split=NIH_SPLIT),
        message=UNLEARNABLE + r"no known label for Nodule among the \d+ training image",
        setup=labels(unknown("finding_Nodule")),
    ),
    Case(
        "train-binary-one-class-on-train",
        train(cfg=NIH_BINARY, data="labels", split=NIH_SPLIT),
        message=UNLEARNABLE + r"no output can be learned \(Nodule: only negative training labels",
        setup=labels(negative_on_train("finding_Nodule")),
    ),
    Case(
        "train-multilabel-one-finding-unknown-on-train",
        train(cfg=NIH_MULTILABEL, data="labels", split=NIH_SPLIT),
        message=UNLEARNABLE + r"no known label for Mass among",
        setup=labels(unknown("finding_Mass", "train")),
    ),
    Case(
        "train-multiclass-labels-unknown-on-train",
        train(data="labels"),
        message=r"no known label for .* among the \d+ training image",
        setup=labels(unknown("label", "train"), COVID, COVID_SPLIT),
    ),
    Case(
        "train-validation-labels-all-unknown",
        train(cfg=NIH_MULTILABEL, data="labels", split=NIH_SPLIT),
        message=r"none of the \d+ validation image\(s\) has a known label",
        setup=labels(unknown("findings", "val")),
    ),
    Case(
        "train-absent-finding",
        train(
            cfg=recipe(task="multilabel", loss="bce", findings=["Hernias"]),
            data=NIH,
            split=NIH_SPLIT,
        ),
        message=r"recipe findings: \['Hernias'\] not in",
    ),
    Case(
        "train-positive-neither-finding-nor-class",
        train(cfg=recipe(task="binary", positive="Nodules", loss="bce"), data=NIH, split=NIH_SPLIT),
        message=r"recipe positive: 'Nodules' is neither a finding nor a class",
    ),
    Case(
        "train-input-size-of-other-data",
        train(cfg=recipe(input_size=64)),
        message=r"recipe input_size: 64, but .* holds 32x32 images",
    ),
]

INIT_REFUSED = (
    r"--init {}: it carries only 0 of the 8 parameter tensors of the smallcnn_v1 backbone "
    r".*pass --allow-partial-init"
)
INITS = [
    Case(
        "train-init-of-another-architecture",
        train("--init", LOGREG_PT, cfg=json.dumps(SMALLCNN)),
        message=INIT_REFUSED.format(LOGREG_PT),
    ),
    Case(
        "train-init-of-another-architecture-allowed",
        train("--init", LOGREG_PT, "--allow-partial-init", cfg=json.dumps(SMALLCNN)),
        rc=0,
        message=r"WARNING .*carries only 0 of the 8 .*\(--allow-partial-init\)",
        changes=(r"^\.?out[/.]",),
    ),
    Case(
        "train-init-text-file",
        train("--init", "init.pt"),
        message=r"init\.pt: not a torch checkpoint \(torch\.save writes a zip archive",
        setup=write("init.pt", b"hello, weights\n"),
    ),
    Case(
        "train-init-empty-file",
        train("--init", "init.pt"),
        message=r"init\.pt: not a torch checkpoint \(the file is empty\)",
        setup=write("init.pt", b""),
    ),
    Case(
        "train-init-truncated",
        train("--init", "init.pt"),
        message=r"init\.pt: not a torch checkpoint \(a truncated or damaged zip archive",
        setup=write("init.pt", truncated),
    ),
    Case(
        "train-init-numpy-file",
        train("--init", f"{NIH}/images.npy"),
        message=r"images\.npy: not a torch checkpoint \(a NumPy array file\)",
    ),
    Case(
        "train-init-run-json",
        train("--init", "results/models/tiny_multiclass/logreg/split/run.json"),
        message=r"run\.json: not a torch checkpoint \(a JSON text file\)",
    ),
    Case(
        "train-init-resume-checkpoint",
        train("--init", "last.pt"),
        message=r"last\.pt: a resume checkpoint of cxr train, not a model",
        setup=write("last.pt", resume_checkpoint),
    ),
    Case(
        "train-init-not-tensors",
        train("--init", "init.pt"),
        message=r"init\.pt: not a model's weights .*not tensors: epochs",
        setup=write("init.pt", lambda p: torch.save({"epochs": 3}, p)),
    ),
    Case(
        "train-init-a-list",
        train("--init", "init.pt"),
        message=r"init\.pt: expected a dict of tensors, got list",
        setup=write("init.pt", lambda p: torch.save([torch.zeros(1)], p)),
    ),
    Case(
        "train-init-a-folder",
        train("--init", "results/models"),
        rc=2,
        message=r"argument --init: results/models is a folder",
    ),
    Case("train-init-missing", train("--init", "no.pt"), rc=2, message=r"no such file: no\.pt"),
]

INPUTS = [
    Case("train-data-not-preprocessed", train(data="results/splits"),
         message=r"results/splits: not a folder written by cxr preprocess \(no index\.parquet"),
    Case("train-stats-not-json", train(data="labels"), setup=stats("{"),
         message=r"labels/stats\.json: not the stats of cxr preprocess"),
    Case("train-stats-without-std", train(data="labels"),
         setup=stats('{"mean": 0.5}'), message=r"labels/stats\.json: not the stats"),
    Case("train-stats-zero-std", train(cfg=recipe(normalize="dataset"), data="labels"),
         setup=stats('{"mean": 0.5, "std": 0}'), message=r"std 0\.0 cannot normalise"),
    Case("train-split-column-absent", train("--split-column", "fold_7"),
         message=r"--split-column fold_7: not a split column of .*\(its split columns: split\)"),
    Case("train-split-column-not-a-split", train("--split-column", "patient_id"),
         message=r"--split-column patient_id: not a split column"),
    Case("train-split-of-another-dataset", train("--split-column", "fold_0", split=JSRT_SPLIT),
         message=r"cv3\.parquet: .*image id\(s\) not in the data"),
    Case("train-split-not-parquet", train(split=f"{COVID}/stats.json"),
         message=r"stats\.json: cannot read this split table"),
    Case("train-out-is-a-file-of-the-user", train(), setup=write("out", b"mine"),
         message=r"out: is a file cxr did not write"),
]  # fmt: skip

STORE = [
    Case("train-store-is-text", train(), setup=replace_store(lambda p: p.write_text("notes\n")),
         message=r"mlflow\.db: not an MLflow store \(not a SQLite database: .*\): move it away"),
    Case("train-store-half-migrated", train(), setup=half_migrated,
         message=r"mlflow\.db: a half-made MLflow store .*_alembic_tmp_runs"),
    Case("track-init-store-is-text", ("track-init", "--study", "a", "--out", "t.json"),
         setup=replace_store(lambda p: p.write_text("notes\n")), message=NOT_STORE),
    Case("track-init-store-of-another-program", ("track-init", "--study", "a", "--out", "t.json"),
         setup=replace_store(foreign_db),
         message=r"mlflow\.db: not an MLflow store \(a SQLite database without MLflow's table"),
    Case("track-init-store-is-a-folder", ("track-init", "--study", "a", "--out", "t.json"),
         setup=replace_store(Path.mkdir), message=r"mlflow\.db: a folder, not an MLflow store"),
    Case("track-init-bad-study", ("track-init", "--study", "my study", "--out", "t.json"), rc=2,
         message=r"argument --study: study 'my study': use letters"),
    Case("track-init-bad-stage", ("track-init", "--study", "a", "--stage", "b/c", "--out",
                                  "t.json"),
         rc=2, message=r"argument --stage: stage 'b/c': use letters"),
    Case("track-init-no-store-yet", ("track-init", "--study", "a", "--out", "t.json"), rc=0,
         setup=replace_store(lambda p: None), message=r"MLflow experiments \{'a': '1'\} ready",
         changes=(r"^\.?t\.json",)),
]  # fmt: skip

CASES = RECIPES + LABELS + INITS + INPUTS + STORE


@probe_cases(CASES)
def test_training_probe(
    case: Case, world: Path, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture
) -> None:
    check(run_case(case, world, caplog, capsys), case)


def test_an_allowed_partial_init_is_recorded_in_run_json(world: Path) -> None:
    argv = train("--init", LOGREG_PT, "--allow-partial-init", cfg=json.dumps(SMALLCNN))
    assert cli.main(list(argv)) == 0
    init = json.loads((world / "out" / "run.json").read_text())["init"]
    assert (init["backbone_carried"], init["backbone_tensors"]) == (0, 8)
    assert init["partial_init_allowed"] is True


def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize(
    "argv",
    [
        train(),
        ("track-init", "--study", "a", "--out", "t.json"),
        ("evaluate", "--predictions", f"{MODEL}/predictions/test.parquet", "--labels",
         "results/preprocessed/nih/tiny_eq/index.parquet", "--model", MODEL, "--out", "e"),
        ("cascade-evaluate", "--heldout", "results/preprocessed/cascade_heldout/tiny_eq",
         "--modules", *(f"{CASCADE}/module_{m}/split" for m in ("i", "ii", "iii")),
         "--out", "c"),
    ],
    ids=["train", "track-init", "evaluate", "cascade-evaluate"],
)  # fmt: skip
def test_an_unreachable_tracking_server_fails_in_seconds(
    world: Path,
    argv: tuple[str, ...],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    uri = f"http://127.0.0.1:{closed_port()}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    started = time.monotonic()
    assert cli.main(list(argv)) == 1
    assert time.monotonic() - started < 10
    (error,) = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert error.startswith(f"MLflow tracking server {uri} (MLFLOW_TRACKING_URI) is not reachable")
    assert not any((world / name).exists() for name in ("out", "t.json", "e", "c"))


def test_a_run_left_running_by_a_killed_job_is_marked_killed_by_its_successor(
    world: Path,
) -> None:
    from mlflow import MlflowClient

    client = MlflowClient(tracking.tracking_uri())
    experiment = client.create_experiment("probe")
    names = {"cxr.study": "probe", "cxr.stage": "s", "cxr.fold": "none", "cxr.role": "stage"}
    mine = str((world / "out").resolve())
    orphan = client.create_run(experiment, tags={**names, tracking.OUT_TAG: mine}).info.run_id
    other = str((world / "elsewhere").resolve())
    bystander = client.create_run(experiment, tags={**names, tracking.OUT_TAG: other}).info.run_id

    assert cli.main(list(train())) == 0
    new = json.loads((world / "out" / "run.json").read_text())["run_id"]
    killed = client.get_run(orphan)
    assert killed.info.status == "KILLED"
    assert killed.data.tags[tracking.REPLACED_TAG] == new
    assert client.get_run(bystander).info.status == "RUNNING"
    assert client.get_run(new).info.status == "FINISHED"

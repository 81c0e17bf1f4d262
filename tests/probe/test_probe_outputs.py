"""The probe of outputs: a verb replaces only what the same verb wrote, never one of its own
inputs, never a folder holding one, and never writes into another output of cxr."""

from __future__ import annotations

from pathlib import Path

import pytest
from harness import Case, check, probe_cases, run_case

PRE = "results/preprocessed/nih/tiny_eq"
SPLIT = "results/splits/nih/official.parquet"
MODEL = "results/models/tiny_multilabel/main/split"
EVAL = "results/evaluation/tiny_multilabel/main/split"
CAM = "results/cam/tiny_multilabel/main/split"
JSRT = "results/preprocessed/jsrt/tiny_eq"
CV3 = "results/splits/jsrt/cv3.parquet"
FOLD = "results/models/tiny_transfer/model_c/fold_0"
FOLD_EVAL = "results/evaluation/tiny_transfer/model_c/fold_{}/metrics.json"
CASCADE = "results/models/tiny_cascade/module_{}/split"
HELDOUT = "results/preprocessed/cascade_heldout/tiny_eq"
COMPARE = "results/cam_compare/tiny_transfer/model_b_vs_model_c/fold_0.png"
RECIPE = (
    '{"task": "multilabel", "architecture": "smallcnn_v1", "loss": "bce", "epochs": 1, '
    '"batch_size": 16, "input_size": 32, "study": "tiny_multilabel", "stage": "main"}'
)


def train(out: str, data: str = PRE, split: str = SPLIT) -> tuple[str, ...]:
    return ("train", "--data", data, "--split", split, "--recipe-json", RECIPE, "--out", out)


def evaluate(out: str, model: str = MODEL) -> tuple[str, ...]:
    return (
        "evaluate", "--predictions", f"{model}/predictions/test.parquet",
        "--labels", f"{PRE}/index.parquet", "--out", out,
    )  # fmt: skip


def cam(out: str, model: str = MODEL) -> tuple[str, ...]:
    return ("cam", "--model", model, "--data", PRE, "--split", SPLIT, "--out", out)


def compare(out: str) -> tuple[str, ...]:
    return (
        "cam-compare", "--model", "results/models/tiny_transfer/model_b/fold_0",
        "--model", FOLD, "--data", JSRT, "--split", CV3, "--split-column", "fold_0",
        "--out", out,
    )  # fmt: skip


def cascade(out: str) -> tuple[str, ...]:
    modules = [CASCADE.format(m) for m in ("i", "ii", "iii")]
    return ("cascade-evaluate", "--heldout", HELDOUT, "--modules", *modules, "--out", out)


def folds(out: str) -> tuple[str, ...]:
    return ("summarize-folds", *(FOLD_EVAL.format(i) for i in range(3)), "--out", out)


def mine(root: Path) -> None:
    """A folder of the user's own work."""
    (root / "thesis").mkdir()
    (root / "thesis" / "chapter1.tex").write_text("months of work")


WROTE = r"was written by cxr {}, and cxr {} replaces only its own outputs"
INPUT = r"is an input of this command"
HOLDS = r"holds .* which is an input of this command"
INSIDE = r"lies inside .*, an output of cxr {}; write beside it"

CASES = [
    # The five data losses and the duplicates figure.
    Case("train-onto-its-data", train(PRE), message=f"{PRE}: {INPUT}"),
    Case("evaluate-onto-its-model", evaluate(MODEL), message=f"{MODEL}: {HOLDS}"),
    Case("cam-onto-its-model", cam(MODEL), message=f"{MODEL}: {INPUT}"),
    Case("cam-compare-onto-a-model", compare(FOLD), message=f"{FOLD}: {INPUT}"),
    Case("cascade-evaluate-onto-module-iii", cascade(CASCADE.format("iii")), message=INPUT),
    Case(
        "duplicates-table-named-png",
        ("duplicates", "--data", PRE, "--out", "dups.png"),
        message=r"dups\.png: the table and its figure would both be written to this file",
    ),
    # Another verb's output is never replaced.
    Case("train-onto-tensors", train(JSRT), message=WROTE.format("preprocess", "train")),
    Case("train-onto-evaluation", train(EVAL), message=WROTE.format("evaluate", "train")),
    Case("evaluate-onto-tensors", evaluate(JSRT), message=WROTE.format("preprocess", "evaluate")),
    Case("evaluate-onto-a-model", evaluate(FOLD), message=WROTE.format("train", "evaluate")),
    Case("evaluate-onto-cam", evaluate(CAM), message=WROTE.format("cam", "evaluate")),
    Case("cam-onto-an-evaluation", cam(EVAL), message=WROTE.format("evaluate", "cam")),
    Case("cam-onto-another-model", cam(FOLD), message=WROTE.format("train", "cam")),
    Case("cam-compare-onto-a-cam", compare(CAM), message=WROTE.format("cam", "cam-compare")),
    Case(
        "cam-compare-onto-the-duplicates-figure",
        compare("results/duplicates/nih.png"),
        message=WROTE.format("duplicates", "cam-compare"),
    ),
    Case(
        "cascade-evaluate-onto-an-evaluation",
        cascade(EVAL),
        message=WROTE.format("evaluate", "cascade-evaluate"),
    ),
    Case(
        "summarize-folds-onto-a-model",
        folds(FOLD),
        message=WROTE.format("train", "summarize-folds"),
    ),
    Case(
        "duplicates-onto-a-split-table",
        ("duplicates", "--data", PRE, "--out", "results/splits/jsrt/cv3.csv"),
        setup=lambda root: (root / "results/splits/jsrt/cv3.csv").write_text("mine\n"),
        message=r"cv3\.csv: is a file cxr did not write",
    ),
    Case(
        "duplicates-figure-onto-a-compare-figure",
        ("duplicates", "--data", PRE, "--out", COMPARE.replace(".png", ".csv")),
        message=WROTE.format("cam-compare", "duplicates"),
    ),
    Case(
        "split-onto-another-split",
        (
            "split",
            "--data",
            JSRT,
            "--scheme-json",
            '{"method": "kfold", "folds": 3}',
            "--out",
            "results/duplicates/nih.csv",
        ),
        message=WROTE.format("duplicates", "split"),
    ),
    Case(
        "preprocess-onto-a-model",
        (
            "preprocess",
            "--index",
            "results/ingest/nih/index.parquet",
            "--root",
            "data/synthetic/nih",
            "--preset-json",
            '{"size": 32}',
            "--out",
            FOLD,
        ),
        message=WROTE.format("train", "preprocess"),
    ),
    Case(
        "synth-onto-tensors",
        ("synth", "not_xray", "--n", "4", "--size", "64", "--out", JSRT),
        message=WROTE.format("preprocess", "synth"),
    ),
    Case(
        "ingest-summary-onto-a-split",
        (
            "ingest",
            "not_xray",
            "--root",
            "data/synthetic/not_xray",
            "--out",
            "i.parquet",
            "--summary",
            "results/splits/nih/nodule_balanced.parquet",
        ),
        message=WROTE.format("split", "ingest"),
    ),
    Case(
        "train-summary-onto-a-cam-table",
        ("train-summary", "--model", MODEL, "--out", f"{CAM}/cam.json"),
        message=INSIDE.format("cam"),
    ),
    Case(
        "track-init-onto-an-evaluation",
        ("track-init", "--study", "s", "--out", "results/metrics/cascade/tiny_eq.json"),
        message=WROTE.format("cascade-sets", "track-init"),
    ),
    Case(
        "gallery-onto-an-index",
        (
            "gallery",
            "--panel",
            "n",
            "results/ingest/mura/index.parquet",
            "data/synthetic/mura",
            "--out",
            "results/ingest/nih/index.parquet",
        ),
        message=WROTE.format("ingest", "gallery"),
    ),
    # Never onto, or around, an input.
    Case("train-onto-its-split", train(SPLIT), message=INPUT),
    Case("train-onto-the-working-folder", train("."), message=f"{HOLDS}"),
    Case("train-onto-results", train("results"), message=HOLDS),
    Case("evaluate-onto-results", evaluate("results"), message=HOLDS),
    Case("cam-onto-its-split", cam(SPLIT), message=INPUT),
    Case("cam-onto-its-data", cam(PRE), message=INPUT),
    Case("duplicates-onto-its-data", ("duplicates", "--data", PRE, "--out", PRE), message=INPUT),
    Case(
        "check-leakage-onto-its-split",
        ("check-leakage", "--split", CV3, "--data", JSRT, "--out", CV3),
        message=INPUT,
    ),
    Case(
        "summarize-folds-onto-a-fold",
        folds("results/evaluation/tiny_transfer/model_c/fold_1"),
        message=HOLDS,
    ),
    Case("cascade-evaluate-onto-the-heldout-set", cascade(HELDOUT), message=INPUT),
    Case(
        "train-summary-onto-its-evaluation",
        ("train-summary", "--model", MODEL, "--evaluation", EVAL, "--out", EVAL),
        message=INPUT,
    ),
    Case(
        "report-onto-its-results",
        ("report", "--results", "results", "--out", "results"),
        message=INPUT,
    ),
    Case(
        "gallery-onto-its-root",
        (
            "gallery",
            "--panel",
            "n",
            "results/ingest/mura/index.parquet",
            "data/synthetic/mura",
            "--out",
            "data/synthetic/mura",
        ),
        message=INPUT,
    ),
    Case(
        "cascade-sets-onto-its-sources",
        (
            "cascade-sets",
            *(
                "--source",
                "not_xray",
                "results/preprocessed/not_xray/tiny_eq",
                "results/splits/not_xray/random_70_20_10.parquet",
            ),
            *(
                "--source",
                "xray_types",
                "results/preprocessed/xray_types/tiny_eq",
                "results/splits/xray_types/random_70_20_10.parquet",
            ),
            *(
                "--source",
                "mura",
                "results/preprocessed/mura/tiny_eq",
                "results/splits/mura/official.parquet",
            ),
            *("--source", "nih", "results/preprocessed/cascade_chest/tiny_eq", SPLIT),
            *("--preset", "tiny_eq", "--out-root", "results"),
        ),
        message=r"cascade_chest/tiny_eq",
    ),
    # Never into another output of cxr.
    Case("train-into-tensors", train(f"{PRE}/model"), message=INSIDE.format("preprocess")),
    Case("evaluate-into-a-model", evaluate(f"{FOLD}/eval"), message=INSIDE.format("train")),
    Case("cam-into-an-evaluation", cam(f"{EVAL}/cam"), message=INSIDE.format("evaluate")),
    Case(
        "split-into-tensors",
        (
            "split",
            "--data",
            PRE,
            "--scheme-json",
            '{"method": "official"}',
            "--out",
            f"{PRE}/split.parquet",
        ),
        message=INSIDE.format("preprocess"),
    ),
    Case(
        "report-into-a-model",
        ("report", "--results", "results", "--out", f"{FOLD}/report.md"),
        message=INSIDE.format("train"),
    ),
    Case(
        "report-html-onto-its-markdown",
        ("report", "--results", "results", "--out", "r.md", "--html", "r.md"),
        message=r"r\.md: --html names the same file as --out",
    ),
    Case(
        "ingest-summary-onto-its-index",
        (
            "ingest",
            "not_xray",
            "--root",
            "data/synthetic/not_xray",
            "--out",
            "i.parquet",
            "--summary",
            "i.parquet",
        ),
        message=r"i\.parquet: the summary, the index and its manifest need three different paths",
    ),
    # A user's own files are never replaced.
    Case("train-onto-my-folder", train("thesis"), setup=mine, message="a folder cxr did not"),
    Case("evaluate-onto-my-folder", evaluate("thesis"), setup=mine, message="did not write"),
    Case("cam-onto-my-folder", cam("thesis"), setup=mine, message="a folder cxr did not write"),
    Case("cascade-onto-my-folder", cascade("thesis"), setup=mine, message="cxr did not write"),
    Case("folds-onto-my-folder", folds("thesis"), setup=mine, message="cxr did not write"),
    Case(
        "compare-onto-the-readme",
        compare("params.yaml"),
        message=r"params\.yaml: is a file cxr did not write",
    ),
]


@probe_cases(CASES)
def test_outputs_probe(
    case: Case, world: Path, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture
) -> None:
    check(run_case(case, world, caplog, capsys), case)


def test_a_verb_still_replaces_its_own_output(
    world: Path, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture
) -> None:
    """The rule refuses other verbs' outputs, not a rerun: summarize-folds replaces its own."""
    out = "results/evaluation/tiny_transfer/model_c/folds"
    case = Case("rerun", folds(out), rc=0, message="3 fold", changes=(rf"^{out}/", r"\.folds\."))
    check(run_case(case, world, caplog, capsys), case)
    assert (world / out / "folds.json").is_file()

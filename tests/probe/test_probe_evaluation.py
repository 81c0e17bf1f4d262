"""The probe of the evaluation verbs: evaluate, summarize-folds, pool-folds, train-summary and
report, fed what a new user might give them by mistake. Each bad input ends in one line naming
the file or argument and what is wrong; nothing is written."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from harness import Case, check, probe_cases, run_case

NIH = "results/preprocessed/nih/tiny_eq/index.parquet"
NIH_SPLIT = "results/splits/nih/official.parquet"
JSRT = "results/preprocessed/jsrt/tiny_eq/index.parquet"
COVID = "results/preprocessed/covid_radiography/tiny_eq/index.parquet"
ML = "results/models/tiny_multilabel/main/split"  # multi-label NIH, official split
BIN = "results/models/tiny_transfer/model_a/split"  # binary Nodule, NIH
MC = "results/models/tiny_multiclass/logreg/split"  # multi-class COVID
FOLD = "results/models/tiny_transfer/model_b/fold_{}"  # binary Nodule, JSRT
FOLD_EVAL = "results/evaluation/tiny_transfer/model_b/fold_{}"
OTHER_STAGE_EVAL = "results/evaluation/tiny_transfer/model_c/fold_0/metrics.json"
ML_EVAL = "results/evaluation/tiny_multilabel/main/split"
MC_EVAL = "results/evaluation/tiny_multiclass/logreg/split"
FOLDS = "results/evaluation/tiny_transfer/model_b/folds"
GARBAGE = bytes(range(256)) * 4
STUDIES = '{"tiny_transfer": ["model_a", "model_x"]}'


def evaluate(predictions: str, labels: str = NIH, *more: str) -> tuple[str, ...]:
    return ("evaluate", "--predictions", predictions, "--labels", labels,
            "--resamples", "20", "--out", "out", *more)  # fmt: skip


def preds(model: str) -> str:
    return f"{model}/predictions/test.parquet"


def val_preds(model: str) -> str:
    return f"{model}/predictions/val.parquet"


def fold(i: int, name: str = "metrics.json") -> str:
    return f"{FOLD_EVAL.format(i)}/{name}"


def summarize(*files: str) -> tuple[str, ...]:
    return ("summarize-folds", *files, "--out", "folds_out")


def pool(*models: str, labels: str = JSRT) -> tuple[str, ...]:
    given = [a for m in models for a in ("--model", m)]
    return ("pool-folds", *given, "--labels", labels, "--resamples", "20", "--out", "pooled_out")


def summary(model: str = FOLD.format(0), evaluation: str = FOLD_EVAL.format(0)) -> tuple[str, ...]:
    return ("train-summary", "--model", model, "--evaluation", evaluation, "--out", "s.json")


def report(results: str = "results", *more: str) -> tuple[str, ...]:
    return ("report", "--results", results, "--logs", "logs", "--out", "report.md", *more)


# --- setups: each writes new files (or replaces a linked one by a new file) -------------------


def put(rel: str, content: bytes | str) -> Callable[[Path], None]:
    """Write ``content`` at ``rel`` (replacing, not editing, a linked file)."""

    def setup(root: Path) -> None:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.unlink(missing_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)

    return setup


def table(
    rel: str, source: str, change: Callable[[pd.DataFrame], pd.DataFrame]
) -> Callable[[Path], None]:
    """Write ``change`` of the table ``source`` at ``rel`` (.parquet or .csv)."""

    def setup(root: Path) -> None:
        frame = change(pd.read_parquet(root / source))
        if rel.endswith(".csv"):
            frame.to_csv(root / rel, index=False)
        else:
            frame.to_parquet(root / rel, index=False)

    return setup


def edited_json(rel: str, source: str, change: Callable[[dict], object]) -> Callable[[Path], None]:
    """Write ``change`` of the JSON of ``source`` at ``rel``."""

    def setup(root: Path) -> None:
        value = change(json.loads((root / source).read_text()))
        put(rel, json.dumps(value, indent=1))(root)

    return setup


def model_copy(source: str, rel: str, **files: bytes | str) -> Callable[[Path], None]:
    """A copy of the folder ``source`` at ``rel`` (linked), some files replaced."""

    def setup(root: Path) -> None:
        (root / rel).mkdir(parents=True)
        for path in (root / source).iterdir():
            if path.is_file():
                os.link(path, root / rel / path.name)
        for name, content in files.items():
            put(f"{rel}/{name.replace('_', '.', 1)}", content)(root)

    return setup


def both(*setups: Callable[[Path], None]) -> Callable[[Path], None]:
    def setup(root: Path) -> None:
        for one in setups:
            one(root)

    return setup


def fold_copy(source: str, rel: str) -> Callable[[Path], None]:
    """A copy of the fold folder ``source`` at ``rel`` (linked) under another run id: the same
    fold trained twice, as far as its files tell."""

    def setup(root: Path) -> None:
        shutil.copytree(root / source, root / rel, copy_function=os.link)
        edited_json(f"{rel}/run.json", f"{source}/run.json", lambda r: r | {"run_id": "0" * 32})(
            root
        )

    return setup


def without_best_epoch(run: dict) -> dict:
    return {k: v for k, v in run.items() if k != "best_epoch"}


def flip(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.assign(finding_Nodule=1.0 - frame["finding_Nodule"])


def unknown_findings(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.assign(**{c: np.nan for c in frame if c.startswith("finding_")})


def shifted_labels(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.assign(label=np.roll(frame["label"].to_numpy(), 1))


def as_csv(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[[c for c in frame if c.startswith("prob_") or c == "image_id"]]


def with_ghosts(frame: pd.DataFrame) -> pd.DataFrame:
    ghosts = frame.iloc[:2].assign(image_id=["ghost_1.png", "ghost_2.png"])
    return pd.concat([as_csv(frame), as_csv(ghosts)], ignore_index=True)


def renamed_output(metrics: dict) -> dict:
    return json.loads(json.dumps(metrics).replace('"Nodule"', '"Mass"'))


def reindented(metrics: dict) -> dict:
    return metrics | {"note": "the same run, written again"}


OUT = (r"^\.?out(/|$|\.cxr-output$)",)
PARTIAL = "partial.parquet"

EVALUATE = [
    # 1. predictions covering part of the side they should cover
    Case(
        "evaluate-partial-test-side",
        evaluate(PARTIAL, NIH, "--split", NIH_SPLIT),
        setup=table(PARTIAL, preds(ML), lambda f: f.iloc[3:]),
        message=r"partial\.parquet: 3 image\(s\) of .*official\.parquet: split == test are not "
        r"predicted \(e\.g\. .*--allow-partial",
    ),
    Case(
        "evaluate-partial-source-split",
        evaluate("partial.csv", NIH, "--source-split", "test"),
        setup=table("partial.csv", preds(ML), lambda f: as_csv(f).iloc[5:]),
        message=r"5 image\(s\) of source_split == test are not predicted",
    ),
    Case(
        "evaluate-partial-allowed-is-loud",
        evaluate(PARTIAL, NIH, "--split", NIH_SPLIT, "--allow-partial"),
        setup=table(PARTIAL, preds(ML), lambda f: f.iloc[3:]),
        rc=0,
        message=r"PARTIAL evaluation \(--allow-partial\)(.|\n)*PARTIAL: --allow-partial",
        changes=OUT,
    ),
    Case(
        "evaluate-a-source-split-unknown",
        evaluate("ml.csv", NIH, "--source-split", "tset"),
        setup=table("ml.csv", preds(ML), as_csv),
        message=r"source split 'tset': no image of the index has it: test, train_val",
    ),
    # 2. predicted images the labels do not know
    Case(
        "evaluate-unknown-images",
        evaluate("ghosts.csv"),
        setup=table("ghosts.csv", preds(ML), with_ghosts),
        message=r"ghosts\.csv: 2 predicted image\(s\) are not in the labels .*index\.parquet "
        r"\(e\.g\. ghost_1\.png, ghost_2\.png\)",
    ),
    Case(
        "evaluate-labels-of-another-dataset",
        evaluate(preds(FOLD.format(0)), NIH),
        message=r"fold_0/predictions/test\.parquet: no image to evaluate: none of its 3 image\(s\) "
        r"is in the labels .*nih/tiny_eq/index\.parquet: are these the labels of the predicted",
    ),
    # 3. validation predictions that hold no validation image
    Case(
        "evaluate-val-of-another-dataset",
        evaluate(preds(BIN), NIH, "--val-predictions", "jsrt_val.parquet"),
        setup=table("jsrt_val.parquet", val_preds(FOLD.format(0)), lambda f: f),
        message=r"jsrt_val\.parquet: no image to evaluate: none of its 3 image\(s\) is in the "
        r"labels",
    ),
    Case(
        "evaluate-val-is-the-test-file",
        evaluate(preds(ML), NIH, "--val-predictions", preds(ML)),
        message=r"test\.parquet: \d+ of its image\(s\) are also in .*test\.parquet \(e\.g\. .*\): "
        r"thresholds must be chosen on validation images",
    ),
    Case(
        "evaluate-val-is-the-test-file-with-split",
        evaluate(preds(ML), NIH, "--val-predictions", preds(ML), "--split", NIH_SPLIT),
        message=r"test\.parquet: no image to evaluate: none of its \d+ image\(s\) lies in "
        r".*split == val",
    ),
    Case(
        "evaluate-val-of-another-model",
        evaluate(preds(FOLD.format(0)), JSRT, "--val-predictions", val_preds(FOLD.format(1))),
        message=r"these files come from different trained models: .*fold_0.*: run \w+ .*fold_1",
    ),
    Case(
        "evaluate-youden-fallback-is-named",
        evaluate(preds(ML), NIH, "--val-predictions", val_preds(ML)),
        rc=0,
        message=r"no Youden threshold for .* 0\.5 is used instead",
        changes=OUT,
    ),
    Case(
        "evaluate-youden-without-validation",
        evaluate(preds(ML), NIH, "--threshold", "youden"),
        message=r"threshold youden: needs validation predictions \(--val-predictions\)",
    ),
    # 4. truth in the predictions that disagrees with the labels
    Case(
        "evaluate-truth-disagrees",
        evaluate("flipped.parquet"),
        setup=table("flipped.parquet", preds(BIN), flip),
        message=r"flipped\.parquet: its truth columns disagree with the labels .*index\.parquet "
        r"\(images that differ, per column: finding_Nodule: \d+\)",
    ),
    Case(
        "evaluate-truth-column-of-text",
        evaluate("words.parquet"),
        setup=table("words.parquet", preds(BIN), lambda f: f.assign(finding_Nodule="yes")),
        message=r"words\.parquet: its truth columns disagree .*finding_Nodule: \d+",
    ),
    Case(
        "evaluate-labels-with-findings-of-text",
        evaluate(preds(ML), "words.parquet"),
        setup=table("words.parquet", NIH, lambda f: f.assign(finding_Mass="yes")),
        message=r"words\.parquet: finding columns that are not 1/0/NaN numbers: \['finding_Mass'\]",
    ),
    Case(
        "evaluate-split-and-source-split",
        evaluate(preds(ML), NIH, "--split", NIH_SPLIT, "--source-split", "test"),
        message=r"--split and --source-split both say which images to cover: give one",
    ),
    Case(
        "evaluate-class-truth-disagrees",
        evaluate("shifted.parquet", COVID),
        setup=table("shifted.parquet", preds(MC), shifted_labels),
        message=r"shifted\.parquet: its truth columns disagree .*label: \d+",
    ),
    # 5. nothing left to evaluate
    Case(
        "evaluate-side-that-does-not-exist",
        evaluate(preds(ML), NIH, "--split", NIH_SPLIT, "--side", "tset"),
        message=r"official\.parquet: column 'split' has no side 'tset' "
        r"\(its sides: test, train, val\)",
    ),
    Case(
        "evaluate-split-column-that-does-not-exist",
        evaluate(preds(ML), NIH, "--split", NIH_SPLIT, "--split-column", "fold_0"),
        message=r"official\.parquet: no column fold_0 \(columns: image_id, group, patient_id, "
        r"split\)",
    ),
    Case(
        "evaluate-predictions-of-another-side",
        evaluate(val_preds(ML), NIH, "--split", NIH_SPLIT),
        message=r"val\.parquet: no image to evaluate: none of its \d+ image\(s\) lies in "
        r".*split == test",
    ),
    Case(
        "evaluate-empty-predictions",
        evaluate("empty.parquet"),
        setup=table("empty.parquet", preds(ML), lambda f: f.iloc[:0]),
        message=r"empty\.parquet: no image to evaluate: the file holds no prediction",
    ),
    Case(
        "evaluate-labels-all-unknown",
        evaluate("ours.csv", "unknown.parquet", "--source-split", "test"),
        setup=both(
            table("ours.csv", preds(ML), as_csv),
            table("unknown.parquet", NIH, unknown_findings),
        ),
        message=r"ours\.csv: no image to evaluate: none of the \d+ image\(s\) in source_split == "
        r"test has a known label",
    ),
    Case(
        "evaluate-csv-with-only-a-header",
        evaluate("header.csv"),
        setup=put("header.csv", "image_id,prob_Nodule\n"),
        message=r"header\.csv: no image to evaluate: the file holds no prediction",
    ),
    # 6. files of the wrong kind for --labels
    Case(
        "evaluate-split-table-as-labels",
        evaluate(preds(ML), NIH_SPLIT),
        message=r"official\.parquet: a split table \(give it as --split\), not an index written "
        r"by cxr ingest \(no column label",
    ),
    Case(
        "evaluate-predictions-as-labels",
        evaluate(preds(ML), val_preds(ML)),
        message=r"val\.parquet: a predictions file, not an index written by cxr ingest",
    ),
    Case(
        "evaluate-csv-as-labels",
        evaluate(preds(ML), "labels.csv"),
        setup=put("labels.csv", "image_id,label\na.png,Normal\n"),
        message=r"labels\.csv: cannot read this index \(.*\); the labels are the index\.parquet",
    ),
    Case(
        "evaluate-garbage-labels",
        evaluate(preds(ML), "index.parquet"),
        setup=put("index.parquet", GARBAGE),
        message=r"index\.parquet: cannot read this index",
    ),
    Case(
        "evaluate-empty-labels-file",
        evaluate(preds(ML), "index.parquet"),
        setup=put("index.parquet", b""),
        message=r"index\.parquet: cannot read this index",
    ),
    Case(
        "evaluate-labels-with-ids-twice",
        evaluate(preds(ML), "twice.parquet"),
        setup=table("twice.parquet", NIH, lambda f: pd.concat([f, f.iloc[:2]])),
        message=r"twice\.parquet: image ids listed twice",
    ),
    # 13. predictions of the wrong kind
    Case(
        "evaluate-garbage-predictions",
        evaluate("p.parquet"),
        setup=put("p.parquet", GARBAGE),
        message=r"p\.parquet: cannot read these predictions \(",
    ),
    Case(
        "evaluate-binary-csv-predictions",
        evaluate("p.csv"),
        setup=put("p.csv", GARBAGE),
        message=r"p\.csv: cannot read these predictions \(",
    ),
    Case(
        "evaluate-empty-csv-predictions",
        evaluate("p.csv"),
        setup=put("p.csv", ""),
        message=r"p\.csv: cannot read these predictions \(No columns to parse from file\)",
    ),
    Case(
        "evaluate-run-json-as-predictions",
        evaluate(f"{ML}/run.json"),
        message=r"run\.json: cannot read these predictions",
    ),
    Case(
        "evaluate-csv-without-an-id-column",
        evaluate("noid.csv"),
        setup=table("noid.csv", preds(ML), lambda f: as_csv(f).drop(columns="image_id")),
        message=r"noid\.csv: no image id column \(expected 'image_id' or 'Image Index'; "
        r"columns: prob_Atelectasis",
    ),
    Case(
        "evaluate-id-column-not-there",
        evaluate(preds(ML), NIH, "--id-column", "Image Index"),
        message=r"test\.parquet: no image id column \(expected 'Image Index'",
    ),
    Case(
        "evaluate-probability-above-1",
        evaluate("high.csv"),
        setup=table("high.csv", preds(ML), lambda f: as_csv(f).assign(prob_Mass=1.5)),
        message=r"high\.csv: column 'prob_Mass' has \d+ value\(s\) that are not probabilities "
        r"in \[0, 1\]",
    ),
    Case(
        "evaluate-probability-nan",
        evaluate("nan.parquet"),
        setup=table("nan.parquet", preds(ML), lambda f: f.assign(prob_Mass=np.nan)),
        message=r"nan\.parquet: column 'prob_Mass' has \d+ value\(s\) that are not probabilities",
    ),
    Case(
        "evaluate-probability-text",
        evaluate("text.csv"),
        setup=table("text.csv", preds(ML), lambda f: as_csv(f).assign(prob_Mass="high")),
        message=r"text\.csv: column 'prob_Mass' .* \(e\.g\. 'high' for image",
    ),
    Case(
        "evaluate-no-probability-column",
        evaluate("names.csv"),
        setup=put("names.csv", "image_id,cat,dog\n00000001_000.png,0.1,0.9\n"),
        message=r"names\.csv: no probability column matches a finding or class of the labels "
        r"\(columns: cat, dog",
    ),
    Case(
        "evaluate-ids-listed-twice",
        evaluate("twice.csv"),
        setup=table("twice.csv", preds(ML), lambda f: as_csv(pd.concat([f, f.iloc[:1]]))),
        message=r"twice\.csv: image ids listed twice: \{'count': 1",
    ),
    Case(
        "evaluate-binary-task-of-multilabel-predictions",
        evaluate(preds(ML), NIH, "--task", "binary"),
        message=r"test\.parquet: task binary needs one probability column",
    ),
    Case(
        "evaluate-multiclass-task-without-classes",
        evaluate(preds(ML), NIH, "--task", "multiclass"),
        message=r"test\.parquet: no probability column matches a finding or class",
    ),
    Case(
        "evaluate-val-of-other-outputs",
        evaluate(preds(ML), NIH, "--val-predictions", "val_bin.parquet"),
        setup=table("val_bin.parquet", val_preds(ML), lambda f: f[["image_id", "prob_Nodule"]]),
        message=r"val_bin\.parquet: outputs \['Nodule'\], expected \['Atelectasis'",
    ),
    Case(
        "evaluate-model-of-another-run",
        evaluate(preds(FOLD.format(0)), JSRT, "--model", FOLD.format(1)),
        message=r"these files come from different trained models: --model .*fold_1: run \w+",
    ),
    Case(
        "evaluate-unknown-paper",
        evaluate(preds(ML), NIH, "--paper", "seed999"),
        message=r"paper 'seed999': unknown \(known: seed000-model-a",
    ),
    Case(
        "evaluate-threshold-out-of-range",
        evaluate(preds(ML), NIH, "--threshold", "2"),
        rc=2,
        message=r"argument --threshold: 2: a threshold is a probability in \[0, 1\]",
    ),
    Case(
        "evaluate-predictions-folder",
        evaluate(f"{ML}/predictions"),
        rc=2,
        message=r"argument --predictions: .*predictions is a folder, not a file",
    ),
    Case(
        "evaluate-an-external-csv-of-the-official-test-list",
        evaluate("ours.csv", NIH, "--source-split", "test"),
        setup=table("ours.csv", preds(ML), as_csv),
        rc=0,
        message=r"macro AUROC .* over \d+ image\(s\)",
        changes=OUT,
    ),
]

SUMMARIZE_FOLDS = [
    # 7. the same fold more than once
    Case(
        "folds-same-file-three-times",
        summarize(fold(0), fold(0), fold(0)),
        message=r"fold_0/metrics\.json: the same fold as .*fold_0/metrics\.json \(the same "
        r"file\): each fold must be given once",
    ),
    Case(
        "folds-same-file-by-two-paths",
        summarize(fold(0), f"./{FOLD_EVAL.format(0)}/../fold_0/metrics.json", fold(1)),
        message=r"\(the same file\)",
    ),
    Case(
        "folds-a-copy-of-a-fold",
        summarize(fold(0), "copy.json", fold(1)),
        setup=lambda root: (root / "copy.json").write_bytes((root / fold(0)).read_bytes()),
        message=r"copy\.json: the same fold as .*fold_0/metrics\.json \(the same content\)",
    ),
    Case(
        "folds-the-same-model-run-twice",
        summarize(fold(0), fold(1), "again.json"),
        setup=edited_json("again.json", fold(1), reindented),
        message=r"again\.json: the same fold as .*fold_1/metrics\.json \(the same model run\)",
    ),
    # 8. what is not a fold of this stage
    Case(
        "folds-an-empty-object",
        summarize(fold(0), "empty.json"),
        setup=put("empty.json", "{}"),
        message=r"empty\.json: not a metrics\.json written by cxr evaluate",
    ),
    Case(
        "folds-a-fold-of-another-task",
        summarize(fold(0), fold(1), f"{MC_EVAL}/metrics.json"),
        message=r"logreg/split/metrics\.json: a fold of task multiclass, outputs COVID, "
        r".*unlike .*fold_0/metrics\.json \(task binary, outputs Nodule\)",
    ),
    Case(
        "folds-a-fold-of-other-outputs",
        summarize(fold(0), "mass.json"),
        setup=edited_json("mass.json", fold(1), renamed_output),
        message=r"mass\.json: a fold of task binary, outputs Mass, unlike",
    ),
    Case(
        "folds-a-fold-of-another-stage",
        summarize(fold(0), fold(1), OTHER_STAGE_EVAL),
        message=r"model_c/fold_0/metrics\.json: evaluates a model of .*models/tiny_transfer/"
        r"model_c, unlike .*fold_0/metrics\.json \(of .*models/tiny_transfer/model_b\)",
    ),
    Case(
        "folds-the-fold-summary",
        summarize(fold(0), f"{FOLDS}/folds.json"),
        message=r"folds\.json: a fold summary \(folds\.json\), not a fold's metrics\.json",
    ),
    Case(
        "folds-a-cascade-evaluation",
        summarize("results/evaluation/tiny_cascade/end_to_end/metrics.json"),
        message=r"end_to_end/metrics\.json: not a metrics\.json written by cxr evaluate",
    ),
    Case(
        "folds-a-value-that-is-not-finite",
        summarize(fold(0), "nan.json"),
        setup=edited_json("nan.json", fold(1), lambda m: m | {"auroc_macro": float("nan")}),
        message=r"nan\.json: values that are not finite numbers: auroc_macro",
    ),
    # 9. JSON that is not an object, or not JSON
    Case(
        "folds-a-json-array",
        summarize(fold(0), "list.json"),
        setup=put("list.json", "[1, 2]"),
        message=r"list\.json: holds a JSON array, not a metrics\.json written by cxr evaluate",
    ),
    Case(
        "folds-a-json-number",
        summarize(fold(0), "n.json"),
        setup=put("n.json", "3"),
        message=r"n\.json: holds a JSON int, not a metrics\.json",
    ),
    Case(
        "folds-truncated-json",
        summarize(fold(0), "cut.json"),
        setup=put("cut.json", '{"task": "binary", "auroc": {'),
        message=r"cut\.json: not valid JSON \(Expecting",
    ),
    Case(
        "folds-binary-garbage",
        summarize(fold(0), "bin.json"),
        setup=put("bin.json", GARBAGE),
        message=r"bin\.json: not a text file \(not UTF-8 at byte 128\)",
    ),
    Case(
        "folds-an-empty-file",
        summarize(fold(0), "zero.json"),
        setup=put("zero.json", b""),
        message=r"zero\.json: empty file, not JSON",
    ),
    Case(
        "folds-unknown-paper",
        ("summarize-folds", fold(0), fold(1), "--paper", "nope", "--out", "folds_out"),
        message=r"paper 'nope': unknown",
    ),
]

POOL_FOLDS = [
    Case(
        "pool-folds-of-one-stage",
        pool(*(FOLD.format(i) for i in range(3))),
        rc=0,
        message=r"3 fold\(s\): macro AUROC [\d.]+ over 9 image\(s\) -> pooled_out",
        changes=(r"^\.?pooled_out(/|$|\.cxr-output$)",),
    ),
    Case(
        "pool-folds-one-fold",
        pool(FOLD.format(0)),
        message=r"1 fold\(s\) given \(.*model_b/fold_0\): pooling needs the models of at least "
        r"two folds of one stage",
    ),
    Case(
        "pool-folds-the-same-fold-twice",
        pool(FOLD.format(0), FOLD.format(0)),
        message=r"fold_0: the same model \(run \w+\) as .*fold_0: each fold must be given once",
    ),
    Case(
        "pool-folds-of-two-stages",
        pool(FOLD.format(0), "results/models/tiny_transfer/model_c/fold_1"),
        message=r"model_c/fold_1: a model of tiny_transfer/model_c, unlike .*model_b/fold_0 "
        r"\(of tiny_transfer/model_b\): the folds of one stage are pooled",
    ),
    Case(
        "pool-folds-overlapping-test-sides",
        pool(FOLD.format(0), FOLD.format(1), "again"),
        setup=fold_copy(FOLD.format(0), "again"),
        message=r"fold_0/predictions/test\.parquet and again/predictions/test\.parquet: 3 "
        r"image\(s\) in both test sides \(e\.g\. JPC\w+\.IMG\): pooled, an image would be "
        r"tested twice",
    ),
    Case(
        "pool-folds-labels-of-another-dataset",
        pool(FOLD.format(0), FOLD.format(1), labels=NIH),
        message=r"fold_0/predictions/test\.parquet: no image to evaluate: none of its 3 image\(s\)"
        r" is in the labels",
    ),
]

TRAIN_SUMMARY = [
    # 10. the evaluation of another model
    Case(
        "summary-evaluation-of-another-fold",
        summary(FOLD.format(0), FOLD_EVAL.format(1)),
        message=r"fold_1/metrics\.json: evaluates the model of run \w+ \(.*fold_1\), not this "
        r"model's run \w+",
    ),
    Case(
        "summary-evaluation-of-another-study",
        summary(FOLD.format(0), ML_EVAL),
        message=r"main/split/metrics\.json: evaluates the model of run \w+",
    ),
    Case(
        "summary-evaluation-that-names-no-model",
        summary(FOLD.format(0), "myeval"),
        setup=edited_json(
            "myeval/metrics.json",
            fold(0),
            lambda m: {k: v for k, v in m.items() if k not in ("model", "run_id")},
        ),
        message=r"myeval/metrics\.json: names no model run, so it cannot be told to evaluate run",
    ),
    Case(
        "summary-evaluation-folder-without-metrics",
        summary(FOLD.format(0), "results/cam/tiny_transfer/model_b/fold_0"),
        message=r"cam/tiny_transfer/model_b/fold_0: holds no metrics\.json: not a folder cxr "
        r"evaluate wrote",
    ),
    Case(
        "summary-model-folder-as-evaluation",
        summary(FOLD.format(0), FOLD.format(0)),
        message=r"fold_0: holds no metrics\.json",
    ),
    Case(
        "summary-evaluation-folder-as-model",
        summary(FOLD_EVAL.format(0), FOLD_EVAL.format(0)),
        rc=2,
        message=r"argument --model: .*fold_0 holds no run\.json",
    ),
    # 12. corrupt files
    Case(
        "summary-corrupt-metrics",
        summary(FOLD.format(0), "badeval"),
        setup=put("badeval/metrics.json", '{"task": '),
        message=r"badeval/metrics\.json: not valid JSON",
    ),
    Case(
        "summary-metrics-as-a-list",
        summary(FOLD.format(0), "badeval"),
        setup=put("badeval/metrics.json", "[]"),
        message=r"badeval/metrics\.json: holds a JSON array, not a metrics\.json",
    ),
    Case(
        "summary-garbage-run-json",
        summary("m"),
        setup=model_copy(FOLD.format(0), "m", run_json=GARBAGE),
        message=r"m/run\.json: not a text file",
    ),
    Case(
        "summary-empty-run-json",
        summary("m"),
        setup=model_copy(FOLD.format(0), "m", run_json=""),
        message=r"m/run\.json: empty file, not JSON",
    ),
    Case(
        "summary-run-json-as-a-list",
        summary("m"),
        setup=model_copy(FOLD.format(0), "m", run_json="[]"),
        message=r"m/run\.json: holds a JSON array, not a run\.json written by cxr train",
    ),
    Case(
        "summary-run-json-without-best-epoch",
        summary("m"),
        setup=both(
            model_copy(FOLD.format(0), "m"),
            edited_json("m/run.json", f"{FOLD.format(0)}/run.json", without_best_epoch),
        ),
        message=r"m/run\.json: has no 'best_epoch': not a run\.json written by cxr train",
    ),
    Case(
        "summary-run-json-of-wrong-types",
        summary("m"),
        setup=both(
            model_copy(FOLD.format(0), "m"),
            edited_json(
                "m/run.json", f"{FOLD.format(0)}/run.json", lambda r: r | {"epochs_run": "x"}
            ),
        ),
        message=r"m/run\.json: epochs_run is 'x', not a number",
    ),
    Case(
        "summary-garbage-history",
        summary("m"),
        setup=model_copy(FOLD.format(0), "m", history_csv=GARBAGE),
        message=r"m/history\.csv: cannot read this training history",
    ),
    Case(
        "summary-history-without-epochs",
        summary("m"),
        setup=model_copy(FOLD.format(0), "m", history_csv="a,b\n1,2\n"),
        message=r"m/history\.csv: no column epoch: not a history\.csv written by cxr train",
    ),
]

REPORT = [
    # 11. nothing to report
    Case(
        "report-empty-results",
        report("empty"),
        setup=lambda root: (root / "empty").mkdir(),
        message=r"empty: no study found \(no model, evaluation or CAM under models, "
        r"evaluation, cam\)",
    ),
    Case(
        "report-project-root-as-results",
        report("."),
        message=r"\.: no study found .*; did you mean --results results\?",
    ),
    Case(
        "report-expected-studies-all-missing",
        report("results", "--studies-json", '{"tiny_nope": ["main"]}'),
        message=r"results: no expected stage has a model, evaluation or CAM \(missing: "
        r"tiny_nope/main; studies found: tiny_cascade",
    ),
    Case(
        "report-names-a-missing-expected-stage",
        report("results", "--studies-json", STUDIES),
        rc=0,
        message=r"missing every output of tiny_transfer/model_x",
        changes=(r"^\.?report\.md(\.cxr-output)?$",),
    ),
    Case(
        "report-studies-json-not-an-object",
        report("results", "--studies-json", "[]"),
        rc=2,
        message=r"argument --studies-json: expected a JSON object",
    ),
    # 12. a corrupt file among the thirty it reads
    Case(
        "report-garbage-run-json",
        report(),
        setup=put(f"{ML}/run.json", GARBAGE),
        message=r"models/tiny_multilabel/main/split/run\.json: not a text file",
    ),
    Case(
        "report-truncated-run-json",
        report(),
        setup=put(f"{ML}/run.json", '{"recipe": {'),
        message=r"tiny_multilabel/main/split/run\.json: not valid JSON",
    ),
    Case(
        "report-run-json-of-wrong-shape",
        report(),
        setup=put(f"{ML}/run.json", '{"recipe": [], "data": {"folder": 3}}'),
        message=r"split/run\.json: recipe, data\.folder of the wrong type",
    ),
    Case(
        "report-corrupt-headline",
        report(),
        setup=put(f"{ML_EVAL}/headline.csv", GARBAGE),
        message=r"main/split/headline\.csv: not a text file",
    ),
    Case(
        "report-headline-of-another-kind",
        report(),
        setup=put(f"{ML_EVAL}/headline.csv", "a,b\n1,2\n"),
        message=r"main/split/headline\.csv: lacks the column\(s\) metric, value",
    ),
    Case(
        "report-empty-metrics-csv",
        report(),
        setup=put(f"{ML_EVAL}/metrics.csv", ""),
        message=r"main/split/metrics\.csv: lacks the column\(s\) finding, auroc "
        r"\(columns: none \(empty file\)\)",
    ),
    Case(
        "report-corrupt-folds-json",
        report(),
        setup=put(f"{FOLDS}/folds.json", "{"),
        message=r"model_b/folds/folds\.json: not valid JSON",
    ),
    Case(
        "report-folds-json-of-another-kind",
        report(),
        setup=put(f"{FOLDS}/folds.json", '{"metrics": {"auroc_macro": 0.5}}'),
        message=r"folds/folds\.json: its metrics lack a mean each",
    ),
    Case(
        "report-binary-fold-table",
        report(),
        setup=put(f"{FOLDS}/table.md", GARBAGE),
        message=r"model_b/folds/table\.md: not a text file",
    ),
    Case(
        "report-binary-localisation",
        report(),
        setup=put("results/cam/tiny_multilabel/main/split/localisation.csv", GARBAGE),
        message=r"main/split/localisation\.csv: not a text file",
    ),
    Case(
        "report-corrupt-cascade-metrics",
        report(),
        setup=put("results/evaluation/tiny_cascade/end_to_end/metrics.json", "nope"),
        message=r"end_to_end/metrics\.json: not valid JSON",
    ),
    Case(
        "report-cascade-sets-of-another-kind",
        report(),
        setup=put("results/metrics/cascade/tiny_eq.json", '{"preset": "tiny_eq"}'),
        message=r"cascade/tiny_eq\.json: has no 'chest_fraction': not a report written by cxr "
        r"cascade-sets",
    ),
    Case(
        "report-binary-benchmark",
        report(),
        setup=put("logs/train/x.benchmark.tsv", GARBAGE),
        message=r"logs/train/x\.benchmark\.tsv: not a text file",
    ),
]

CASES = EVALUATE + SUMMARIZE_FOLDS + POOL_FOLDS + TRAIN_SUMMARY + REPORT


@probe_cases(CASES)
def test_evaluation_probe(case, world, caplog, capsys):
    check(run_case(case, world, caplog, capsys), case)

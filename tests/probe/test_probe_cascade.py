"""The probe of seed 002's cascade and of the heatmap verbs: cascade-sets, cascade-evaluate,
cam and cam-compare given missing, repeated, swapped or mismatched inputs, as a new user would.

Each bad input ends in one line naming the argument and what is wrong, never a library's bare
message; the pipeline's own command lines (and legitimate variants) still run.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from harness import Case, check, probe_cases, run_case

PRE = "results/preprocessed/{}/tiny_eq"
SOURCES = {
    "not_xray": "results/splits/not_xray/random_70_20_10.parquet",
    "xray_types": "results/splits/xray_types/random_70_20_10.parquet",
    "mura": "results/splits/mura/official.parquet",
    "nih": "results/splits/nih/official.parquet",
}
HELDOUT = PRE.format("cascade_heldout")
MODULES = tuple(f"results/models/tiny_cascade/module_{m}/split" for m in ("i", "ii", "iii"))
M1, M2, M3 = MODULES
CHEST_EVAL = "results/evaluation/tiny_cascade/module_iii/split"
NIH_MODEL = "results/models/tiny_multilabel/main/split"
MODEL_A = "results/models/tiny_transfer/model_a/split"
MODEL_B, MODEL_C = (f"results/models/tiny_transfer/{m}/fold_0" for m in ("model_b", "model_c"))
JSRT, CV3 = PRE.format("jsrt"), "results/splits/jsrt/cv3.parquet"
NIH, NIH_SPLIT = PRE.format("nih"), SOURCES["nih"]
Setup = Callable[[Path], None]


def wrote(*names: str) -> tuple[str, ...]:
    """What a successful case may write: ``names`` and the marks cxr keeps beside outputs."""
    return tuple(rf"^(\.)?{re.escape(n)}(/|$|\.cxr-output$)" for n in names)


# -- setups: they write new files (the tree's files are hard links shared by every case) -------


def copied(src: str, dst: str, *changes: Callable[[Path], object]) -> Setup:
    """A real copy of ``src`` at ``dst``, then ``changes`` applied to the copy."""

    def setup(root: Path) -> None:
        shutil.copytree(root / src, root / dst)
        for change in changes:
            change(root / dst)

    return setup


def moved(src: str, dst: str) -> Setup:
    """``src`` renamed to ``dst`` (a training folder that is gone from where run.json says)."""

    def setup(root: Path) -> None:
        (root / dst).parent.mkdir(parents=True, exist_ok=True)
        (root / src).rename(root / dst)

    return setup


def truncated(name: str) -> Callable[[Path], None]:
    def change(folder: Path) -> None:
        data = (folder / name).read_bytes()
        (folder / name).unlink()
        (folder / name).write_bytes(data[: len(data) // 3])

    return change


def removed(name: str) -> Callable[[Path], None]:
    return lambda folder: (folder / name).unlink()


def replaced(name: str, source: str) -> Callable[[Path], None]:
    """``name`` of the copy replaced by the file at ``source`` (relative to the tree's root)."""

    def change(folder: Path) -> None:
        root = next(p for p in folder.parents if (p / "results").is_dir())
        (folder / name).unlink()
        shutil.copy(root / source, folder / name)

    return change


def edited_json(name: str, edit: Callable[[dict], object]) -> Callable[[Path], None]:
    def change(folder: Path) -> None:
        data = json.loads((folder / name).read_text())
        edit(data)
        (folder / name).unlink()
        (folder / name).write_text(json.dumps(data))

    return change


def text(name: str, content: str) -> Callable[[Path], None]:
    def change(folder: Path) -> None:
        (folder / name).unlink()
        (folder / name).write_text(content)

    return change


def table(src: str, dst: str, edit: Callable[[pd.DataFrame], pd.DataFrame]) -> Setup:
    """A new split table at ``dst``: ``src`` edited."""

    def setup(root: Path) -> None:
        edit(pd.read_parquet(root / src)).to_parquet(root / dst, index=False)

    return setup


def resized(size: int) -> Callable[[Path], None]:
    def change(folder: Path) -> None:
        n = len(np.load(folder / "images.npy", mmap_mode="r"))
        (folder / "images.npy").unlink()
        np.save(folder / "images.npy", np.zeros((n, size, size), np.uint8))

    return change


def both(*setups: Setup) -> Setup:
    def setup(root: Path) -> None:
        for one in setups:
            one(root)

    return setup


def no_findings(data: dict) -> None:
    data["threshold"] = {"method": "argmax", "rule": "the class of highest probability"}


def anonymous(predictions: str) -> Callable[[dict], None]:
    """metrics.json of an evaluation recording no model: only the predictions it scored."""

    def edit(data: dict) -> None:
        data.pop("run_id", None)
        data.pop("model", None)
        data["alignment"]["predictions"] = predictions

    return edit


# -- cascade-sets -------------------------------------------------------------------------------


def sets(*sources: tuple[str, ...], preset: str = "tiny_eq", more: tuple[str, ...] = ()) -> tuple:
    """cascade-sets of ``sources`` (NAME, or NAME DATA SPLIT) into ./o."""
    argv: list[str] = ["cascade-sets"]
    for source in sources:
        name, *given = source
        argv += ["--source", name, *(given or (PRE.format(name), SOURCES[name]))]
    return (*argv, "--preset", preset, "--out-root", "o", *more)


ALL = tuple((name,) for name in SOURCES)
BUT = {name: tuple(s for s in ALL if s[0] != name) for name in SOURCES}

SETS_CASES = [
    Case(
        "cascade-sets-pipeline-command",
        sets(*ALL, more=("--chest-fraction", "0.5", "--seed", "7")),
        rc=0,
        message=r"held-out set and module sets",
        changes=wrote("o"),
    ),
    *(
        Case(
            f"cascade-sets-without-{name}",
            sets(*BUT[name]),
            message=rf"--source: the cascade also needs {name} \(",
        )
        for name in ("mura", "nih", "not_xray")
    ),
    Case("cascade-sets-one-source", sets(("nih",)), message=r"also needs not_xray .*; mura"),
    Case(
        "cascade-sets-unknown-source",
        sets(*BUT["nih"], ("NIH", NIH, NIH_SPLIT)),
        message=r"--source NIH: not a source of the cascade; it takes not_xray, xray_types, mura",
    ),
    Case(
        "cascade-sets-extra-dataset",
        sets(*ALL, ("jsrt", JSRT, CV3)),
        message=r"--source jsrt: not a source of the cascade",
    ),
    Case(
        "cascade-sets-source-twice",
        sets(*ALL, ("nih",)),
        message=r"--source nih .*: the same dataset as --source nih",
    ),
    Case(
        "cascade-sets-one-folder-under-two-names",
        sets(*BUT["mura"], ("mura", NIH, NIH_SPLIT)),
        message=r"--source mura results/preprocessed/nih/tiny_eq: the same folder as --source nih",
    ),
    Case(
        "cascade-sets-swapped-sources",
        sets(
            ("not_xray", NIH, NIH_SPLIT),
            ("xray_types",),
            ("mura",),
            ("nih", PRE.format("not_xray"), SOURCES["not_xray"]),
        ),
        message=r"--source not_xray results/preprocessed/nih/tiny_eq: holds nih images",
    ),
    Case(
        "cascade-sets-swapped-splits",
        sets(
            *BUT["nih"][:2], ("mura", PRE.format("mura"), NIH_SPLIT), ("nih", NIH, SOURCES["mura"])
        ),
        message=r"official\.parquet is not a split of results/preprocessed/mura/tiny_eq",
    ),
    Case(
        "cascade-sets-cascade-set-as-source",
        sets(
            *BUT["nih"],
            ("nih", PRE.format("cascade_chest"), "results/splits/cascade_chest/heldout.parquet"),
        ),
        message=r"--source nih results/preprocessed/cascade_chest/tiny_eq: holds cascade_chest",
    ),
    Case(
        "cascade-sets-wrong-preset-name",
        sets(*ALL, preset="tiny_pad"),
        message=r"--preset tiny_pad: --source not_xray .* is a folder of preset 'tiny_eq'",
    ),
    Case(
        "cascade-sets-one-source-of-another-preset",
        sets(*BUT["mura"], ("mura", "results/preprocessed/mura/tiny_pad", SOURCES["mura"])),
        message=r"--source mura .*mura/tiny_pad is a folder of preset 'tiny_pad'",
    ),
    Case(
        "cascade-sets-other-size-under-the-preset-name",
        sets(*BUT["mura"], ("mura", "pad/tiny_eq", SOURCES["mura"])),
        message=r"--source mura pad/tiny_eq is a folder of preset 'tiny_pad' \(its stats\.json\)",
        setup=copied("results/preprocessed/mura/tiny_pad", "pad/tiny_eq"),
    ),
    Case(
        "cascade-sets-other-preprocessing-same-size",
        sets(*BUT["nih"], ("nih", "clahe/tiny_eq", NIH_SPLIT)),
        message=r"differ in preprocessing \(not_xray, xray_types, mura: .*; nih: .*steps "
        r"\['clahe', 'resize'\]\); use one preset",
        setup=copied(
            NIH,
            "clahe/tiny_eq",
            edited_json("stats.json", lambda s: s["preset"].update(steps=["clahe", "resize"])),
        ),
    ),
    Case(
        "cascade-sets-split-without-split-column",
        sets(*BUT["nih"], ("nih", NIH, "folds.parquet")),
        message=r"folds\.parquet: no column split \(columns: image_id, group, patient_id, fold_0",
        setup=table(NIH_SPLIT, "folds.parquet", lambda t: t.rename(columns={"split": "fold_0"})),
    ),
    Case(
        "cascade-sets-split-listing-an-image-twice",
        sets(*BUT["nih"], ("nih", NIH, "twice.parquet")),
        message=r"twice\.parquet: image id '.+' is listed twice",
        setup=table(NIH_SPLIT, "twice.parquet", lambda t: pd.concat([t, t.iloc[:1]])),
    ),
    Case(
        "cascade-sets-split-missing-images",
        sets(*BUT["nih"], ("nih", NIH, "part.parquet")),
        message=r"part\.parquet: no side for image\(s\) .* is it the split of nih",
        setup=table(NIH_SPLIT, "part.parquet", lambda t: t.iloc[3:]),
    ),
    Case(
        "cascade-sets-source-without-test-side",
        sets(*BUT["nih"], ("nih", NIH, "train.parquet")),
        message=r"train\.parquet: no test image of nih to hold out",
        setup=table(NIH_SPLIT, "train.parquet", lambda t: t.assign(split="train")),
    ),
    Case(
        "cascade-sets-no-such-data",
        sets(*BUT["nih"], ("nih", "nowhere/tiny_eq", NIH_SPLIT)),
        message=r"--source nih nowhere/tiny_eq .*: no such folder nowhere/tiny_eq",
    ),
    Case(
        "cascade-sets-no-such-split",
        sets(*BUT["nih"], ("nih", NIH, "nowhere.parquet")),
        message=r"--source nih .* nowhere\.parquet: no such split table nowhere\.parquet",
    ),
    Case(
        "cascade-sets-chest-fraction-zero",
        sets(*ALL, more=("--chest-fraction", "0")),
        message=r"--chest-fraction must be in \(0, 1\], got 0$",
    ),
]


# -- cascade-evaluate ---------------------------------------------------------------------------


def evaluate(*modules: str, heldout: str = HELDOUT, chest: str | None = CHEST_EVAL) -> tuple:
    argv = ("cascade-evaluate", "--heldout", heldout, "--modules", *modules, "--out", "e")
    return (*argv, "--chest-evaluation", chest) if chest else argv


def module_case(
    name: str, modules: tuple[str, ...], message: str, setup: Setup | None = None
) -> Case:
    return Case(f"cascade-evaluate-{name}", evaluate(*modules), message=message, setup=setup)


EVALUATE_CASES = [
    Case(
        "cascade-evaluate-pipeline-command",
        (*evaluate(*MODULES), "--summary", "s.json"),
        rc=0,
        message=r"cascade on \d+ held-out images",
        changes=wrote("e", "s.json"),
    ),
    module_case(
        "module-ii-as-iii",
        (M1, M2, M2),
        r"--modules position 3 \(Module III\) .*module_ii/split: is a multi-class model of "
        r"ankle, .* trained on cascade_type; Module III is a multi-label model",
    ),
    module_case(
        "module-i-as-ii", (M1, M1, M3), r"position 2 \(Module II\) .*trained on cascade_xray"
    ),
    module_case("modules-reversed", (M3, M2, M1), r"position 1 \(Module I\) .*module_iii/split"),
    module_case(
        "same-folder-thrice", (M1, M1, M1), r"position 2 \(Module II\) .*module_i/split: is a"
    ),
    module_case(
        "nih-model-as-module-iii",
        (M1, M2, NIH_MODEL),
        r"position 3 \(Module III\) .*main/split: is a multi-label model of .* trained on nih;",
    ),
    module_case(
        "six-class-model-as-module-i",
        ("results/models/tiny_multiclass/smallcnn/split", M2, M3),
        r"position 1 \(Module I\) .*: is a multi-class model of Covid-19, .* imagefolder6",
    ),
    module_case(
        "module-without-weights",
        ("m1", M2, M3),
        r"m1: no model\.pt; is it a folder of cxr train\?",
        setup=copied(M1, "m1", removed("model.pt")),
    ),
    module_case(
        "truncated-weights",
        (M1, M2, "m3"),
        r"m3/model\.pt: not a readable checkpoint .*truncated",
        setup=copied(M3, "m3", truncated("model.pt")),
    ),
    module_case(
        "weights-of-another-model",
        ("m1", M2, M3),
        r"m1/model\.pt does not fit m1/model\.json \(smallcnn_v1, 2 output\(s\)\): size "
        r"mismatch for .*\]\); are they the weights of another model\?",
        setup=copied(M1, "m1", replaced("model.pt", f"{M2}/model.pt")),
    ),
    module_case(
        "garbage-model-card",
        (M1, "m2", M3),
        r"m2/model\.json: not valid JSON",
        setup=copied(M2, "m2", text("model.json", "{oops")),
    ),
    Case(
        "cascade-evaluate-not-a-train-folder",
        evaluate(M1, M2, HELDOUT),
        rc=2,
        message=r"holds no run\.json: it is not a folder cxr train wrote",
    ),
    Case("cascade-evaluate-two-modules", evaluate(M1, M2), rc=2, message=r"--modules"),
    Case(
        "cascade-evaluate-heldout-of-a-dataset",
        evaluate(*MODULES, heldout=NIH),
        message=r"--heldout results/preprocessed/nih/tiny_eq: holds nih, not the held-out set",
    ),
    Case(
        "cascade-evaluate-module-set-as-heldout",
        evaluate(*MODULES, heldout=PRE.format("cascade_xray")),
        message=r"--heldout .*cascade_xray/tiny_eq: holds cascade_xray, not the held-out set",
    ),
    Case(
        "cascade-evaluate-heldout-of-another-size",
        evaluate(*MODULES, heldout="h/tiny_pad"),
        message=r"position 1 \(Module I\) .*: takes 32x32 images but --heldout h/tiny_pad holds "
        r"24x24",
        setup=copied(HELDOUT, "h/tiny_pad", resized(24)),
    ),
    Case(
        "cascade-evaluate-no-such-heldout",
        evaluate(*MODULES, heldout="nowhere"),
        rc=2,
        message=r"no such folder: nowhere",
    ),
    Case(
        "cascade-evaluate-chest-evaluation-of-another-model",
        evaluate(*MODULES, chest="results/evaluation/tiny_multilabel/main/split"),
        message=r"--chest-evaluation .*main/split: evaluates MLflow run \w+, not Module III's",
    ),
    Case(
        "cascade-evaluate-chest-evaluation-of-module-i",
        evaluate(*MODULES, chest="results/evaluation/tiny_cascade/module_i/split"),
        message=r"--chest-evaluation .*module_i/split: evaluates MLflow run \w+, not Module III",
    ),
    Case(
        "cascade-evaluate-chest-evaluation-of-unnamed-predictions",
        evaluate(*MODULES, chest="ce"),
        message=r"--chest-evaluation ce: evaluates elsewhere/test\.parquet, not Module III's",
        setup=copied(
            CHEST_EVAL, "ce", edited_json("metrics.json", anonymous("elsewhere/test.parquet"))
        ),
    ),
    Case(
        "cascade-evaluate-chest-evaluation-by-predictions-path",
        evaluate(*MODULES, chest="ce"),
        rc=0,
        message=r"cascade on \d+ held-out images",
        setup=copied(
            CHEST_EVAL,
            "ce",
            edited_json("metrics.json", anonymous(f"{M3}/predictions/test.parquet")),
        ),
        changes=wrote("e"),
    ),
    Case(
        "cascade-evaluate-chest-evaluation-without-thresholds",
        evaluate(*MODULES, chest="ce"),
        message=r"ce/metrics\.json: holds no per-finding thresholds \(method argmax\)",
        setup=copied(CHEST_EVAL, "ce", edited_json("metrics.json", no_findings)),
    ),
    Case(
        "cascade-evaluate-chest-evaluation-missing-a-threshold",
        evaluate(*MODULES, chest="ce"),
        message=r"ce/metrics\.json: no threshold for Nodule",
        setup=copied(
            CHEST_EVAL,
            "ce",
            edited_json("metrics.json", lambda m: m["threshold"]["values"].pop("Nodule")),
        ),
    ),
    Case(
        "cascade-evaluate-chest-evaluation-not-an-evaluation",
        evaluate(*MODULES, chest="results/splits"),
        message=r"--chest-evaluation results/splits: no metrics\.json",
    ),
    Case(
        "cascade-evaluate-chest-evaluation-garbage",
        evaluate(*MODULES, chest="ce"),
        message=r"ce/metrics\.json: not valid JSON",
        setup=copied(CHEST_EVAL, "ce", text("metrics.json", "[1, 2")),
    ),
]


# -- cam and cam-compare ------------------------------------------------------------------------


def cam(model: str, data: str = NIH, split: str = NIH_SPLIT, *more: str) -> tuple:
    return ("cam", "--model", model, "--data", data, "--split", split, "--out", "c", *more)


def compare(*models: str, data: str = JSRT, split: str = CV3, more: tuple = ()) -> tuple:
    argv: list[str] = ["cam-compare"]
    for model in models:
        argv += ["--model", model]
    return (*argv, "--data", data, "--split", split, "--split-column", "fold_0", "--out",
            "x.png", "--images", "2", *more)  # fmt: skip


FOLD0 = ("--split-column", "fold_0")
CAM_CASES = [
    Case(
        "cam-model-of-another-dataset",
        cam(NIH_MODEL, JSRT, CV3, *FOLD0),
        message=r"--data results/preprocessed/jsrt/tiny_eq holds jsrt images but "
        r"results/models/tiny_multilabel/main/split was trained on nih",
    ),
    Case(
        "cam-module-on-the-heldout-set",
        cam(M1, HELDOUT, "results/splits/cascade_xray/heldout.parquet"),
        message=r"holds cascade_heldout images but .*module_i/split was trained on cascade_xray",
    ),
    Case(
        "cam-another-preprocess-of-the-same-dataset",
        cam(MODEL_B, "copy/jsrt", CV3, *FOLD0, "--top-k", "9"),
        rc=0,
        message=r"maps of 3 image\(s\) -> c",
        setup=copied(JSRT, "copy/jsrt"),
        changes=wrote("c"),
    ),
    Case(
        "cam-training-folder-moved-same-tensor",
        cam(MODEL_B, "moved/jsrt", CV3, *FOLD0),
        rc=0,
        message=r"maps of 3 image\(s\) -> c",
        setup=moved(JSRT, "moved/jsrt"),
        changes=wrote("c"),
    ),
    Case(
        "cam-training-folder-moved-other-images",
        cam(MODEL_B, "other", CV3, *FOLD0),
        message=r"--data other: .*model_b/fold_0 was trained on results/preprocessed/jsrt/tiny_eq, "
        r"which is gone, and these are not its images",
        setup=both(moved(JSRT, "moved/jsrt"), copied("moved/jsrt", "other", resized(32))),
    ),
    Case(
        "cam-other-size",
        cam(MODEL_B, "results/preprocessed/jsrt/tiny_pad", CV3, *FOLD0),
        message=r"--data results/preprocessed/jsrt/tiny_pad holds 24x24 images but "
        r".*model_b/fold_0 takes 32x32",
    ),
    Case(
        "cam-split-of-another-dataset",
        cam(NIH_MODEL, NIH, CV3),
        message=r"cv3\.parquet: no column split",
    ),
    Case(
        "cam-split-column-of-another-dataset",
        cam(MODEL_B, JSRT, NIH_SPLIT),
        message=r"official\.parquet is not a split of results/preprocessed/jsrt/tiny_eq",
    ),
    Case(
        "cam-no-such-split-column",
        cam(NIH_MODEL, NIH, NIH_SPLIT, "--split-column", "fold_9"),
        message=r"official\.parquet: no column fold_9 \(columns: image_id, group",
    ),
    Case(
        "cam-side-without-images",
        cam(NIH_MODEL, NIH, "train.parquet"),
        message=r"train\.parquet: column split puts no image of .* in test \(its sides: train\)",
        setup=table(NIH_SPLIT, "train.parquet", lambda t: t.assign(split="train")),
    ),
    Case(
        "cam-unknown-side",
        cam(NIH_MODEL, NIH, NIH_SPLIT, "--side", "validation"),
        message=r"side must be one of train, val, test, got 'validation'",
    ),
    Case(
        "cam-truncated-weights",
        cam("m", NIH, NIH_SPLIT),
        message=r"m/model\.pt: not a readable checkpoint .*truncated",
        setup=copied(NIH_MODEL, "m", truncated("model.pt")),
    ),
    Case(
        "cam-empty-weights",
        cam("m", NIH, NIH_SPLIT),
        message=r"m/model\.pt: not a readable checkpoint",
        setup=copied(NIH_MODEL, "m", text("model.pt", "")),
    ),
    Case(
        "cam-without-weights",
        cam("m", NIH, NIH_SPLIT),
        message=r"m: no model\.pt; is it a folder of cxr train\?",
        setup=copied(NIH_MODEL, "m", removed("model.pt")),
    ),
    Case(
        "cam-garbage-run-record",
        cam("m", NIH, NIH_SPLIT),
        message=r"m/run\.json: not valid JSON",
        setup=copied(NIH_MODEL, "m", text("run.json", "{")),
    ),
    Case(
        "cam-not-a-train-folder",
        cam("results/cam/tiny_multilabel/main/split"),
        rc=2,
        message=r"holds no run\.json",
    ),
    Case(
        "compare-model-of-another-dataset",
        compare(MODEL_B, MODEL_A, more=("--label", "b", "--label", "a")),
        message=r"--data .*jsrt/tiny_eq holds jsrt images but .*model_a/split was trained on nih",
    ),
    Case(
        "compare-multilabel-model-of-another-dataset",
        compare(MODEL_B, NIH_MODEL, more=("--output", "Nodule")),
        message=r"holds jsrt images but .*tiny_multilabel/main/split was trained on nih",
    ),
    Case(
        "compare-models-of-different-outputs",
        compare(MODEL_B, M1),
        message=r"name the output whose heatmaps are compared \(--output\); outputs: .*fold_0: "
        r"Nodule; .*module_i/split: not_xray, xray",
    ),
    Case(
        "compare-same-model-twice",
        compare(MODEL_B, MODEL_B),
        message=r"--model .*model_b/fold_0 is given twice",
    ),
    Case(
        "compare-same-label-twice",
        compare(MODEL_B, MODEL_C, more=("--label", "m", "--label", "m")),
        message=r"--label 'm' is given twice",
    ),
    Case(
        "compare-output-not-a-class",
        compare(MODEL_B, MODEL_C, more=("--output", "Mass")),
        message=r"model_b/fold_0 has no output 'Mass' \(has Nodule\)",
    ),
    Case(
        "compare-labels-miscounted",
        compare(MODEL_B, MODEL_C, more=("--label", "b")),
        rc=2,
        message=r"1 --label for 2 --model",
    ),
    Case(
        "compare-truncated-weights",
        compare(MODEL_B, "m"),
        message=r"m/model\.pt: not a readable checkpoint",
        setup=copied(MODEL_C, "m", truncated("model.pt")),
    ),
    Case(
        "compare-split-of-another-dataset",
        compare(MODEL_B, MODEL_C, split=NIH_SPLIT),
        message=r"official\.parquet: no column fold_0",
    ),
    Case(
        "compare-other-size",
        compare(MODEL_B, MODEL_C, data="results/preprocessed/jsrt/tiny_pad"),
        message=r"holds 24x24 images but .*model_b/fold_0 takes 32x32",
    ),
    Case(
        "compare-default-titles-that-repeat",
        compare(MODEL_B, MODEL_C),
        rc=0,
        message=r"2 model\(s\) on 2 image\(s\) -> x\.png",
        changes=wrote("x.png"),
    ),
]


@probe_cases(SETS_CASES + EVALUATE_CASES + CAM_CASES)
def test_cascade_probe(
    case: Case, world: Path, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture
) -> None:
    check(run_case(case, world, caplog, capsys), case)

"""Training: every task and loss learns and writes its outputs, every architecture and transfer
mode trains, stages carry layers, a killed run resumes to the same weights, checkpoints holding
code are refused, bad recipes fail in one line, and two data-parallel processes match one."""

from __future__ import annotations

import json
import logging
import os
import pathlib
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from cxr import cli
from cxr.data.index import build_index
from cxr.data.preprocess import INDEX_FILE, STATS_FILE, TENSOR_FILE
from cxr.training import augment, engine, loop
from cxr.training.checkpoint import RESUME_FILE, load_plain, resume_folder
from cxr.training.data import Prefetcher, TensorBatches
from cxr.training.losses import MaskedLoss
from cxr.training.recipe import Recipe

BIN = Path(sys.executable).parent
CLASSES = ("a", "b", "c")


def write_data(folder: Path, n: int = 60, size: int = 32, seed: int = 0) -> Path:
    """A preprocessed folder + split.parquet beside it with learnable labels: a bright square
    top-left for Nodule, one bottom-right for Mass (unknown for every 7th image), a bright
    bar whose height gives the class."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 60, (n, size, size)).astype(np.uint8)
    nodule, mass, cls = rng.random(n) < 0.5, rng.random(n) < 0.5, rng.integers(0, 3, n)
    q = size // 4
    for i in range(n):
        if nodule[i]:
            images[i, 2 : 2 + q, 2 : 2 + q] = 230
        if mass[i]:
            images[i, -2 - q : -2, -2 - q : -2] = 200
        top = 2 + cls[i] * (size // 3)
        images[i, top : top + 3, q + 2 : -q - 2] = 250
    mass_label = mass.astype(float)
    mass_label[::7] = np.nan
    ids = [f"img{i:03d}.png" for i in range(n)]
    rows = [
        {
            "image_id": ids[i],
            "path": ids[i],
            "patient_id": str(i),
            "width": size,
            "height": size,
            "mode": "L",
            "label": CLASSES[cls[i]],
            "finding_Nodule": float(nodule[i]),
            "finding_Mass": mass_label[i],
        }
        for i in range(n)
    ]
    folder.mkdir(parents=True)
    np.save(folder / TENSOR_FILE, images)
    build_index(rows, "nih").to_parquet(folder / INDEX_FILE, index=False)
    stats = {"mean": float(images.mean() / 255), "std": float(images.std() / 255)}
    (folder / STATS_FILE).write_text(json.dumps(stats))
    side = np.array(["train"] * n, dtype=object)
    side[1::5], side[3::5] = "val", "test"
    fold = np.roll(side, 1)
    split = pd.DataFrame(
        {"image_id": ids, "group": ids, "patient_id": ids, "split": side, "fold_0": fold}
    )
    split.to_parquet(folder.parent / "split.parquet", index=False)
    return folder


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A private MLflow store for the module (its tables created once, before any run)."""
    root = tmp_path_factory.mktemp("mlflow")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{root}/mlflow.db")
        mp.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
        mp.chdir(root)
        from cxr import tracking

        tracking.prepare_store(["test"])
        yield root


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_data(tmp_path_factory.mktemp("train") / "data")


@pytest.fixture(scope="module")
def few(tmp_path_factory: pytest.TempPathFactory) -> dict[int, Path]:
    """Ten images (6 train, 2 val, 2 test) at 32 and 64 px."""
    return {s: write_data(tmp_path_factory.mktemp(f"few{s}") / "data", 10, s) for s in (32, 64)}


def recipe(**cfg: object) -> Recipe:
    base = {"study": "test", "architecture": "logreg", "input_size": 32, "batch_size": 8}
    return Recipe.from_dict({**base, "epochs": 3, **cfg})


def run(data: Path, out: Path, init: Path | None = None, column: str = "split", **cfg) -> dict:
    return engine.train(data, data.parent / "split.parquet", column, recipe(**cfg), out, init)


def weights(folder: Path) -> dict[str, torch.Tensor]:
    return torch.load(folder / "model.pt", weights_only=True)


TASKS = {
    "multilabel-bce": {"task": "multilabel", "loss": "bce"},
    "multilabel-weighted": {"task": "multilabel", "loss": "weighted_bce", "findings": ["Mass"]},
    "multilabel-per-label": {"task": "multilabel", "loss": "label_weighted_bce"},
    "binary-finding": {"task": "binary", "positive": "Nodule", "loss": "weighted_bce"},
    "binary-class": {"task": "binary", "positive": "b", "loss": "bce"},
    "multiclass": {"task": "multiclass", "loss": "cross_entropy"},
    "multiclass-weighted": {"task": "multiclass", "loss": "weighted_cross_entropy"},
}
OUTPUTS = {
    "multilabel-weighted": ["Nodule", "Mass"][1:],
    "binary-finding": ["Nodule"],
    "binary-class": ["b"],
    "multiclass": list(CLASSES),
    "multiclass-weighted": list(CLASSES),
}


@pytest.mark.parametrize("name", TASKS)
def test_each_task_and_loss_learns_and_writes_its_outputs(
    store: Path, data: Path, tmp_path: Path, name: str
) -> None:
    cfg = TASKS[name]
    summary = run(data, tmp_path / "out", **cfg, epochs=4, lr=3e-3, augment={"hflip": 0.5})
    out = tmp_path / "out"
    history = pd.read_csv(out / "history.csv")
    assert history["train_loss"].iloc[-1] < history["train_loss"].iloc[0]
    metric = "val_accuracy" if cfg["task"] == "multiclass" else "val_auroc"
    assert list(history.columns) == [
        *["epoch", "train_loss", "val_loss", metric, "lr", "seconds", "data_wait_share"]
    ]
    outputs = OUTPUTS.get(name, ["Nodule", "Mass"])
    card = json.loads((out / "model.json").read_text())
    assert card["output_names"] == outputs
    assert card["outputs"] == len(outputs)
    assert set(weights(out)) == {"1.weight", "1.bias"}  # logreg: flatten, linear
    truth = ["label"] if cfg["task"] == "multiclass" or name == "binary-class" else []
    truth = truth or [f"finding_{o}" for o in outputs]
    for side, n in (("val", 12), ("test", 12)):
        predictions = pd.read_parquet(out / "predictions" / f"{side}.parquet")
        assert list(predictions.columns) == ["image_id", *[f"prob_{o}" for o in outputs], *truth]
        assert len(predictions) == n
        probs = predictions[[f"prob_{o}" for o in outputs]].to_numpy()
        assert ((probs >= 0) & (probs <= 1)).all()
        if cfg["task"] == "multiclass":
            np.testing.assert_allclose(probs.sum(1), 1, rtol=1e-5)
    written = json.loads((out / "run.json").read_text())
    assert written == json.loads(json.dumps(summary))
    assert written["data"]["tensor_digest"].startswith("blake2b:")
    assert written["recipe"]["loss"] == cfg["loss"]
    assert not resume_folder(out).exists()


def test_keep_last_saves_the_last_epoch_and_best_the_lowest_validation_loss(
    store: Path, data: Path, tmp_path: Path
) -> None:
    cfg = {"task": "multilabel", "loss": "bce", "epochs": 4, "lr": 0.5}  # a rate that overshoots
    kept = {}
    for keep in ("best", "last"):
        summary = run(data, tmp_path / keep, keep=keep, **cfg)
        history = pd.read_csv(tmp_path / keep / "history.csv")
        kept[keep] = (summary["best_epoch"], int(history["val_loss"].idxmin()))
    assert kept["last"][0] == 3
    assert kept["best"][0] == kept["best"][1]
    assert torch.equal(*(weights(tmp_path / k)["1.weight"] for k in ("best", "last"))) == (
        kept["best"][0] == 3
    )


def test_the_mlflow_run_holds_params_and_epoch_metrics(
    store: Path, data: Path, tmp_path: Path
) -> None:
    import mlflow

    summary = run(data, tmp_path / "out", epochs=2, stage="stage_x")
    client = mlflow.MlflowClient()
    logged = client.get_run(summary["run_id"])
    assert logged.data.params["loss"] == "bce"
    val_loss = [k for k in logged.data.metrics if k.endswith("val_loss")]
    assert val_loss, logged.data.metrics
    assert len(client.get_metric_history(summary["run_id"], val_loss[0])) == 2


ARCHITECTURE_MODES = [
    ("densenet121", "frozen", 32),
    ("resnet50", "last_blocks", 32),
    ("alexnet", "full", 64),
    ("vgg19_bn", "last_blocks", 32),
    ("smallcnn_v1", "full", 32),
    ("smallcnn_v2", "frozen", 32),
    ("smallcnn_v3", "last_blocks", 32),
    ("logreg", "frozen", 32),
]
LARGE = ("densenet121", "resnet50", "vgg19_bn")


@pytest.mark.parametrize(
    ("architecture", "transfer", "size"),
    [
        pytest.param(*case, marks=[pytest.mark.slow] if case[0] in LARGE else [])
        for case in ARCHITECTURE_MODES
    ],
)
def test_every_architecture_and_transfer_mode_trains(
    store: Path, few: dict, tmp_path: Path, architecture: str, transfer: str, size: int
) -> None:
    summary = run(
        few[size],
        tmp_path / "out",
        architecture=architecture,
        transfer=transfer,
        input_size=size,
        epochs=1,
        batch_size=8,
        allow_random_features=True,
    )
    total = sum(v.numel() for k, v in weights(tmp_path / "out").items() if "running" not in k)
    assert 0 < summary["trainable_parameters"] <= total
    assert summary["features_cached"] == (transfer == "frozen")


def test_frozen_features_are_computed_once_and_train_the_head_as_the_full_pass_would(
    store: Path, data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = {"architecture": "smallcnn_v2", "transfer": "frozen", "epochs": 2}
    cfg["allow_random_features"] = True
    cached = run(data, tmp_path / "cached", **cfg)
    monkeypatch.setattr(loop.Trainer, "_cacheable_head", lambda self: None)
    full = run(data, tmp_path / "full", **cfg)
    assert cached["features_cached"] and not full["features_cached"]
    for name, tensor in weights(tmp_path / "cached").items():
        torch.testing.assert_close(tensor, weights(tmp_path / "full")[name], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("transfer", ["frozen", "last_blocks"])
def test_a_frozen_backbone_of_random_weights_is_refused_unless_allowed(
    store: Path, data: Path, tmp_path: Path, transfer: str
) -> None:
    with pytest.raises(ValueError, match=f"transfer {transfer} would start from random weights"):
        run(data, tmp_path / "refused", architecture="smallcnn_v2", transfer=transfer, epochs=1)
    assert not (tmp_path / "refused").exists()
    run(data, tmp_path / "a", architecture="smallcnn_v2", epochs=1, stage="a")
    started = run(  # from an earlier stage's weights: allowed
        data,
        tmp_path / "b",
        architecture="smallcnn_v2",
        transfer=transfer,
        epochs=1,
        stage="b",
        init=tmp_path / "a" / "model.pt",
    )
    assert started["init_source"] == "stage test/a"


def test_init_carries_layers_across_stages_with_a_head_of_another_size(
    store: Path, data: Path, tmp_path: Path
) -> None:
    run(data, tmp_path / "a", architecture="smallcnn_v1", epochs=1, stage="a")
    summary = run(
        data,
        tmp_path / "b",
        tmp_path / "a" / "model.pt",
        architecture="smallcnn_v1",
        task="multiclass",
        loss="cross_entropy",
        epochs=1,
        lr=1e-12,
        stage="b",
    )
    init = json.loads((tmp_path / "b" / "run.json").read_text())["init"]
    assert init == summary["init"]
    assert sorted(init["not_carried"]) == ["classifier.3.bias", "classifier.3.weight"]
    assert "features.0.0.weight" in init["carried"]
    a, b = weights(tmp_path / "a"), weights(tmp_path / "b")
    assert (a["classifier.3.weight"].shape[0], b["classifier.3.weight"].shape[0]) == (2, 3)
    torch.testing.assert_close(a["features.0.0.weight"], b["features.0.0.weight"])


def test_run_json_names_the_dataset_preset_and_init_stage(store: Path, tmp_path: Path) -> None:
    old = write_data(tmp_path / "old" / "data", 10)  # stats.json without dataset and preset
    new = write_data(tmp_path / "new" / "data", 10)
    stats = json.loads((new / STATS_FILE).read_text())
    stats |= {"dataset": ["nih", "jsrt"], "preset": {"name": "tiny_eq", "size": 32}}
    (new / STATS_FILE).write_text(json.dumps(stats))
    first = run(old, tmp_path / "a", column="fold_0", epochs=1, stage="pre")
    assert {k: first["data"][k] for k in ("dataset", "preset", "init_stage")} == dict.fromkeys(
        ("dataset", "preset", "init_stage")
    )
    run(new, tmp_path / "b", tmp_path / "a" / "model.pt", epochs=1, stage="fine")
    written = json.loads((tmp_path / "b" / "run.json").read_text())["data"]
    assert written["dataset"] == ["nih", "jsrt"]
    assert written["preset"] == "tiny_eq"
    assert written["init_stage"] == {"study": "test", "stage": "pre", "column": "fold_0"}


def test_an_init_whose_run_json_does_not_name_its_stage_is_refused_before_training(
    store: Path, data: Path, tmp_path: Path
) -> None:
    from cxr.training.models import ModelSpec, build_model

    init = tmp_path / "init" / "model.pt"
    init.parent.mkdir()
    torch.save(build_model(ModelSpec("logreg", 2, 32)).state_dict(), init)
    out = tmp_path / "out"
    with pytest.raises(ValueError, match=r"init/run\.json: missing: --init .*model\.pt must be"):
        run(data, out, init, epochs=1)
    (init.parent / "run.json").write_text(json.dumps({"recipe": {"study": "s"}, "data": {}}))
    with pytest.raises(ValueError, match=r"run\.json: lacks recipe\.stage, data\.split_column:"):
        run(data, out, init, epochs=1)
    assert not out.exists() and not resume_folder(out).exists()


# -- resume ------------------------------------------------------------------------------------

RESUMABLE = {
    "architecture": "smallcnn_v3",  # dropout: the torch RNG matters
    "epochs": 6,
    "augment": {"hflip": 0.5, "rotation": 10, "shift": 0.05},
    "early_stopping": 10,
    "plateau_patience": 1,
}


def train_command(data: Path, out: Path, cfg: dict) -> list[str]:
    recipe_json = json.dumps({"study": "test", "input_size": 32, "batch_size": 8, **cfg})
    return [
        str(BIN / "cxr"),
        "train",
        "--data",
        str(data),
        "--split",
        str(data.parent / "split.parquet"),
        "--recipe-json",
        recipe_json,
        "--out",
        str(out),
    ]


def test_a_run_killed_with_sigkill_resumes_to_the_same_weights_and_predictions(
    store: Path, data: Path, tmp_path: Path
) -> None:
    killed = tmp_path / "killed"
    command = train_command(data, killed, RESUMABLE)
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    checkpoint = resume_folder(killed) / RESUME_FILE
    deadline = time.monotonic() + 240
    while not checkpoint.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert checkpoint.exists() and not killed.exists(), proc.stderr.read().decode()[-2000:]
    state = load_plain(checkpoint)["state"]
    done_before = state["epoch"]
    assert 0 < done_before < RESUMABLE["epochs"]

    resumed = subprocess.run(command, capture_output=True, text=True, check=False)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert f"after epoch {done_before}" in resumed.stderr
    straight = tmp_path / "straight"
    # the same command, uninterrupted (an in-process run may use another thread count)
    subprocess.run(train_command(data, straight, RESUMABLE), check=True, capture_output=True)

    a, b = weights(killed), weights(straight)
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name
    for side in ("val", "test"):
        pd.testing.assert_frame_equal(
            pd.read_parquet(killed / "predictions" / f"{side}.parquet"),
            pd.read_parquet(straight / "predictions" / f"{side}.parquet"),
        )
    timing = ["seconds", "data_wait_share"]
    pd.testing.assert_frame_equal(
        pd.read_csv(killed / "history.csv").drop(columns=timing),
        pd.read_csv(straight / "history.csv").drop(columns=timing),
    )
    assert json.loads((killed / "run.json").read_text())["run_id"] == state["run_id"]
    assert not resume_folder(killed).exists()


def test_a_checkpoint_of_another_recipe_is_ignored_with_a_warning(
    store: Path, data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog
) -> None:
    out = tmp_path / "out"
    monkeypatch.setattr(engine, "remove_resume", lambda out: None)
    run(data, out, epochs=2)
    assert (resume_folder(out) / RESUME_FILE).exists()
    with caplog.at_level(logging.WARNING):
        run(data, out, epochs=2, lr=5e-4)
    assert "written for another recipe" in caplog.text
    assert len(pd.read_csv(out / "history.csv")) == 2


class Payload:
    """Unpickling this creates ``path``: what a malicious checkpoint would do."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple:
        return pathlib.Path.touch, (self.path,)


def test_a_checkpoint_holding_code_is_refused_and_nothing_in_it_runs(
    store: Path, data: Path, tmp_path: Path, caplog
) -> None:
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.pt"
    torch.save({"conv.weight": torch.zeros(1), "x": Payload(marker)}, evil)
    argv = train_command(data, tmp_path / "out", {"architecture": "logreg", "epochs": 1})[1:]
    with caplog.at_level(logging.ERROR):
        assert cli.main([*argv, "--init", str(evil)]) == 1
    resume = resume_folder(tmp_path / "out") / RESUME_FILE
    resume.parent.mkdir()
    torch.save({"fingerprint": "x", "state": Payload(marker)}, resume)
    with caplog.at_level(logging.ERROR):
        assert cli.main(argv) == 1
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert [str(evil) in errors[0].message, str(resume) in errors[1].message] == [True, True]
    assert all("refused" in r.message and "\n" not in r.message for r in errors)
    assert not marker.exists()
    assert not (tmp_path / "out").exists()


# -- bad recipes -------------------------------------------------------------------------------

BAD = {
    "unknown architecture": ({"architecture": "densenet999"}, [], 2, "architecture"),
    "loss not fitting the task": ({"task": "multiclass", "loss": "bce"}, [], 2, "loss"),
    "unknown key": ({"learning_rate": 0.1}, [], 2, "learning_rate"),
    "input too small": ({"architecture": "alexnet", "input_size": 32}, [], 2, "input_size"),
    "input size of other data": ({"input_size": 64}, [], 1, "input_size"),
    "absent finding": ({"findings": ["Hernia"]}, [], 1, "Hernia"),
    "absent fold column": ({}, ["--split-column", "fold_7"], 1, "fold_7"),
    "no validation side": ({}, ["--split-column", "fold_0"], 1, "no image in val"),
}


@pytest.mark.parametrize("case", BAD)
def test_a_bad_recipe_fails_at_once_in_one_line(
    store: Path, data: Path, tmp_path: Path, case: str, capsys, caplog
) -> None:
    cfg, extra, status, named = BAD[case]
    split = pd.read_parquet(data.parent / "split.parquet")
    split["fold_0"] = split["split"].replace("val", "train")
    split.to_parquet(tmp_path / "split.parquet")
    argv = train_command(data, tmp_path / "out", {"architecture": "logreg", **cfg})[1:]
    argv[argv.index("--split") + 1] = str(tmp_path / "split.parquet")
    with caplog.at_level(logging.ERROR):
        if status == 2:
            with pytest.raises(SystemExit) as exit_:
                cli.main([*argv, *extra])
            code, message = exit_.value.code, capsys.readouterr().err.strip()
        else:
            code = cli.main([*argv, *extra])
            message = "\n".join(r.getMessage() for r in caplog.records if r.levelno >= 40)
    assert code == status
    assert named in message and "\n" not in message and "Traceback" not in message, message
    assert not (tmp_path / "out").exists()


# -- data parallel -----------------------------------------------------------------------------


def test_two_gloo_processes_follow_the_loss_curve_of_one(
    store: Path, data: Path, tmp_path: Path
) -> None:
    cfg = {"architecture": "logreg", "epochs": 3, "batch_size": 10, "augment": {"hflip": 0.5}}
    command = train_command(data, tmp_path / "ddp", cfg)
    torchrun = [str(BIN / "torchrun"), "--standalone", "--nproc_per_node", "2", command[0]]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [*torchrun, *command[1:]], env=env, capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    one = run(data, tmp_path / "one", **cfg)
    ddp = pd.read_csv(tmp_path / "ddp" / "history.csv")
    single = pd.read_csv(tmp_path / "one" / "history.csv")
    for column in ("train_loss", "val_loss"):
        np.testing.assert_allclose(ddp[column], single[column], rtol=1e-4)
    assert json.loads((tmp_path / "ddp" / "run.json").read_text())["world_size"] == 2
    assert one["world_size"] == 1


# -- pieces ------------------------------------------------------------------------------------


def test_weighted_losses_use_the_training_frequencies_and_mask_unknown_labels() -> None:
    train = np.array([[1, 0], [0, 0], [0, np.nan], [0, 1]], np.float32)
    seed000 = MaskedLoss("weighted_bce", train)
    # 2 positives among 7 known labels: w+ = 5/7, w- = 2/7
    torch.testing.assert_close(seed000.weights, torch.tensor([[5 / 7] * 2, [2 / 7] * 2]))
    per_label = MaskedLoss("label_weighted_bce", train)
    torch.testing.assert_close(per_label.weights, torch.tensor([[3 / 4, 2 / 3], [1 / 4, 1 / 3]]))
    logits = torch.randn(4, 2)
    total, count = MaskedLoss("bce", train)(logits, torch.from_numpy(train))
    assert count == 7
    known = ~np.isnan(train)
    expected = torch.nn.functional.binary_cross_entropy_with_logits(
        logits[torch.from_numpy(known)], torch.from_numpy(train[known])
    )
    torch.testing.assert_close(total / count, expected)


def test_augmentation_is_per_image_and_seeded_by_seed_and_epoch() -> None:
    settings = augment.Augment(hflip=0.5, rotation=20, zoom=0.1, shear=5, shift=0.1)
    table = augment.draw(settings, 64, augment.epoch_generator(0, 3))
    torch.testing.assert_close(table, augment.draw(settings, 64, augment.epoch_generator(0, 3)))
    assert not torch.equal(table, augment.draw(settings, 64, augment.epoch_generator(0, 4)))
    assert len({tuple(m.flatten().tolist()) for m in table}) == 64
    images = torch.rand(4, 1, 16, 16)
    flips = augment.Augment(hflip=1.0)
    flipped = augment.apply(images, augment.draw(flips, 4, torch.Generator()), flips)
    assert torch.equal(flipped, images.flip(-1))
    identity = augment.apply(images, torch.eye(2, 3).expand(4, 2, 3), settings)
    torch.testing.assert_close(identity, images)


def test_shards_of_a_global_batch_are_the_batch_and_the_prefetcher_reports_errors() -> None:
    images = np.arange(10 * 4 * 4, dtype=np.uint8).reshape(10, 4, 4)
    whole = [rows.tolist() for _p, rows in TensorBatches(images, batch_size=4, seed=1)]
    shards = [
        [rows.tolist() for _p, rows in TensorBatches(images, batch_size=4, seed=1, shard=(r, 2))]
        for r in (0, 1)
    ]
    for i, batch in enumerate(whole):
        assert sorted(shards[0][i] + shards[1][i]) == batch
    fetched = Prefetcher(TensorBatches(images, batch_size=3, shuffle=False, scale=False))
    assert [rows.tolist() for _p, rows in fetched] == [[0, 1, 2], [3, 4, 5], [6, 7, 8], [9]]
    assert fetched.waited >= 0

    def broken():
        yield torch.zeros(1), 0
        raise OSError("disk gone")

    with pytest.raises(OSError, match="disk gone"):
        list(Prefetcher(broken()))


def test_validation_auroc_equals_sklearns_with_ties() -> None:
    from sklearn.metrics import roc_auc_score

    from cxr.evaluation.auroc import rank_auroc

    rng = np.random.default_rng(0)
    for _ in range(100):
        y = np.r_[0, 1, rng.integers(0, 2, 40)]
        scores = rng.integers(0, 5, len(y)).astype(float)  # many ties
        assert rank_auroc(y, scores) == pytest.approx(roc_auc_score(y, scores), abs=1e-12)

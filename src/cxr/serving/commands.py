"""``cxr predict`` (the cascade on files and folders) and ``cxr serve`` (on the web)."""

from __future__ import annotations

import argparse
import contextlib
import logging
import tempfile
from collections.abc import Iterator
from pathlib import Path

from cxr.core.commands import Command, existing_folder, positive_int

log = logging.getLogger("cxr")


def _model_arguments(p: argparse.ArgumentParser) -> None:
    where = p.add_mutually_exclusive_group()
    where.add_argument(
        "--models", type=existing_folder, default=None,
        help="the pipeline's results folder holding the cascade's models (default: results)",
    )  # fmt: skip
    where.add_argument(
        "--model-uri", nargs=3, metavar=("MODULE_I", "MODULE_II", "MODULE_III"),
        help="registered MLflow models, e.g. models:/cxr-seed002_cascade-module_i/1 (or /latest)",
    )  # fmt: skip
    p.add_argument("--study", default="seed002_cascade", help="the cascade's study in --models")
    p.add_argument(
        "--top-k", type=positive_int, default=1,
        help="Grad-CAM overlays of this many most probable findings of a chest X-ray",
    )  # fmt: skip
    p.add_argument(
        "--params", type=Path, default=Path("params.yaml"),
        help="the pipeline's params, to tell whether the models trained on synthetic data",
    )  # fmt: skip


@contextlib.contextmanager
def _predictor(args: argparse.Namespace, work: Path) -> Iterator:
    from cxr.serving import bundle
    from cxr.serving.predictor import Predictor

    if args.model_uri:
        files = bundle.from_registry(list(args.model_uri), work)
    else:
        files = bundle.from_results(args.models or Path("results"), args.study)
    yield Predictor(files, top_k=args.top_k, params=args.params)


def _predict_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="image files or folders")
    p.add_argument("--out", type=Path, required=True, help="folder to write")
    _model_arguments(p)


def _predict(args: argparse.Namespace) -> None:
    from cxr.serving.batch import predict_paths

    with (
        tempfile.TemporaryDirectory(prefix="cxr-predict-") as tmp,
        _predictor(args, Path(tmp)) as p,
    ):
        frame = predict_paths(p, args.paths, args.out)
    bad = int((frame["status"] != "ok").sum())
    verdicts = frame["verdict"].value_counts().to_dict()
    log.info("%d image(s): %s; %d unreadable -> %s", len(frame), verdicts, bad, args.out)


def _serve_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--host", default="127.0.0.1", help="address to bind (default: this machine only)"
    )
    p.add_argument("--port", type=int, default=8000)
    p.add_argument(
        "--max-upload-mb", type=float, default=20.0, help="larger uploads are refused (413)"
    )
    _model_arguments(p)


def _serve(args: argparse.Namespace) -> None:
    import uvicorn

    from cxr.serving.app import create_app

    with tempfile.TemporaryDirectory(prefix="cxr-serve-") as tmp:
        old, tempfile.tempdir = tempfile.tempdir, tmp  # uploads spool here, removed at exit
        try:
            with _predictor(args, Path(tmp) / "models") as predictor:
                app = create_app(predictor, int(args.max_upload_mb * 1024 * 1024))
                log.info("serving the cascade on http://%s:%d", args.host, args.port)
                uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
        finally:
            tempfile.tempdir = old


COMMANDS = (
    Command(
        "predict", "seed 002's cascade on image files or folders", _predict_arguments, _predict
    ),
    Command("serve", "seed 002's cascade as a web page and a JSON API", _serve_arguments, _serve),
)

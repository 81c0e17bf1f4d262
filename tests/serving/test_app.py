"""The JSON API: answers, limits and errors (JSON with a message, never a traceback)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from fastapi.testclient import TestClient

from cxr.serving import bundle
from cxr.serving.app import create_app
from cxr.serving.predictor import Predictor

IMAGE = cv2.imencode(".png", np.tile(np.arange(0, 250, 2, dtype=np.uint8), (90, 1)))[1].tobytes()


@pytest.fixture(scope="module")
def client(cascade) -> TestClient:
    predictor = Predictor(bundle.from_results(cascade), params=None)
    return TestClient(create_app(predictor, max_bytes=200_000), raise_server_exceptions=False)


def test_health_models_and_a_prediction(client):
    assert client.get("/api/health").json() == {"status": "ok", "models": 3}
    models = client.get("/api/models").json()
    assert [m["module"] for m in models["modules"]] == ["I", "II", "III"]
    assert models["modules"][0]["source"].endswith("module_i/split")
    answer = client.post("/api/predict", files={"file": ("../../etc/passwd", IMAGE, "text/plain")})
    assert answer.status_code == 200
    body = answer.json()
    assert body["file"] == "passwd"  # a label only: a client's path is never opened
    assert body["verdict"] in ("chest", "not_xray", "other_xray")
    assert body["image_png"].startswith("data:image/png;base64,")


def test_the_page_uses_the_api(client):
    page = client.get("/")
    assert page.status_code == 200
    assert "/api/predict" in page.text and "/api/models" in page.text


def test_too_large_is_413_and_bad_content_422(client):
    big = client.post("/api/predict", files={"file": ("x.png", b"\0" * 300_000, "image/png")})
    assert big.status_code == 413
    assert "limit is 200,000 bytes" in big.json()["error"]
    fake = client.post("/api/predict", files={"file": ("x.png", b"GIF89a nonsense", "image/png")})
    assert fake.status_code == 422
    assert (
        fake.json()["error"] == "x.png: not an image: no PNG, JPEG, TIFF, BMP, WebP or DICOM header"
    )
    empty = client.post("/api/predict", files={"file": ("e.png", b"", "image/png")})
    assert "empty file" in empty.json()["error"]
    missing = client.post("/api/predict", data={"other": "1"})
    assert missing.status_code == 422
    assert "field 'file'" in missing.json()["error"]
    assert client.get("/nothing").json() == {"error": "Not Found"}


def test_an_internal_error_is_json_without_a_traceback(cascade, monkeypatch):
    predictor = Predictor(bundle.from_results(cascade), params=None)

    def broken(_gray):
        raise RuntimeError("secret detail /srv/path")

    monkeypatch.setattr(predictor, "predict", broken)
    client = TestClient(create_app(predictor), raise_server_exceptions=False)
    answer = client.post("/api/predict", files={"file": ("x.png", IMAGE, "image/png")})
    assert answer.status_code == 500
    assert answer.json() == {"error": "internal error (RuntimeError); see the server log"}
    assert "Traceback" not in answer.text and "secret" not in answer.text

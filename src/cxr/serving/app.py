"""``cxr serve``: the cascade behind a FastAPI application and its one page.

- ``GET /``: the page (drop or pick an image; each module's verdict, the probabilities as bars,
  the heatmap beside the image; the synthetic-data caveat where it applies);
- ``POST /api/predict`` (multipart field ``file``), ``GET /api/health``, ``GET /api/models``.

Safe by default: a body over ``max_bytes`` is answered 413 before it is read whole; the upload
is decoded in memory (its name and declared type are never trusted, no client path is opened);
every error is JSON ``{"error": message}``, never a traceback.
"""

from __future__ import annotations

import base64
import logging
import re
from importlib.resources import files

from fastapi import FastAPI, File, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cxr.data.images import BadImage
from cxr.serving import inputs, overlay
from cxr.serving.predictor import Predictor

log = logging.getLogger(__name__)

#: The default upload limit (bytes).
MAX_UPLOAD = 20 * 1024 * 1024


class TooLarge(Exception):
    """A request body over the limit."""


class BodyLimit:
    """ASGI middleware: 413 for a body over ``max_bytes`` (declared, or counted as it comes)."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(send)
            return
        seen, started = 0, False

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_bytes:
                raise TooLarge
            return message

        async def watched(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, watched)
        except TooLarge:
            if not started:
                await self._refuse(send)

    async def _refuse(self, send: Send) -> None:
        response = JSONResponse(
            {"error": f"upload too large: the limit is {self.max_bytes:,} bytes"}, 413
        )
        await response({"type": "http"}, _nothing, send)


async def _nothing() -> Message:
    return {"type": "http.disconnect"}


def _label(name: str | None) -> str:
    """The client's file name, only to be shown: its last part, printable, at most 100 chars."""
    return re.sub(r"[^\w.\- ]+", "_", (name or "upload").replace("\\", "/").split("/")[-1])[:100]


def _data_url(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode()


def create_app(predictor: Predictor, max_bytes: int = MAX_UPLOAD) -> ASGIApp:
    """The application serving ``predictor`` (loaded once, shared by every request)."""
    app = FastAPI(title="cxr", description="Seed 002's X-ray cascade", docs_url="/api/docs",
                  redoc_url=None, openapi_url="/api/openapi.json")  # fmt: skip
    page = files("cxr.serving").joinpath("static/index.html").read_text()

    @app.exception_handler(HTTPException)
    async def http_error(_request: Request, err: HTTPException) -> JSONResponse:
        return JSONResponse({"error": str(err.detail)}, err.status_code)

    @app.exception_handler(RequestValidationError)
    async def bad_request(_request: Request, err: RequestValidationError) -> JSONResponse:
        where = "; ".join(
            f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg')}" for e in err.errors()
        )
        return JSONResponse(
            {"error": f"bad request ({where}); send the image as field 'file'"}, 422
        )

    @app.exception_handler(Exception)
    async def crash(_request: Request, err: Exception) -> JSONResponse:
        log.exception("internal error")
        return JSONResponse(
            {"error": f"internal error ({type(err).__name__}); see the server log"}, 500
        )

    @app.get("/", response_class=HTMLResponse)
    def index() -> str:
        return page

    @app.get("/api/health")
    def health() -> dict:
        return {"status": "ok", "models": len(predictor.modules)}

    @app.get("/api/models")
    def models() -> dict:
        return predictor.describe()

    @app.post("/api/predict")
    def predict(file: UploadFile = File(...)) -> JSONResponse:  # noqa: B008
        data = file.file.read(max_bytes + 1)
        name = _label(file.filename)
        if len(data) > max_bytes:
            return JSONResponse(
                {"error": f"upload too large: the limit is {max_bytes:,} bytes"}, 413
            )
        try:
            gray = inputs.decode(data)
        except BadImage as err:
            return JSONResponse({"file": name, "error": f"{name}: {err}"}, 422)
        result = predictor.predict(gray)
        return JSONResponse(
            {
                "file": name,
                **result.report,
                "trained_on_synthetic_data": predictor.synthetic,
                "image_png": _data_url(overlay.png_bytes(result.image)),
                "overlays": {
                    finding: _data_url(overlay.png_bytes(picture))
                    for finding, picture in result.overlays.items()
                },
            }
        )

    return BodyLimit(app, max_bytes)

"""The HTTP API (FastAPI; its OpenAPI page at ``/docs``): ``create_app(settings)`` -> an ASGI app.

    POST /v1/detect     an image (a multipart file or the raw body) -> the record of predict --json
    POST /v1/classify   face crops (multipart files) -> label and P(mask) each, in one batch
    GET  /healthz       the process answers;  GET /readyz  the model is loaded (503 until then)
    GET  /metrics       Prometheus text

A request is checked in the order that costs least: API key (401), model loaded (503), query
parameters (400), a queue slot (503 with Retry-After, before its body is read), its size (413),
then decoded and recognised on a worker thread (400 for what is not a usable image). Every refusal
is one JSON object ``{"error": "..."}`` (plus ``"image"`` for a bad image, as predict --json says it).
"""
from __future__ import annotations

import hmac
import logging
import time
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI, Query, Request
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi_offline import FastAPIOffline
from starlette.exceptions import HTTPException

from maskrec import faces
from maskrec.core.errors import BadImage
from maskrec.core.imaging import open_rgb
from maskrec.live.photo import WHOLE_IMAGE, classified, point_json
from maskrec.serve import cameras_api, events_api
from maskrec.serve.metrics import Metrics, Timing
from maskrec.serve.model import ModelHolder, NotReady, detector_problem
from maskrec.serve.settings import Settings
from maskrec.serve.uploads import NoImage, TooLarge, Upload, read_image, read_images
from maskrec.serve.work import Busy, WorkPool

log = logging.getLogger("maskrec.serve")

_IMAGE = {"type": "string", "format": "binary"}
DETECT_BODY = {"requestBody": {"required": True, "content": {
    "multipart/form-data": {"schema": {"type": "object", "properties": {"file": _IMAGE}, "required": ["file"]}},
    "application/octet-stream": {"schema": _IMAGE}, "image/*": {"schema": _IMAGE}}}}
CLASSIFY_BODY = {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
    "type": "object", "properties": {"files": {"type": "array", "items": _IMAGE}}, "required": ["files"]}}}}}
_POINT = {"name": "street", "threshold": 0.581, "band": [0.2794, 0.8322]}


def _answers(ok: dict) -> dict:
    """The OpenAPI page's answers of a /v1 route: its 200 example and every refusal."""
    def said(description: str, example: dict) -> dict:
        return {"description": description, "content": {"application/json": {"example": example}}}
    return {200: said("the result", ok),
            400: said("not a usable image (unreadable, empty, too small, too many pixels), or a bad parameter",
                      {"error": "not an image Pillow can read", "image": "photo.jpg"}),
            401: said("an API key is set and this request lacks it", {"error": "missing or wrong API key: ..."}),
            413: said("the body is over the upload limit", {"error": "upload too large: at most ..."}),
            503: said("the queue is full (see Retry-After) or the model is loading", {"error": "busy: ..."})}


DETECT_ANSWERS = _answers({"image": "photo.jpg", "operating_point": _POINT, "engine": {"engine": "onnx-int8"},
                           "faces": [{"box": [281, 175, 379, 299], "label": "mask", "p_mask": 0.9303}]})
CLASSIFY_ANSWERS = _answers({"crops": [{"image": "a.jpg", "label": "no_mask", "p_mask": 0.0312}],
                             "operating_point": _POINT, "engine": {"engine": "onnx-int8"}})
DETECTOR_HELP = (f"face detector (default: the server's, {faces.PHOTO_DEFAULT} unless started with another); "
                 f"one of {', '.join(faces.DETECTORS)}, or {WHOLE_IMAGE}: the whole image is one face")
POINT_HELP = "the checkpoint's operating point to label at (default: the one the server was started with)"


class Refused(Exception):
    """One request answered with an error status: ``{"error": message}`` (+ ``extra`` fields)."""

    def __init__(self, status: int, message: str, reason: str, headers: dict | None = None, **extra):
        super().__init__(message)
        self.status, self.reason, self.headers, self.extra = status, reason, headers or {}, extra


def create_app(settings: Settings, holder: ModelHolder | None = None) -> FastAPI:
    """The app; its model loads on a background thread when the server starts (pass a ``holder``
    already loaded to skip that). ``app.state`` holds settings, holder, pool and metrics."""
    holder = holder or ModelHolder(settings)
    pool = WorkPool(settings.workers, settings.queue)
    metrics = Metrics(lambda: pool.waiting, lambda: pool.running, lambda: float(holder.ready))

    @asynccontextmanager
    async def lifespan(_app):
        if not holder.ready:
            holder.start()
        hub = getattr(_app.state, "hub", None)  # serve --cameras (cameras_api.attach): its cameras run with the app
        events = getattr(_app.state, "events", None)  # ... and their events (events_api.attach_events)
        if events is not None:
            events.start()
        if hub is not None:
            hub.start()
        yield
        if hub is not None:
            hub.stop()
        if events is not None:
            events.stop()  # after the cameras: their last events are written
        pool.shutdown()

    # FastAPIOffline: FastAPI whose /docs and /redoc pages load Swagger UI and ReDoc from files it
    # ships, not from a CDN, so the API's page works on a network without the internet
    app = FastAPIOffline(title="MaskRec", summary="Face-mask recognition over HTTP", lifespan=lifespan,
                         description="Every face in an image, boxed and labelled mask / no_mask / unsure; "
                                     "see docs/serve.md.")
    app.state.settings, app.state.holder, app.state.pool, app.state.metrics = settings, holder, pool, metrics
    app.add_middleware(Timing, metrics=metrics)

    @app.exception_handler(Refused)
    async def refused(_request, e: Refused):
        metrics.rejected.labels(e.reason).inc()
        return JSONResponse({"error": str(e), **e.extra}, e.status, headers=e.headers)

    @app.exception_handler(HTTPException)
    async def http_error(_request, e: HTTPException):  # starlette's own (404, 405, a malformed form: 400)
        return JSONResponse({"error": str(e.detail)}, e.status_code, headers=e.headers)

    bearer = HTTPBearer(auto_error=False, description="the server's API key (--api-key / $MASKREC_API_KEY), "
                                                      "asked for whenever the server was given one")

    def authorized(creds: HTTPAuthorizationCredentials | None = Depends(bearer)) -> None:
        if settings.api_key is None:
            return
        given = creds.credentials if creds else ""
        # compare_digest: the time taken says nothing about how much of the key was right
        if not hmac.compare_digest(given.encode(), settings.api_key.encode()):
            raise Refused(401, "missing or wrong API key: send the header `Authorization: Bearer <key>`",
                          "unauthorized", {"WWW-Authenticate": "Bearer"})

    def model_or_503():
        try:
            return holder.get()
        except NotReady as e:
            raise Refused(503, str(e), "not_ready", {"Retry-After": "5"}) from None

    def admitted():
        try:
            return pool.reserve()
        except Busy as e:
            raise Refused(503, str(e), "queue_full", {"Retry-After": str(e.retry_after)}) from None

    async def on_worker(slot, route: str, fn, *args):
        """``fn(*args)`` on a worker, its time there into the inference histogram; its failures as answers."""
        def timed():
            t = time.perf_counter()
            try:
                return fn(*args)
            finally:
                metrics.inference.labels(route).observe(time.perf_counter() - t)
        try:
            return await slot.run(timed)
        except BadUpload as e:
            raise Refused(400, str(e), "bad_image", image=e.image) from None
        except Exception as e:  # one request's failure (a cv2 error, a MemoryError): logged, said, the server goes on
            log.exception("%s failed", route)
            raise Refused(500, f"{type(e).__name__}: {e}", "error") from None

    async def body(read, *args):
        try:
            return await read(*args)
        except TooLarge as e:
            raise Refused(413, str(e), "too_large") from None
        except NoImage as e:
            raise Refused(400, str(e), "bad_image") from None

    app.include_router(cameras_api.router, dependencies=[Depends(authorized)])  # /v1/cameras (serve --cameras)
    app.include_router(events_api.router, dependencies=[Depends(authorized)])  # /v1/events, /v1/states, /v1/model

    @app.get("/healthz", summary="the process answers")
    def healthz():
        return {"status": "ok"}

    @app.get("/readyz", summary="the model is loaded (503 until it is, or if it failed)")
    def readyz():
        try:
            return {"ready": True} | holder.get().describe()
        except NotReady as e:
            return JSONResponse({"ready": False, "error": str(e)}, 503, headers={"Retry-After": "5"})

    @app.get("/metrics", summary="Prometheus text", dependencies=[Depends(authorized)])
    def prometheus():
        text, ctype = metrics.text()
        return Response(text, media_type=ctype)

    @app.post("/v1/detect", summary="every face in an image: box, label, P(mask), operating point",
              dependencies=[Depends(authorized)], openapi_extra=DETECT_BODY, responses=DETECT_ANSWERS)
    async def detect(request: Request, detector: str | None = Query(None, description=DETECTOR_HELP),
                     operating_point: str | None = Query(None, description=POINT_HELP)):
        model = model_or_503()
        detector = detector or model.detector
        problem = "" if detector == model.detector else detector_problem(detector)  # the default was checked at load
        if problem:
            raise Refused(400, problem, "bad_request")
        op = _point(model, operating_point)
        with admitted() as slot:
            up = await body(read_image, request, settings.max_upload_bytes)
            record = await on_worker(slot, "/v1/detect", _detect, model, up, detector, op)
        for f in record["faces"]:
            metrics.faces.labels(f["label"]).inc()
        return record

    @app.post("/v1/classify", summary="face crops, classified in one batch: label, P(mask) each",
              dependencies=[Depends(authorized)], openapi_extra=CLASSIFY_BODY, responses=CLASSIFY_ANSWERS)
    async def classify(request: Request, operating_point: str | None = Query(None, description=POINT_HELP)):
        model = model_or_503()
        op = _point(model, operating_point)
        with admitted() as slot:
            ups = await body(read_images, request, settings.max_upload_bytes, settings.max_crops)
            found = await on_worker(slot, "/v1/classify", _classify, model, ups, op)
        for f in found:
            metrics.faces.labels(f["label"]).inc()
        return {"crops": found, "operating_point": point_json(op), "engine": model.predictor.engine_info}

    return app


def _point(model, name: str | None):
    try:
        return model.point(name)
    except ValueError as e:
        raise Refused(400, str(e), "bad_request") from None


class BadUpload(BadImage):
    """An upload that is no usable image: the reason, and the upload's name (None for a raw body)."""

    def __init__(self, image: str | None, why: str):
        super().__init__(why)
        self.image = image


def _decoded(up: Upload):
    """The upload as a photo to recognise: a big JPEG decoded reduced, the bomb guard from its header."""
    try:
        return open_rgb(up.file, draft=faces.PHOTO_SIDE)
    except BadImage as e:
        raise BadUpload(up.name, str(e)) from None


# The jobs a worker runs. Each closes its uploads when done: the job owns them from submission on,
# so a client that hangs up mid-job cannot close a file the worker is still reading. (A job
# cancelled before it started leaves them to the garbage collector: spooled files are unlinked.)

def _detect(model, up: Upload, detector: str, op) -> dict:
    try:
        return model.reader.record(up.name, _decoded(up), detector, op)
    finally:
        up.close()


def _classify(model, ups: list[Upload], op) -> list[dict]:
    try:
        imgs = [_decoded(up) for up in ups]
    finally:
        for up in ups:
            up.close()
    return [{"image": up.name} | c for up, c in zip(ups, classified(model.predictor, imgs, op))]

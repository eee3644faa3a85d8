"""The cameras' routes (``serve --cameras FILE``): state and figures of each camera, its latest frame.

    GET /v1/cameras                  every camera: state, people now, masked share, FPS, lag, reconnects
    GET /v1/cameras/{name}           one of them
    GET /v1/cameras/{name}/frame.jpg its latest processed frame, people boxed (404 before the first)

``attach(app, hub)`` hands an app its hub and puts the cameras' figures in its /metrics;
``models_of(holder)`` is what a hub asks for a detector's recogniser: the server's own model, so
HTTP requests and cameras share one Recognizer per detector. The API key rules are the app's
(``app.include_router(router, dependencies=[Depends(authorized)])``). Sources are shown without
credentials (``Camera.shown_source``).
"""
from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException

from maskrec.cameras.hub import Hub
from maskrec.serve.model import ModelHolder, NotReady

router = APIRouter(tags=["cameras"])
NO_CAMERAS = "no cameras: start the server with --cameras FILE"


def models_of(holder: ModelHolder):
    """``models(detector) -> (Recognizer, "net2.pt@street") | None`` over the server's model (None while it loads)."""
    def models(detector: str):
        try:
            model = holder.get()
        except NotReady:
            return None
        return model.reader.recognizer(detector), f"{model.checkpoint.name}@{model.predictor.op.name}"
    return models


def attach(app, hub: Hub) -> None:
    """The app's hub (its routes read it) and the cameras' series in its /metrics."""
    app.state.hub = hub
    app.state.metrics.watch_cameras(hub.statuses)


def _hub(request: Request) -> Hub:
    hub = getattr(request.app.state, "hub", None)
    if hub is None:
        raise HTTPException(404, NO_CAMERAS)  # the app answers {"error": detail}
    return hub


def _camera(request: Request, name: str):
    hub = _hub(request)
    cam = hub.camera(name)
    if cam is None:
        raise HTTPException(404, f"no camera named {name!r}; the cameras are: {', '.join(hub.names)}")
    return cam


@router.get("/v1/cameras", summary="every camera: state, people now, masked share, FPS, lag, reconnects")
def cameras(request: Request):
    return {"cameras": [s.as_json() for s in _hub(request).statuses()]}


@router.get("/v1/cameras/{name}", summary="one camera: state, people now, masked share, FPS, lag, reconnects")
def camera(request: Request, name: str):
    return _camera(request, name).status().as_json()


@router.get("/v1/cameras/{name}/frame.jpg", summary="the camera's latest processed frame, people boxed (JPEG)",
            responses={200: {"content": {"image/jpeg": {}}}})
def frame(request: Request, name: str):
    data = _camera(request, name).jpeg()
    if data is None:
        return JSONResponse({"error": f"camera {name!r} has no processed frame yet"}, 404)
    return Response(data, media_type="image/jpeg", headers={"Cache-Control": "no-store"})

"""``python -m maskrec serve``: recognition over HTTP for other programs (issue 38, step 1).

    app.py       the FastAPI app: /v1/detect, /v1/classify, /healthz, /readyz, /metrics
    settings.py  what the process is told (Settings), and the API-key rule beyond loopback
    model.py     the model's one owner: loaded in the background, then shared read-only
    work.py      the bounded work queue: a fixed pool of worker threads, 503 when full
    uploads.py   request bodies: multipart or raw, spooled, never past the upload limit
    metrics.py   Prometheus counters, histograms and gauges, one registry per app
    cameras_api.py  /v1/cameras (serve --cameras FILE): the cameras' states, figures and latest frames
How to run it, the endpoints and the security rules: docs/serve.md.
"""
from maskrec.serve.app import create_app
from maskrec.serve.model import Model, ModelHolder, NotReady, detector_problem
from maskrec.serve.settings import KEY_ENV, MAX_UPLOAD_MB, Settings, check_exposure, is_loopback
from maskrec.serve.work import Busy, WorkPool

__all__ = ["Busy", "KEY_ENV", "MAX_UPLOAD_MB", "Model", "ModelHolder", "NotReady", "Settings", "WorkPool",
           "check_exposure", "create_app", "detector_problem", "is_loopback"]

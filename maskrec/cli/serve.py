"""``serve``: recognition over HTTP for other programs (FastAPI + uvicorn; the API at /docs).

Listening beyond this machine (``--host 0.0.0.0``) needs an API key (``--api-key`` or
``$MASKREC_API_KEY``): without one the command refuses to start (exit 2). ``--cameras FILE`` reads
the cameras of a camera file too (``maskrec.cameras``), from start-up to shutdown; a malformed file
stops the command before it listens (exit 2, the mistake said). See docs/serve.md.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path

import uvicorn

from maskrec import faces
from maskrec.cameras import config as camera_file
from maskrec.cameras.hub import Hub, default_workers as camera_workers
from maskrec.config import DEFAULT_CHECKPOINT
from maskrec.infer.engines import ENGINES
from maskrec.live.photo import WHOLE_IMAGE
from maskrec.serve import KEY_ENV, MAX_UPLOAD_MB, Settings, check_exposure, create_app, detector_problem
from maskrec.serve.cameras_api import attach, models_of
from maskrec.serve.events_api import attach_events
from maskrec.serve.settings import default_workers
from maskrec.cli.common import UserError, add_engine_argument


def add_arguments(s):
    s.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1: this machine only; any other needs an API key)")
    s.add_argument("--port", type=int, default=8000, help="default 8000")
    s.add_argument("--checkpoint", metavar="CKPT", default=str(DEFAULT_CHECKPOINT), help="default: checkpoints/net2.pt")
    s.add_argument("--detector", default=faces.PHOTO_DEFAULT, choices=[*faces.DETECTORS, WHOLE_IMAGE],
                   help=f"POST /v1/detect's face detector unless a request names one (default {faces.PHOTO_DEFAULT})")
    s.add_argument("--operating-point", metavar="NAME",
                   help="the checkpoint's operating point to label at unless a request names one (default: its default)")
    add_engine_argument(s, ENGINES)
    s.add_argument("--workers", metavar="N", type=int, default=default_workers(),
                   help=f"inference threads (default {default_workers()})")
    s.add_argument("--queue", metavar="N", type=int, default=Settings.queue,
                   help=f"requests that may wait for a worker; more are answered 503 + Retry-After (default {Settings.queue})")
    s.add_argument("--api-key", metavar="KEY", default=None,
                   help=f"the bearer key clients must send (default ${KEY_ENV}; the variable keeps it out of `ps`)")
    s.add_argument("--max-upload-mb", metavar="MB", type=float, default=MAX_UPLOAD_MB,
                   help=f"largest request body (default {MAX_UPLOAD_MB}, the app's upload limit); more: 413")
    s.add_argument("--cameras", metavar="FILE",
                   help="a camera file (TOML, docs/serve.md: Cameras): read its cameras while serving")
    s.add_argument("--camera-workers", metavar="N", type=int, default=camera_workers(),
                   help=f"threads processing the cameras' frames, all cameras together (default {camera_workers()})")


def run(a):
    key = a.api_key if a.api_key is not None else os.environ.get(KEY_ENV) or None
    check_exposure(a.host, key)
    if not Path(a.checkpoint).is_file():
        raise UserError(f"no such checkpoint: {a.checkpoint}")
    problem = detector_problem(a.detector)
    if problem:
        raise UserError(problem)
    try:
        cameras = camera_file.load(a.cameras) if a.cameras else None
    except ValueError as e:
        raise UserError(str(e)) from None
    if a.camera_workers < 1:
        raise UserError(f"--camera-workers must be >= 1 (got {a.camera_workers})")
    settings = Settings(checkpoint=Path(a.checkpoint), detector=a.detector, operating_point=a.operating_point,
                        engine=a.engine, workers=a.workers, queue=a.queue, api_key=key, max_upload_mb=a.max_upload_mb)
    # the model's loading and a request's failure are said beside uvicorn's own lines
    logging.basicConfig(level=logging.INFO, format="%(levelname)s:     %(name)s: %(message)s")
    # limit_concurrency: connections beyond it get uvicorn's 503 before any app code runs (the queue's
    # own 503 covers the work; this bounds what idle or slow connections can hold)
    app = create_app(settings)
    if cameras is not None:
        # started and stopped with the app (its lifespan); the cameras connect while the model loads,
        # and their frames are processed once it is ready
        hub = Hub(cameras, models_of(app.state.holder), workers=a.camera_workers)
        attach(app, hub)
        attach_events(app, hub, cameras)  # events.jsonl, webhooks, MQTT: the file's [events], [[webhooks]], [mqtt]
    uvicorn.run(app, host=a.host, port=a.port, log_level="info",
                limit_concurrency=max(256, 4 * (settings.workers + settings.queue)), timeout_graceful_shutdown=5)
    return 0

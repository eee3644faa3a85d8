"""The model a ``serve`` process answers with, and its one owner.

``ModelHolder`` loads the checkpoint and the default detector on a background thread at start-up
(``GET /readyz`` answers 503 until then, and says why if loading failed), warms them up with one
small frame, then hands every request the same immutable ``Model``. Requests read ``holder.get()``
once and keep that object for their whole job, so a later swap of checkpoint or operating point
(issue 38, step 5) can replace the holder's model without a request seeing half of each.

    holder = ModelHolder(settings); holder.start()
    model = holder.get()                      # NotReady while loading or after a failure
    model.reader.record(name, img, detector, model.point(name_or_None))
    holder.swap("runs/x/best.pt", "crops")    # POST /v1/model: load another, then replace it in one step

A swap loads and warms the new model beside the old one, which answers meanwhile; a failed swap
keeps the old one (and raises ValueError saying why). Cameras read ``holder.get()`` per frame, so
their next frame is labelled by the new model, and their events record its ``name``.
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from PIL import Image

from maskrec import faces
from maskrec.infer.predictor import TTA, Predictor
from maskrec.infer.operating import OperatingPoint
from maskrec.live.photo import WHOLE_IMAGE, PhotoReader, point_json
from maskrec.serve.settings import Settings

log = logging.getLogger("maskrec.serve")

class NotReady(Exception):
    """No model to answer with yet (loading), or none at all (loading failed): the message says which."""


def detector_problem(name: str) -> str:
    """Why detector ``name`` cannot be used here, in one line; "" when it can."""
    if name == WHOLE_IMAGE:
        return ""
    if name not in faces.DETECTORS:
        return f"unknown detector {name!r}; choose one of: {', '.join([*faces.DETECTORS, WHOLE_IMAGE])}"
    why = faces.available().get(name, "")
    return f"detector {name} cannot run here: {why}" if why else ""


@dataclass(frozen=True)
class Model:
    checkpoint: Path
    reader: PhotoReader      # the predictor, and one recognizer per detector asked for
    detector: str            # the default of POST /v1/detect

    @property
    def predictor(self) -> Predictor:
        return self.reader.predictor

    def point(self, name: str | None) -> OperatingPoint:
        """The checkpoint's operating point ``name`` (None: the one the server was started with)."""
        return self.reader.point(name)

    @property
    def name(self) -> str:
        """What events record: checkpoint file and operating point, e.g. "net2.pt@street"."""
        return f"{self.checkpoint.name}@{self.predictor.op.name}"

    def describe(self) -> dict:
        pred = self.predictor
        return {"checkpoint": self.checkpoint.name, "model": self.name, "net": pred.net, "detector": self.detector,
                "operating_point": point_json(pred.op), "operating_points": sorted(pred.operating_points),
                "engine": pred.engine_info}


class ModelHolder:
    def __init__(self, settings: Settings):
        self.settings = settings
        self._lock = threading.Lock()
        self._model: Model | None = None
        self._error = ""
        self._thread: threading.Thread | None = None
        self._swap_lock = threading.Lock()

    def start(self) -> None:
        """Load on a daemon thread (the server answers /healthz and /readyz meanwhile)."""
        self._thread = threading.Thread(target=self.load, name="maskrec-serve-load", daemon=True)
        self._thread.start()

    def load(self) -> None:
        """Load and warm up now; a failure is kept as the holder's error (said by /readyz), not raised."""
        s = self.settings
        t = time.perf_counter()
        try:
            model = self._build(s)
        except Exception as e:  # said by /readyz and logged; the process stays up to say it
            log.exception("the model failed to load from %s", s.checkpoint)
            with self._lock:
                self._error = str(e) if isinstance(e, (ValueError, OSError)) else f"{type(e).__name__}: {e}"
            return
        with self._lock:
            self._model, self._error = model, ""
        log.info("ready in %.1f s: %s, operating point %s, detector %s, %s engine", time.perf_counter() - t,
                 model.checkpoint.name, model.predictor.op.name, s.detector, model.predictor.engine_name)

    @staticmethod
    def _build(s: Settings, warm: tuple[str, ...] = ()) -> Model:
        problem = detector_problem(s.detector)
        if problem:
            raise ValueError(problem)
        pred = Predictor.load(s.checkpoint, engine=s.engine, tta=TTA, operating_point=s.operating_point)
        reader = PhotoReader(pred)
        # one small frame through detector and classifier: the engine is chosen (probed, or read
        # from the probe cache) and every lazy start-up cost is paid before /readyz says ready
        blank = Image.fromarray(np.full((96, 96, 3), 128, np.uint8))
        reader.faces(blank, s.detector)
        for name in warm:  # the cameras' detectors: their next frame does not pay for loading one
            reader.recognizer(name)
        pred.predict_proba([blank])
        return Model(Path(s.checkpoint), reader, s.detector)

    def swap(self, checkpoint: str | Path | None = None, operating_point: str | None = None,
             warm: tuple[str, ...] = ()) -> Model:
        """Load another checkpoint and/or operating point (None: keep the checkpoint; a new checkpoint
        without an operating point: its default) beside the current model, then put it in its place.
        One swap at a time; ValueError (the old model stays) when it cannot be loaded."""
        with self._swap_lock:
            current = self.get()
            path = Path(checkpoint) if checkpoint else current.checkpoint
            if not path.is_file():
                raise ValueError(f"no such checkpoint: {checkpoint}")
            point = operating_point if operating_point or checkpoint else current.predictor.op.name
            s = replace(self.settings, checkpoint=path, operating_point=point)
            t = time.perf_counter()
            try:
                model = self._build(s, warm)
            except ValueError:
                raise
            except Exception as e:  # a file that is no checkpoint, a net this build does not know
                raise ValueError(f"cannot load {path.name}: {type(e).__name__}: {e}") from None
            with self._lock:
                self._model, self.settings = model, s
            log.info("model swapped in %.1f s: now %s (%s engine)", time.perf_counter() - t, model.name,
                     model.predictor.engine_name)
            return model

    def wait(self, timeout: float | None = None) -> bool:
        """Block until a load started by ``start`` has ended (ready or failed); False on timeout."""
        if self._thread is not None:
            self._thread.join(timeout)
            return not self._thread.is_alive()
        return True

    def get(self) -> Model:
        with self._lock:
            if self._model is not None:
                return self._model
            raise NotReady(f"the model failed to load: {self._error}" if self._error else "the model is loading")

    @property
    def ready(self) -> bool:
        with self._lock:
            return self._model is not None

    @property
    def failed(self) -> str:
        """The loading error, "" if none."""
        with self._lock:
            return self._error

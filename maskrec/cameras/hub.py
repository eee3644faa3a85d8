"""All the cameras of a camera file, started and stopped together, processed by one set of workers.

    hub = Hub(config.load("cameras.toml"), models)   # models(detector) -> (Recognizer, label) | None
    hub.add_listener(events.on_frame)                # every camera's CameraFrame, after each frame
    hub.start()
    hub.statuses()                                   # [CameraStatus], in the file's order
    hub.camera("door").jpeg()
    hub.stop()

One camera that cannot be reached, or fails for good, is only that camera's state: the others run
on. Nothing here prints a source URL whole: logs and statuses show ``shown_source``.
"""
from __future__ import annotations

import logging
import os

from maskrec.cameras.camera import Camera, CameraStatus, Listener, Models, Workers
from maskrec.cameras.config import CamerasConfig

log = logging.getLogger("maskrec.cameras")


def default_workers() -> int:
    """Processing threads for all cameras: one per core, 2 at most (2 on the 2-core machine the bar
    is set for). Each detects with its own copy of the detector (``own_detectors``), so two frames
    are detected at once; measured on 2 busy cores, 8 cameras: 46 frames processed per CPU-second
    with own detectors against 42 queueing on one shared recogniser (docs/serve.md, Cameras)."""
    return max(1, min(2, os.cpu_count() or 1))


class Hub:
    def __init__(self, config: CamerasConfig, models: Models, workers: int | None = None,
                 listeners: list[Listener] = (), own_detectors: bool = True, **source_kw):
        self.config = config
        self.workers = Workers([], workers or default_workers(), own_detectors)
        self._cameras = {c.name: Camera(c, models, list(listeners), self.workers.notify, **source_kw)
                         for c in config.cameras}
        self.workers.cameras = list(self._cameras.values())
        self.started = False

    def add_listener(self, listener: Listener) -> None:
        """``listener(CameraFrame)`` after each frame of every camera (on a worker thread: quick, never raising)."""
        for cam in self._cameras.values():
            cam.listeners.append(listener)

    def start(self) -> None:
        for cam in self._cameras.values():
            log.info("camera %s: %s (detector %s, detect every %d)", cam.name, cam.config.shown_source,
                     cam.detector, cam.every)
            cam.start()
        self.workers.start()
        self.started = True

    def stop(self) -> None:
        for cam in self._cameras.values():  # all asked at once, then waited on: not one timeout after another
            cam.halt()
        self.workers.stop()
        for cam in self._cameras.values():
            cam.stop()
        self.started = False
        log.info("cameras stopped")

    def __enter__(self) -> "Hub":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def names(self) -> list[str]:
        return list(self._cameras)

    def camera(self, name: str) -> Camera | None:
        return self._cameras.get(name)

    def statuses(self) -> list[CameraStatus]:
        return [cam.status() for cam in self._cameras.values()]
